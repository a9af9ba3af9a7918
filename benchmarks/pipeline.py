"""Section pipeline: ``snakemake --cores 2`` end to end on a temporary copy of the workflow.

Copies Snakefile, environment.yml, workflow/, configs/, profiles/ and the chosen config
(default: the repo's config.yaml, whatever it says) to a temporary directory, runs it there,
and reads Snakemake's benchmark files (results/benchmarks/**.tsv: wall ``s``, ``cpu_time``,
``max_rss`` in MB). Rows: end-to-end wall time (ratio = sum of job wall times / pipeline wall
time, the parallelism achieved), one per rule (ratio = the rule's summed job time / pipeline
wall time), the train jobs' GD loop against their wall time (the rest is start-up, which
batched jobs -- config key ``batch`` -- share), and the peak RSS of the one-run training
jobs vs the size of X.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from deltann.sweep import data_key, parse_run_id

from .timing import Row, Stat, progress, stat

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 240.0  # target of the default pipeline on 2 cores from a clean clone
MIN_X_MB = 100.0  # the RSS target is judged only where X dominates the interpreter
_STEPS = re.compile(r"(\d+) of (\d+) steps \((\d+%)\) done")
# benchmark sub-directory of an experiment -> rule (one file per run or per part)
_PER_RUN = {"train": "train", "hessian": "hessian", "escape": "escape",
            "theory_parts": "theory_part", "train_batch": "train_batch",
            "hessian_batch": "hessian_batch", "escape_batch": "escape_batch"}
_TRAIN_RULES = ("train", "train_batch")  # a job per run, or a batch of runs (batch.runs)


def read_benchmarks(bench_dir: Path) -> list[dict]:
    """One dict per Snakemake benchmark TSV: rule, path, s, cpu_time, max_rss (MB) [, n, d]."""
    out = []
    for f in sorted(Path(bench_dir).rglob("*.tsv")):
        rel = f.relative_to(bench_dir).parts
        if rel[0] == "figures":
            rule = "figure"
        elif rel[0] == "thresholds" and len(rel) == 3:
            rule = "threshold_cell"  # thresholds/<target>/<cell>.tsv
        elif len(rel) >= 3 and rel[1] in _PER_RUN:
            rule = _PER_RUN[rel[1]]  # <exp>/<dir>/<run or part>.tsv
        else:
            rule = Path(rel[-1]).stem  # <exp>/<rule>.tsv
        with open(f) as fh:
            rec = list(csv.DictReader(fh, delimiter="\t"))[-1]
        row = {"rule": rule, "path": "/".join(rel), "s": float(rec["s"]),
               "cpu_time": float(rec.get("cpu_time") or "nan"),
               "max_rss": float(rec["max_rss"]) if rec.get("max_rss") not in (None, "", "-")
               else float("nan")}
        if rule in ("train", "hessian", "escape"):
            p = parse_run_id(Path(rel[-1]).stem)
            row.update(n=p.n, d=p.d, m=p.m)
        out.append(row)
    return out


def _copy_workflow(dest: Path, config: Path) -> None:
    for f in ("Snakefile", "environment.yml", "pyproject.toml"):
        if (REPO / f).is_file():
            shutil.copy2(REPO / f, dest / f)
    for sub in ("workflow", "configs", "profiles"):
        if (REPO / sub).is_dir():
            shutil.copytree(REPO / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(config, dest / "config.yaml")


def run_snakemake(config: Path, cores: int = 2, keep: Path | None = None):
    """Run the workflow on a temporary copy; returns (wall seconds, benchmark records, workdir)."""
    work = Path(tempfile.mkdtemp(prefix="deltann-bench-", dir=keep))
    _copy_workflow(work, config)
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--snakefile",
           str(work / "Snakefile"), "--directory", str(work), "--config", "results_dir=results"]
    progress(f"pipeline: {' '.join(cmd[2:])}  (log: {work}/snakemake.log)")
    t0 = time.perf_counter()
    with open(work / "snakemake.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.PIPE, text=True)
        last = 0.0
        for line in proc.stderr:
            log.write(line)
            m = _STEPS.search(line)
            if m and time.perf_counter() - last > 10:
                last = time.perf_counter()
                progress(f"pipeline: {m.group(0)} ({last - t0:.0f} s)")
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc:
        raise RuntimeError(f"snakemake failed (exit {rc}); see {work}/snakemake.log")
    return wall, read_benchmarks(work / "results" / "benchmarks"), work


def gd_loop_seconds(results: Path, shared: bool = False) -> float:
    """Σ train_seconds (the GD loop alone) over the run files under ``results``; ``shared``
    (batched jobs): runs on the same samples of one experiment ran in one loop, whose wall
    time each of them records, so such a group counts once (its longest run)."""
    import xarray as xr

    loops: dict[tuple, float] = defaultdict(float)
    for i, f in enumerate(sorted(Path(results).glob("*/train/*.nc"))):
        with xr.open_dataset(f) as ds:
            sec = float(ds["train_seconds"])
        key = (f.parent.parent.name, data_key(parse_run_id(f.stem))) if shared else (i,)
        loops[key] = max(loops[key], sec)
    return float(sum(loops.values()))


def rows_from(wall: float, recs: list[dict], gd_loop_s: float | None = None) -> list[Row]:
    """The section's rows; ``gd_loop_s`` (Σ train_seconds) adds the start-up share of the train
    jobs: 1 - GD loop / job wall (interpreter, imports, data generation, writing)."""
    total = sum(r["s"] for r in recs)
    one = Stat(wall, 0.0, 1)
    rows = [Row("pipeline", f"snakemake --cores 2, end to end ({len(recs)} jobs)", one,
                "Σ job wall times", Stat(total, 0.0, 1), total / wall, "Σ jobs / wall",
                target=f"≤ {TARGET_S:.0f} s", met=wall <= TARGET_S,
                extra=dict(wall_s=wall, jobs=len(recs)))]
    by_rule = defaultdict(list)
    for r in recs:
        by_rule[r["rule"]].append(r)
    for rule, rs in sorted(by_rule.items(), key=lambda kv: -sum(r["s"] for r in kv[1])):
        s = [r["s"] for r in rs]
        rows.append(Row("pipeline", f"rule {rule} ({len(rs)} jobs): job wall time", stat(s),
                        "pipeline wall", one, sum(s) / wall, "Σ rule / wall",
                        note=f"Σ cpu {sum(r['cpu_time'] for r in rs):.0f} s, "
                             f"max_rss ≤ {max(r['max_rss'] for r in rs):.0f} MB",
                        extra=dict(rule=rule, jobs=len(rs), sum_s=sum(s),
                                   max_rss_mb=max(r["max_rss"] for r in rs))))
    train = [r for r in recs if r["rule"] in _TRAIN_RULES]
    if train and gd_loop_s is not None:
        job_s = sum(r["s"] for r in train)
        rows.append(Row("pipeline", f"train jobs ({len(train)}): GD loop vs job wall",
                        Stat(gd_loop_s, 0.0, 1), "Σ train job wall", Stat(job_s, 0.0, 1),
                        gd_loop_s / job_s, "GD loop / job",
                        note=f"start-up share {1 - gd_loop_s / job_s:.0%} (interpreter, "
                             "imports, data, I/O)",
                        extra=dict(gd_loop_s=gd_loop_s, train_job_s=job_s,
                                   startup_share=1 - gd_loop_s / job_s)))
    train = [r for r in train if "n" in r]  # the RSS row reads jobs of one run
    if train:
        big = max(train, key=lambda r: r["n"] * r["d"])
        x_mb = 8 * big["n"] * big["d"] / 1e6
        rss = big["max_rss"]
        rows.append(Row("pipeline", f"train peak RSS, largest X (n={big['n']}, d={big['d']})",
                        Stat(rss, 0.0, 1), "size of X", Stat(x_mb, 0.0, 1), rss / x_mb,
                        "max_rss / X", target="≤ 2.5" if x_mb >= MIN_X_MB else "",
                        met=(rss / x_mb <= 2.5) if x_mb >= MIN_X_MB else None, unit="MB",
                        note="max_rss includes the interpreter and libraries"
                             + ("" if x_mb >= MIN_X_MB else "; X too small for the target "
                                "(see section memory)"),
                        extra=dict(max_rss_mb=rss, x_mb=x_mb,
                                   median_rss_mb=float(np.median([r["max_rss"]
                                                                  for r in train])))))
    return rows


def run(config: Path | None = None, cores: int = 2) -> list[Row]:
    wall, recs, work = run_snakemake(Path(config or REPO / "config.yaml"), cores)
    progress(f"pipeline: done in {wall:.0f} s, {len(recs)} benchmark files")
    shared = any(r["rule"] == "train_batch" for r in recs)
    rows = rows_from(wall, recs, gd_loop_seconds(work / "results", shared))
    shutil.rmtree(work, ignore_errors=True)
    return rows
