"""Deterministic equivalent of H = (1/n) sum_i K_i (x) x_i x_i^T (md x md), n/d = delta.

Stieltjes block g(lam) = (1/d) blocktrace (H - lam)^{-1} (m x m) solves the fixed point

    g = (Phi(g) - lam I)^{-1},   Phi(g) = E[B],   B = K (I + g K / delta)^{-1}.

Below the bulk g is real, positive definite and increasing in lam. The Jacobian of the map at a
fixed point is L(X) = g E[B X B] g / delta (a positive map); the physical branch has rho(L) < 1,
g > 0 and g^{-1} + K/delta > 0 at every node. The lower edge is where rho(L) -> 1 (or where the
last condition fails first: a hard edge).

Outlier below the bulk along hard directions z (with E[z B] = 0): S(lam) = E[(z z^T) (x) B]
(size k m); the lowest outlier is the first lam (from the left) where the largest eigenvalue mu of
F(lam) = lam I - S(lam) crosses 0; it exists iff mu(lam_edge) > 0, and it is negative (a
direction of negative curvature) iff mu(min(lam_edge, 0)) > 0. Its eigenvector's squared
overlap with the hard directions is 1 / (1 - c^T S'(lam*) c) with c the null vector of F and
S'(lam) = -E[(z z^T) (x) B g' B] / delta, (I - L) g' = g g.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

__all__ = ["KernelLaw", "SolveError", "phi", "solve_real", "edge", "bulk_density", "outlier",
           "OutlierResult", "threshold_delta"]


class SolveError(RuntimeError):
    """A fixed-point solve that did not converge (never silently ignored)."""


@dataclass
class KernelLaw:
    """Discrete law of (K, z): nodes K (Q, m, m) symmetric, weights w (Q,) summing to 1, and the
    hard coordinates z (Q, k) (k = 0 allowed for bulk-only use).

    support: extra kernels (S, m, m) of the support's closure that quadrature nodes miss (e.g. the
    limit y -> inf); they carry no weight but enter the physical-branch (hard-edge) test
    g^{-1} + K/delta > 0. Pass the true sup of the kernel here (docs/theory.md section 5).
    """

    K: np.ndarray
    w: np.ndarray
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    support: np.ndarray | None = None

    def __post_init__(self):
        self.K = np.asarray(self.K, dtype=float)
        if self.K.ndim == 1:
            self.K = self.K[:, None, None]
        self.w = np.asarray(self.w, dtype=float)
        self.w = self.w / self.w.sum()
        z = np.asarray(self.z, dtype=float)
        self.z = z[:, None] if z.ndim == 1 else (z if z.size else np.zeros((len(self.w), 0)))
        if not (len(self.K) == len(self.w) == len(self.z)):
            raise ValueError("KernelLaw: K, w and z need the same number of nodes")
        if self.support is not None:
            sup = np.asarray(self.support, dtype=float)
            self.support = sup.reshape(-1, self.m, self.m)

    def all_kernels(self) -> np.ndarray:
        """Nodes plus support kernels (for the physical-branch test)."""
        return self.K if self.support is None else np.concatenate([self.K, self.support])

    @property
    def m(self) -> int:
        return self.K.shape[1]

    @property
    def scale(self) -> float:
        """max_q ||K_q|| (spectral norm)."""
        return float(np.max(np.abs(np.linalg.eigvalsh(self.K))))

    @classmethod
    def empirical(cls, K, z=None) -> KernelLaw:
        """The empirical law of n samples: atoms K_i (n, m, m) with weights 1/n and hard-direction
        covariates z_i (n, r) (none when ``z`` is None)."""
        n = len(K)
        return cls(K, np.full(n, 1.0 / n), np.zeros((n, 0)) if z is None else z)


def _B(g, law: KernelLaw, delta: float) -> np.ndarray:
    """B_q = K_q (I + g K_q / delta)^{-1}, shape (Q, m, m).

    m = 1 and m = 2 in closed form (elementwise over the nodes, no per-node LAPACK call); larger
    m by a batched solve of (I + K g / delta) B = K (B is symmetric: push-through identity).
    """
    K = law.K
    m = law.m
    if m == 1:
        return K / (1.0 + g[0, 0] * K / delta)
    if m == 2:
        k00, k01, k10, k11 = K[:, 0, 0], K[:, 0, 1], K[:, 1, 0], K[:, 1, 1]
        (g00, g01), (g10, g11) = g / delta
        a = 1.0 + g00 * k00 + g01 * k10  # M = I + g K / delta = [[a, b], [c, e]]
        b = g00 * k01 + g01 * k11
        c = g10 * k00 + g11 * k10
        e = 1.0 + g10 * k01 + g11 * k11
        det = a * e - b * c
        B = np.empty(K.shape, det.dtype)  # K M^{-1}, M^{-1} = [[e, -b], [-c, a]] / det
        B[:, 0, 0] = (k00 * e - k01 * c) / det
        B[:, 0, 1] = (k01 * a - k00 * b) / det
        B[:, 1, 0] = (k10 * e - k11 * c) / det
        B[:, 1, 1] = (k11 * a - k10 * b) / det
        return B
    M = np.matmul(g, K)
    M /= delta
    M[:, np.arange(m), np.arange(m)] += 1.0
    return np.swapaxes(np.linalg.solve(np.swapaxes(M, 1, 2), np.swapaxes(K, 1, 2)), 1, 2)


def phi(g, law: KernelLaw, delta: float):
    """Phi(g) = E[B] and the nodes B."""
    B = _B(g, law, delta)
    return (law.w @ B.reshape(len(B), -1)).reshape(law.m, law.m), B


def _L_matrix(g, B, law: KernelLaw, delta: float) -> np.ndarray:
    """Row-major matrix of L(X) = g E[B X B] g / delta on vec(X), size m^2 x m^2."""
    # vec_r(B X B)_(i,l) = sum_jk B_ij B_kl X_jk ;  vec_r(g Y g) = (g (x) g) vec_r(Y)
    m = law.m
    Bf = B.reshape(len(B), m * m)
    T = ((law.w[:, None] * Bf).T @ Bf).reshape(m, m, m, m)  # T[i,j,k,l] = E[B_ij B_kl]
    EBB = T.transpose(0, 3, 1, 2).reshape(m * m, m * m)
    return np.kron(g, g) @ EBB / delta


def _physical(g, B, law, delta, tol=1e-12) -> tuple[bool, float]:
    """(is on the physical branch, rho(L))."""
    L = _L_matrix(g, B, law, delta)
    rho = float(np.max(np.abs(np.linalg.eigvals(L))))
    if rho >= 1 - 1e-12:
        return False, rho
    if np.min(np.linalg.eigvalsh(g)) <= 0:
        return False, rho
    ginv = np.linalg.inv(g)
    lo = np.min(np.linalg.eigvalsh(ginv[None] + law.all_kernels() / delta))
    return bool(lo > tol * max(1.0, np.abs(ginv).max())), rho


def _newton(g0, lam, law, delta, tol=1e-11, maxit=60):
    """Newton on F(g) = g - (Phi(g) - lam)^{-1}; returns (g, B, ok)."""
    m = law.m
    g = g0.copy()
    for _ in range(maxit):
        P, B = phi(g, law, delta)
        try:
            G = np.linalg.inv(P - lam * np.eye(m))
        except np.linalg.LinAlgError:
            return g, B, False
        F = g - G
        err = np.abs(F).max()
        if not np.isfinite(err):
            return g, B, False
        if err < tol * max(1.0, np.abs(g).max()):
            return g, B, True
        J = np.eye(m * m) - _L_matrix(G, B, law, delta)
        try:
            step = np.linalg.solve(J, -F.ravel()).reshape(m, m)
        except np.linalg.LinAlgError:
            return g, B, False
        g = g + 0.5 * (step + step.T)
    P, B = phi(g, law, delta)
    return g, B, False


def _far_left(law: KernelLaw, delta: float) -> float:
    return -2.0 * (1.0 + delta**-0.5) ** 2 * law.scale - 1.0


def _start(lam0, law, delta):
    """g at a far-left lam0 by simple iteration from I/|lam0|, then Newton polish."""
    m = law.m
    g = np.eye(m) / abs(lam0)
    for _ in range(2000):
        P, _ = phi(g, law, delta)
        g_new = np.linalg.inv(P - lam0 * np.eye(m))
        if np.abs(g_new - g).max() < 1e-14:
            g = g_new
            break
        g = g_new
    g, B, ok = _newton(g, lam0, law, delta)
    if not ok or not _physical(g, B, law, delta)[0]:
        raise SolveError(f"fixed point did not converge at the far-left start lam0={lam0:g}")
    return g


@dataclass
class EdgeResult:
    """Lower bulk edge and the continuation path (lam ascending, g on the physical branch)."""

    lam: float
    g: np.ndarray
    rho: float
    hard: bool
    path_lam: list
    path_g: list


def edge(law: KernelLaw, delta: float, step_min: float = 1e-10) -> EdgeResult:
    """Lower edge of the bulk by continuation in lam from the far left (x1.5 / x0.4 steps).

    ``hard`` is True when the physical-branch condition g^{-1} + K/delta > 0 fails before
    rho(L) -> 1 (docs/theory.md section 2). Raises SolveError if the start fails.
    """
    lam = _far_left(law, delta)
    g = _start(lam, law, delta)
    path_l, path_g = [lam], [g]
    step, hi = abs(lam) * 0.1, np.inf  # hi: smallest lam known to fail (bracket)
    rho = 0.0
    while min(step, hi - lam) > step_min * max(1.0, abs(lam)):
        trial = min(lam + step, 0.5 * (lam + hi))
        g_try, B, ok = _newton(g, trial, law, delta)
        phys, rho_try = _physical(g_try, B, law, delta) if ok else (False, 1.0)
        monotone = ok and np.min(np.linalg.eigvalsh(g_try - g)) > -1e-9 * np.abs(g).max()
        if ok and phys and monotone:
            lam, g, rho = trial, g_try, rho_try
            path_l.append(lam)
            path_g.append(g)
            step *= 1.5
        else:
            hi = trial
            step *= 0.4
    return EdgeResult(lam, g, rho, bool(rho < 1 - 1e-3), path_l, path_g)


def solve_real(lam: float, law: KernelLaw, delta: float, er: EdgeResult | None = None):
    """Physical real g(lam) for lam below the edge (warm start from the continuation path)."""
    er = er or edge(law, delta)
    if lam > er.lam:
        raise ValueError(f"lam={lam:g} is inside the bulk (edge {er.lam:g})")
    i = int(np.searchsorted(er.path_lam, lam, side="right")) - 1
    g0 = er.path_g[max(i, 0)]
    g, B, ok = _newton(g0, lam, law, delta)
    if not ok or not _physical(g, B, law, delta)[0]:
        # walk from the path point in small steps
        lam_i, g = er.path_lam[max(i, 0)], g0
        for t in np.linspace(0, 1, 21)[1:]:
            g, B, ok = _newton(g, lam_i + t * (lam - lam_i), law, delta)
            if not ok:
                break
        if not ok or not _physical(g, B, law, delta)[0]:
            raise SolveError(f"no physical real solution of the fixed point at lam={lam:g}")
    return g, B


def _im_psd(g, tol=1e-12) -> bool:
    """Im g = (g - g^H) / 2i is positive semidefinite (the physical branch for Im lam > 0)."""
    return bool(np.min(np.linalg.eigvalsh((g - g.conj().T) / 2j)) > -tol)


def bulk_density(lams, law: KernelLaw, delta: float, eta: float = 1e-3, alpha: float = 0.5,
                 tol: float = 1e-10, maxit: int = 20000) -> np.ndarray:
    """rho(lam) = Im tr g(lam + i eta) / (pi m), warm-started along ``lams``.

    Each point: complex Newton from the previous solution, accepted when it converges to a g
    with Im g >= 0; otherwise the damped iteration g <- (1-a) g + a (Phi(g) - lam)^{-1}.
    Raises SolveError where neither converges.
    """
    m = law.m
    out = np.empty(len(lams))
    g = 1j * np.eye(m)
    for i, lam in enumerate(np.asarray(lams, dtype=float)):
        z = lam + 1j * eta
        g_new, _, ok = _newton(g, z, law, delta, tol=tol)
        if not (ok and _im_psd(g_new)):
            g_new = g if _im_psd(g) else 1j * np.eye(m)
            for _ in range(maxit):
                P, _ = phi(g_new, law, delta)
                g_next = (1 - alpha) * g_new + alpha * np.linalg.inv(P - z * np.eye(m))
                done = np.abs(g_next - g_new).max() < tol
                g_new = g_next
                if done:
                    break
            else:
                raise SolveError(f"bulk density: no convergence at lam={lam:g} (eta={eta:g})")
        g = g_new
        out[i] = max(np.trace(g).imag / (np.pi * m), 0.0)
    return out


def _zz_moment(law: KernelLaw, A: np.ndarray) -> np.ndarray:
    """E[(z z^T) (x) A] for node matrices A (Q, m, m): size (k m) x (k m)."""
    k, m = law.z.shape[1], law.m
    zz = (law.z[:, :, None] * law.z[:, None, :]).reshape(len(law.w), k * k) * law.w[:, None]
    T = (zz.T @ A.reshape(len(A), m * m)).reshape(k, k, m, m)
    return T.transpose(0, 2, 1, 3).reshape(k * m, k * m)


def _S(B, law: KernelLaw) -> np.ndarray:
    """S = E[(z z^T) (x) B], size (k m) x (k m)."""
    return _zz_moment(law, B)


def _mu(lam, law, delta, er):
    g, B = solve_real(lam, law, delta, er)
    F = lam * np.eye(law.z.shape[1] * law.m) - _S(B, law)
    w, v = np.linalg.eigh(F)
    return w[-1], v[:, -1], g, B


@dataclass
class OutlierResult:
    """Lowest theta-outlier below the bulk (lam/overlap2 NaN when none).

    mu_neg = mu(min(edge, 0)): > 0 iff there is an outlier below both the bulk and 0, i.e. a
    negative-curvature direction along the hard subspace (equal to mu_edge when edge <= 0).
    """

    delta: float
    edge: float
    mu_edge: float
    exists: bool
    mu_neg: float = float("nan")
    lam: float = float("nan")
    overlap2: float = float("nan")
    c: np.ndarray | None = None


def outlier(law: KernelLaw, delta: float) -> OutlierResult:
    """Edge, mu(edge) and, if mu(edge) > 0, the lowest outlier and its squared overlap."""
    if law.z.shape[1] == 0:
        raise ValueError("outlier needs the hard coordinates z in the KernelLaw")
    er = edge(law, delta)
    mu_e = _mu(er.lam, law, delta, er)[0]
    mu_n = mu_e if er.lam <= 0 else _mu(0.0, law, delta, er)[0]
    res = OutlierResult(delta, er.lam, float(mu_e), bool(mu_e > 0), float(mu_n))
    if not res.exists:
        return res
    lo = er.path_lam[0]
    if _mu(lo, law, delta, er)[0] >= 0:
        raise SolveError(f"mu >= 0 already at the far left lam={lo:g}")
    lam = brentq(lambda t: _mu(t, law, delta, er)[0], lo, er.lam, xtol=1e-12, rtol=1e-12)
    _, c, g, B = _mu(lam, law, delta, er)
    m = law.m
    gprime = np.linalg.solve(np.eye(m * m) - _L_matrix(g, B, law, delta), (g @ g).ravel())
    gprime = gprime.reshape(m, m)
    BgB = B @ gprime @ B
    Sp = -_zz_moment(law, BgB) / delta
    res.lam, res.c = float(lam), c
    res.overlap2 = float(1.0 / (1.0 - c @ Sp @ c))
    return res


def threshold_delta(mu_of_delta, lo: float = 0.05, hi: float = 1000.0, n_grid: int = 40,
                    xtol: float = 1e-4) -> float:
    """Smallest delta in [lo, hi] where mu_of_delta changes sign from <= 0 to > 0 (log-grid scan
    then brentq); inf if it stays <= 0, lo if it is already > 0 at lo."""
    grid = np.geomspace(lo, hi, n_grid)
    vals = [mu_of_delta(x) for x in grid]
    if vals[0] > 0:
        return float(lo)
    for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:], strict=True):
        if fa <= 0 < fb:
            return float(brentq(mu_of_delta, a, b, xtol=xtol))
    return float("inf")
