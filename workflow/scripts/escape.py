"""Escape predictions of the runs of the job's outputs, one file each (rule escape or
escape_batch_<i>; logic in deltann.escape)."""

from pathlib import Path

from deltann.escape import escape_batch
from deltann.io import write_netcdf
from deltann.runner import run_script
from deltann.sweep import parse_run_id


def _body():
    out = {parse_run_id(Path(f).stem): f for f in snakemake.output}
    for p, ds in escape_batch(snakemake.params.cfg, list(out)):
        write_netcdf(ds, out[p])


run_script(snakemake, _body)
