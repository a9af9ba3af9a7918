"""Draw one figure from sweep.nc or theory.nc (thin: logic in deltann.figures)."""

from deltann.figures import draw, save
from deltann.io import read_netcdf
from deltann.runner import run_script

cfg = snakemake.params.cfg
run_script(
    snakemake,
    lambda: save(
        draw(cfg["kind"], read_netcdf(snakemake.input.data), cfg, path=snakemake.input.data),
        snakemake.output.png,
        snakemake.output.pdf,
    ),
)
