"""Predict one GD run's escape from its projected trajectory (thin: logic in deltann.escape)."""

from deltann.escape import escape_run
from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.sweep import parse_run_id

run_script(
    snakemake,
    lambda: write_netcdf(
        escape_run(snakemake.params.cfg, parse_run_id(snakemake.wildcards.run)),
        snakemake.output[0],
    ),
)
