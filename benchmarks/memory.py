"""Section memory: peak RSS of one training job (``pipeline.train_run``) vs the size of X.

Each job runs in a fresh interpreter (``python -m benchmarks.memory N D M STEPS``) that prints
its peak RSS (VmHWM of /proc/self/status; getrusage's ru_maxrss would include the parent's
peak, inherited across fork/exec). A baseline job with tiny data gives the interpreter +
libraries share. ratio = (RSS - baseline) / size of X (float64 n d, what the job's data needs;
X_test adds n_test d). Target (issue 7): RSS <= 2.5 x size of X.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from .timing import Row, Stat, progress

FULL = [(80_000, 500, 4), (20_000, 2000, 4)]
QUICK = [(2000, 50, 2)]
N_TEST = 1000
TARGET = 2.5


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux VmHWM; else ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def job(n: int, d: int, m: int, steps: int) -> dict:
    """Train one run like the workflow's train rule; returns peak RSS in MB and the sizes."""
    import numpy as np

    from deltann.pipeline import train_run
    from deltann.sweep import Point

    delta = n / d
    cfg = {"experiment": "mem", "base_seed": 1, "noise": 0.0, "center_labels": True,
           "n_test": N_TEST, "train": {"steps": steps, "lr": 0.05, "n_records": 5},
           "hessian": {"steps": [steps]}}
    ds = train_run(cfg, Point("z2", "softplus", "square", m, d, delta, 0))
    assert np.isfinite(float(ds["train_risk"][-1]))
    return {"rss_mb": peak_rss_mb(), "x_mb": 8 * n * d / 1e6, "n": n, "d": d, "m": m}


def _child(n, d, m, steps) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(n), str(d), str(m),
                          str(steps)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Row]:
    base = _child(20, 5, 1, 2)
    progress(f"memory: baseline job {base['rss_mb']:.0f} MB")
    rows = []
    for n, d, m in (QUICK if quick else FULL):
        r = _child(n, d, m, 5 if quick else 20)
        ratio = (r["rss_mb"] - base["rss_mb"]) / r["x_mb"]
        rows.append(Row("memory", f"train job peak RSS (n={n}, d={d}, m={m}, n_test={N_TEST})",
                        Stat(r["rss_mb"], 0.0, 1), "size of X", Stat(r["x_mb"], 0.0, 1), ratio,
                        "(RSS − baseline) / X", target=f"≤ {TARGET:g}", met=ratio <= TARGET,
                        note=f"baseline {base['rss_mb']:.0f} MB; RSS / X "
                             f"{r['rss_mb'] / r['x_mb']:.2f}", unit="MB",
                        extra=dict(r, baseline_mb=base["rss_mb"])))
        progress(f"memory: {rows[-1].case}: {r['rss_mb']:.0f} MB for X {r['x_mb']:.0f} MB")
    return rows


if __name__ == "__main__":
    print(json.dumps(job(*map(int, sys.argv[1:5]))))
