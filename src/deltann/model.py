"""Two-layer network f(x) = sum_j a_j sigma(w_j . x) + c: risk, gradient, HVP, dense Hessian.

Shapes: X (n, d), W (m, d), a (m,), c scalar; U = X W^T (n, m). Empirical risk
R = (1/n) sum_i l(f(x_i), y_i). Everything is vectorised over samples (no Python loop over i);
the two big products per gradient are U = X W^T and G^T X.

Parameter-vector layout (for Hessians): [vec(W) row by row (block j = row j of W), a, c].
W-block of the Hessian (docs/theory.md section 1):  H_WW = (1/n) sum_i K_i (x) x_i x_i^T with
K_i[j,l] = l''_i a_j a_l s'_ij s'_il + 1[j=l] a_j s''_ij r_i,   r_i = l'(f_i, y_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .losses import Loss

__all__ = [
    "Params", "forward", "risk", "value_and_grad", "gradient", "kernel", "hvp",
    "hessian_W", "kron_hessian", "hessian", "PARAM_BLOCKS", "BLOCK_ELEMS", "SINGLE_BLOCK_BYTES",
    "block_rows", "Workspace", "grad_from_U", "output_grad",
]

PARAM_BLOCKS = ("W", "a", "c")


@dataclass
class Params:
    """Network parameters: W (m, d), a (m,), c (float)."""

    W: np.ndarray
    a: np.ndarray
    c: float = 0.0

    @property
    def m(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.W.shape[1]

    def copy(self) -> Params:
        return Params(self.W.copy(), self.a.copy(), float(self.c))

    def vector(self, blocks=PARAM_BLOCKS) -> np.ndarray:
        """Concatenate the chosen blocks in the canonical layout."""
        parts = {"W": self.W.ravel(), "a": self.a, "c": np.atleast_1d(self.c)}
        return np.concatenate([parts[b] for b in blocks])

    @staticmethod
    def from_vector(v: np.ndarray, m: int, d: int, blocks=PARAM_BLOCKS,
                    fill: Params | None = None) -> Params:
        """Inverse of ``vector``; blocks not in ``blocks`` are taken from ``fill`` (or zero)."""
        out = fill.copy() if fill is not None else Params(np.zeros((m, d)), np.zeros(m), 0.0)
        i = 0
        for b in blocks:
            size = {"W": m * d, "a": m, "c": 1}[b]
            chunk = v[i:i + size]
            if b == "W":
                out.W = chunk.reshape(m, d).copy()
            elif b == "a":
                out.a = chunk.copy()
            else:
                out.c = float(chunk[0])
            i += size
        return out


def _pass(p: Params, X, y, act: Activation, loss: Loss, order: int = 1):
    """Shared forward quantities: U, sigma(U), sigma'(U), [sigma''(U)], f, l'(f,y)."""
    U = X @ p.W.T
    s = act.f(U)
    f = s @ p.a + p.c
    out = {"U": U, "s": s, "f": f, "r": loss.d1(f, y)}
    if order >= 1:
        out["s1"] = act.df(U)
    if order >= 2:
        out["s2"] = act.d2f(U)
        out["l2"] = loss.d2(f, y)
    return out


def forward(p: Params, X: np.ndarray, act: Activation) -> np.ndarray:
    """f(X), shape (n,)."""
    return act.f(X @ p.W.T) @ p.a + p.c


def risk(p: Params, X, y, act: Activation, loss: Loss) -> float:
    """Empirical risk (1/n) sum_i l(f(x_i), y_i)."""
    return float(np.mean(loss.value(forward(p, X, act), y)))


#: Elements of X per row block of the fused passes (1 MiB of float64, 512 KiB of float32): the
#: block is re-read from cache by the second GEMM, so X streams from memory once per gradient or
#: HVP (best measured with OpenBLAS at m <= 16). X up to SINGLE_BLOCK_BYTES (cache-resident
#: anyway) is done in one block (fewer Python calls).
BLOCK_ELEMS = 1 << 17
SINGLE_BLOCK_BYTES = 4 << 20


def block_rows(n: int, d: int, itemsize: int, block_elems: int | None = None) -> int:
    """Rows per block: ``block_elems`` entries of X (at least 64 rows, for the GEMMs), at most n."""
    if block_elems is None:
        if n * d * itemsize <= SINGLE_BLOCK_BYTES:
            return max(1, n)
        block_elems = BLOCK_ELEMS
    return int(max(1, min(n, max(64, block_elems // max(1, d)))))


class Workspace:
    """Reusable buffers of the fused gradient pass: (m, B) blocks and the (m, d) gradient.

    Pass one to ``value_and_grad`` in a loop (GD) so nothing of size n or m d is allocated per
    step; ``grad`` is then overwritten by every call.
    """

    def __init__(self, n: int, d: int, m: int, dtype, block_elems: int | None = None):
        dtype = np.dtype(dtype)
        self.key = (n, d, m, dtype)
        self.rows = B = block_rows(n, d, dtype.itemsize, block_elems)
        self.U, self.S, self.S1, self.T = (np.empty((m, B), dtype) for _ in range(4))
        self.dW, self.tmpW = np.empty((m, d), dtype), np.empty((m, d), dtype)
        self.grad = Params(self.dW, np.empty(m, dtype), 0.0)


def grad_from_U(UT, y, a, c: float, act: Activation, loss: Loss, S, S1, T):
    """Given U^T = W X^T (m, B): fills S = sigma(U^T) and S1 <- G^T = a r sigma'(U^T) (m, B).

    Returns (sum_i l(f_i, y_i), S r (m,), sum_i r_i) with f = a^T S + c, r = l'(f, y); the
    W-gradient of these samples is G^T X. S, S1, T: caller-owned (m, B) buffers.
    """
    act.values_and_slopes(UT, S, S1, T)
    return output_grad(S, S1, y, a, c, loss)


def output_grad(S, S1, y, a, c: float, loss: Loss):
    """The part of ``grad_from_U`` after the activation: S = sigma(U^T), S1 = sigma'(U^T) on
    entry; S1 <- G^T = a r sigma'(U^T). Returns (sum_i l(f_i, y_i), S r, sum_i r_i)."""
    f = a @ S
    f += c
    r = loss.d1(f, y)
    val = float(np.sum(loss.value(f, y)))
    S1 *= r
    S1 *= a[:, None]
    return val, S @ r, float(np.sum(r))


