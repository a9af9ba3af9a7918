"""End to end: the real snakemake CLI runs configs/ci.yaml into a temporary directory."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from deltann.io import REQUIRED_GLOBAL_ATTRS
from deltann.sweep import SWEEP_AXES

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
             "--configfile", str(ROOT / "configs" / "ci.yaml")]

pytestmark = pytest.mark.slow
FIGURES = ("phase_diagram", "overlap_vs_delta", "dynamics", "spectrum", "bbp", "architecture",
           "escape_time", "trajectory", "finite_size", "grokking", "initialisation")


def _smk(cwd, *args):
    out = subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def _planned_jobs(text):
    """{rule: count} from the 'Job stats' table of a dry run."""
    table = text.split("Job stats:")[1].split("Reasons")[0] if "Job stats:" in text else ""
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
    return {r: int(c) for r, c in rows if r != "total"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    keep = d / "results" / "figures" / "phase_diagram.png"  # a default run's output
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"default results")
    _smk(d, "--cores", "2")
    return d


def test_ci_run_leaves_default_results_alone(run_dir):
    """configs/ci.yaml writes to results_ci/: the default results/ is untouched."""
    files = [p for p in (run_dir / "results").rglob("*") if p.is_file()]
    assert files == [run_dir / "results" / "figures" / "phase_diagram.png"]
    assert files[0].read_bytes() == b"default results"


def test_run_files_sweep_and_figures_exist(run_dir):
    res = run_dir / "results_ci"
    assert len(list((res / "ci" / "train").glob("*.nc"))) == 8  # 2 d x 2 deltas x 2 seeds
    assert len(list((res / "ci" / "hessian").glob("*.nc"))) == 8
    # 2 deltas x a_init 1, 2: the non-default initialisation named in the run id
    assert sorted(p.name for p in (res / "ci_m1" / "train").glob("*delta6*.nc")) == [
        "z2sat__softplus__square__m1__d20__delta6__s0.nc",
        "z2sat__softplus__square__m1__d20__delta6__s0__a2.nc"]
    assert len(list((res / "ci_m1" / "train").glob("*.nc"))) == 4
    m1 = xr.load_dataset(res / "ci_m1" / "sweep.nc")
    assert list(m1["a_init"].values) == [1.0, 2.0] and m1["a"].dims[-2:] == ("step", "neuron")
    np.testing.assert_allclose(m1["a"].isel(step=0).squeeze().values, [[1.0, 2.0]] * 2)
    assert not (res / "ci_m1" / "hessian").exists()  # hessian.steps: []
    assert len(list((res / "ci" / "escape").glob("*.nc"))) == 8  # predictor.enabled
    assert not (res / "ci_m1" / "escape").exists()
    assert (res / "ci" / "theory_parts" / "all.nc").exists()  # fits max_job_hours: one part
    for fig in FIGURES:
        png, pdf = res / "figures" / f"{fig}.png", res / "figures" / f"{fig}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    assert list((res / "benchmarks" / "ci" / "train").glob("*.tsv"))
    log = next((res / "logs" / "ci" / "train").glob("*.log")).read_text()
    assert "BLAS pools" in log and "step 100/100" in log


def test_sweep_nc_is_labelled_and_sane(run_dir):
    ds = xr.load_dataset(run_dir / "results_ci" / "ci" / "sweep.nc")
    for v in ("pred_escape_step", "pred_overlap", "proj_test_risk"):  # the predictor, merged
        assert v in ds and ds[v].attrs["long_name"]
    assert ds["pred_overlap"].dims[-1] == "step"
    for ax in SWEEP_AXES:
        assert ax in ds.dims
    assert ds.sizes["delta"] == 2 and ds.sizes["seed"] == 2 and ds.sizes["hstep"] == 2
    assert list(ds["d"].values) == [20, 30]
    assert list(ds["hstep"].values) == [20, 100]
    for name in ("train_risk", "test_risk", "grad_norm", "hard_overlap", "eigval", "lambda_min",
                 "vec_hard_overlap", "diverged"):
        assert name in ds
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name
    for key in REQUIRED_GLOBAL_ATTRS:
        assert ds.attrs[key], key
    risk = ds["train_risk"].squeeze()
    assert np.all(np.isfinite(risk)) and np.all(risk.isel(step=-1) < risk.isel(step=0))
    ov = ds["hard_overlap"].values
    assert np.all((ov >= 0) & (ov <= 1))
    # (delta, seed, hstep, eig): all m d eigenvalues, ascending, NaN-padded to the largest d
    eig = ds["eigval"].sel(d=20).squeeze()
    assert eig.sizes["eig"] == 60 and np.all(np.isnan(eig.values[..., 40:]))
    assert np.all(np.diff(eig.values[..., :40], axis=-1) >= -1e-12)
    np.testing.assert_allclose(ds["vec_eigval"].sel(d=20).squeeze().values, eig.values[..., :5])


def test_theory_nc_is_labelled(run_dir):
    ds = xr.load_dataset(run_dir / "results_ci" / "ci" / "theory.nc")
    assert ds.sizes["delta"] == 2 and ds.sizes["d"] == 2
    for name in ("th_edge", "th_mu_edge", "th_nu", "th_lambda", "th_overlap2", "th_converged",
                 "sim_lambda", "sim_overlap2", "delta_nn", "delta_nn_err", "delta_nn_converged",
                 "delta_nn_status", "delta_alg"):
        assert "long_name" in ds[name].attrs, name
    assert ds["delta_alg"].item() == pytest.approx(0.5, abs=1e-9)  # y = 3 tanh(z^2 / 3)
    assert np.all(np.isfinite(ds["th_edge"]))  # bounded target: the theory applies


def test_thresholds_nc_joins_the_targets(run_dir):
    res = run_dir / "results_ci"
    cells = sorted(str(p.relative_to(res / "thresholds")) for p in
                   (res / "thresholds").rglob("*.nc"))  # one job per cell of the design
    assert cells == ["z2/softplus__square__m1__first_layer.nc",
                     "z2/softplus__square__m2__first_layer.nc",
                     "z2/softplus__square__m2__first_layer__a2.nc",
                     "z2sat/softplus__square__m1__first_layer.nc",
                     "z2sat/softplus__square__m2__first_layer.nc",
                     "z2sat/softplus__square__m2__first_layer__a2.nc"]
    ds = xr.load_dataset(res / "thresholds.nc")
    assert list(ds["target"].values) == ["z2sat", "z2"] and list(ds["m"].values) == [2, 1]
    assert list(ds["a_init"].values) == [1.0, 2.0] and list(ds["init_scale"].values) == [1.0]
    assert ds.attrs["design"] == "one_at_a_time"
    assert ds["delta_nn_status"].sel(target="z2sat", m=1, a_init=2.0).item() == "not_computed"
    assert ds["delta_nn_status"].sel(target="z2sat", m=2, a_init=2.0).item() != "not_computed"
    ds = ds.sel(a_init=1.0, init_scale=1.0)
    dnn = ds["delta_nn"].squeeze(("activation", "loss", "schedule"))
    assert np.isfinite(dnn.sel(target="z2sat", m=2))
    assert ds["delta_nn_converged"].sel(target="z2sat", m=2).item() == 1
    assert np.isfinite(ds["delta_nn_err"].sel(target="z2sat", m=2)).all()
    # m = 1 with a fixed second layer: the theta-outlier stays positive (no escape direction)
    assert np.isnan(dnn.sel(target="z2sat", m=1))
    status = ds["delta_nn_status"].squeeze(("activation", "loss", "schedule"))
    assert status.sel(target="z2sat", m=2).item() == "value"
    assert status.sel(target="z2sat", m=1).item() == "none"
    assert status.sel(target="z2", m=2).item() == "not_applicable"
    reasons = json.loads(ds.attrs["reasons"])
    assert "no negative theta-outlier" in reasons["z2sat/softplus/square/m=1/first_layer"]
    assert np.all(np.isnan(dnn.sel(target="z2")))
    assert "unbounded" in ds.attrs["reasons"]  # z2 + softplus: theory not applicable, said so
    for key in REQUIRED_GLOBAL_ATTRS:
        assert ds.attrs[key], key


def test_one_delta_nn_through_theory_thresholds_and_cli(run_dir):
    """configs/ci.yaml gives experiments.ci.theory and thresholds the same estimator settings at
    d = 20 (m = 2, first_layer): theory.nc, thresholds.nc and ``deltann threshold`` must report
    the same delta_NN and error (one function, same defaults), to rounding."""
    res = run_dir / "results_ci"
    th = xr.load_dataset(res / "ci" / "theory.nc").squeeze()
    tab = xr.load_dataset(res / "thresholds.nc").sel(a_init=1.0).squeeze()
    out = subprocess.run(
        [sys.executable, "-m", "deltann.cli", "threshold", "--target", "z2sat", "--width", "2",
         "--schedule", "first_layer", "--d", "20", "--seeds", "2", "--deltas", "1,16",
         "--n-grid", "3", "--refine", "1", "--budget", "400", "--base-seed", "7", "--json"],
        capture_output=True, text=True, check=True)
    cli = json.loads(out.stdout)
    assert cli["converged"] is True and cli["d"] == 20
    v_th = th["delta_nn"].sel(d=20).item()
    v_tab = tab["delta_nn"].sel(target="z2sat", m=2).item()
    assert v_th == pytest.approx(cli["delta_nn"], rel=1e-12)
    assert v_tab == pytest.approx(cli["delta_nn"], rel=1e-12)
    assert th["delta_nn_err"].sel(d=20).item() == pytest.approx(cli["delta_nn_err"], rel=1e-12)
    assert th["delta_nn_status"].sel(d=20).item() == tab["delta_nn_status"].sel(
        target="z2sat", m=2).item() == cli["status"] == "value"
    assert "progress" not in out.stdout and "[1/" in out.stderr  # progress on stderr only


def test_rerun_has_nothing_to_do_and_one_figure_redraws_alone(run_dir):
    assert "Nothing to be done" in _smk(run_dir, "-n")
    (run_dir / "results_ci" / "figures" / "spectrum.png").unlink()
    assert _planned_jobs(_smk(run_dir, "-n")) == {"figure": 1, "all": 1}


def test_editing_a_figure_module_redraws_only_its_figures(run_dir):
    """A newer figure module (mtime) makes only the figures of that kind out of date."""
    import os
    import time

    from deltann.figures import module_path

    path = module_path("spectrum")
    st = os.stat(path)
    try:
        os.utime(path, (st.st_atime, time.time() + 5))
        assert _planned_jobs(_smk(run_dir, "-n")) == {"figure": 1, "all": 1}
    finally:
        os.utime(path, (st.st_atime, st.st_mtime))  # leave the source tree as it was


def test_figure_files_carry_provenance(run_dir):
    """PNG text chunks and the PDF info dictionary hold the version and the config hashes."""
    import hashlib

    from PIL import Image

    from deltann import __version__
    from deltann.config import validate_config
    from deltann.io import config_json

    full = validate_config(yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text()),
                           ROOT / "workflow" / "schemas" / "config.schema.yaml")
    cfg = {"figure": "bbp", **full["figures"]["bbp"]}  # the rule's slice (Layout.fig_slice)
    figs = run_dir / "results_ci" / "figures"
    text = Image.open(figs / "bbp.png").text
    assert text["deltann_version"] == __version__
    sweep_like = xr.load_dataset(run_dir / "results_ci" / "ci" / "theory.nc")
    assert text["input_theory_config_sha256"] == sweep_like.attrs["config_sha256"]
    assert text["figure_config_sha256"] == hashlib.sha256(config_json(cfg).encode()).hexdigest()
    assert b"figure_config_sha256" in (figs / "bbp.pdf").read_bytes()


def test_editing_package_code_reruns_what_it_affects(run_dir):
    """Rules carry a hash of the package source they import (deltann.source): a changed
    losses.py reruns the GD runs (and everything downstream), a changed cli.py reruns nothing."""
    from deltann.source import module_file

    _smk(run_dir, "--cores", "1")  # redraw what earlier tests removed
    for module, expect in (("deltann.cli", None), ("deltann.losses", "train")):
        path = module_file(module)
        text = path.read_text()
        try:
            path.write_text(text + "\n# edited\n")
            planned = _planned_jobs(_smk(run_dir, "-n"))
        finally:
            path.write_text(text)  # leave the source tree as it was
        if expect is None:
            assert planned == {}, planned
        else:
            assert planned.get(expect, 0) > 0 and "figure" in planned, planned
    assert "Nothing to be done" in _smk(run_dir, "-n")


def test_report_with_captions(run_dir):
    _smk(run_dir, "--cores", "1")  # redraw what earlier tests removed or made stale
    _smk(run_dir, "--report", "report.zip")
    import zipfile

    with zipfile.ZipFile(run_dir / "report.zip") as z:
        names = z.namelist()
        html = z.read(next(n for n in names if n.endswith("report.html"))).decode()
    assert sum(n.endswith(".png") for n in names) == len(FIGURES)
    assert "System Message" not in html and "Undefined substitution" not in html  # docutils
    assert "drawn at d = 20" in html and "seed 0" in html  # the d and seed drawn, not the list
    for text in ("GD steps at lr", "BBP curve", "Phase diagram", "Escape time",
                 "projected-GD steps", "Shaded phases", "GD checks", "escape predictor",
                 "Grokking: for each d", "The initialisation: GD's transition"):
        assert text in html, text


def test_batched_jobs_write_the_same_run_files(run_dir, tmp_path):
    """``batch.runs = 4``: the 12 GD runs, 8 Hessian files and 8 escape predictions of the ci
    config in jobs of 4 runs (ci_m1 pairs runs on the same samples) are the files of one job
    per run, bitwise apart from wall times and creation stamps (tests/test_batched.py checks
    the library the same way)."""
    from deltann.pipeline import TIMING_VARS

    files = sorted(f for sub in ("train", "hessian", "escape")
                   for f in (run_dir / "results_ci").glob(f"*/{sub}/*.nc"))
    targets = [str(f.relative_to(run_dir)) for f in files]
    cfg = yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text())
    cfg["batch"] = {"runs": 4}
    (tmp_path / "batched.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(ROOT / "Snakefile"),
           "--cores", "2", "--configfile", "batched.yaml"]
    out = subprocess.run(cmd + ["-n"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    planned = _planned_jobs(out.stdout + out.stderr)
    assert planned == {**{f"train_batch_{i}": 1 for i in range(3)},
                       **{f"{r}_batch_{i}": 1 for r in ("hessian", "escape") for i in range(2)}
                       }, planned
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(files) == 28
    for f in files:
        a, b = (xr.load_dataset(p) for p in (f, tmp_path / f.relative_to(run_dir)))
        a, b = (x.drop_vars([v for v in TIMING_VARS if v in x]) for x in (a, b))
        for x in (a, b):
            del x.attrs["history"], x.attrs["created"]
        assert a.identical(b), f.name
    # back to one job per run: the GD runs and predictions are up to date (same script, params
    # and code); the Hessian jobs rerun, their job's set of inputs having changed
    back = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--snakefile",
                           str(ROOT / "Snakefile"), "-n", "--configfile",
                           str(ROOT / "configs" / "ci.yaml")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert _planned_jobs(back.stdout + back.stderr) == {"hessian": 8}
