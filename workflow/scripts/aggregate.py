"""Combine an experiment's run files into sweep.nc (thin: logic in deltann.pipeline)."""

from deltann.pipeline import aggregate_files
from deltann.runner import run_script

run_script(
    snakemake,
    lambda: aggregate_files(
        snakemake.params.cfg,
        snakemake.input.train,
        snakemake.input.hessian,
        snakemake.output[0],
        snakemake.input.escape,
    ),
)