def value_and_grad(p: Params, X, y, act: Activation, loss: Loss,
                   ws: Workspace | None = None) -> tuple[float, Params]:
    """Risk and gradient: dR/dW = (1/n) (r a s')^T X, dR/da = (1/n) s^T r, dR/dc = mean r.

    One fused pass over row blocks X_b (``block_rows``): U_b^T = W X_b^T, elementwise work on
    the (m, B) block, then dW += G_b^T X_b while X_b is still in cache. Computed in X's dtype.
    """
    n, d = X.shape
    m = p.m
    if ws is None or ws.key != (n, d, m, X.dtype):
        ws = Workspace(n, d, m, X.dtype)
    B = ws.rows
    W, a = p.W, p.a
    dW, tmp = ws.dW, ws.tmpW
    dW.fill(0.0)
    da = np.zeros(m, dtype=X.dtype)
    val = dc = 0.0
    for i in range(0, n, B):
        Xb = X[i:i + B]
        b = Xb.shape[0]
        U, S, S1, T = ws.U[:, :b], ws.S[:, :b], ws.S1[:, :b], ws.T[:, :b]
        np.matmul(W, Xb.T, out=U)
        v, sa, sc = grad_from_U(U, y[i:i + b], a, p.c, act, loss, S, S1, T)
        val += v
        da += sa
        dc += sc
        np.matmul(S1, Xb, out=tmp)
        dW += tmp
    dW /= n
    g = ws.grad
    np.divide(da, n, out=g.a)
    g.c = dc / n
    return val / n, g


def gradient(p: Params, X, y, act: Activation, loss: Loss) -> Params:
    return value_and_grad(p, X, y, act, loss)[1]


def kernel(p: Params, X, y, act: Activation, loss: Loss) -> np.ndarray:
    """Per-sample m x m kernels K_i of the W-block Hessian, shape (n, m, m)."""
    q = _pass(p, X, y, act, loss, order=2)
    g = q["s1"] * p.a  # (n, m): a_j s'_ij
    K = q["l2"][:, None, None] * g[:, :, None] * g[:, None, :]
    idx = np.arange(p.m)
    K[:, idx, idx] += (p.a * q["s2"]) * q["r"][:, None]
    return K


