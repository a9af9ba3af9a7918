"""Draw one figure from its NetCDF inputs (thin: logic in deltann.figures)."""

from deltann.figures import render
from deltann.runner import run_script

cfg = snakemake.params.cfg
paths = {role: path for role, path in snakemake.input.items() if role != "module"}
run_script(
    snakemake,
    lambda: render(cfg, paths, snakemake.output.png, snakemake.output.pdf),
)
