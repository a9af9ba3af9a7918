"""The converged second-phase point: a stationary point of the risk with W kept orthogonal to the
hard directions, reached from the first phase of projected GD (docs/theory.md, section 6).

Point. Projected GD (the hard directions U (d, k_h) removed from W at init and at every step)
runs ``transient`` steps -- the first phase's own dynamics, which choose the basin -- and is then
continued until the theory's readings at the point stop moving:

* ``method="lbfgs"`` (default): L-BFGS on the restricted risk R(W (I - U U^T), a, c) over the
  parameters the schedule trains (W for ``first_layer``; W, a and c for ``both`` and
  ``two_timescale``, whose stationary points coincide). At d = 400 (z2sat, softplus, m = 2,
  first_layer) it lands on GD's limit point (K_i equal to 4e-7 after 12800 GD steps) 350x faster.
* ``method="gd"``: the same projected GD, continued.

Convergence criterion, checked at iteration counts T_j = transient + first_check 2^j (L-BFGS
iterations or GD steps after the transient), between consecutive checks:

    |d edge|, |d mu_edge|, |d mu_neg|, |d lam| <= tol_eig,   |d overlap2| <= tol_overlap,
    |d |W|_F| <= tol_weight |W|_F,   and   |grad R| <= gtol at T_j,

with lam := edge and overlap2 := 0 where there is no outlier (both continuous through the
transition). The criterion is on what the theory reads; the weight (1 % per doubling) and gradient
(1e-3) conditions only keep a runaway drift (e.g. |W| -> inf, a -> 0 with a trained second layer,
where every eigenvalue shrinks together below tol_eig) from passing as converged. They tolerate a
slow drift that the readings do not see (z2sat, first_layer, m = 2, d = 200, delta = 1.74, seed 1:
|W| = 335 grows 0.25 % per doubling, the risk falls 1e-4 in 3200 L-BFGS iterations, |grad| stays
1e-5..1e-4, while edge and nu move < 1e-6). Up to ``budget`` iterations; a point
that has not converged by then is returned with ``converged=False`` and its readings at every
check (the trend), never as a silent number.

Common random numbers: the data of seed s are the first n = round(delta d) rows of one stream (and
the same teacher and initial W) for every delta, so mu(delta) varies smoothly along a seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy.optimize import minimize

from ..activations import get_activation
from ..data import Dataset, seed_sequence, teacher
from ..losses import get_loss
from ..model import Params, Workspace, value_and_grad
from ..sweep import n_samples
from ..targets import get_target, target_mean
from ..train import SCHEDULES, TrainConfig, init_params, train
from .network import ProjectedGDDiverged, SecondPhase, kernel_law
from .spectrum import SolveError, outlier

__all__ = ["PointConfig", "Reading", "ConvergedPoint", "crn_data", "converged_point", "METHODS"]

log = logging.getLogger(__name__)
METHODS = ("lbfgs", "gd")


@dataclass(frozen=True)
class PointConfig:
    """How the second-phase point is reached and when it counts as converged (module docstring).

    Training fields (schedule, lr, lr_ratio, width_scaled_lr, init_scale, a_init, offset) are those
    of ``TrainConfig`` and define the first phase; lr only matters for the transient (and for
    ``method="gd"``). budget: L-BFGS iterations (lbfgs) or GD steps (gd) after the transient.
    """

    schedule: str = "both"
    lr: float = 0.2
    lr_ratio: float = 0.1
    width_scaled_lr: bool = True
    init_scale: float = 1.0
    a_init: float = 1.0
    offset: bool = True
    method: str = "lbfgs"
    transient: int = 200
    first_check: int = 100
    budget: int = 3200
    tol_eig: float = 1e-4
    tol_overlap: float = 0.01
    tol_weight: float = 1e-2
    gtol: float = 1e-3

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {', '.join(METHODS)}")
        for k in ("transient",):
            if getattr(self, k) < 0:
                raise ValueError(f"{k}={getattr(self, k)}: must be >= 0")
        for k in ("first_check", "budget"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k}={getattr(self, k)}: must be >= 1")
        for k in ("lr", "tol_eig", "tol_overlap", "tol_weight", "gtol"):
            v = getattr(self, k)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{k}={v}: must be a finite number > 0")

    @classmethod
    def from_mapping(cls, cfg) -> PointConfig:
        """From a config mapping; keys that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})

    def train_config(self, steps: int) -> TrainConfig:
        return TrainConfig(steps=steps, lr=self.lr, schedule=self.schedule,
                           lr_ratio=self.lr_ratio, width_scaled_lr=self.width_scaled_lr,
                           init_scale=self.init_scale, a_init=self.a_init, offset=self.offset,
                           n_records=2)

    def describe(self) -> str:
        how = ("L-BFGS on the restricted risk" if self.method == "lbfgs"
               else f"projected GD at lr {self.lr:g}")
        return (f"projected GD {self.transient} steps (lr {self.lr:g}, schedule {self.schedule}), "
                f"then {how} until edge/mu/lambda move <= {self.tol_eig:g}, overlap2 <= "
                f"{self.tol_overlap:g}, |W| <= {self.tol_weight:g} relative over a doubling and "
                f"|grad| <= {self.gtol:g} (budget {self.budget})")


