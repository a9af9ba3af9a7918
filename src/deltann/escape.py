"""Finite-d escape predictor: the linearised growth of the hard component along projected GD.

A GD run from W0 splits exactly into its projected part W0 (I - U U^T) (U: (d, r) orthonormal hard
directions) and the hard seed dW0 = W0 U U^T, of size |dW0 U| ~ init_scale / sqrt(d). Projected
GD from the first never learns U. Linearising GD around that trajectory p_t, the hard seed evolves
by the Jacobian of the GD map plus the hard part of the gradient that projected GD discards,

    dp_{t+1} = dp_t - eta (.) [H(p_t) dp_t + (g_W(p_t) U U^T, 0, 0)],   dp_0 = (dW0, 0, 0),

dp = (dW, da, dc), with eta = (eta_W, eta_a, eta_c) of the schedule (0 for frozen blocks), H the
full Hessian of the training risk (one Hessian-vector product per step, ``model.hvp``) and g_W the
W gradient (its hard part is O(1/sqrt(n)) noise at finite n, the same order as the seed). This is
GD's exact first-order expansion around the projected trajectory. The predicted hard overlap
is the run's statistic evaluated on p_t + dp_t,

    q_pred(t) = max_j |dw_j U| / |w_j + dw_j|        (w_j U = 0 on the projected trajectory),

and the predicted escape step is the first t with q_pred >= level (default 1/2, as
``phases.escape_step``). The prediction is exact while the hard component is small and uses no
information from the unprojected run: it says whether the race between the hard component's
growth, G(t) = log(|dW_t U| / |dW_0 U|), and the ~ log(sqrt(d)) it needs is won within the step
budget. Alongside: the Rayleigh quotient of the perturbation (the curvature it feels, negative
while it grows) and the projected run's train/test risk (the no-feature-learning baseline).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from .activations import Activation, get_activation
from .data import Dataset
from .io import provenance_attrs
from .losses import Loss, get_loss
from .model import Params, hvp
from .phases import ESCAPE_LEVEL
from .pipeline import VAR_ATTRS, init_seed, make_data, run_attrs, run_entropy, train_config
from .sweep import Point, run_id
from .targets import get_target
from .train import TrainConfig, init_params, train

__all__ = ["EscapePrediction", "PRED_ATTRS", "escape_run", "escape_batch", "predict_escape"]

#: long_name and units of the predictor's variables (merged into sweep.nc by ``aggregate``).
PRED_ATTRS = {
    "pred_overlap": ("predicted hard overlap max_j |dw_j U| / |w_j + dw_j| (linearised)", "1"),
    "pred_growth": ("log growth of the hard seed, log |dW_t U| / |dW_0 U|", "1"),
    "pred_rayleigh": ("Rayleigh quotient <dp, H dp> / <dp, dp> of the propagated seed", "1"),
    "proj_train_risk": ("training risk of projected GD (hard directions frozen)", "1"),
    "proj_test_risk": ("test risk of projected GD (hard directions frozen)", "1"),
    "pred_q0": ("initial hard overlap of the run's init", "1"),
    "pred_escape_step": ("predicted escape step: q_pred reaches 1/2 (NaN: not in the budget)",
                         "1"),
    "pred_stop_step": ("last step of the projected run (early stop once the escape is known)",
                       "1"),
    "pred_diverged": ("1 if the projected run diverged (no prediction)", "1"),
    "pred_seconds": ("wall time of the predictor", "s"),
}

log = logging.getLogger(__name__)


@dataclass
class EscapePrediction:
    """Records on the run's step grid (NaN after an early stop) and the predicted escape.

    q0: initial hard overlap max_j |w_j U| / |w_j| of the unprojected init.
    escape_step: first step with q_pred >= level (NaN: not within the budget).
    stop_step: last step propagated (``steps``, or earlier once q_pred >= stop_level).
    """

    steps: np.ndarray  # (R,)
    q_pred: np.ndarray  # (R,) predicted hard overlap
    growth: np.ndarray  # (R,) G(t) = log |dW_t U| / |dW_0 U|
    rayleigh: np.ndarray  # (R,) <dp, H dp> / <dp, dp> over the trained blocks
    train_risk: np.ndarray  # (R,) projected run
    test_risk: np.ndarray  # (R,) projected run
    q0: float
    escape_step: float
    stop_step: int
    diverged: bool
    seconds: float


class _Linearised:
    """The hook of ``train``: propagates dp along the trajectory, one HVP per step."""

    def __init__(self, data: Dataset, act: Activation, loss: Loss, cfg: TrainConfig, m: int,
                 U: np.ndarray, dW0: np.ndarray, grid: np.ndarray, level: float,
                 stop_level: float, hvp_backend: str = "numpy"):
        self.X, self.y, self.act, self.loss = data.X, data.y, act, loss
        if hvp_backend == "jax":  # H v by jax.jvp(jax.grad) (projected GD itself stays numpy)
            from .jax_backend import JaxHVP

            self.hvp = JaxHVP(act.name, loss.name, data.X, data.y)
        else:
            self.hvp = lambda p, v: hvp(p, self.X, self.y, self.act, self.loss, v)
        self.eta = cfg.learning_rates(m)
        self.U, self.dW = U, dW0.copy()
        self.da, self.dc = np.zeros(m), 0.0
        self.g0 = float(np.linalg.norm(dW0 @ U))
        self.grid = {int(t): i for i, t in enumerate(grid)}
        R = len(grid)
        self.q, self.growth, self.rq = (np.full(R, np.nan) for _ in range(3))
        self.level, self.stop_level = level, stop_level
        self.escape, self.last, self.q_prev = float("nan"), 0, 0.0

    def __call__(self, t: int, p: Params, g: Params) -> bool:
        hard = self.dW @ self.U  # (m, r)
        norms = np.linalg.norm(p.W + self.dW, axis=1)
        q = float(np.max(np.linalg.norm(hard, axis=1) / np.where(norms > 0, norms, 1.0)))
        v = Params(self.dW, self.da, self.dc)
        Hv = self.hvp(p, v)
        ew, ea, ec = self.eta
        on = (ew > 0, ea > 0, ec > 0)  # the trained blocks
        num = np.vdot(self.dW, Hv.W) * on[0] + (self.da @ Hv.a) * on[1] + self.dc * Hv.c * on[2]
        den = np.vdot(self.dW, self.dW) * on[0] + (self.da @ self.da) * on[1] + self.dc**2 * on[2]
        if t in self.grid:
            i = self.grid[t]
            self.q[i], self.rq[i] = q, num / den
            self.growth[i] = np.log(np.linalg.norm(hard) / self.g0)
        if q >= self.level and not np.isfinite(self.escape):
            # linear interpolation between the previous step and this one
            frac = (self.level - self.q_prev) / (q - self.q_prev) if t > 0 else 1.0
            self.escape = float(t - 1 + np.clip(frac, 0.0, 1.0)) if t > 0 else 0.0
        self.q_prev, self.last = q, t
        self.dW = self.dW - ew * (Hv.W + (g.W @ self.U) @ self.U.T)
        self.da = self.da - ea * Hv.a
        self.dc = self.dc - ec * Hv.c
        return q >= self.stop_level


def predict_escape(data: Dataset, act: Activation, loss: Loss, m: int, cfg: TrainConfig,
                   rng: np.random.Generator, hard: np.ndarray | None = None,
                   level: float = ESCAPE_LEVEL, stop_level: float = 0.9,
                   progress_seconds: float = 30.0,
                   hvp_backend: str = "numpy") -> EscapePrediction:
    """Predict the escape of the GD run with this data, config and init ``rng`` (module doc).

    hard: (d, r) orthonormal hard directions (default: all of ``data.theta``). The run stops
    once q_pred >= stop_level (the escape is then known; records after it are NaN). float64.
    hvp_backend: "numpy" (``model.hvp``) or "jax" (``jax_backend.JaxHVP``, equal to rounding);
    the projected GD run is numpy either way (``cfg.backend`` is not used). GD's early-stopping
    rules (``cfg.early_stop``) are not used either: the projected run's hard overlap is 0 by
    construction (the 'stuck' rule would end it); it ends at the budget or at stop_level.
    """
    if np.dtype(cfg.dtype) != np.float64:
        raise ValueError("predict_escape: float64 only (the HVP recursion is what is measured)")
    U = data.theta if hard is None else hard
    p0 = init_params(m, data.d, cfg, rng)
    dW0 = (p0.W @ U) @ U.T
    norms0 = np.linalg.norm(p0.W, axis=1)
    q0 = float(np.max(np.linalg.norm(p0.W @ U, axis=1) / norms0))
    grid = cfg.record_grid()
    lin = _Linearised(data, act, loss, cfg, m, U, dW0, grid, level, stop_level, hvp_backend)
    res = train(data, act, loss, m, replace(cfg, backend="numpy", early_stop=False),  # numpy hook
                rng, progress_seconds=progress_seconds, frozen=U, init=p0, hook=lin)
    if res.diverged:
        log.warning("projected run diverged at step %d: no prediction", res.diverged_step)
    return EscapePrediction(
        steps=grid, q_pred=lin.q, growth=lin.growth, rayleigh=lin.rq,
        train_risk=res.train_risk, test_risk=res.test_risk, q0=q0,
        escape_step=float("nan") if res.diverged else lin.escape, stop_step=lin.last,
        diverged=res.diverged, seconds=res.seconds)


def escape_run(config_slice: Mapping, p: Point) -> xr.Dataset:
    """The prediction for run ``p`` of an experiment (same data and init seeds as its GD run),
    as a labelled Dataset on the run's record grid (``step``)."""
    exp, name, base = config_slice, config_slice["experiment"], int(config_slice["base_seed"])
    cfg = replace(train_config(exp, p), dtype="float64")  # float64 whatever GD trained in
    target = get_target(p.target)
    data = make_data(base, exp, p)
    ss_init = init_seed(base, p)
    hard = data.theta[:, list(target.hard)]
    log.info("escape predictor %s/%s: n=%d d=%d m=%d steps=%d", name, run_id(p), p.n, p.d, p.m,
             cfg.steps)
    pr = predict_escape(data, get_activation(p.activation), get_loss(p.loss), p.m, cfg,
                        np.random.default_rng(ss_init), hard=hard,
                        stop_level=float(exp["predictor"]["stop_level"]),
                        hvp_backend=exp["predictor"]["backend"])
    log.info("predicted escape step %s (q0 = %.3g, stopped at %d, %.1fs)", pr.escape_step, pr.q0,
             pr.stop_step, pr.seconds)
    ds = xr.Dataset(
        {"pred_overlap": ("step", pr.q_pred), "pred_growth": ("step", pr.growth),
         "pred_rayleigh": ("step", pr.rayleigh), "proj_train_risk": ("step", pr.train_risk),
         "proj_test_risk": ("step", pr.test_risk), "pred_q0": ((), pr.q0),
         "pred_escape_step": ((), pr.escape_step), "pred_stop_step": ((), np.int64(pr.stop_step)),
         "pred_diverged": ((), np.int8(pr.diverged)), "pred_seconds": ((), pr.seconds)},
        coords={"step": pr.steps})
    for v, (ln, u) in {**PRED_ATTRS, "step": VAR_ATTRS["step"]}.items():
        ds[v].attrs.update(long_name=ln, units=u)
    ds.attrs.update(provenance_attrs(f"deltann escape prediction {run_id(p)}",
                                     dict(config_slice), run_entropy(data, ss_init),
                                     "deltann.escape.escape_run"))
    ds.attrs.update(run_attrs(name, p))
    return ds


def escape_batch(config_slice: Mapping, points: Iterable[Point]):
    """Yields (point, ``escape_run`` Dataset) for runs of one experiment, one after another."""
    for p in points:
        yield p, escape_run(config_slice, p)