def hvp(p: Params, X, y, act: Activation, loss: Loss, v: Params) -> Params:
    """Full Hessian-vector product H v, v = (V, b, e) in parameter space.

    H = (1/n) sum_i l''_i J_i J_i^T + (1/n) sum_i r_i grad^2 f_i, with J_i = grad f_i.
    One fused pass over row blocks: [U S]_b = X_b [W; V]^T (one GEMM with 2m columns), the
    elementwise work on the block, then HW += M_b^T X_b while X_b is in cache.
    """
    n, d = X.shape
    m = p.m
    WV = np.concatenate([p.W, np.asarray(v.W, dtype=p.W.dtype)]).T  # (d, 2m)
    B = block_rows(n, d, X.itemsize)
    Z = np.empty((B, 2 * m), dtype=np.result_type(X, WV))
    HW = np.zeros((m, d), dtype=Z.dtype)
    tmp = np.empty_like(HW)
    Ha = np.zeros(m, dtype=Z.dtype)
    Hc = 0.0
    a, va = p.a, v.a
    for i in range(0, n, B):
        Xb = X[i:i + B]
        b = Xb.shape[0]
        Zb = Z[:b]
        np.matmul(Xb, WV, out=Zb)
        U, S = Zb[:, :m], Zb[:, m:]
        s, s1, s2 = act.f(U), act.df(U), act.d2f(U)
        f = s @ a + p.c
        yb = y[i:i + b]
        r, l2 = loss.d1(f, yb), loss.d2(f, yb)
        s1a = s1 * a
        w = l2 * (np.einsum("ij,ij->i", s1a, S) + s @ va + v.c)
        # Gauss-Newton part J^T w plus curvature part of f, W rows:
        s2 *= a
        s2 *= S
        s2 += s1 * va
        s2 *= r[:, None]
        s2 += w[:, None] * s1a
        np.matmul(s2.T, Xb, out=tmp)
        HW += tmp
        s1 *= S
        Ha += s.T @ w + s1.T @ r
        Hc += float(np.sum(w))
    return Params(HW / n, Ha / n, Hc / n)


def hessian_W(p: Params, X, y, act: Activation, loss: Loss) -> np.ndarray:
    """Dense W-block Hessian (1/n) sum_i K_i (x) x_i x_i^T, shape (m d, m d), float64."""
    return kron_hessian(kernel(p, X, y, act, loss), X)


def kron_hessian(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(1/n) sum_i K_i (x) x_i x_i^T for kernels K (n, m, m) and samples X (n, d): (m d, m d)."""
    n, d = X.shape
    m = K.shape[1]
    H = np.empty((m * d, m * d))
    for j in range(m):  # loop over m(m+1)/2 blocks only; each block is one GEMM over samples
        for l in range(j, m):
            B = (X.T * K[:, j, l]) @ X / n
            H[j * d:(j + 1) * d, l * d:(l + 1) * d] = B
            if l != j:
                H[l * d:(l + 1) * d, j * d:(j + 1) * d] = B.T
    return H


def hessian(p: Params, X, y, act: Activation, loss: Loss, blocks=PARAM_BLOCKS) -> np.ndarray:
    """Dense Hessian over the chosen parameter blocks (canonical layout), float64."""
    n, d = X.shape
    m = p.m
    q = _pass(p, X, y, act, loss, order=2)
    s, s1, l2, r = q["s"], q["s1"], q["l2"], q["r"]
    s1a = s1 * p.a
    sizes = {"W": m * d, "a": m, "c": 1}
    offs, o = {}, 0
    for b in blocks:
        offs[b] = o
        o += sizes[b]
    H = np.zeros((o, o))
    if "W" in blocks:
        i0 = offs["W"]
        H[i0:i0 + m * d, i0:i0 + m * d] = hessian_W(p, X, y, act, loss)
    if "a" in blocks:
        i0 = offs["a"]
        H[i0:i0 + m, i0:i0 + m] = (s.T * l2) @ s / n
        if "W" in blocks:
            w0 = offs["W"]
            # d2R/dW_j da_l = (1/n) sum_i [l'' s1a_ij s_il + 1[j=l] r_i s1_ij] x_i
            C = np.einsum("ij,il,id->jld", s1a * l2[:, None], s, X, optimize=True) / n
            C[np.arange(m), np.arange(m)] += ((s1 * r[:, None]).T @ X) / n
            for j in range(m):
                blk = C[j].T  # (d, m): rows W_j coordinates, cols a_l
                H[w0 + j * d:w0 + (j + 1) * d, i0:i0 + m] = blk
                H[i0:i0 + m, w0 + j * d:w0 + (j + 1) * d] = blk.T
    if "c" in blocks:
        i0 = offs["c"]
        H[i0, i0] = np.mean(l2)
        if "a" in blocks:
            ha = (s.T @ l2) / n
            H[offs["a"]:offs["a"] + m, i0] = ha
            H[i0, offs["a"]:offs["a"] + m] = ha
        if "W" in blocks:
            hw = ((s1a * l2[:, None]).T @ X / n).ravel()
            H[offs["W"]:offs["W"] + m * d, i0] = hw
            H[i0, offs["W"]:offs["W"] + m * d] = hw
    return H
