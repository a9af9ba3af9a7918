"""Resource estimates (memory in MB, runtime in minutes) of workflow jobs from their sizes.

Memory grows linearly with Snakemake's ``attempt`` so a retried job asks for more.
"""

from __future__ import annotations

from .sweep import Point

__all__ = ["TRAIN_FLOOR_MIN", "train_work_mb", "train_mem_mb", "hessian_mem_mb",
           "train_runtime_min", "hessian_runtime_min", "second_phase_minutes",
           "second_phase_runtime_min", "point_steps", "scan_deltas"]

_BASE_MB = 400  # interpreter + numpy/scipy/xarray


TRAIN_FLOOR_MIN = 10  # minutes every train job's runtime estimate starts from


def train_work_mb(p: Point, n_test: int) -> float:
    """A run's work arrays beside the data: a few (n, m) arrays, with 2x headroom."""
    return 2 * 8 * 8 * (p.n + n_test) * p.m / 2**20


def train_mem_mb(p: Point, n_test: int, attempt: int = 1) -> int:
    """X, X_test (float64) plus a few (n, m) work arrays, with 2x headroom."""
    data = 8 * (p.n + n_test) * p.d
    return int((_BASE_MB + 2 * data / 2**20 + train_work_mb(p, n_test)) * attempt)


def hessian_mem_mb(p: Point, n_test: int, dense: bool, attempt: int = 1) -> int:
    """Data plus, for dense eigh, ~4 copies of the (m d)^2 matrix (matrix, workspace, vectors)."""
    mat = 4 * 8 * (p.m * p.d) ** 2 if dense else 0
    return int(train_mem_mb(p, n_test, 1) * attempt + mat / 2**20 * attempt)


def train_runtime_min(p: Point, steps: int) -> int:
    """~2 GEMMs of n d m flops per step at >= 1 GFlop/s, 10 min floor."""
    flops = 4.0 * p.n * p.d * max(p.m, 4) * (steps + 1)
    return int(TRAIN_FLOOR_MIN + flops / 1e9 / 60)


def hessian_runtime_min(p: Point, n_snapshots: int) -> int:
    """Dense build (n (m d)^2) plus eigh ((m d)^3) per snapshot at >= 1 GFlop/s, 10 min floor."""
    md = p.m * p.d
    flops = n_snapshots * (2.0 * p.n * md * md + 10.0 * md**3)
    return int(10 + flops / 1e9 / 60)


def scan_deltas(cfg) -> list[float]:
    """The deltas one estimator seed may evaluate, for costing: the log grid of ``n_grid``
    points over ``delta_range`` plus ``refine`` bisections at the grid's middle delta."""
    import numpy as np

    lo, hi = (float(v) for v in cfg["delta_range"])
    grid = np.geomspace(lo, hi, int(cfg["n_grid"]))
    return [*map(float, grid), *[float(np.median(grid))] * int(cfg["refine"])]


def point_steps(cfg) -> int:
    """Worst-case gradient evaluations of one second-phase point: the transient plus the whole
    budget (L-BFGS takes ~1.3 evaluations per iteration with its line searches)."""
    return int(cfg["transient"]) + int(1.3 * int(cfg["budget"]))


def second_phase_minutes(points, steps: int, evals_per_point: int = 1,
                         dense: bool = True) -> float:
    """Minutes of theory work: for each (m, d, n) in ``points``, ``evals_per_point``
    second-phase points, each ``steps`` gradient evaluations (``point_steps``) plus, if
    ``dense``, a dense Hessian build and eigh (theory.nc's simulation points) at >= 1 GFlop/s."""
    flops = 0.0
    for m, d, n in points:
        md = m * d
        flops += evals_per_point * (4.0 * n * d * max(m, 4) * steps
                                    + (2.0 * n * md * md + 10.0 * md**3 if dense else 0.0))
    return flops / 1e9 / 60


def second_phase_runtime_min(points, steps: int, evals_per_point: int = 1,
                             dense: bool = True) -> int:
    """Runtime request of a theory job: ``second_phase_minutes`` with a 60 min floor."""
    return int(60 + second_phase_minutes(points, steps, evals_per_point, dense))
