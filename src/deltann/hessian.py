"""Hessian spectra: dense ``eigh`` for small m*d, matrix-free Lanczos (``eigsh``) beyond.

Eigenvector overlaps with the latent space: for a unit eigenvector v of the W block, reshaped to
V (m, d) (block j = neuron j), ``overlap[j, a] = <v_j, theta_a>^2``; the total overlap with
theta_a is the sum over neurons (docs/theory.md section 3: overlap^2 = sum_j <row_j(V), theta>^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import lapack
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from .activations import Activation
from .losses import Loss
from .model import Params, _pass, hessian, hessian_W, hvp

__all__ = ["Spectrum", "w_hessian_operator", "full_hessian_operator", "dense_spectrum",
           "lanczos_lowest", "spectrum", "eigvec_overlaps"]


@dataclass
class Spectrum:
    """eigvals: all (dense) or the lowest k (Lanczos), ascending; eigvecs: lowest n_vecs columns."""

    eigvals: np.ndarray
    eigvecs: np.ndarray
    method: str


def w_hessian_operator(p: Params, X, y, act: Activation, loss: Loss) -> LinearOperator:
    """Matrix-free W-block Hessian: v -> (1/n) sum_i (K_i (x) x_i x_i^T) v, with cached factors.

    With S = X V^T (n, m), g = a s' and D = a s'' r: (H V)^T rows = (1/n) M^T X,
    M_ij = l''_i g_ij sum_l g_il S_il + D_ij S_ij.
    """
    n, d = X.shape
    m = p.m
    q = _pass(p, X, y, act, loss, order=2)
    g = q["s1"] * p.a
    D = (p.a * q["s2"]) * q["r"][:, None]
    l2 = q["l2"]

    def matvec(v):
        V = np.asarray(v).reshape(m, d)
        S = X @ V.T
        M = (l2 * np.sum(g * S, axis=1))[:, None] * g + D * S
        return ((M.T @ X) / n).ravel()

    return LinearOperator((m * d, m * d), matvec=matvec, dtype=np.float64)


def full_hessian_operator(p: Params, X, y, act: Activation, loss: Loss,
                          blocks=("W", "a", "c")) -> LinearOperator:
    """Matrix-free Hessian over the chosen parameter blocks (canonical layout)."""
    m, d = p.m, p.d
    size = sum({"W": m * d, "a": m, "c": 1}[b] for b in blocks)
    zero = Params(np.zeros((m, d)), np.zeros(m), 0.0)

    def matvec(v):
        out = hvp(p, X, y, act, loss, Params.from_vector(np.asarray(v).ravel(), m, d, blocks, zero))
        return out.vector(blocks)

    return LinearOperator((size, size), matvec=matvec, dtype=np.float64)


def dense_spectrum(H: np.ndarray, n_vecs: int, overwrite: bool = False) -> Spectrum:
    """All eigenvalues of symmetric H (ascending) and the lowest ``n_vecs`` eigenvectors.

    One Householder tridiagonalisation Q^T H Q = T (LAPACK dsytrd, the O(N^3) part), then all
    eigenvalues of T (dsterf, as dsyevr does for eigenvalues only), the lowest eigenvectors of T
    (bisection + inverse iteration) and their back-transformation by Q (dormqr on the stored
    reflectors, as dormtr does). Half the cost of two ``eigh`` calls. ``overwrite``: H may be
    destroyed (saves one N x N copy).
    """
    N = H.shape[0]
    k = min(n_vecs, N)
    if N < 2:
        return Spectrum(np.linalg.eigvalsh(H), np.ones((N, k)), "dense")
    # H is symmetric: a C-ordered H is its own Fortran-ordered transpose (no copy if overwrite)
    Hf = H.T if H.flags.c_contiguous else H
    A = np.asfortranarray(Hf) if overwrite else np.array(Hf, order="F")
    lwork = int(lapack.dsytrd_lwork(N, lower=1)[0])
    A, diag, off, tau, info = lapack.dsytrd(A, lower=1, lwork=max(lwork, 1), overwrite_a=1)
    if info:
        raise np.linalg.LinAlgError(f"dsytrd failed (info={info})")
    w, info = lapack.dsterf(diag.copy(), off.copy())[:2]
    if info:
        raise np.linalg.LinAlgError(f"dsterf did not converge (info={info})")
    _, z = scipy.linalg.eigh_tridiagonal(diag, off, select="i", select_range=(0, k - 1),
                                         check_finite=False)
    V = np.zeros((N, k), order="F")
    V[:] = z
    refl, t = A[1:, :-1], tau[:N - 1]
    lw = int(lapack.dormqr("L", "N", refl, t, V[1:], lwork=-1)[1][0])
    V[1:], info = lapack.dormqr("L", "N", refl, t, V[1:], lwork=max(lw, 1), overwrite_c=0)[::2]
    if info:
        raise np.linalg.LinAlgError(f"dormqr failed (info={info})")
    return Spectrum(np.sort(w), V, "dense")


def lanczos_lowest(op: LinearOperator, k: int, tol: float = 1e-10, seed: int = 0,
                   name: str = "") -> Spectrum:
    """Lowest k eigenpairs of a symmetric operator by ARPACK Lanczos (deterministic start)."""
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])
    try:
        w, v = eigsh(op, k=k, which="SA", tol=tol, v0=v0, maxiter=max(2000, 20 * op.shape[0]))
    except ArpackNoConvergence as err:
        raise RuntimeError(
            f"Lanczos did not converge for {name or 'Hessian'} (size {op.shape[0]}, k={k}): "
            f"{len(err.eigenvalues)} of {k} eigenvalues converged; raise maxiter/tol or use "
            "method=dense") from err
    order = np.argsort(w)
    return Spectrum(w[order], v[:, order], "lanczos")


def spectrum(p: Params, X, y, act: Activation, loss: Loss, block: str = "W", n_vecs: int = 10,
             method: str = "auto", dense_max: int = 8000, name: str = "") -> Spectrum:
    """Spectrum of the W-block (``block='W'``) or full (``'all'``) Hessian at ``p``.

    method: 'dense' (all eigenvalues), 'lanczos' (lowest n_vecs), or 'auto' (dense up to dense_max).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    size = p.m * p.d + (p.m + 1 if block == "all" else 0)
    if method == "auto":
        method = "dense" if size <= dense_max else "lanczos"
    if method == "dense":
        H = hessian_W(p, X, y, act, loss) if block == "W" else hessian(p, X, y, act, loss)
        if not np.all(np.isfinite(H)):
            raise FloatingPointError(f"Hessian of {name or 'run'} has non-finite entries "
                                     "(parameters or data overflowed)")
        try:
            return dense_spectrum(H, n_vecs, overwrite=True)
        except np.linalg.LinAlgError as err:
            raise RuntimeError(f"dense eigh did not converge for {name or 'Hessian'} "
                               f"(size {H.shape[0]}): {err}") from err
    if method == "lanczos":
        op = (w_hessian_operator(p, X, y, act, loss) if block == "W"
              else full_hessian_operator(p, X, y, act, loss))
        return lanczos_lowest(op, min(n_vecs, size - 1), name=name)
    raise ValueError(f"hessian.method={method!r}; allowed: auto, dense, lanczos")


def eigvec_overlaps(vecs: np.ndarray, theta: np.ndarray, m: int) -> np.ndarray:
    """Squared overlaps <v_j, theta_a>^2 of eigenvectors' neuron blocks, shape (n_vecs, m, k).

    vecs: (size, n_vecs) with the W block first (size >= m d); theta: (d, k).
    """
    d = theta.shape[0]
    V = vecs[: m * d].T.reshape(-1, m, d)
    return np.einsum("ejd,dk->ejk", V, theta) ** 2
