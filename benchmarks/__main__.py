"""Entry point: ``python -m benchmarks [--quick] [--only SECTIONS] [--out FILE.json]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from . import batched, gd, jax_cmp, memory, pipeline, spectrum, torch_cmp
from .timing import Row, progress

SECTIONS = ("gd", "batched", "jax", "torch", "spectrum", "memory", "pipeline")
HEAD = ("section", "case", "ours (median ± IQR)", "reference", "ref (median ± IQR)", "ratio",
        "ratio is", "target", "met", "note")


def table(rows: list[Row]) -> str:
    """Markdown table of the rows."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        cells = (r.section, r.case, r.ours.fmt(r.unit), r.ref_name, r.ref.fmt(r.unit),
                 f"{r.ratio:.2f}", r.ratio_def, r.target, met, r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def meta(args) -> dict:
    import numpy
    import scipy
    from threadpoolctl import threadpool_info

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=pipeline.REPO).stdout.strip()
    except OSError:
        commit = ""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
            "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "commit": commit, "argv": sys.argv[1:],
            "blas": [{k: p.get(k) for k in ("internal_api", "version", "architecture")}
                     for p in threadpool_info()], "quick": args.quick}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for tests)")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", default=None, help="JSON file (default benchmarks/results/"
                                                "<date>.json, or none with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="timings per case (median, IQR)")
    ap.add_argument("--d", type=int, default=None, help="input dimension of the gd section")
    ap.add_argument("--config", default=None, help="config of the pipeline section "
                                                   "(default: the repo's config.yaml)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    reps = args.repeats or (3 if args.quick else 11)
    info, rows, skipped = meta(args), [], {}
    for sec in only:
        progress(f"section {sec} (load {os.getloadavg()[0]:.2f})")
        if sec == "gd":
            rows += gd.run(args.quick, reps, args.d)
        elif sec == "batched":
            rows += batched.run(args.quick, reps)
        elif sec in ("torch", "jax"):
            mod = torch_cmp if sec == "torch" else jax_cmp
            why = mod.available()
            if why:
                skipped[sec] = why
                progress(f"skipping section {sec}: {why}")
                continue
            rows += mod.run(args.quick, reps)
        elif sec == "spectrum":
            rows += spectrum.run(args.quick, reps)
        elif sec == "memory":
            rows += memory.run(args.quick)
        elif sec == "pipeline":
            rows += pipeline.run(args.config)
    info["loadavg_end"] = os.getloadavg()
    if "torch" in only and "torch" not in skipped:
        import torch

        info["torch"] = torch.__version__
    if "jax" in only and "jax" not in skipped:
        import jax

        info["jax"] = jax.__version__
    md = table(rows)
    print(md)
    for sec, why in skipped.items():
        print(f"\nsection {sec} skipped: {why}")
    print(f"\n{info['date']}, commit {info['commit']}, load average "
          f"{info['loadavg_start'][0]:.2f} at start, {info['loadavg_end'][0]:.2f} at end")
    out = args.out
    if out is None and not args.quick:
        out = pipeline.REPO / "benchmarks" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as fh:
            json.dump({"meta": info, "skipped": skipped, "rows": [r.as_dict() for r in rows],
                       "table": md}, fh, indent=1, default=float)
        progress(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
