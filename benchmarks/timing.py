"""Repeated, interleaved timings and the result rows of the suite."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Stat", "Row", "stat", "time_pair", "time_one", "progress"]


@dataclass
class Stat:
    """Median and interquartile range (q75 - q25) of repeated timings, in seconds."""

    median: float
    iqr: float
    repeats: int

    def fmt(self, unit: str = "s") -> str:
        if unit != "s":
            return f"{self.median:.4g} {unit}"
        return _fmt_s(self.median) + (f" ± {_fmt_s(self.iqr)}" if self.repeats > 2 else "")


def _fmt_s(s: float) -> str:
    if not np.isfinite(s):
        return "n/a"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def stat(times) -> Stat:
    t = np.asarray(times, dtype=float)
    q25, q50, q75 = np.percentile(t, [25, 50, 75])
    return Stat(float(q50), float(q75 - q25), len(t))


def _once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_one(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Stat:
    for _ in range(warmup):
        fn()
    return stat([_once(fn) for _ in range(repeats)])


def time_pair(a: Callable[[], object], b: Callable[[], object], repeats: int,
              warmup: int = 1) -> tuple[Stat, Stat]:
    """Time a and b alternately (a, b, a, b, ...) so both see the same machine load."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_once(a))
        tb.append(_once(b))
    return stat(ta), stat(tb)


@dataclass
class Row:
    """One line of the table: ``ratio`` compares ``ours`` with ``ref`` as ``ratio_def`` says."""

    section: str
    case: str
    ours: Stat
    ref_name: str
    ref: Stat
    ratio: float
    ratio_def: str
    target: str = ""
    met: bool | None = None
    note: str = ""
    unit: str = "s"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
