"""Bad inputs are stopped before any job, by name: configs (schema + deltann.config), YAML files,
CLI arguments and result files. Each case asserts the message (key, value, what is allowed) and,
where a run is started, that nothing was written and no traceback printed."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from deltann.config import ConfigError, read_yaml, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CI = yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text())


def _exp(c):
    return c["experiments"]["ci"]


def _set(path, value):
    """Mutator setting a dotted key of the ci config."""
    def f(c):
        node = c
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return f


NAN, INF = float("nan"), float("inf")
# (id, mutator, expected fragment of the message)
CONFIG_CASES = [
    # non-finite numbers (YAML .nan / .inf)
    ("delta_nan", _set("experiments.ci.delta", [2.0, NAN]),
     "experiments.ci.delta.1: nan is not allowed; allowed: a finite number"),
    ("lr_inf", _set("experiments.ci.train.lr", INF),
     "experiments.ci.train.lr: inf is not allowed; allowed: a finite number"),
    ("noise_nan", _set("experiments.ci.noise", NAN), "experiments.ci.noise: nan is not allowed"),
    ("init_scale_inf", _set("experiments.ci.train.init_scale", INF),
     "experiments.ci.train.init_scale: inf is not allowed"),
    ("max_weight_norm_nan", _set("experiments.ci.train.max_weight_norm", NAN),
     "experiments.ci.train.max_weight_norm: nan is not allowed"),
    ("a_init_minus_inf", _set("experiments.ci.train.a_init", -INF),
     "experiments.ci.train.a_init: -inf is not allowed"),
    ("thresholds_range_inf", _set("thresholds.delta_range", [1.0, INF]),
     "thresholds.delta_range.1: inf is not allowed"),
    # whole-number floats where integers are meant
    ("steps_float", _set("experiments.ci.train.steps", 100.0),
     "experiments.ci.train.steps: 100.0 is not of type 'integer'; allowed: an integer >= 0"),
    ("n_vecs_float", _set("experiments.ci.hessian.n_vecs", 5.0),
     "experiments.ci.hessian.n_vecs: 5.0 is not of type 'integer'"),
    ("seeds_float", _set("experiments.ci.seeds", 2.0), "experiments.ci.seeds: 2.0 is not of type"),
    ("width_float", _set("experiments.ci.width", [2.0]),
     "experiments.ci.width.0: 2.0 is not of type 'integer'"),
    ("d_float", _set("experiments.ci.d", [20.0, 30]), "experiments.ci.d.0: 20.0 is not of type"),
    ("thresholds_seeds_float", _set("thresholds.seeds", 2.0),
     "thresholds.seeds: 2.0 is not of type 'integer'"),
    ("bool_as_int", _set("experiments.ci.seeds", True),
     "experiments.ci.seeds: True is not of type"),
    # grids
    ("delta_descending", _set("experiments.ci.delta", [6.0, 2.0]),
     "experiments.ci.delta: [6.0, 2.0] is not strictly increasing; allowed: an increasing list"),
    ("d_descending", _set("experiments.ci.d", [30, 20]),
     "experiments.ci.d: [30, 20] is not strictly increasing"),
    ("theory_deltas_descending", _set("experiments.ci.theory.deltas", [8.0, 2.0]),
     "experiments.ci.theory.deltas: [8.0, 2.0] is not strictly increasing"),
    ("hessian_steps_descending", _set("experiments.ci.hessian.steps", [100, 20]),
     "experiments.ci.hessian.steps: [100, 20] is not strictly increasing"),
    ("same_n", _set("experiments.ci.delta", [2.0, 2.01]),
     "experiments.ci.delta: 2.0 and 2.01 give the same n = 40 samples at d = 20"),
    ("theory_same_n", _set("experiments.ci.theory.deltas", [2.0, 2.01]),
     "experiments.ci.theory.deltas: 2.0 and 2.01 give the same n = 40 samples at d = 20"),
    ("trajectory_same_n", _set("experiments.ci.trajectory.deltas", [6.0, 6.01]),
     "experiments.ci.trajectory.deltas: 6.0 and 6.01 give the same n"),
    # names and paths
    ("results_dir_empty", _set("results_dir", ""), "results_dir: '' should be non-empty"),
    ("results_dir_braces", _set("results_dir", "res{x}"), "results_dir: 'res{x}' does not match"),
    ("results_dir_glob", _set("results_dir", "res*"), "results_dir: 'res*' does not match"),
    ("results_dir_space", _set("results_dir", "my results"), "results_dir: 'my results' does not"),
    ("experiment_reserved", lambda c: c["experiments"].__setitem__("figures", _exp(c)),
     "experiments: name 'figures' is not allowed"),
    ("experiment_long", lambda c: c["experiments"].__setitem__("e" * 120, _exp(c)),
     "at most 100 characters"),
    ("experiment_slash", lambda c: c["experiments"].__setitem__("a/b", _exp(c)),
     "experiments: name 'a/b' is not allowed"),
    ("figure_delta_missing", _set("figures.dynamics.deltas", [3.5]),
     "figures.dynamics.deltas: 3.5 is not a delta of experiment 'ci'; allowed values: [1.0, 6.0]"),
    # sizes
    ("memory", _set("experiments.ci_m1.d", [3_000_000]),
     "experiments.ci_m1.d/delta/width/n_test: a GD run at d=3000000, delta=6, m=1, n_test=200 "
     "needs ~"),
    ("memory_cap", _set("max_memory_gb", 1e-3), "above max_memory_gb = 0.001"),
    ("job_hours", _set("max_job_hours", 1e-3), "needs ~0.5 h (worst case), above max_job_hours"),
    # finite-size, grokking, predictor
    ("fs_no_checks", _set("figures.finite_size", {"kind": "finite_size"}),
     "figures.finite_size.checks: a finite_size figure draws the sweeps listed here"),
    ("fs_theory_off", _set("figures.finite_size", {"kind": "finite_size", "checks": ["ci"],
                                                    "experiment": "ci_m1"}),
     "but experiments.ci_m1.theory.enabled is false"),
    ("fs_limit_missing", _set("figures.finite_size", {"kind": "finite_size", "checks": ["ci"],
                                                       "limit": "no_such_limit.nc"}),
     "figures.finite_size.limit: no such file 'no_such_limit.nc'"),
    ("limit_not_fs", _set("figures.grokking", {"kind": "grokking", "checks": ["ci"],
                                               "limit": "results_study_limit.nc"}),
     "figures.grokking.limit: only a finite_size figure reads a limit table"),
    ("grok_deltas", _set("figures.grokking", {"kind": "grokking", "checks": ["ci"],
                                              "deltas": [6.0]}),
     "figures.grokking.deltas: one delta per drawn d (2 over checks ['ci']), got 1"),
    ("grok_select", _set("figures.grokking", {"kind": "grokking", "checks": ["ci", "ci_m1"],
                                              "select": {"m": 2}}),
     "figures.grokking.select.m: 2 is not a value of experiment 'ci_m1'; allowed values: [1]"),
    ("stop_level", _set("experiments.ci.predictor", {"enabled": True, "stop_level": 2}),
     "experiments.ci.predictor.stop_level: 2 is greater than the maximum of 1"),
    # initialisation, early stopping
    ("init_theories", _set("figures.initialisation", {"kind": "initialisation", "checks": ["ci"],
                                                      "theories": ["ci_m1"]}),
     "figures.initialisation.theories: 'ci_m1' has theory.enabled false"),
    ("init_run_ids", _set("experiments.ci_m1.a_init", [1, 1.0000001]),
     "experiments.ci_m1.a_init: 1 and 1.0000001 give the same run id 'a1'"),
    ("init_trajectory", _set("experiments.ci.init_scale", [1.0, 0.5]),
     "experiments.ci.init_scale: [1.0, 0.5] has several values, but trajectory.enabled is true"),
    ("stop_overlap", _set("experiments.ci.train.stop_overlap", 2),
     "experiments.ci.train.stop_overlap: 2 is greater than the maximum of 1"),
]


@pytest.mark.parametrize("mutate,fragment", [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_refused_by_name(mutate, fragment):
    cfg = copy.deepcopy(CI)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert fragment in str(err.value)


def test_shipped_configs_pass_the_new_checks():
    for path in [ROOT / "config.yaml", *sorted((ROOT / "configs").glob("*.yaml"))]:
        validate_config(read_yaml(path), SCHEMA)


@pytest.mark.parametrize("text,fragment", [
    ("experiments:\n  e:\n    d: [20]\n  e:\n    d: [30]\n", "key 'e' is written twice"),
    ("experiments:\n  e:\n    train: {steps: 1}\n    train: {steps: 2}\n",
     "key 'train' is written twice in one mapping (first at line 3)"),
    ("- a\n- b\n", "the top level must be a mapping"),
    ("experiments: {e: [\n", "not valid YAML"),
], ids=["duplicate_experiment", "duplicate_block", "not_a_mapping", "broken_yaml"])
def test_yaml_files_are_read_strictly(tmp_path, text, fragment):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match="c.yaml") as err:
        read_yaml(p)
    assert fragment in str(err.value)


def _smk(tmp_path, text):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                          "--configfile", str(cfg), "-n"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    return out, out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("text,fragment", [
    ("experiments:\n  e:\n    d: [20]\n    delta: [2.0]\n    train: {steps: 10}\n"
     "    train: {steps: 20}\n", "key 'train' is written twice"),
    ("experiments:\n  e:\n    d: [20]\n    delta: [2.0, .nan]\n",
     "experiments.e.delta.1: nan is not allowed"),
    ("experiments:\n  e:\n    d: [20]\n    train: {steps: 100.0}\n",
     "experiments.e.train.steps: 100.0 is not of type 'integer'"),
    ("results_dir: 'out{x}'\nexperiments:\n  e:\n    d: [20]\n", "results_dir: 'out{x}'"),
], ids=["duplicate_key", "nan", "float_steps", "braces"])
def test_snakemake_stops_before_any_job(tmp_path, text, fragment):
    out, text_out = _smk(tmp_path, text)
    assert out.returncode == 2, text_out
    assert fragment in text_out and "Traceback" not in text_out
    assert 'File "' not in text_out  # no traceback frames either
    assert "Building DAG" not in text_out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "deltann.cli", *args], capture_output=True,
                         text=True, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _foreign_nc(path):
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(path)
    return str(path)


@pytest.mark.parametrize("args,fragment", [
    (("provenance", "/nonexistent/x.nc"), "no such result file: /nonexistent/x.nc"),
    (("provenance", str(ROOT / "README.md")), "cannot be read as NetCDF"),
    (("table", str(ROOT / "README.md")), "cannot be read as NetCDF"),
    (("gd-threshold", "/nonexistent/sweep.nc"), "no such result file"),
    (("threshold", "--target", "nope"), "--target: invalid choice: 'nope'"),
    (("threshold", "--target", "z2sat", "--width", "0"), "--width"),
    (("threshold", "--target", "z2sat", "--noise", "nan"), "--noise"),
    (("threshold", "--target", "z2sat", "--lr", "-1"), "--lr"),
    (("threshold", "--target", "z2sat", "--deltas", "4,2"), "--deltas"),
    (("threshold", "--target", "z2sat", "--init-scale", "0"), "--init-scale"),
    (("finite-size", str(ROOT / "README.md")), "cannot be read as NetCDF"),
    (("finite-size", str(ROOT / "README.md"), "--replay-stop", "0"), "--replay-stop"),
    (("finite-size", str(ROOT / "docs")), "docs is a directory, not a result file"),
], ids=["prov_missing", "prov_not_nc", "table_not_nc", "gd_missing", "target", "width",
        "noise", "lr", "deltas", "init_scale", "fs_not_nc", "fs_replay_stop", "fs_dir"])
def test_cli_user_errors_are_one_line(args, fragment):
    out = _cli(*args)
    assert out.returncode == 2 and fragment in out.stderr
    assert len([ln for ln in out.stderr.splitlines() if "error" in ln]) == 1
    assert out.stdout == ""


def test_cli_foreign_files_name_what_is_missing(tmp_path):
    f = _foreign_nc(tmp_path / "foreign.nc")
    out = _cli("table", f)
    assert out.returncode == 2 and "missing variables ['delta_nn', 'delta_nn_err']" in out.stderr
    out = _cli("gd-threshold", f)
    assert out.returncode == 2 and "hard_overlap" in out.stderr
    out = _cli("provenance", f)  # readable NetCDF, but not a deltann output
    assert out.returncode == 2 and "no provenance attributes: not a deltann output" in out.stderr
    assert out.stdout == ""


def test_truncated_and_foreign_result_files(tmp_path):
    from deltann.io import CorruptFileError, ForeignFileError, read_result

    good = tmp_path / "run.nc"
    xr.Dataset({"x": ("i", np.arange(100.0))}, attrs={"experiment": "a", "run_id": "r"}) \
        .to_netcdf(good)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[:200])  # a copy killed half-way
    with pytest.raises(CorruptFileError, match=r"cut\.nc: cannot be read .*delete it and run "
                       "snakemake again"):
        read_result(cut)
    with pytest.raises(ForeignFileError, match=r"expects experiment 'b', the file was made for "
                       "experiment 'a'"):
        read_result(good, expect={"experiment": "b"})
    assert good.exists() and cut.exists()  # the reader deletes nothing


def test_aggregate_names_the_truncated_run_file(tmp_path):
    """A truncated train file: the aggregate job fails with one line naming it (no HDF trace)."""
    from deltann.io import CorruptFileError
    from deltann.pipeline import aggregate_files

    bad = tmp_path / "z2sat__softplus__square__m2__d20__delta2__s0.nc"
    bad.write_bytes(b"CDF\x01 truncated")
    other = tmp_path / "keep.nc"
    other.write_text("x")
    cfg = {"experiment": "ci"}
    with pytest.raises(CorruptFileError, match=str(bad.name)):
        aggregate_files(cfg, [str(bad)], [], str(tmp_path / "sweep.nc"))
    assert not (tmp_path / "sweep.nc").exists() and other.exists()


def test_umask_applies_to_netcdf_outputs(tmp_path):
    import os

    from deltann.io import provenance_attrs, write_netcdf

    ds = xr.Dataset({"x": ("i", np.arange(3.0), {"long_name": "x", "units": "1"})},
                    coords={"i": ("i", np.arange(3), {"long_name": "i", "units": "1"})})
    ds.attrs.update(provenance_attrs("t", {}, "", "test"))
    old = os.umask(0o022)
    try:
        p = write_netcdf(ds, tmp_path / "a.nc")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644


def _sweep(diverged):
    """A tiny sweep.nc-like dataset (d, delta, seed, step) with the given diverged pattern."""
    d, delta, seed, step = [20], [2.0, 4.0], [0, 1], [0, 10]
    hard = np.full((1, 2, 2, 2), 0.3)
    div = np.asarray(diverged, bool).reshape(1, 2, 2)
    hard[div] = np.nan
    return xr.Dataset(
        {"hard_overlap": (("d", "delta", "seed", "step"), hard),
         "diverged": (("d", "delta", "seed"), div.astype(int))},
        coords={"d": d, "delta": delta, "seed": seed, "step": step},
        attrs={"experiment": "e", "config": json.dumps({"train": {"lr": 0.2}})})


@pytest.mark.parametrize("pattern,text", [
    ([[True, True], [True, True]], "all 4 runs diverged"),
    ([[True, False], [False, False]], "1 of 4 runs diverged (not drawn)"),
])
def test_figures_say_when_runs_diverged(pattern, text):
    import matplotlib.pyplot as plt

    from deltann.figures.style import diverged_note

    fig, ax = plt.subplots()
    assert diverged_note(ax, _sweep(pattern)["diverged"]) == int(np.sum(pattern))
    assert any(text in t.get_text() for t in ax.texts)
    plt.close(fig)
