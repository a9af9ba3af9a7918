"""Train the GD runs of the job's outputs, one file each: one run (rule train) or a batch (rules
train_batch_<i>); the same script, so changing batch.runs reruns nothing (logic in
deltann.pipeline)."""

from pathlib import Path

from deltann.io import write_netcdf
from deltann.pipeline import train_batch
from deltann.runner import run_script
from deltann.sweep import parse_run_id


def _body():
    out = {parse_run_id(Path(f).stem): f for f in snakemake.output}
    for p, ds in train_batch(snakemake.params.cfg, list(out), snakemake.params.stack):
        write_netcdf(ds, out[p])


run_script(snakemake, _body)
