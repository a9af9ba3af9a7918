"""Gram-matrix GD for n <= d: W never materialised between records.

Every GD step moves W by a combination of the rows of X, so W_t = W_0 + C_t Xt with
Xt = X P (P = I - F F^T projects off the frozen directions F, or P = I) and C_t (m, n). Then
U_t^T = W_t X^T = W_0 X^T + C_t K with K = Xt Xt^T (n, n), and a step is C <- C - (eta/n) G^T.
Per step this is one (m, n) x (n, n) GEMM (2 n^2 m flops) instead of two passes over X
(4 n d m flops): cheaper when n < 2 d; used for n <= d so K is no larger than X.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .losses import Loss
from .model import grad_from_U

__all__ = ["GramGD", "use_gram"]


def use_gram(n: int, d: int) -> bool:
    """The automatic choice of ``train``: Gram path when n <= d."""
    return n <= d


class GramGD:
    """State of W-updates in sample space; W = W0 + C Xt (see module docstring)."""

    def __init__(self, X: np.ndarray, W0: np.ndarray, frozen: np.ndarray | None = None):
        n = X.shape[0]
        dt = X.dtype
        Xt = X
        if frozen is not None and frozen.size:
            F = frozen.astype(dt)
            Xt = X - (X @ F) @ F.T
        self.X, self.Xt, self.W0 = X, Xt, W0
        self.K = Xt @ Xt.T
        self.U0T = W0 @ X.T
        m = W0.shape[0]
        self.C = np.zeros((m, n), dt)
        self.UT, self.S, self.S1, self.T = (np.empty((m, n), dt) for _ in range(4))
        self.w0max = float(np.max(np.abs(W0))) if W0.size else 0.0
        self.xmax = float(np.max(np.abs(Xt))) if Xt.size else 0.0

    def value_and_grad(self, a, c: float, y, act: Activation, loss: Loss):
        """Risk, G^T (m, n) with dR/dW = G^T X / n, dR/da (m,), dR/dc (buffers reused)."""
        n = self.C.shape[1]
        np.matmul(self.C, self.K, out=self.UT)
        self.UT += self.U0T
        val, sa, sc = grad_from_U(self.UT, y, a, c, act, loss, self.S, self.S1, self.T)
        return val / n, self.S1, sa / n, sc / n

    def W(self) -> np.ndarray:
        return self.W0 + self.C @ self.Xt

    def grad_W(self, GT: np.ndarray) -> np.ndarray:
        """dR/dW = G^T X / n (before projection, as the direct path records it)."""
        return (GT @ self.X) / GT.shape[1]

    def max_abs_W(self, threshold: float) -> float:
        """max |W_ij|, exact whenever it may exceed ``threshold`` (else a cheap upper bound:
        |W_ij| <= max|W0| + max_j sum_i |C_ji| max|Xt|)."""
        bound = self.w0max + float(np.max(np.sum(np.abs(self.C), axis=1))) * self.xmax
        if bound <= threshold:
            return bound
        W = self.W()
        return float(np.max(np.abs(W))) if W.size else 0.0

    def step(self, eta: float, GT: np.ndarray) -> None:
        """C <- C - (eta / n) G^T, i.e. W <- W - eta dR/dW."""
        self.C -= (eta / GT.shape[1]) * GT
