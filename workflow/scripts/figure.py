"""Draw one figure from its NetCDF inputs (thin: logic in deltann.figures)."""

from deltann.figures import draw, save
from deltann.io import read_netcdf
from deltann.runner import run_script

cfg = snakemake.params.cfg
paths = {role: path for role, path in snakemake.input.items() if role != "module"}
run_script(
    snakemake,
    lambda: save(
        draw(cfg["kind"], {r: read_netcdf(p) for r, p in paths.items()}, cfg, paths=paths),
        snakemake.output.png,
        snakemake.output.pdf,
    ),
)
