"""Escape predictions of a batch of runs, one file each (thin: logic in deltann.escape)."""

from deltann.escape import escape_batch
from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.sweep import parse_run_id


def _body():
    points = [parse_run_id(r) for r in snakemake.params.runs]
    out = dict(zip(points, snakemake.output, strict=True))
    for p, ds in escape_batch(snakemake.params.cfg, points):
        write_netcdf(ds, out[p])


run_script(snakemake, _body)
