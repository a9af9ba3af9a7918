"""Hessian spectra of one run at its snapshot steps (thin: logic in deltann.pipeline)."""

from deltann.io import read_result, write_netcdf
from deltann.pipeline import hessian_run
from deltann.runner import run_script
from deltann.sweep import parse_run_id

run_script(
    snakemake,
    lambda: write_netcdf(
        hessian_run(
            snakemake.params.cfg,
            parse_run_id(snakemake.wildcards.run),
            read_result(
                snakemake.input[0],
                expect={
                    "experiment": snakemake.params.cfg["experiment"],
                    "run_id": snakemake.wildcards.run,
                },
                what="rule hessian",
            ),
        ),
        snakemake.output[0],
    ),
)
