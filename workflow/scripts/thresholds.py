"""Join the delta_NN cells into thresholds.nc (thin: logic in deltann.theory.table)."""

from deltann.io import read_result, write_netcdf
from deltann.runner import run_script
from deltann.theory.table import assemble_table

run_script(
    snakemake,
    lambda: write_netcdf(
        assemble_table(
            [
                read_result(p, ("delta_nn", "delta_nn_err"), ("reasons", "d"), what="thresholds")
                for p in snakemake.input
            ],
            snakemake.params.cfg,
        ),
        snakemake.output[0],
    ),
)
