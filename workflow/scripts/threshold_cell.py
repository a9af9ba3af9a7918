"""delta_NN of one cell of the thresholds table (thin: logic in deltann.theory.table)."""

from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.theory.table import threshold_table

run_script(
    snakemake,
    lambda: write_netcdf(threshold_table(snakemake.params.cfg), snakemake.output[0]),
)
