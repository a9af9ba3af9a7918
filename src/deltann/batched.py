"""Several GD runs on the same data with one pass over X per step (``train_many``).

Runs that differ only in width, activation, loss, schedule or initialisation see the same
samples (``pipeline.data_seed``). Each step walks the row blocks X_b of ``model.block_rows``
(the blocks of a single run) once for all R runs:

  shared (default)  for each run r: U_r^T = W_r X_b^T, the elementwise work, dW_r += G_r^T X_b:
                    the BLAS calls of ``train`` on the same cache-resident block, so every run
                    is bitwise the run ``train`` makes alone; X streams from memory once per
                    step, the Python loop and the process are shared.
  stacked           one GEMM [W_1; ...; W_R] X_b^T of (sum m) rows and one G^T X_b for all runs.
                    OpenBLAS's value of a row depends on how many rows the call has (its
                    blocking), so the iterates equal separate runs to rounding (~1e-13 relative
                    per product, then amplified by the dynamics), not bitwise.

When every run has the same activation, it is evaluated once on the stacked (sum m, B) block.
Records, early stopping and divergence are each run's own (``train.RunState``); a run that
stops leaves the stack. Runs on the Gram path (n <= d) or with a hook use ``train`` itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .data import Dataset
from .losses import Loss
from .model import Params, block_rows, output_grad
from .train import RunState, TrainConfig, TrainResult

__all__ = ["RunSpec", "train_many"]

log = logging.getLogger(__name__)


@dataclass
class RunSpec:
    """One run of a batch: its activation, loss, width, settings, init generator and the latent
    columns its early stopping watches; ``name`` prefixes its log lines."""

    act: Activation
    loss: Loss
    m: int
    cfg: TrainConfig
    rng: np.random.Generator
    watch: tuple[int, ...] | None = None
    name: str = ""


class _Pass:
    """Buffers of one pass over X for the active runs; rows offs[r]:offs[r+1] are run r's.

    stacked: the runs' W are views into one (sum m, d) array (updated in place by their steps).
    """

    def __init__(self, runs: list[RunState], X: np.ndarray, stacked: bool):
        n, d = X.shape
        ms = [r.m for r in runs]
        M = sum(ms)
        self.runs, self.stacked = runs, stacked
        self.offs = np.concatenate([[0], np.cumsum(ms)]).astype(int)
        self.rows = B = block_rows(n, d, X.itemsize)
        dtype = X.dtype
        self.U, self.S, self.S1, self.T = (np.empty((M, B), dtype) for _ in range(4))
        self.dW, self.tmp = np.empty((M, d), dtype), np.empty((M, d), dtype)
        self.same_act = len({r.act.name for r in runs}) == 1
        # stacked runs of one activation, loss and width: the output layer as (R, m, B) arrays
        self.uniform = (stacked and self.same_act and len({r.loss.name for r in runs}) == 1
                        and len(set(ms)) == 1)
        if stacked:
            self.W = np.empty((M, d), dtype)
            for r, (o, e) in zip(runs, self._spans(), strict=True):
                self.W[o:e] = r.p.W
                r.p.W = self.W[o:e]

    def _spans(self):
        return zip(self.offs[:-1], self.offs[1:], strict=True)

    def _uniform_output(self, S, S1, y):
        """``model.output_grad`` of all runs at once (``uniform``): f_r = a_r^T S_r + c_r,
        r = l'(f, y); S1_r <- a_r r sigma'; returns per-run sums of l, S_r r and r."""
        runs, b = self.runs, S.shape[1]
        R, m = len(runs), runs[0].m
        A = np.stack([r.p.a for r in runs])  # (R, m)
        S3, S13 = S.reshape(R, m, b), S1.reshape(R, m, b)
        F = np.matmul(A[:, None, :], S3)[:, 0, :]  # (R, b)
        F += np.array([r.p.c for r in runs])[:, None]
        loss = runs[0].loss
        res = loss.d1(F, y[None, :])
        S13 *= res[:, None, :]
        S13 *= A[:, :, None]
        return (np.sum(loss.value(F, y[None, :]), axis=1), np.matmul(S3, res[:, :, None])[..., 0],
                np.sum(res, axis=1))

    def value_and_grad(self, X: np.ndarray, y: np.ndarray) -> list[tuple[float, Params]]:
        """(risk, gradient) of every run, as ``model.value_and_grad`` computes them."""
        n, _ = X.shape
        B, runs, spans = self.rows, self.runs, list(self._spans())
        dW, tmp = self.dW, self.tmp
        dW.fill(0.0)
        R = len(runs)
        da = [np.zeros(r.m, dtype=X.dtype) for r in runs]
        val, dc = [0.0] * R, [0.0] * R
        for i in range(0, n, B):
            Xb = X[i:i + B]
            b = Xb.shape[0]
            yb = y[i:i + b]
            U, S, S1, T = self.U[:, :b], self.S[:, :b], self.S1[:, :b], self.T[:, :b]
            if self.stacked:
                np.matmul(self.W, Xb.T, out=U)
            else:
                for r, (o, e) in zip(runs, spans, strict=True):
                    np.matmul(r.p.W, Xb.T, out=U[o:e])
            if self.same_act:
                runs[0].act.values_and_slopes(U, S, S1, T)
            if self.uniform:
                v, sa, sc = self._uniform_output(S, S1, yb)
                for j in range(R):
                    val[j] += float(v[j])
                    da[j] += sa[j]
                    dc[j] += float(sc[j])
            for j, (r, (o, e)) in enumerate(zip(runs, spans, strict=True)):
                if self.uniform:
                    break
                if not self.same_act:
                    r.act.values_and_slopes(U[o:e], S[o:e], S1[o:e], T[o:e])
                v, sa, sc = output_grad(S[o:e], S1[o:e], yb, r.p.a, r.p.c, r.loss)
                val[j] += v
                da[j] += sa
                dc[j] += sc
            if self.stacked:
                np.matmul(S1, Xb, out=tmp)
                dW += tmp
            else:
                for o, e in spans:
                    np.matmul(S1[o:e], Xb, out=tmp[o:e])
                    dW[o:e] += tmp[o:e]
        dW /= n
        out = []
        for j, (o, e) in enumerate(spans):
            ga = np.empty(runs[j].m, dtype=X.dtype)
            np.divide(da[j], n, out=ga)
            out.append((val[j] / n, Params(dW[o:e], ga, dc[j] / n)))
        return out


def train_many(data: Dataset, specs: list[RunSpec], stacked: bool = False,
               progress_seconds: float = 10.0) -> list[TrainResult]:
    """GD of every run in ``specs`` on ``data``, one pass over X per step (module docstring).

    All runs must use the same dtype. Returns their results in order; each is what ``train``
    returns for that run alone (bitwise unless ``stacked``).
    """
    if not specs:
        return []
    if any(s.cfg.backend != "numpy" for s in specs):
        raise ValueError("train_many: a shared pass is numpy code; train runs with "
                         "train.backend jax one by one (train.train)")
    dtypes = {s.cfg.dtype for s in specs}
    if len(dtypes) > 1:
        raise ValueError(f"train_many: runs of one batch need one train.dtype, got {dtypes}")
    dtype = np.dtype(dtypes.pop())
    X = np.ascontiguousarray(data.X, dtype=dtype)
    y = np.ascontiguousarray(data.y, dtype=dtype)
    runs = [RunState(data, s.act, s.loss, s.m, s.cfg, s.rng, X, watch=s.watch,
                     progress_seconds=progress_seconds, name=s.name) for s in specs]
    active = list(runs)
    ps = _Pass(active, X, stacked)
    t = 0
    while active:
        done = []
        for r, (value, g) in zip(active, ps.value_and_grad(X, y), strict=True):
            if r.check(t, value, r.wmax()) or (r.is_record(t) and r.record(t, value, g)) \
                    or t == r.cfg.steps:
                done.append(r)
            else:
                r.step(g)
        if done:
            for r in done:
                r.p.W = r.p.W.copy()  # off the stack
                r.finish()
            active = [r for r in active if r not in done]
            if active:
                ps = _Pass(active, X, stacked)
        t += 1
    return [r.res for r in runs]
