"""Section spectrum: dense W-block Hessian build + eigendecomposition, and Lanczos vs dense.

Case: m = 4 softplus units at init on z^2 data, d = (m d) / m, n = 2 d, 2 BLAS threads.
Rows: (1) ``hessian.spectrum(method='dense')`` (kron build + all eigenvalues + lowest 10 vectors)
vs LAPACK ``eigvalsh`` alone on the same matrix (the floor for "all eigenvalues"): ratio =
eigvalsh / ours. (2) Lanczos (lowest 10 eigenpairs, matrix-free HVPs) vs dense: ratio =
dense / Lanczos, with the largest eigenvalue difference relative to the spectral radius.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from deltann import hessian as hs
from deltann.model import hessian_W

from .problems import problem
from .timing import Row, progress, stat

FULL = dict(md=(2000, 4000, 8000), m=4, delta=2)
QUICK = dict(md=(40, 80), m=2, delta=2)
TARGET_MD, TARGET_S = 8000, 180.0
K = 10


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(quick: bool, repeats: int, threads: int = 2) -> list[Row]:
    cfg = QUICK if quick else FULL
    rows = []
    with threadpool_limits(threads):
        for md in cfg["md"]:
            m = cfg["m"]
            d = md // m
            n = cfg["delta"] * d
            X, y, p, _, act, loss = problem(n, d, m, np.float64)
            reps = 1 if md >= 8000 else max(1, min(repeats, 3))
            case = f"m·d={m * d} (m={m}, d={d}, n={n})"
            progress(f"spectrum {case}: dense x{reps} ...")
            t_dense, t_ref = [], []
            for _ in range(reps):
                dense, t = _timed(partial(hs.spectrum, p, X, y, act, loss, n_vecs=K,
                                          method="dense"))
                t_dense.append(t)
                H = hessian_W(p, X, y, act, loss)
                _, t = _timed(partial(scipy.linalg.eigvalsh, H, check_finite=False,
                                      overwrite_a=True))
                t_ref.append(t)
                del H
            ours, ref = stat(t_dense), stat(t_ref)
            ratio = ref.median / ours.median
            big = m * d >= TARGET_MD
            rows.append(Row("spectrum", f"dense build+eigh {case}", ours, "LAPACK eigvalsh only",
                            ref, ratio, "eigvalsh / ours",
                            target=f"< {TARGET_S:.0f} s" if big else "",
                            met=(ours.median < TARGET_S) if big else None,
                            extra=dict(m=m, d=d, n=n, threads=threads)))
            progress(f"spectrum {case}: dense {ours.fmt()}, eigvalsh {ref.fmt()}")
            t_lz = []
            for _ in range(reps):
                spec, t = _timed(partial(hs.spectrum, p, X, y, act, loss, n_vecs=K,
                                         method="lanczos"))
                t_lz.append(t)
            lz = stat(t_lz)
            scale = float(np.max(np.abs(dense.eigvals)))
            err = float(np.max(np.abs(spec.eigvals - dense.eigvals[:K]))) / scale
            dots = np.abs(np.sum(spec.eigvecs * dense.eigvecs[:, :K], axis=0))
            rows.append(Row("spectrum", f"Lanczos lowest {K} {case}", lz, "dense", ours,
                            ours.median / lz.median, "dense / Lanczos",
                            note=f"max abs Δλ / max abs λ {err:.1e}, min abs(v_lz · v_dense) "
                                 f"{dots.min():.3f}",
                            extra=dict(m=m, d=d, n=n, eig_rel_err=err,
                                       min_vec_dot=float(dots.min()), threads=threads)))
            progress(f"spectrum {case}: Lanczos {lz.fmt()}, eig error {err:.1e}")
    return rows
