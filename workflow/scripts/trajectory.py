"""Second-phase trajectory of one experiment into trajectory.nc (logic in deltann.theory)."""

from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.theory.trajectory import trajectory

run_script(
    snakemake,
    lambda: write_netcdf(trajectory(snakemake.params.cfg), snakemake.output[0]),
)
