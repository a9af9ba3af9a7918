"""Train one GD run (thin: all logic in deltann.pipeline)."""

from deltann.io import write_netcdf
from deltann.pipeline import train_run
from deltann.runner import run_script
from deltann.sweep import parse_run_id

run_script(
    snakemake,
    lambda: write_netcdf(
        train_run(snakemake.params.cfg, parse_run_id(snakemake.wildcards.run)),
        snakemake.output[0],
    ),
)
