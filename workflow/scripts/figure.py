"""Draw one figure from sweep.nc (thin: logic in deltann.figures)."""

from deltann.figures import draw, save
from deltann.io import read_netcdf
from deltann.runner import run_script

cfg = snakemake.params.cfg
run_script(
    snakemake,
    lambda: save(
        draw(cfg["kind"], read_netcdf(snakemake.input.sweep), cfg, path=snakemake.input.sweep),
        snakemake.output.png,
        snakemake.output.pdf,
    ),
)
