"""Theory curves of one experiment into theory.nc (thin: logic in deltann.theory.curves)."""

from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.theory.curves import theory_curves

run_script(
    snakemake,
    lambda: write_netcdf(theory_curves(snakemake.params.cfg), snakemake.output[0]),
)
