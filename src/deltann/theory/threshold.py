"""delta_NN: the smallest delta at which the Hessian at the second-phase point has a theta-outlier.

For each delta on a grid: run projected GD to the second-phase point (``network.py``), take the
empirical law of (K, z) there, and evaluate mu(lam_edge) (largest eigenvalue of
F(lam) = lam I - S(lam) at the bulk edge; an outlier exists iff mu > 0). mu is averaged over
seeds; delta_NN is the first sign change from <= 0 to > 0, refined by bisection on log(delta).
Where projected GD diverges (e.g. the correlation loss at small delta) mu is NaN and the scan
goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..train import TrainConfig
from .alg import delta_alg
from .network import ProjectedGDDiverged, applicability, kernel_law, second_phase_point
from .spectrum import SolveError, outlier

__all__ = ["NNThreshold", "outlier_curve_point", "delta_nn"]

log = logging.getLogger(__name__)


@dataclass
class NNThreshold:
    """delta_alg, delta_NN (None with a reason when not defined) and the curves behind them."""

    delta_alg: float | None
    delta_nn: float | None
    reason: str
    deltas: list = field(default_factory=list)
    mu_edge: list = field(default_factory=list)
    edge: list = field(default_factory=list)
    lam: list = field(default_factory=list)
    overlap2: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"delta_alg": self.delta_alg, "delta_nn": self.delta_nn, "reason": self.reason}


def outlier_curve_point(target, activation, loss, m, d, delta, cfg: TrainConfig, seeds=1,
                        base_seed=20260, noise=0.0):
    """Seed-averaged (mu_edge, edge, lam*, overlap2) of the theory at the second-phase point."""
    rows = []
    for s in range(seeds):
        sp = second_phase_point(target, activation, loss, m, d, delta, cfg, seed=s,
                                base_seed=base_seed, noise=noise)
        r = outlier(kernel_law(sp, activation, loss), delta)
        rows.append((r.mu_edge, r.edge, r.lam, r.overlap2 if r.exists else 0.0))
    a = np.array(rows, dtype=float)
    mu, ed = a[:, 0].mean(), a[:, 1].mean()
    lam = np.nanmean(a[:, 2]) if np.isfinite(a[:, 2]).any() else np.nan
    return float(mu), float(ed), float(lam), float(a[:, 3].mean())


def delta_nn(target: str, activation: str, loss: str, m: int, d: int = 400,
             cfg: TrainConfig | None = None, seeds: int = 1, grid=None, refine: int = 5,
             base_seed: int = 20260, noise: float = 0.0) -> NNThreshold:
    """delta_alg and delta_NN for one architecture (see module docstring).

    cfg: the training schedule of the first phase (default: both layers, lr 0.2, 200 steps).
    The second-phase point's time is a modelling choice: the theta-outlier decays as projected GD
    keeps fitting noise, so delta_NN grows with cfg.steps. At d = 1000 (z2sat, softplus, lr 0.2)
    delta_NN = 2.65 / 5.42 / 8.35 (m = 2) and 3.29 / 5.42 / 5.91 (m = 1) for 50 / 200 / 800 steps,
    while full GD from a random init learns theta between delta = 4 and 6 (m = 2) and between 6
    and 8 (m = 1); 200 steps is the default as the closest of the three.
    """
    alg = delta_alg(target, noise)
    reason = applicability(target, activation, loss)
    if reason:
        return NNThreshold(alg.value, None, reason)
    cfg = cfg or TrainConfig(steps=200, lr=0.2)
    grid = np.asarray(grid if grid is not None else np.geomspace(0.5, 32, 13), dtype=float)
    out = NNThreshold(alg.value, None, "")

    diverged = []

    def point(delta):
        """Seed-mean mu(edge) at delta (NaN, recorded, where projected GD diverges)."""
        try:
            mu, ed, lam, ov = outlier_curve_point(target, activation, loss, m, d, delta, cfg,
                                                  seeds, base_seed, noise)
        except SolveError as err:
            raise SolveError(f"delta_NN({target}, {activation}, {loss}, m={m}) at "
                             f"delta={delta:g}: {err}") from err
        except ProjectedGDDiverged as err:
            log.warning("delta=%.4g: %s", delta, err)
            diverged.append(delta)
            mu = ed = lam = ov = float("nan")
        log.info("delta=%.4g: mu_edge=%.4g edge=%.4g outlier=%.4g overlap2=%.3f",
                 delta, mu, ed, lam, ov)
        for name, v in zip(("deltas", "mu_edge", "edge", "lam", "overlap2"),
                           (delta, mu, ed, lam, ov), strict=True):
            getattr(out, name).append(v)
        return mu

    vals = [point(x) for x in grid]
    pos = [i for i, v in enumerate(vals) if v > 0]
    div = (f"; projected GD diverged (no second-phase point) at delta "
           f"{', '.join(f'{x:g}' for x in sorted(diverged))}" if diverged else "")
    if all(np.isnan(vals)):
        out.reason = f"projected GD diverged at every delta tried{div[div.index(' at delta'):]}"
    elif not pos:
        out.reason = (f"no theta-outlier up to delta={grid[-1]:g} at the second-phase point "
                      f"(d={d}, {cfg.steps} projected-GD steps){div}")
    elif pos[0] == 0:
        out.delta_nn = float(grid[0])
        out.reason = f"outlier already at the smallest delta tried ({grid[0]:g}): upper bound"
    else:
        lo, hi = grid[pos[0] - 1], grid[pos[0]]
        for _ in range(refine):
            mid = float(np.sqrt(lo * hi))
            mu = point(mid)
            if np.isnan(mu):  # diverged inside the bracket: keep the scan's bracket
                break
            lo, hi = (mid, hi) if mu <= 0 else (lo, mid)
        out.delta_nn = float(np.sqrt(lo * hi))
        out.reason = (f"first sign change of mu(edge), bracket [{lo:.4g}, {hi:.4g}] "
                      f"(d={d}, {seeds} seed(s), {cfg.steps} projected-GD steps, lr={cfg.lr})"
                      f"{div}")
    order = np.argsort(out.deltas)
    for name in ("deltas", "mu_edge", "edge", "lam", "overlap2"):
        setattr(out, name, [getattr(out, name)[i] for i in order])
    return out
