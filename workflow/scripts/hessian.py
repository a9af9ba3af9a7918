"""Hessian spectra of the runs of the job's outputs, one file each (rule hessian or
hessian_batch_<i>; logic in deltann.pipeline)."""

from pathlib import Path

from deltann.io import write_netcdf
from deltann.pipeline import hessian_batch
from deltann.runner import run_script
from deltann.sweep import parse_run_id


def _body():
    out = {parse_run_id(Path(f).stem): f for f in snakemake.output}
    for p, ds in hessian_batch(snakemake.params.cfg, list(out), snakemake.input):
        write_netcdf(ds, out[p])


run_script(snakemake, _body)
