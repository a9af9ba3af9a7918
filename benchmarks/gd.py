"""Section gd: one GD step (``model.value_and_grad``) vs the memory-bandwidth bound.

bound = time of X @ v plus v^T X with BLAS on the same X (stream X twice), measured
interleaved with the step, 1 BLAS thread. ratio = bound / step (1 = at the bound; the fused
pass reads X once, so > 1 is possible). The note gives the flop floor 4 n d m / (GEMM rate),
the GEMM rate measured in this run on a square product. Extra rows: the Gram-matrix step
(``deltann.gram``, used by ``train`` when n <= d) vs the direct step, ratio = direct / Gram.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from deltann.gram import GramGD
from deltann.model import Workspace, value_and_grad

from .problems import gemm_gflops, problem
from .timing import Row, progress, time_pair

FULL = dict(nd=(1e6, 4e6, 1e7, 4e7), d=500, m=(1, 4, 16), dtypes=("float64", "float32"),
            gram=dict(d=2000, n=(500, 2000), m=(1, 4, 16)))
QUICK = dict(nd=(1e4, 4e4), d=50, m=(1, 4), dtypes=("float64", "float32"),
             gram=dict(d=60, n=(30,), m=(2,)))
TARGET_ND, TARGET = 1e7, 0.6


def _stream_twice(X, v, u):
    """The bound: X @ v and u^T X (BLAS GEMV), each reading all of X once."""
    return X @ v, u @ X


def run(quick: bool, repeats: int, d: int | None = None, threads: int = 1) -> list[Row]:
    cfg = QUICK if quick else FULL
    d = d or cfg["d"]
    rows = []
    with threadpool_limits(threads):
        rate = {dt: gemm_gflops(np.dtype(dt), 200 if quick else 1000) for dt in cfg["dtypes"]}
        progress(f"gd: GEMM rate {', '.join(f'{k} {v:.0f} GFlop/s' for k, v in rate.items())}")
        for nd in cfg["nd"]:
            n = max(1, int(round(nd / d)))
            for dt in cfg["dtypes"]:
                X, y, _, _, act, loss = problem(n, d, 1, dt)
                rng = np.random.default_rng(1)
                v = rng.standard_normal(d).astype(dt)
                u = rng.standard_normal(n).astype(dt)
                for m in cfg["m"]:
                    _, _, p, _, _, _ = problem(2, d, m, dt)
                    ws = Workspace(n, d, m, dt)
                    step, bound = time_pair(partial(value_and_grad, p, X, y, act, loss, ws),
                                            partial(_stream_twice, X, v, u), repeats)
                    ratio = bound.median / step.median
                    floor = 4.0 * n * d * m / (rate[dt] * 1e9)
                    big = n * d >= TARGET_ND
                    rows.append(Row(
                        "gd", f"n·d={n * d:.0e} (n={n}, d={d}) m={m} {dt}", step,
                        "stream X twice", bound, ratio, "bound / step",
                        target=f"≥ {TARGET}" if big else "", met=(ratio >= TARGET) if big else None,
                        note=f"flop floor {floor * 1e3:.3g} ms",
                        extra=dict(n=n, d=d, m=m, dtype=dt, flop_floor_s=floor,
                                   gemm_gflops=rate[dt], threads=threads)))
                    progress(f"gd {rows[-1].case}: step {step.fmt()}, bound {bound.fmt()}, "
                             f"ratio {ratio:.2f}")
                del X
        rows += _gram_rows(cfg["gram"], repeats, threads)
    return rows


def _direct_step(p, X, y, act, loss, ws):
    _, g = value_and_grad(p, X, y, act, loss, ws)
    p.W -= 0.0 * g.W


def _gram_step(gs, p, y, act, loss):
    _, GT, _, _ = gs.value_and_grad(p.a, p.c, y, act, loss)
    gs.step(0.0, GT)


def _gram_rows(cfg, repeats, threads) -> list[Row]:
    """GD step (gradient + W update) on the Gram path (n <= d) vs the direct path."""
    rows, d = [], cfg["d"]
    for n in cfg["n"]:
        X, y, _, _, act, loss = problem(n, d, 1)
        for m in cfg["m"]:
            _, _, p, _, _, _ = problem(2, d, m)
            ws = Workspace(n, d, m, X.dtype)
            gs = GramGD(X, p.W.copy())
            ours, ref = time_pair(partial(_gram_step, gs, p, y, act, loss),
                                  partial(_direct_step, p, X, y, act, loss, ws), repeats)
            rows.append(Row("gd", f"Gram path n={n} d={d} m={m} float64", ours, "direct path",
                            ref, ref.median / ours.median, "direct / Gram",
                            note="n ≤ d: U = U0 + C K, K = X Xᵀ",
                            extra=dict(n=n, d=d, m=m, dtype="float64", threads=threads)))
            progress(f"gd {rows[-1].case}: Gram {ours.fmt()}, direct {ref.fmt()}")
    return rows
