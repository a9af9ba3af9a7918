"""delta_alg: the algorithmic weak-recovery threshold of the hard latent direction.

Hard coordinates z (the easy latent coordinates, if any, taken as known), G = E[z z^T|y] - I:

    delta_alg = 0                                   if E[z | y, z_easy] != 0 (first order)
    delta_alg = 1 / rho(M -> E[G M G])              otherwise (= 1/E[(E[z^2|y]-1)^2] for one z)

(= 1/2 for any y that is an injective function of |z|; docs/theory.md section 4). Conditional
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


def delta_alg(target: str | Target, noise: float = 0.0, tol: float = 1e-8,
              bins: int = 400) -> AlgThreshold:
    """delta_alg of the target's hard subspace, the easy coordinates taken as known.

    With G = E[z_h z_h^T | y, z_easy] - I (k_h x k_h): delta_alg = 0 if E[z_h | y, z_easy] != 0,
    else 1 / rho(F), F(M) = E[G M G] on symmetric M (for k_h = 1: 1 / E[G^2]). Conditional
    moments: exact level sets for k_h = 1 without noise, the Gaussian likelihood with noise. For
    k_h > 1 without noise: the first-order test by equal-mass bins of y (``bins`` per easy node,
    nodes with equal y kept together), and the second order from the target's exact conditional
    law (``Target.conditional``) where it has one; otherwise not reported (binning does not
    converge on continuous level sets).
    """
    t = get_target(target) if isinstance(target, str) else target
    if not t.hard:
        return AlgThreshold(0.0, "no hard direction: E[z y] != 0 for every latent direction")
    kh = len(t.hard)
    if kh > 1 and noise > 0:
        return AlgThreshold(None, "label noise with more than one hard direction: not implemented")
    zh, wh = gaussian_rule(kh)
    ze, we = _easy_grid(len(t.easy))
    first, F = 0.0, np.zeros((kh * kh, kh * kh))
    for ze_row, w_e in zip(ze, we, strict=True):
        z = np.zeros((len(zh), t.k))
        z[:, list(t.hard)] = zh
        if t.easy:
            z[:, list(t.easy)] = ze_row
        gz = t.g(z)
        if noise > 0:
            m1sq, m2dev = _noisy_moments(gz, zh[:, 0], wh, noise)
            first += w_e * m1sq
            F[0, 0] += w_e * m2dev
            continue
        W, m1, M2 = (_level_sets if kh == 1 else _binned)(gz, zh, wh, bins)
        G = M2 - np.eye(kh)
        first += w_e * float(W @ np.sum(m1**2, axis=1))
        F += w_e * np.einsum("g,gij,gkl->ikjl", W, G, G).reshape(kh * kh, kh * kh)
    if first > tol:
        return AlgThreshold(0.0, f"E[z | y] != 0 (E[|E[z|y]|^2] = {first:.3g}): first-order "
                                 "learnable, delta_alg = 0")
    if kh > 1:
        if t.conditional is None or t.easy:
            return AlgThreshold(None, "no first-order signal; the second-order threshold for "
                                      "several hard directions without noise needs the exact law "
                                      "of z given y (Target.conditional), not given: not reported")
        F = _conditional_F(t.conditional, kh)
    rho = float(np.max(np.abs(np.linalg.eigvals(F))))
    if rho <= 0:
        return AlgThreshold(float("inf"), "E[z z^T | y] = I: no second-order signal")
    how = ("1 / E[(E[z^2|y] - 1)^2]" if kh == 1
           else "1 / rho(M -> E[G M G]), G = E[z z^T|y] - I (exact conditional law)")
    return AlgThreshold(float(1.0 / rho), how)


def _conditional_F(cond, kh: int) -> np.ndarray:
    """E_y[G (x) G] with G = E[z z^T | y] - I from an exact conditional law, by adaptive
    quadrature on (-inf, 0) and (0, inf) (integrable singularities at y = 0 allowed)."""
    from scipy.integrate import quad

    def entry(i, j, k, l):
        def f(y):
            p, _, M2 = cond(np.array([y]))
            G = M2[0] - np.eye(kh)
            return p[0] * G[i, j] * G[k, l]

        return sum(quad(f, a, b, limit=400)[0] for a, b in ((-np.inf, 0.0), (0.0, np.inf)))

    F = np.zeros((kh * kh, kh * kh))
    for i, j, k, l in np.ndindex(kh, kh, kh, kh):
        F[i * kh + k, j * kh + l] = entry(i, j, k, l)  # vec_r(G M G) = (G (x) G) vec_r(M)
    return F


def _level_sets(gz, z, w, bins=None):
    """Groups of nodes with equal y (12 significant digits): weights, E[z|y], E[z z^T|y]."""
    key = np.round(gz, 12 - int(np.ceil(np.log10(np.abs(gz).max() + 1e-300))))
    _, inv = np.unique(key, return_inverse=True)
    return _group_moments(inv, z, w)


def _binned(gz, z, w, bins):
    """Equal-mass bins of y (weighted quantiles); nodes with equal y always share a bin, so
    sign-symmetric pairs z, -z of an even target stay together."""
    key = np.round(gz, 12 - int(np.ceil(np.log10(np.abs(gz).max() + 1e-300))))
    uniq, inv_u = np.unique(key, return_inverse=True)  # uniq is sorted
    cum = np.cumsum(np.bincount(inv_u, w))
    ubin = np.minimum(((cum - 0.5 * np.diff(np.concatenate([[0.0], cum]))) / cum[-1]
                       * bins).astype(np.int64), bins - 1)
    return _group_moments(ubin[inv_u], z, w)


def _group_moments(inv, z, w):
    W = np.bincount(inv, w)
    keep = W > 0
    k = z.shape[1]
    m1 = np.stack([np.bincount(inv, w * z[:, a]) for a in range(k)], axis=1)
    M2 = np.stack([np.stack([np.bincount(inv, w * z[:, a] * z[:, b]) for b in range(k)], -1)
                   for a in range(k)], -2)
    W, m1, M2 = W[keep], m1[keep], M2[keep]
    return W, m1 / W[:, None], M2 / W[:, None, None]


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
