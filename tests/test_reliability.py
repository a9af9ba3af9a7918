"""Reliability (issue 8): interrupted runs lose nothing, reruns are identical, numerical faults are
recorded and drawn, every file says where it came from, and old files fail with a clear message.

The slow tests drive the real ``snakemake`` CLI in temporary directories with a config whose GD
runs take a few seconds, kill it mid-run (SIGTERM and SIGKILL to its process group, as a scheduler
or a crashed node would) and rerun it.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr
import yaml

from deltann import __version__, runner
from deltann import hessian as hess
from deltann.cli import main as cli_main
from deltann.config import validate_config
from deltann.figures import draw, save
from deltann.io import (
    REQUIRED_GLOBAL_ATTRS,
    IncompatibleFileError,
    git_commit,
    read_netcdf,
    require,
    write_netcdf,
)
from deltann.pipeline import TIMING_VARS, aggregate, hessian_run, train_run
from deltann.runner import run_script
from deltann.sweep import parse_run_id
from deltann.workflow import Layout

ROOT = Path(__file__).resolve().parents[1]
SMK = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

# --------------------------------------------------------------------------------------------
# helpers


def _layout(raw: dict) -> Layout:
    return Layout(validate_config(raw))


def _same_data(a: xr.Dataset, b: xr.Dataset, skip=TIMING_VARS) -> list[str]:
    """Names of data variables / coordinates whose values, dtype or dims differ (bitwise)."""
    bad = []
    names = sorted(set(a.variables) | set(b.variables))
    for name in names:
        if name in skip:
            continue
        if name not in a.variables or name not in b.variables:
            bad.append(name)
            continue
        va, vb = a[name], b[name]
        if va.dims != vb.dims or va.dtype != vb.dtype:
            bad.append(name)
        elif va.dtype.kind in "fc":
            if not np.array_equal(va.values, vb.values, equal_nan=True):
                bad.append(name)
        elif not np.array_equal(va.values, vb.values):
            bad.append(name)
    return bad


# --------------------------------------------------------------------------------------------
# library level: seeds, divergence in figures, eigensolver failures, incompatible files

SMALL = {"base_seed": 3, "experiments": {"k": {
    "d": [20], "delta": [1.0, 4.0], "width": [2], "seeds": 2, "n_test": 100,
    "train": {"steps": 200, "lr": 0.2, "n_records": 12}, "hessian": {"steps": [20, 200]}}}}


def test_same_seed_identical_other_base_seed_differs():
    lay = _layout(SMALL)
    p = parse_run_id(lay.run_ids("k")[0])
    a, b = train_run(lay.exp_slice("k"), p), train_run(lay.exp_slice("k"), p)
    assert _same_data(a, b) == []
    other = _layout({**SMALL, "base_seed": 4})
    c = train_run(other.exp_slice("k"), p)
    differ = _same_data(a, c)
    for name in ("theta", "train_risk", "W_snapshot", "overlap"):
        assert name in differ
    assert a.attrs["seed_entropy"].startswith("data=3 ") and "init=3 " in a.attrs["seed_entropy"]
    assert c.attrs["seed_entropy"].startswith("data=4 ")
    assert a.attrs["config_sha256"] != c.attrs["config_sha256"]


@pytest.fixture(scope="module")
def diverged_sweep():
    """The SMALL sweep with run (delta=4, seed 0) trained at lr=5, where GD blows up at step 4."""
    lay = _layout(SMALL)
    sl = lay.exp_slice("k")
    trains, hessians = {}, {}
    for rid in lay.run_ids("k"):
        p = parse_run_id(rid)
        cfg = sl
        if p.delta == 4.0 and p.seed == 0:
            cfg = {**sl, "train": {**sl["train"], "lr": 5.0}}
        trains[p] = train_run(cfg, p)
        hessians[p] = hessian_run(sl, p, trains[p])
    return aggregate(sl, trains, hessians)


def test_divergence_is_recorded(diverged_sweep):
    ds = diverged_sweep
    div = ds["diverged"].squeeze()
    assert int(div.sel(delta=4.0, seed=0)) == 1 and int(div.sum()) == 1
    assert int(ds["diverged_step"].squeeze().sel(delta=4.0, seed=0)) == 4
    assert int(ds["diverged_step"].squeeze().sel(delta=1.0, seed=0)) == -1
    bad = ds.squeeze().sel(delta=4.0, seed=0)
    assert np.isnan(bad["train_risk"].values[-1]) and np.isfinite(bad["train_risk"].values[0])
    assert np.all(np.isnan(bad["eigval"].values))  # no parameters to diagonalise at steps 20, 200


def test_figures_mark_diverged_runs(diverged_sweep, tmp_path):
    ds = diverged_sweep
    fig = draw("overlap_vs_delta", ds, {})
    crosses = [ln for ln in fig.axes[0].get_lines()
               if ln.get_marker() == "x" and matplotlib.colors.to_hex(ln.get_color()) == "#000000"]
    assert any(np.isfinite(ln.get_ydata()).any() for ln in crosses)  # the diverged run, in black
    assert "diverged run (last record)" in [t.get_text() for t in fig.axes[0].get_legend().texts]
    save(fig, tmp_path / "ov.png")

    fig = draw("dynamics", ds, {"deltas": [1.0, 4.0]})  # one row of 3 panels per delta
    for i, ax in enumerate(fig.axes[:6]):
        marks = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-."]
        if i < 3:  # delta = 1: nothing diverged
            assert not marks
        else:  # delta = 4: marked at the divergence step
            assert len(marks) == 1 and list(marks[0].get_xdata()) == [4, 4]
    save(fig, tmp_path / "dyn.png")

    # the diverged run is seed 0 at delta 4: its panel says so instead of crashing
    fig = draw("spectrum", ds, {"deltas": [4.0], "step": 200})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("no spectrum" in t for t in texts)
    save(fig, tmp_path / "spec.png", tmp_path / "spec.pdf")
    assert (tmp_path / "spec.pdf").stat().st_size > 1000


def test_lanczos_failure_names_the_run(monkeypatch):
    lay = _layout(SMALL)
    sl = lay.exp_slice("k")
    sl = {**sl, "hessian": {**sl["hessian"], "method": "lanczos", "n_vecs": 5}}
    rid = lay.run_ids("k")[1]
    p = parse_run_id(rid)
    tr = train_run(sl, p)
    real = hess.eigsh
    monkeypatch.setattr(hess, "eigsh", lambda *a, **k: real(*a, **{**k, "maxiter": 2}))
    with pytest.raises(RuntimeError, match=rf"Lanczos did not converge for k/{rid} step 20 "
                                           r"\(size 40, k=5\).*use method=dense"):
        hessian_run(sl, p, tr)


def test_dense_failure_names_the_run(monkeypatch):
    def boom(*a, **k):
        raise np.linalg.LinAlgError("eigh failed to converge")

    monkeypatch.setattr(hess, "dense_spectrum", boom)
    rng = np.random.default_rng(0)
    par = hess.Params(rng.standard_normal((2, 5)), np.ones(2), 0.0)
    from deltann.activations import get_activation
    from deltann.losses import get_loss

    with pytest.raises(RuntimeError, match="dense eigh did not converge for exp/run7"):
        hess.spectrum(par, rng.standard_normal((30, 5)), np.ones(30), get_activation("tanh"),
                      get_loss("square"), method="dense", name="exp/run7")


@pytest.mark.parametrize(("kind", "drop", "message"), [
    ("overlap_vs_delta", "diverged", r"missing variables \['diverged'\]"),
    ("dynamics", "grad_norm", r"missing variables \['grad_norm'\]"),
    ("spectrum", "eigval", r"missing variables \['eigval'\]"),
    ("spectrum", "@experiment", r"missing attributes \['experiment'\]"),
])
def test_incompatible_sweep_file_names_what_is_missing(diverged_sweep, tmp_path, kind, drop,
                                                       message):
    ds = diverged_sweep.copy()
    if drop.startswith("@"):
        del ds.attrs[drop[1:]]
    else:
        ds = ds.drop_vars(drop)
    ds.attrs["source"] = "deltann 0.0.1"
    path = write_netcdf(ds, tmp_path / "old_sweep.nc")
    with pytest.raises(IncompatibleFileError, match=message) as info:
        draw(kind, read_netcdf(path), {}, paths=path)
    text = str(info.value)
    assert str(path) in text and f"figure kind {kind!r}" in text
    assert "deltann 0.0.1" in text and f"deltann {__version__}" in text


def test_require_lists_every_missing_item():
    ds = xr.Dataset({"a": ("x", [1.0])}, attrs={"source": "deltann 0.0.1"})
    with pytest.raises(IncompatibleFileError) as info:
        require(ds, variables=("a", "b", "c"), dims=("x", "step"), attrs=("config",), path="f.nc")
    text = str(info.value)
    assert "missing variables ['b', 'c']" in text and "missing dimensions ['step']" in text
    assert "missing attributes ['config']" in text and text.startswith("f.nc: ")
    assert require(ds, variables=("a",), dims=("x",)) is ds


def test_git_commit_outside_git_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", git_commit())


def test_stale_temp_file_of_a_killed_writer_is_removed(diverged_sweep, tmp_path):
    stale = tmp_path / ".s.nc.abc123.tmp"
    stale.write_bytes(b"half a file")
    write_netcdf(diverged_sweep, tmp_path / "s.nc")
    assert [p.name for p in tmp_path.iterdir()] == ["s.nc"]


def test_sigterm_during_write_leaves_old_file_and_no_temp(diverged_sweep, tmp_path, monkeypatch):
    path = write_netcdf(diverged_sweep, tmp_path / "s.nc")
    before = path.read_bytes()
    real = xr.Dataset.to_netcdf

    def killed_mid_write(self, tmp, **kw):
        Path(tmp).write_bytes(b"half a file")
        os.kill(os.getpid(), signal.SIGTERM)  # delivered here; run_script's handler -> SystemExit
        return real(self, tmp, **kw)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", killed_mid_write)
    old = signal.signal(signal.SIGTERM, runner._terminate)  # as installed by run_script
    try:
        with pytest.raises(SystemExit) as info:
            write_netcdf(diverged_sweep, path)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert info.value.code == 128 + signal.SIGTERM
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.nc"]


def test_run_script_logs_termination(tmp_path):
    class Smk:
        log = [str(tmp_path / "job.log")]
        threads, rule, wildcards = 1, "train", {"run": "r"}

    old = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit):
            run_script(Smk(), lambda: os.kill(os.getpid(), signal.SIGTERM))
    finally:
        signal.signal(signal.SIGTERM, old)
        for h in logging.getLogger().handlers[:]:
            h.close()
            logging.getLogger().removeHandler(h)
    text = (tmp_path / "job.log").read_text()
    assert "rule train terminated (exit status 143); no output written" in text


def test_provenance_cli_reports_missing_attributes(tmp_path, capsys):
    ds = xr.Dataset({"x": ("t", [1.0])}, attrs={"title": "an older deltann file"})
    ds.to_netcdf(tmp_path / "foreign.nc")
    assert cli_main(["provenance", str(tmp_path / "foreign.nc")]) == 1
    err = capsys.readouterr().err
    assert "missing provenance attributes" in err and "config_sha256" in err


# --------------------------------------------------------------------------------------------
# the real snakemake CLI: kill mid-run, rerun, compare

# Four GD runs of about a second each (GD steps dominate), one Hessian step, no figures.
KILL_CFG = {"base_seed": 3, "experiments": {"k": {
    "d": [30], "delta": [2.0, 4.0], "width": [2], "seeds": 2, "n_test": 100,
    "train": {"steps": 20000, "lr": 0.2, "n_records": 20}, "hessian": {"steps": [10]}}}}
N_RUNS = 4


def _smk(cwd, *args, check=True):
    out = subprocess.run(SMK + ["--configfile", "k.yaml", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    text = out.stdout + out.stderr
    if check:
        assert out.returncode == 0, text[-4000:]
    return text


def _job_stats(text: str) -> dict:
    """{rule: count} from the first 'Job stats' table snakemake prints."""
    if "Job stats:" not in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {r: int(c) for r, c in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
            if r != "total"}


def _outputs(d: Path) -> dict[str, int]:
    """{relative path: mtime_ns} of every (non-hidden) NetCDF output."""
    res = d / "results"
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in res.rglob("*.nc")
            if not p.name.startswith(".")} if res.exists() else {}


def _check_valid(d: Path, paths) -> None:
    for rel in paths:
        ds = xr.load_dataset(d / rel, engine="netcdf4")  # opens: complete, valid NetCDF-4
        for key in REQUIRED_GLOBAL_ATTRS:
            assert ds.attrs.get(key), f"{rel}: {key}"


def _new_dir(factory, name) -> Path:
    d = factory.mktemp(name)
    (d / "k.yaml").write_text(yaml.safe_dump(KILL_CFG))
    return d


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """The kill config run once, uninterrupted: the reference."""
    d = _new_dir(tmp_path_factory, "clean")
    text = _smk(d, "--cores", "2")
    assert _job_stats(text) == {"train": N_RUNS, "hessian": N_RUNS, "aggregate": 1, "all": 1}
    return d


@pytest.fixture(scope="module", params=["SIGTERM", "SIGKILL"])
def interrupted_run(request, tmp_path_factory):
    """Run serially, kill the whole process group while a GD run is training, then rerun."""
    sig = getattr(signal, request.param)
    d = _new_dir(tmp_path_factory, f"killed_{request.param}")
    train, logs = d / "results" / "k" / "train", d / "results" / "logs" / "k" / "train"
    with open(d / "first.log", "w") as fh:
        proc = subprocess.Popen(SMK + ["--configfile", "k.yaml", "--cores", "1"], cwd=d,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for >= 1 finished GD run and another one in its GD loop
            done = list(train.glob("*.nc")) if train.exists() else []
            busy = [p for p in logs.glob("*.log") if "train k/" in p.read_text()
                    and not (train / f"{p.stem}.nc").exists()] if logs.exists() else []
            if done and busy:
                break
            assert proc.poll() is None, "the pipeline ended before it could be interrupted"
            assert time.monotonic() < deadline, "no GD run started in time"
            time.sleep(0.05)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    killed = busy[0].stem
    survivors = _outputs(d)
    info = {"dir": d, "signal": request.param, "survivors": survivors, "killed": killed,
            "killed_log": busy[0].read_text()}
    if sig == signal.SIGKILL:  # snakemake had no chance to release its lock
        assert list((d / ".snakemake" / "locks").iterdir())
        _smk(d, "--unlock")
    info["rerun"] = _smk(d, "--cores", "2", "--rerun-incomplete")
    return info


@pytest.mark.slow
def test_kill_mid_run_then_rerun_loses_nothing(interrupted_run):
    d, survivors = interrupted_run["dir"], interrupted_run["survivors"]
    n_train = sum("/train/" in p for p in survivors)
    n_hess = sum("/hessian/" in p for p in survivors)
    assert 1 <= n_train < N_RUNS  # interrupted part-way
    assert f"results/k/train/{interrupted_run['killed']}.nc" not in survivors  # no partial output
    _check_valid(d, survivors)  # what survived the kill is complete
    if interrupted_run["signal"] == "SIGTERM":
        assert "terminated (exit status 143); no output written" in interrupted_run["killed_log"]
    # the rerun does exactly the unfinished jobs ...
    assert _job_stats(interrupted_run["rerun"]) == {
        "train": N_RUNS - n_train, "hessian": N_RUNS - n_hess, "aggregate": 1, "all": 1}
    after = _outputs(d)
    # ... leaves the finished ones untouched, and ends with every output, all valid
    assert {p: after[p] for p in survivors} == survivors
    assert len(after) == 2 * N_RUNS + 1
    _check_valid(d, after)
    assert not [p for p in (d / "results").rglob(".*.tmp")]  # no temporary files left


@pytest.mark.slow
def test_rerun_after_interruption_is_bitwise_identical(interrupted_run, clean_run):
    """Same config and seed: every data variable of every file equal bit for bit."""
    d = interrupted_run["dir"]
    files = sorted(_outputs(clean_run))
    assert files == sorted(_outputs(d)) and "results/k/sweep.nc" in files
    for rel in files:
        a, b = xr.load_dataset(clean_run / rel), xr.load_dataset(d / rel)
        assert _same_data(a, b) == [], rel
        assert a.attrs["config_sha256"] == b.attrs["config_sha256"]
        assert a.attrs["seed_entropy"] == b.attrs["seed_entropy"]
    sweep = xr.load_dataset(d / "results/k/sweep.nc")
    assert len(sweep.data_vars) >= 15 and "train_seconds" in sweep  # timing: the one exception


@pytest.mark.slow
def test_every_output_carries_provenance(clean_run):
    cfg = validate_config(KILL_CFG)
    for rel in _outputs(clean_run):
        ds = xr.load_dataset(clean_run / rel)
        a = ds.attrs
        assert json.loads(a["config"]) == Layout(cfg).exp_slice("k"), rel
        assert a["config_sha256"] == hashlib.sha256(a["config"].encode()).hexdigest()
        assert a["source"] == f"deltann {__version__}"
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", a["git_commit"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", a["created"])
        if "/train/" in rel or "/hessian/" in rel:
            assert re.fullmatch(r"data=3 \d+ \d+; init=3 \d+ \d+", a["seed_entropy"]), rel
        else:  # sweep.nc: one line per run
            lines = a["seed_entropy"].splitlines()
            assert len(lines) == N_RUNS and all(re.search(r": data=3 \d+ \d+; init=3", ln)
                                                for ln in lines)


@pytest.mark.slow
def test_provenance_cli_on_pipeline_output(clean_run):
    path = clean_run / "results" / "k" / "sweep.nc"
    out = subprocess.run([sys.executable, "-m", "deltann.cli", "provenance", str(path), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    ds = xr.load_dataset(path)
    for key in REQUIRED_GLOBAL_ATTRS:
        assert key in info
    assert info["config"] == json.loads(ds.attrs["config"]) and info["config"]["base_seed"] == 3
    assert info["config_sha256"] == ds.attrs["config_sha256"]
    assert info["source"] == f"deltann {__version__}" and info["experiment"] == "k"
    assert info["git_commit"] == ds.attrs["git_commit"] and info["created"]
    run = next((clean_run / "results" / "k" / "train").glob("*.nc"))
    text = subprocess.run([sys.executable, "-m", "deltann.cli", "provenance", str(run)],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    for key in ("config", "config_sha256", "source", "git_commit", "seed_entropy", "created",
                "run_id"):
        assert re.search(rf"^{key}: \S", text, flags=re.M), key


@pytest.mark.slow
def test_figure_rule_on_old_sweep_file_names_what_is_missing(clean_run, tmp_path):
    d = tmp_path / "old"
    shutil.copytree(clean_run, d, ignore=shutil.ignore_patterns(".snakemake"))
    cfg = {**KILL_CFG, "figures": {"ov": {"kind": "overlap_vs_delta", "experiment": "k"}}}
    (d / "k.yaml").write_text(yaml.safe_dump(cfg))
    sweep = d / "results" / "k" / "sweep.nc"
    old = xr.load_dataset(sweep).drop_vars("diverged")  # as written before divergence was stored
    old.attrs["source"] = "deltann 0.0.1"
    write_netcdf(old, sweep)
    text = _smk(d, "--cores", "1", "--show-failed-logs", "results/figures/ov.png", check=False)
    assert _job_stats(text) == {"figure": 1}  # nothing retrained: only the figure was attempted
    assert "missing variables ['diverged']" in text and "results/k/sweep.nc" in text
    assert "written by deltann 0.0.1" in text
    assert not (d / "results" / "figures" / "ov.png").exists()
