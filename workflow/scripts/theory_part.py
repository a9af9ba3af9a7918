"""One part of an experiment's theory.nc (thin: logic in deltann.theory.curves)."""

from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.theory.curves import Part, theory_curves

run_script(
    snakemake,
    lambda: write_netcdf(
        theory_curves(snakemake.params.cfg, Part.parse(snakemake.wildcards.part)),
        snakemake.output[0],
    ),
)
