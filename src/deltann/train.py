"""Full-batch gradient descent with the schedules of this literature, recorded on a log grid.

Schedules (eta = lr; eta_W = eta * m if ``width_scaled_lr``):
  both           W, a (and c if ``offset``) all step with eta_W, eta, eta.
  first_layer    only W moves; a and c stay at their initial values.
  two_timescale  W steps with eta_W; a (and c) with lr_ratio * eta (slow second layer if < 1).
Initialisation: W0 ~ N(0, init_scale^2 / d) entrywise, a0 = a_init / m, c0 = 0.
A run whose risk becomes non-finite or whose weights exceed ``max_weight_norm`` stops and is
returned with ``diverged=True`` and the step it happened; records after it are NaN.

Early stopping (``early_stop``, off by default), checked at the record steps t with the record
t' nearest t/2 (the last doubling of steps), q = max_j |P_S w_j|/|w_j| over the watched latent
directions S (the target's hard ones in the workflow), r the train risk:
  escaped  q(t) >= stop_overlap and |r(t) - r(t')| <= stop_rtol |r(t)|: the answer is known;
  stuck    t >= stuck_after > 0, q(t) < 1/2 and q(t) - q(t') <= stuck_qtol: the hard component
           did not grow over the last doubling (the train risk may still fall, fitting noise
           directions). At that rate q needs more than (t/2) ln(1/(2q)) / ln(1 + stuck_qtol/q)
           further steps to reach 1/2, but an exponential escape can start later: stuck_after = 0
           (the default) never stops a run below 1/2.
A run never stops before its last snapshot step (the Hessian needs it). The stop step and reason
are returned; records after the stop are NaN.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .activations import Activation
from .data import Dataset
from .gram import GramGD, use_gram
from .losses import Loss
from .model import Params, Workspace, forward, value_and_grad
from .phases import ESCAPE_LEVEL, STUCK_QTOL

__all__ = ["SCHEDULES", "STOP_REASONS", "TrainConfig", "TrainResult", "RunState", "record_steps",
           "init_params", "train", "early_stop_reason", "latent_cosines", "subspace_overlap"]

log = logging.getLogger(__name__)
SCHEDULES = ("both", "first_layer", "two_timescale")


@dataclass(frozen=True)
class TrainConfig:
    """Full-batch GD settings (the config's ``train:`` block).

    Step: W <- W - eta_W grad_W R, a <- a - eta_a grad_a R, c <- c - eta_c grad_c R with
    eta_W = lr * (m if width_scaled_lr else 1); schedule ``both`` trains (W, a, c) at lr,
    ``first_layer`` only W (a = a_init/m fixed), ``two_timescale`` a and c at lr * lr_ratio.
    Init: W0 ~ N(0, init_scale^2/d) entrywise (m, d), a0 = a_init/m, c0 = 0. Records at
    ``n_records`` log-spaced steps and at ``record_at`` (e.g. T/2 and T, so that a longer run can
    be read at budget T: ``finite_size.at_step``); a run whose max |W_ij| exceeds
    ``max_weight_norm`` or whose risk is non-finite stops as diverged.
    """

    steps: int = 2000
    lr: float = 0.2
    schedule: str = "both"
    lr_ratio: float = 0.1
    width_scaled_lr: bool = True
    init_scale: float = 1.0
    a_init: float = 1.0
    offset: bool = True
    n_records: int = 40
    record_at: tuple[int, ...] = ()
    snapshot_steps: tuple[int, ...] = ()
    max_weight_norm: float = 1e6
    dtype: str = "float64"
    early_stop: bool = False
    stop_overlap: float = 0.9
    stop_rtol: float = 1e-3
    stuck_after: int = 0
    stuck_qtol: float = STUCK_QTOL
    backend: str = "numpy"

    def __post_init__(self):
        object.__setattr__(self, "record_at", tuple(int(s) for s in self.record_at))
        if any(s < 0 for s in self.record_at):
            raise ValueError(f"train.record_at={list(self.record_at)}: steps must be >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"train.schedule={self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.steps < 0 or self.lr <= 0 or self.n_records < 2:
            raise ValueError("train.steps >= 0, train.lr > 0 and train.n_records >= 2 are required")
        if self.backend not in BACKENDS:
            raise ValueError(f"train.backend={self.backend!r}; allowed: {', '.join(BACKENDS)}")
        if not (0 < self.stop_overlap <= 1 and self.stop_rtol > 0 and self.stuck_after >= 0
                and self.stuck_qtol > 0):
            raise ValueError("train.stop_overlap in (0, 1], train.stop_rtol > 0, "
                             "train.stuck_after >= 0 and train.stuck_qtol > 0 are required")

    def record_grid(self) -> np.ndarray:
        """The record steps: 0, the log-spaced grid, ``record_at`` and the snapshot steps."""
        return record_steps(self.steps, self.n_records, (*self.record_at, *self.snapshot_steps))

    def learning_rates(self, m: int) -> tuple[float, float, float]:
        """(eta_W, eta_a, eta_c) for this schedule."""
        eta_w = self.lr * (m if self.width_scaled_lr else 1)
        if self.schedule == "first_layer":
            return eta_w, 0.0, 0.0
        slow = self.lr * (self.lr_ratio if self.schedule == "two_timescale" else 1.0)
        return eta_w, slow, slow if self.offset else 0.0


BACKENDS = ("numpy", "jax")


def record_steps(steps: int, n_records: int, extra=()) -> np.ndarray:
    """Sorted unique steps: 0, a log-spaced grid up to ``steps``, and ``extra`` (clipped)."""
    grid = np.geomspace(1, max(steps, 1), n_records - 1) if steps > 0 else np.array([])
    pts = np.concatenate([[0], np.rint(grid), [steps], np.clip(list(extra), 0, steps)])
    return np.unique(pts.astype(np.int64))


def init_params(m: int, d: int, cfg: TrainConfig, rng: np.random.Generator) -> Params:
    """W0 ~ N(0, init_scale^2/d), a0 = a_init/m, c0 = 0."""
    W = rng.standard_normal((m, d)) * (cfg.init_scale / np.sqrt(d))
    return Params(W, np.full(m, cfg.a_init / m), 0.0)


def latent_cosines(W: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """cos(w_j, theta_a) = (W Theta*)_{ja} / |w_j|, shape (m, k)."""
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return (W @ theta) / np.where(norms > 0, norms, 1.0)


def subspace_overlap(cos: np.ndarray, idx) -> float:
    """max_j |P_S w_j| / |w_j| over neurons, for the latent subspace S = span(theta_a, a in idx)."""
    if len(idx) == 0:
        return float("nan")
    return float(np.max(np.linalg.norm(cos[:, list(idx)], axis=1)))


@dataclass
class TrainResult:
    """Records on the step grid and parameter snapshots."""

    steps: np.ndarray
    train_risk: np.ndarray
    test_risk: np.ndarray
    grad_norm: np.ndarray
    overlap: np.ndarray  # (step, m, k): W Theta*
    cosine: np.ndarray  # (step, m, k): normalised
    w_norm: np.ndarray  # (step, m)
    a: np.ndarray  # (step, m)
    c: np.ndarray  # (step,)
    snapshot_steps: np.ndarray
    snapshots: list[Params] = field(default_factory=list)
    diverged: bool = False
    diverged_step: int = -1
    seconds: float = 0.0
    stop_step: int = -1  # early stop: the step it ended at (-1: it did not stop early)
    stop_reason: str = "budget"  # budget | escaped | stuck | diverged


#: codes of TrainResult.stop_reason in NetCDF (flag_values / flag_meanings)
STOP_REASONS = ("budget", "escaped", "stuck", "diverged")


def early_stop_reason(cfg: TrainConfig, steps, risk, q, rec: int) -> str | None:
    """'escaped' / 'stuck' if run records 0..rec (steps, train risk, watched overlap q) meet the
    early-stopping rule of the module docstring at record ``rec``, else None."""
    t = int(steps[rec])
    if not cfg.early_stop or t < 2:
        return None
    j = int(np.searchsorted(steps, t // 2, side="right")) - 1  # record at or before t/2
    if j >= rec or not (np.isfinite(risk[j]) and np.isfinite(q[j])):
        return None
    flat = abs(risk[rec] - risk[j]) <= cfg.stop_rtol * abs(risk[rec])
    if flat and q[rec] >= cfg.stop_overlap:
        return "escaped"
    if (cfg.stuck_after and t >= cfg.stuck_after and q[rec] < ESCAPE_LEVEL
            and q[rec] - q[j] <= cfg.stuck_qtol):
        return "stuck"
    return None


class RunState:
    """One GD run's parameters, learning rates and records: everything ``train`` does around
    the gradient, shared with ``deltann.batched`` (runs that share a pass over X).

    Per step t: ``check(t, value, wmax)`` (divergence), ``record(t, value, g)`` at the record
    steps (returns True when the run stops early), ``step(g)`` (W <- W - eta_W g_W, projected
    off ``frozen``; a, c with their rates). X is the training data in the compute dtype.
    """

    def __init__(self, data: Dataset, act: Activation, loss: Loss, m: int, cfg: TrainConfig,
                 rng: np.random.Generator, X: np.ndarray, frozen: np.ndarray | None = None,
                 init: Params | None = None, watch=None, progress_seconds: float = 10.0,
                 name: str = ""):
        dtype = X.dtype
        self.data, self.act, self.loss, self.m, self.cfg, self.name = data, act, loss, m, cfg, name
        p = init_params(m, data.d, cfg, rng) if init is None else init.copy()
        if frozen is not None and frozen.size:
            p.W -= (p.W @ frozen) @ frozen.T
        p.W = p.W.astype(dtype)
        p.a = p.a.astype(dtype)
        self.p, self.frozen = p, (frozen if frozen is not None and frozen.size else None)
        self.eta = cfg.learning_rates(m)
        self.grid = grid = cfg.record_grid()
        self.snap_set = set(int(s) for s in np.clip(list(cfg.snapshot_steps), 0, cfg.steps))
        R, k = len(grid), data.theta.shape[1]
        nan = np.full
        self.res = TrainResult(
            steps=grid, train_risk=nan(R, np.nan), test_risk=nan(R, np.nan),
            grad_norm=nan(R, np.nan), overlap=nan((R, m, k), np.nan),
            cosine=nan((R, m, k), np.nan), w_norm=nan((R, m), np.nan), a=nan((R, m), np.nan),
            c=nan(R, np.nan), snapshot_steps=np.array(sorted(self.snap_set), int),
        )
        self.rec = 0
        self.watch = list(range(k)) if watch is None else list(watch)
        self.q_watch = np.full(R, np.nan)
        self.progress_seconds = progress_seconds
        self.t0 = self.last_log = time.perf_counter()

    def wmax(self) -> float:
        return float(np.max(np.abs(self.p.W))) if self.p.W.size else 0.0

    def check(self, t: int, value: float, wmax: float) -> bool:
        """True (and the run marked diverged at t) if the risk or max |W_ij| is out of bounds."""
        if np.isfinite(value) and np.isfinite(wmax) and wmax <= self.cfg.max_weight_norm:
            return False
        self.res.diverged, self.res.diverged_step = True, t
        self.res.stop_reason = "diverged"
        log.warning("%sdiverged at step %d (risk=%s, max|W|=%s)", self.name, t, value, wmax)
        return True

    def is_record(self, t: int) -> bool:
        return t == self.grid[self.rec]

    def record(self, t: int, value: float, g: Params) -> bool:
        """Fill record ``rec`` (t must be its step); True if the run stops early here."""
        p, res, rec, cfg = self.p, self.res, self.rec, self.cfg
        eta_w, eta_a, eta_c = self.eta
        theta = self.data.theta
        gn = np.sqrt(np.sum(g.W**2) * (eta_w > 0) + np.sum(g.a**2) * (eta_a > 0)
                     + g.c**2 * (eta_c > 0))
        res.train_risk[rec] = value
        res.test_risk[rec] = np.mean(self.loss.value(forward(p, self.data.X_test, self.act),
                                                     self.data.y_test))
        res.grad_norm[rec] = gn
        res.overlap[rec] = p.W @ theta
        res.cosine[rec] = latent_cosines(p.W, theta)
        res.w_norm[rec] = np.linalg.norm(p.W, axis=1)
        res.a[rec], res.c[rec] = p.a, p.c
        if t in self.snap_set:
            res.snapshots.append(Params(p.W.astype(np.float64), p.a.astype(np.float64),
                                        float(p.c)))
        self.q_watch[rec] = subspace_overlap(res.cosine[rec], self.watch)
        why = early_stop_reason(cfg, self.grid, res.train_risk, self.q_watch, rec)
        self.rec += 1
        if why is not None and t < cfg.steps and t >= max(self.snap_set, default=0):
            res.stop_step, res.stop_reason = t, why
            log.info("%searly stop at step %d/%d (%s): watched overlap %.3f, train risk %.4g",
                     self.name, t, cfg.steps, why, self.q_watch[rec], value)
            return True
        now = time.perf_counter()
        if now - self.last_log > self.progress_seconds or t == cfg.steps:
            self.last_log = now
            log.info("%sstep %d/%d  train_risk=%.4g  grad_norm=%.3g  max|cos|=%.3f  (%.1fs)",
                     self.name, t, cfg.steps, value, gn, np.max(np.abs(res.cosine[rec])),
                     now - self.t0)
        return False

    def step(self, g: Params) -> None:
        """One GD step from gradient ``g`` (g.W is projected off ``frozen`` in place)."""
        if self.frozen is not None:
            g.W -= (g.W @ self.frozen) @ self.frozen.T
        self.p.W -= self.eta[0] * g.W
        self.step_second_layer(g)

    def step_second_layer(self, g: Params) -> None:
        _, eta_a, eta_c = self.eta
        if eta_a:
            self.p.a -= eta_a * g.a
        if eta_c:
            self.p.c -= eta_c * g.c

    def finish(self) -> TrainResult:
        self.res.seconds = time.perf_counter() - self.t0
        return self.res


def train(data: Dataset, act: Activation, loss: Loss, m: int, cfg: TrainConfig,
          rng: np.random.Generator, progress_seconds: float = 10.0,
          frozen: np.ndarray | None = None, gram: bool | None = None,
          init: Params | None = None, hook=None, watch=None, name: str = "") -> TrainResult:
    """Run full-batch GD on ``data`` from a fresh init drawn with ``rng`` (or from ``init``).

    frozen: optional (d, r) orthonormal directions that W never sees ("projected GD"): the init
    and every W step are projected onto their orthogonal complement, W <- W (I - U U^T).
    gram: use the Gram-matrix path (``deltann.gram``; same iterates up to rounding); None: when
    n <= d. Work buffers are allocated once; X is used in ``cfg.dtype`` (C-contiguous).
    init: start from these parameters (copied; ``rng`` unused) -- e.g. to continue a run.
    hook: optional ``hook(t, p, g) -> bool`` called at every step t with the parameters and the
    (unprojected) gradient before the step (read-only; forces the direct path); returning True
    ends the run there (later records stay NaN) -- ``deltann.escape`` propagates a perturbation.
    watch: latent columns whose subspace overlap decides ``cfg.early_stop`` (default: all).
    name: prefix of this run's log lines.
    """
    dtype = np.dtype(cfg.dtype)
    X = np.ascontiguousarray(data.X, dtype=dtype)
    y = np.ascontiguousarray(data.y, dtype=dtype)
    run = RunState(data, act, loss, m, cfg, rng, X, frozen, init, watch, progress_seconds, name)
    if cfg.backend == "jax":
        if hook is not None:
            raise ValueError("train.backend jax: a per-step hook (the escape predictor) needs "
                             "the numpy backend")
        return _train_jax(run, X, y)
    p = run.p
    gram = (use_gram(*X.shape) if gram is None else gram) and hook is None
    if gram:
        gs = GramGD(X, p.W, run.frozen)
    else:
        ws = Workspace(*X.shape, m, dtype)
    for t in range(cfg.steps + 1):
        if gram:
            value, GT, ga, gc = gs.value_and_grad(p.a, p.c, y, act, loss)
            wmax = gs.max_abs_W(cfg.max_weight_norm)
        else:
            value, g = value_and_grad(p, X, y, act, loss, ws)
            wmax = run.wmax()
        if run.check(t, value, wmax):
            break
        if run.is_record(t):
            if gram:
                p.W = gs.W()
                g = Params(gs.grad_W(GT), ga, gc)
            if run.record(t, value, g):
                break
        if (hook is not None and hook(t, p, g)) or t == cfg.steps:
            break
        if gram:
            gs.step(run.eta[0], GT)
            run.step_second_layer(Params(p.W, ga, gc))  # only a, c are read
        else:
            run.step(g)
    return run.finish()


def _train_jax(run: RunState, X: np.ndarray, y: np.ndarray) -> TrainResult:
    """``train`` on the JAX backend (``deltann.jax_backend``): one jitted loop from each record
    step to the next; the check, records, snapshots and early stop of ``RunState`` at the
    record steps, as on the numpy path."""
    from .jax_backend import JaxGD

    cfg, p = run.cfg, run.p
    gd = JaxGD(run.act.name, run.loss.name, X, y, run.frozen, run.eta, cfg.max_weight_norm)
    t = 0
    value, g = gd.start(p)
    while True:
        if run.check(t, value, run.wmax()):
            break
        if run.is_record(t) and run.record(t, value, g):
            break
        if t == cfg.steps:
            break
        nxt = int(run.grid[run.rec])  # the next record step (t itself was recorded)
        taken, value, g = gd.advance(p, nxt - t)  # fewer steps: a point failing the check
        t += taken
    return run.finish()
