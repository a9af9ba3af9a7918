"""Benchmark problems: Gaussian data with a z^2 target and a network at its GD initialisation."""

from __future__ import annotations

import numpy as np

from deltann.activations import get_activation
from deltann.losses import get_loss
from deltann.model import Params

__all__ = ["problem", "gemm_gflops"]


def problem(n: int, d: int, m: int, dtype=np.float64, seed: int = 0, activation="softplus",
            loss="square"):
    """X (n, d) ~ N(0, 1), y = x_1^2 - 1, W ~ N(0, 1/d), a = 1/m, c = 0.1; plus a direction V."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float64).astype(dtype, copy=False)
    y = (X[:, 0].astype(np.float64) ** 2 - 1).astype(dtype)
    p = Params((rng.standard_normal((m, d)) / np.sqrt(d)).astype(dtype),
               np.full(m, 1.0 / m, dtype=dtype), 0.1)
    v = Params(rng.standard_normal((m, d)), rng.standard_normal(m), 0.5)
    return X, y, p, v, get_activation(activation), get_loss(loss)


def gemm_gflops(dtype, size: int = 1000, repeats: int = 3) -> float:
    """Measured GEMM rate (GFlop/s) of a square product at the current BLAS thread count."""
    import time

    A = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    A @ A
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ A
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9
