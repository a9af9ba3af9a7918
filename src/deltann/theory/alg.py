"""delta_alg: the algorithmic weak-recovery threshold of the hard latent direction.

Single hard direction z (the other latent coordinates, if any, are easy and taken as known):

    delta_alg = 0                                   if E[z | y, z_easy] != 0 (first order)
    delta_alg = 1 / E[(E[z^2 | y, z_easy] - 1)^2]   otherwise

(= 1/2 for any y that is an injective function of |z|; theory.md section 4). Conditional
expectations: with label noise s > 0 by quadrature over z and a y grid with the Gaussian
likelihood; without noise by grouping the nodes of a sign-symmetric z grid into level sets of
(y, z_easy) -- exact when each level set is {z, -z} or a set of positive measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..targets import Target, gaussian_rule, get_target

__all__ = ["AlgThreshold", "delta_alg"]


@dataclass
class AlgThreshold:
    value: float | None
    reason: str


def _easy_grid(k_easy: int):
    """Quadrature over the easy coordinates (a single empty node when there are none)."""
    if k_easy == 0:
        return np.zeros((1, 0)), np.ones(1)
    return gaussian_rule(k_easy)


def delta_alg(target: str | Target, noise: float = 0.0, tol: float = 1e-8) -> AlgThreshold:
    """delta_alg of the target's hard direction (None with a reason when not computed)."""
    t = get_target(target) if isinstance(target, str) else target
    if not t.hard:
        return AlgThreshold(0.0, "no hard direction: E[z y] != 0 for every latent direction")
    if len(t.hard) > 1:
        return AlgThreshold(None, f"{len(t.hard)} hard directions with continuous level sets: "
                                  "not implemented (single hard direction only)")
    h = t.hard[0]
    zh, wh = gaussian_rule(1)
    zh = zh[:, 0]
    ze, we = _easy_grid(len(t.easy))

    def labels(zh_vals, ze_row):
        z = np.zeros((len(zh_vals), t.k))
        z[:, h] = zh_vals
        if t.easy:
            z[:, list(t.easy)] = ze_row
        return t.g(z)

    first, second = 0.0, 0.0
    for ze_row, w_e in zip(ze, we, strict=True):
        gz = labels(zh, ze_row)
        if noise > 0:
            m1sq, m2dev = _noisy_moments(gz, zh, wh, noise)
        else:
            m1sq, m2dev = _level_set_moments(gz, zh, wh)
        first += w_e * m1sq
        second += w_e * m2dev
    if first > tol:
        return AlgThreshold(0.0, f"E[z | y] != 0 (E[E[z|y]^2] = {first:.3g}): first-order "
                                 "learnable, delta_alg = 0")
    if second <= 0:
        return AlgThreshold(float("inf"), "E[z^2 | y] = 1: no second-order signal")
    return AlgThreshold(float(1.0 / second), "1 / E[(E[z^2|y] - 1)^2]")


def _level_set_moments(gz, z, w):
    """E[E[z|y]^2] and E[(E[z^2|y]-1)^2] grouping nodes with equal y (12 significant digits)."""
    key = np.round(gz, 12 - int(np.ceil(np.log10(np.abs(gz).max() + 1e-300))))
    _, inv = np.unique(key, return_inverse=True)
    W = np.bincount(inv, w)
    m1 = np.bincount(inv, w * z) / W
    m2 = np.bincount(inv, w * z * z) / W
    return float(W @ m1**2), float(W @ (m2 - 1.0) ** 2)


def _noisy_moments(gz, z, w, s, per_sd: int = 12):
    """Same moments with y = g(z) + s eps, by a uniform y grid of spacing s / per_sd."""
    lo, hi = gz.min() - 9 * s, gz.max() + 9 * s
    ys = np.arange(lo, hi, s / per_sd)
    dy = s / per_sd
    out1, out2 = 0.0, 0.0
    for chunk in np.array_split(ys, max(1, len(ys) // 2000)):
        lik = np.exp(-0.5 * ((chunk[:, None] - gz[None, :]) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        p = lik @ w
        ok = p > 1e-300
        m1 = (lik @ (w * z))[ok] / p[ok]
        m2 = (lik @ (w * z * z))[ok] / p[ok]
        out1 += float(np.sum(p[ok] * m1**2) * dy)
        out2 += float(np.sum(p[ok] * (m2 - 1.0) ** 2) * dy)
    return out1, out2
