"""Registry of multi-index targets y = g(z) + noise * eps, with z = Theta*^T x in R^k.

Each target says which latent coordinates are *easy* (first order: E[z_a y] != 0, learned by the
gradient early) and which are *hard* (E[z_a y] = 0: invisible to the first-order gradient; learned,
if at all, through the Hessian). ``tests/test_targets.py`` checks the labels by Monte Carlo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Target", "TARGETS", "get_target", "target_names", "target_mean", "gaussian_rule"]


@dataclass(frozen=True)
class Target:
    """A multi-index target.

    g: maps z of shape (n, k) to y of shape (n,) (noise-free part).
    easy / hard: latent coordinates with E[z_a y] != 0 / == 0.
    bounded: whether g is bounded (the asymptotic Hessian theory needs bounded kernels).
    """

    name: str
    k: int
    g: Callable[[np.ndarray], np.ndarray]
    easy: tuple[int, ...]
    hard: tuple[int, ...]
    bounded: bool
    formula: str
    # Optional exact law of the hard coordinates given y (noise-free, no easy coordinates):
    # y (N,) -> (p(y) (N,), E[z | y] (N, k), E[z z^T | y] (N, k, k)), for delta_alg when the
    # level sets are continuous curves (k_hard > 1).
    conditional: Callable[[np.ndarray], tuple] | None = None

    def __call__(self, z: np.ndarray, eps: np.ndarray | None = None, noise: float = 0.0):
        """y = g(z) + noise * eps; z (n, k), eps (n,) standard normal."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.k:
            raise ValueError(f"target {self.name!r} needs z of shape (n, {self.k}), got {z.shape}")
        y = self.g(z)
        if noise:
            if eps is None:
                raise ValueError(f"target {self.name!r}: noise={noise} needs eps")
            y = y + noise * eps
        return y


def _t(name, k, g, easy, hard, bounded, formula, conditional=None):
    return Target(name, k, g, tuple(easy), tuple(hard), bounded, formula, conditional)


def _product_conditional(y):
    """y = z1 z2: p(y) = K0(|y|)/pi, E[z|y] = 0, E[z1^2|y] = E[z2^2|y] = |y| K1(|y|)/K0(|y|),
    E[z1 z2|y] = y (from int_0^inf z exp(-z^2/2 - y^2/(2 z^2)) dz = |y| K1(|y|))."""
    from scipy.special import k0, k0e, k1e

    y = np.asarray(y, dtype=float)
    ay = np.abs(y)
    a = ay * k1e(ay) / k0e(ay)
    M2 = np.empty(y.shape + (2, 2))
    M2[..., 0, 0] = M2[..., 1, 1] = a
    M2[..., 0, 1] = M2[..., 1, 0] = y
    return k0(ay) / np.pi, np.zeros(y.shape + (2,)), M2


_REGISTRY = [
    _t("z2", 1, lambda z: z[:, 0] ** 2, [], [0], False, "y = z^2"),
    _t("abs", 1, lambda z: np.abs(z[:, 0]), [], [0], False, "y = |z|"),
    _t("he2", 1, lambda z: z[:, 0] ** 2 - 1.0, [], [0], False, "y = He2(z) = z^2 - 1"),
    _t("z2sat", 1, lambda z: 3.0 * np.tanh(z[:, 0] ** 2 / 3.0), [], [0], True,
       "y = 3 tanh(z^2/3)  (bounded z^2)"),
    _t("tanh2", 1, lambda z: np.tanh(z[:, 0]) ** 2, [], [0], True, "y = tanh(z)^2"),
    _t("step_abs", 1, lambda z: (np.abs(z[:, 0]) > 1.0).astype(float), [], [0], True,
       "y = 1{|z| > 1}"),
    _t("linear", 1, lambda z: z[:, 0], [0], [], False, "y = z"),
    _t("tanh", 1, lambda z: np.tanh(z[:, 0]), [0], [], True, "y = tanh(z)"),
    _t("z1_plus_z2sq", 2, lambda z: z[:, 0] + z[:, 1] ** 2, [0], [1], False, "y = z1 + z2^2"),
    _t("z1z2", 2, lambda z: z[:, 0] * z[:, 1], [], [0, 1], False, "y = z1 z2",
       _product_conditional),
    _t("staircase3", 3, lambda z: z[:, 0] + z[:, 0] * z[:, 1] + z[:, 0] * z[:, 1] * z[:, 2],
       [0], [1, 2], False, "y = z1 + z1 z2 + z1 z2 z3"),
]
TARGETS: dict[str, Target] = {t.name: t for t in _REGISTRY}
_ALIASES = {"z1+z2^2": "z1_plus_z2sq", "z1*z2": "z1z2", "|z|": "abs", "z^2": "z2"}


def target_names() -> list[str]:
    """Canonical names of all registered targets."""
    return list(TARGETS)


def get_target(name: str) -> Target:
    """Look up a target by canonical name or formula alias (e.g. ``'z1+z2^2'``)."""
    key = _ALIASES.get(name, name)
    if key not in TARGETS:
        raise KeyError(
            f"unknown target {name!r}; known targets: {', '.join(TARGETS)} "
            f"(aliases: {', '.join(_ALIASES)})"
        )
    return TARGETS[key]


_BREAKS = np.array([-10.0, -6.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 6.0, 10.0])


def gaussian_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature for E[h(z)], z ~ N(0, I_k): per coordinate, Gauss-Legendre panels between the
    breakpoints -10, -6, -3, -2, -1, 0, 1, 2, 3, 6, 10 (sign-symmetric; exact to ~1e-12 for
    integrands smooth between breakpoints, e.g. |z| or 1{|z| > 1}), tensorised over k.

    Returns nodes (N, k) and weights (N,) summing to 1.
    """
    per = {1: 40, 2: 12, 3: 5}.get(k, 3)
    x, w = np.polynomial.legendre.leggauss(per)
    lo, hi = _BREAKS[:-1, None], _BREAKS[1:, None]
    x1 = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    w1 = (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * x1**2) / np.sqrt(2 * np.pi)
    grids = np.meshgrid(*([x1] * k), indexing="ij")
    weights = np.prod(np.meshgrid(*([w1] * k), indexing="ij"), axis=0).ravel()
    return np.stack([g.ravel() for g in grids], axis=1), weights / weights.sum()


def target_mean(target: Target) -> float:
    """E[g(z)] for z ~ N(0, I_k) (noise has mean 0), by ``gaussian_rule``."""
    z, w = gaussian_rule(target.k)
    return float(w @ target.g(z))
