"""Train a batch of GD runs, one file each (thin: all logic in deltann.pipeline)."""

from deltann.io import write_netcdf
from deltann.pipeline import train_batch
from deltann.runner import run_script
from deltann.sweep import parse_run_id


def _body():
    points = [parse_run_id(r) for r in snakemake.params.runs]
    out = dict(zip(points, snakemake.output, strict=True))
    for p, ds in train_batch(snakemake.params.cfg, points, snakemake.params.stack):
        write_netcdf(ds, out[p])


run_script(snakemake, _body)