@dataclass
class Reading:
    """What the theory reads at one check: t = iterations after the transient."""

    t: int
    risk: float
    grad_norm: float
    w_norm: float
    a_norm: float
    edge: float
    mu_edge: float
    mu_neg: float
    lam: float
    overlap2: float

    @property
    def exists(self) -> bool:
        """A theta-outlier below the bulk (not necessarily negative: see ``negative``)."""
        return bool(self.mu_edge > 0)

    @property
    def negative(self) -> bool:
        """A theta-outlier below the bulk and below 0: a direction GD can escape along."""
        return bool(self.mu_neg > 0)

    @property
    def lam_eff(self) -> float:
        return self.lam if self.exists else self.edge

    @property
    def overlap2_eff(self) -> float:
        return self.overlap2 if self.exists else 0.0


@dataclass
class ConvergedPoint:
    """The point (SecondPhase), its readings at every check, and whether it converged."""

    point: SecondPhase
    readings: list[Reading] = field(default_factory=list)
    converged: bool = False
    converged_t: int | None = None  # first check at which the criterion held
    reason: str = ""

    @property
    def last(self) -> Reading:
        return self.readings[-1]

    def trend(self) -> str:
        """One line: overlap2 and lambda (and |W|, |a|) against t over the checks."""
        rs = self.readings
        pick = rs if len(rs) <= 4 else [rs[0], rs[len(rs) // 3], rs[2 * len(rs) // 3], rs[-1]]
        return "; ".join(f"t={r.t}: lam {r.lam_eff:.3g}, ov2 {r.overlap2_eff:.2f}, "
                         f"|W| {r.w_norm:.3g}, |a| {r.a_norm:.3g}" for r in pick)


def crn_data(target: str, d: int, n: int, seed: int, base_seed: int, noise: float = 0.0,
             center: bool = True) -> tuple[Dataset, np.random.SeedSequence]:
    """Data of one seed with common random numbers across delta: teacher, X rows and label noise
    from streams that do not depend on n (X for n is the first n rows of X for n' > n).

    Returns the dataset (X (n, d), y (n,), theta (d, k); test set = first sample, unused) and the
    SeedSequence of the initialisation.
    """
    t = get_target(target)
    ss = seed_sequence(base_seed, f"second_phase|{target}|d={d}", seed)
    s_teacher, s_x, s_eps, s_init = ss.spawn(4)
    theta = teacher(d, t.k, np.random.default_rng(s_teacher))
    X = np.random.default_rng(s_x).standard_normal((n, d))
    eps = np.random.default_rng(s_eps).standard_normal(n) if noise else None
    y = t(X @ theta, eps, noise) - (target_mean(t) if center else 0.0)
    entropy = tuple(int(e) for e in np.atleast_1d(ss.entropy))
    return Dataset(X, y, X[:1], y[:1], theta, entropy), s_init


def _check(cur: Reading, prev: Reading | None, pc: PointConfig) -> str | None:
    """None if converged between prev and cur, else what still moves."""
    if prev is None:
        return "first check"
    moves = []
    for name, tol in (("edge", pc.tol_eig), ("mu_edge", pc.tol_eig), ("mu_neg", pc.tol_eig),
                      ("lam_eff", pc.tol_eig),
                      ("overlap2_eff", pc.tol_overlap)):
        diff = abs(getattr(cur, name) - getattr(prev, name))
        if not diff <= tol:
            moves.append(f"{name.removesuffix('_eff')} moved {diff:.2g} > {tol:g}")
    if not abs(cur.w_norm - prev.w_norm) <= pc.tol_weight * cur.w_norm:
        moves.append(f"|W| moved {abs(cur.w_norm - prev.w_norm) / cur.w_norm:.2g} (relative)")
    if not cur.grad_norm <= pc.gtol:
        moves.append(f"|grad| {cur.grad_norm:.2g} > {pc.gtol:g}")
    return "; ".join(moves) or None


class _Restricted:
    """Risk and gradient over the schedule's trained parameters with W orthogonal to U."""

    def __init__(self, sp: SecondPhase, activation, loss, pc: PointConfig, p0: Params):
        self.sp, self.act, self.loss = sp, get_activation(activation), get_loss(loss)
        self.m, self.d = p0.W.shape
        self.p0 = p0
        self.train_a = pc.schedule != "first_layer"
        self.train_c = self.train_a and pc.offset
        self.ws = Workspace(*sp.X.shape, self.m, sp.X.dtype)

    def params(self, v) -> Params:
        md, m = self.m * self.d, self.m
        a = v[md:md + m] if self.train_a else self.p0.a
        c = float(v[md + m]) if self.train_c else self.p0.c
        return Params(v[:md].reshape(self.m, self.d), np.array(a), c)

    def vector(self, p: Params) -> np.ndarray:
        parts = [p.W.ravel()]
        if self.train_a:
            parts.append(p.a)
        if self.train_c:
            parts.append([p.c])
        return np.concatenate(parts)

    def __call__(self, v):
        U = self.sp.U
        val, g = value_and_grad(self.params(v), self.sp.X, self.sp.y, self.act, self.loss,
                                self.ws)
        gW = g.W - (g.W @ U) @ U.T
        parts = [gW.ravel()]
        if self.train_a:
            parts.append(g.a)
        if self.train_c:
            parts.append([g.c])
        return val, np.concatenate(parts)


def converged_point(target: str, activation: str, loss: str, m: int, d: int, delta: float,
                    pc: PointConfig | None = None, seed: int = 0, base_seed: int = 20260,
                    noise: float = 0.0, stop_on_convergence: bool = True,
                    on_check=None) -> ConvergedPoint:
    """The converged second-phase point of one seed at n = round(delta d) (module docstring).

    stop_on_convergence: False runs the whole budget (the readings then trace the trajectory;
    ``converged`` still says whether the criterion was met at some check).
    on_check(reading, point): called at every check with the current SecondPhase.

    Raises ProjectedGDDiverged where the first phase diverges (no point), SolveError where the
    theory's fixed point fails.
    """
    pc = pc or PointConfig()
    t = get_target(target)
    data, s_init = crn_data(target, d, n_samples(d, delta), seed, base_seed, noise)
    U = data.theta[:, list(t.hard)]
    p = init_params(m, d, pc.train_config(0), np.random.default_rng(s_init))
    p.W -= (p.W @ U) @ U.T
    where = f"({target}, {activation}, {loss}, m={m}, d={d}, delta={delta:g}, seed={seed})"

    def gd(steps, start):
        res = train(data, get_activation(activation), get_loss(loss), m,
                    replace(pc.train_config(steps), snapshot_steps=(steps,)), None,
                    progress_seconds=1e9, frozen=U, init=start)
        if res.diverged:
            raise ProjectedGDDiverged(f"projected GD diverged at step {res.diverged_step} {where}")
        return res.snapshots[-1], float(res.train_risk[-1])

    if pc.transient:
        p, _ = gd(pc.transient, p)
    sp = SecondPhase(p, data.X, data.y, U, float("nan"))
    fun = _Restricted(sp, activation, loss, pc, p)
    out = ConvergedPoint(sp)

    def read(t_done: int, params: Params) -> Reading:
        params.W -= (params.W @ U) @ U.T
        val, grad = fun(fun.vector(params))
        if not (np.isfinite(val) and np.all(np.isfinite(params.W))
                and np.abs(params.W).max() <= 1e6):
            raise ProjectedGDDiverged(f"the second phase diverged after {t_done} iterations "
                                      f"{where}")
        sp.params, sp.train_risk = params, float(val)
        try:
            r = outlier(kernel_law(sp, activation, loss), delta)
        except SolveError as err:
            raise SolveError(f"theory at the second-phase point {where}, t={t_done}: {err}") \
                from err
        return Reading(t_done, float(val), float(np.linalg.norm(grad)),
                       float(np.linalg.norm(params.W)), float(np.linalg.norm(params.a)),
                       r.edge, r.mu_edge, r.mu_neg, r.lam, r.overlap2 if r.exists else 0.0)

    done, target_t, prev = 0, pc.first_check, None
    while True:
        chunk = min(target_t, pc.budget) - done
        if pc.method == "gd":
            p, _ = gd(chunk, p)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                r = minimize(fun, fun.vector(p), jac=True, method="L-BFGS-B",
                             options={"maxiter": chunk, "maxcor": 20, "gtol": 0.0,
                                      "ftol": 0.0, "maxls": 40})
            p = fun.params(r.x)
        done += chunk
        cur = read(done, p)
        out.readings.append(cur)
        if on_check is not None:
            on_check(cur, sp)
        why = _check(cur, prev, pc)
        log.debug("second phase %s t=%d: %s", where, done, why or "converged")
        if why is None and not out.converged:
            out.converged, out.converged_t = True, done
            out.reason = f"converged after {done} iterations"
        if out.converged and (stop_on_convergence or done >= pc.budget):
            return out
        if done >= pc.budget:
            out.reason = (f"not converged within {pc.budget} {pc.method} iterations ({why}); "
                          f"trend: {out.trend()}")
            return out
        prev, target_t = cur, target_t * 2
