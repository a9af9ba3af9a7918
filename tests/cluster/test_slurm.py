"""The SLURM profile on a real SLURM: configs/ci.yaml through `--workflow-profile profiles/slurm`.

Needs a running SLURM cluster with accounting (sacct) reachable from here, e.g. the one-node
cluster of tests/cluster/local_slurm.sh (`install` then `start`; .ci/run does this). Skips when
SLURM cannot be reached; never starts a cluster itself.
"""

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import xarray as xr
import yaml

from deltann.pipeline import TIMING_VARS

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
             "--configfile", str(ROOT / "configs" / "ci.yaml")]
# Provenance that differs between any two runs (git_commit too if HEAD moves in between).
VOLATILE_ATTRS = {"created", "history", "git_commit"}
HOWTO = "start one with: tests/cluster/local_slurm.sh install && tests/cluster/local_slurm.sh start"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _try(*cmd, timeout=30):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return out.returncode == 0, (out.stdout + out.stderr).strip()


@pytest.fixture(scope="module")
def slurm_available():
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            pytest.skip(f"SLURM not available: `{tool}` not on PATH; {HOWTO}")
    ok, out = _try("sinfo", "-h", "-o", "%P %a %D %t")
    if not ok or not out:
        pytest.skip(f"SLURM not reachable: `sinfo` failed ({out[-300:]!r}); {HOWTO}")
    ok, out = _try("sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID")
    if not ok:
        pytest.skip("SLURM accounting not available: `sacct` failed "
                    f"({out[-300:]!r}); the profile needs it for job status; {HOWTO}")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("SLURM is up but snakemake-executor-plugin-slurm is missing: "
                    "pip install -e '.[test]'")


def _smk(cwd, *args, timeout):
    t0 = time.monotonic()
    out = subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    return text, time.monotonic() - t0


@pytest.fixture(scope="module")
def slurm_run(slurm_available, tmp_path_factory):
    d = tmp_path_factory.mktemp("slurm_run")
    # Init-seconds 2: first status poll after 2 s instead of 40 (test speed only).
    text, secs = _smk(d, "--workflow-profile", str(ROOT / "profiles" / "slurm"),
                      "--slurm-init-seconds-before-status-checks", "2", timeout=600)
    print(f"snakemake on SLURM: {secs:.0f} s")
    return d, text


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("local_run")
    _smk(d, "--cores", "2", timeout=600)
    return d


def _sacct(run_uuid, fields, n_expected, timeout=60):
    """sacct rows (dicts) of the allocations named after the Snakemake run; waits for records."""
    end = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "--name", run_uuid, "-S", "now-1days",
                              "-o", ",".join(fields)],
                             capture_output=True, text=True, timeout=60, check=True)
        rows = [dict(zip(fields, line.split("|"), strict=True))
                for line in out.stdout.splitlines() if line.strip()]
        if len(rows) >= n_expected or time.monotonic() > end:
            return rows
        time.sleep(2)


def _expected_runs():
    """{rule: job count} for train and hessian in configs/ci.yaml (other rules may be added)."""
    from deltann.config import validate_config
    from deltann.workflow import Layout

    cfg = validate_config(yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text()),
                          ROOT / "workflow" / "schemas" / "config.schema.yaml")
    layout = Layout(cfg)
    return {"train": sum(len(layout.train_files(e)) for e in cfg["experiments"]),
            "hessian": sum(len(layout.hessian_files(e)) for e in cfg["experiments"])}


def test_jobs_ran_as_slurm_jobs(slurm_run):
    d, text = slurm_run
    run_uuid = re.search(r"SLURM run ID: (\S+)", text).group(1)
    # "Job 3 has been submitted with SLURM jobid 12 (log: .../slurm_logs/rule_train/...)"
    submitted = dict(re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+?)/", text))
    expected = _expected_runs()
    rules = Counter(submitted.values())
    for rule, n in expected.items():
        assert rules[rule] == n, (rule, rules, text[-3000:])
    assert not {"aggregate", "thresholds", "figure", "all"} & set(rules), rules  # localrules

    rows = _sacct(run_uuid, ["JobIDRaw", "State", "AllocCPUS", "Comment"], len(submitted))
    assert {r["JobIDRaw"] for r in rows} == set(submitted), (rows, submitted)
    assert all(r["State"] == "COMPLETED" for r in rows), rows
    assert all(r["AllocCPUS"] == "1" for r in rows), rows  # threads (blas_threads: 1)
    # The plugin puts the rule into the job comment (stored by AccountingStoreFlags=job_comment).
    assert all(r["Comment"].startswith(f"rule_{submitted[r['JobIDRaw']]}_") for r in rows), rows

    res = d / "results_ci"
    log = next((res / "logs" / "ci" / "train").glob("*.log")).read_text()
    assert "threads 1, BLAS pools" in log and "step 100/100" in log
    assert list((d / ".snakemake" / "slurm_efficiency").glob("efficiency_report_*.csv"))


def _assert_same_data(path_a, path_b):
    a, b = xr.load_dataset(path_a), xr.load_dataset(path_b)
    assert set(a.data_vars) == set(b.data_vars)
    timing = [v for v in TIMING_VARS if v in a.data_vars]
    xr.testing.assert_equal(a.drop_vars(timing), b.drop_vars(timing))  # values, dims, coords
    for k in set(a.attrs) | set(b.attrs):
        if k not in VOLATILE_ATTRS:
            assert a.attrs.get(k) == b.attrs.get(k), (path_a, k)


def test_outputs_equal_local_run(slurm_run, local_run):
    """Every NetCDF output (runs, Hessians, sweep.nc, ...) holds the same data as a local run's."""
    d, _ = slurm_run
    res = d / "results_ci"
    files = sorted(p.relative_to(res) for p in res.rglob("*.nc") if "benchmarks" not in p.parts)
    expected = _expected_runs()
    assert len([f for f in files if f.parent.name == "train"]) == expected["train"]
    assert len([f for f in files if f.parent.name == "hessian"]) == expected["hessian"]
    assert Path("ci", "sweep.nc") in files
    local = sorted(p.relative_to(local_run / "results_ci")
                   for p in (local_run / "results_ci").rglob("*.nc") if "benchmarks" not in p.parts)
    assert files == local
    for f in files:
        _assert_same_data(res / f, local_run / "results_ci" / f)
