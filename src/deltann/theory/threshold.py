"""delta_NN: the smallest delta at which the Hessian at the converged second-phase point has a
negative outlier along the hard directions (docs/theory.md, section 7). The one estimator used by
theory.nc, thresholds.nc, the figures and ``deltann threshold``.

Per seed s (common random numbers: the same teacher, data stream and initial W at every delta,
``second_phase.crn_data``): evaluate nu(delta) = mu(min(lam_edge, 0)) at the converged point on
the log grid ``geomspace(lo, hi, n_grid)`` from below, stop at the first nu > 0, then bisect the
bracket ``refine`` times in log delta. delta_NN(s) = sqrt(lo_s hi_s).

Result: delta_NN = mean_s delta_NN(s), with

    err = sqrt( sd_s^2 / S + mean_s ((hi_s - lo_s) / 2)^2 )     (seed spread and bracket),

the convergence status (every evaluation's point converged) and the d it was computed at. Where a
point does not converge within the budget the scan of that seed stops and delta_NN is None, with
the trend of the unconverged point in ``reason``; where no seed has a negative outlier up to hi,
delta_NN is None with that reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .alg import delta_alg
from .network import ProjectedGDDiverged, applicability
from .second_phase import PointConfig, converged_point

__all__ = ["ESTIMATOR_DEFAULTS", "STATUSES", "Evaluation", "SeedThreshold", "NNThreshold",
           "combine_seeds", "delta_nn", "estimator_args"]

log = logging.getLogger(__name__)

#: ``NNThreshold.status``: why delta_NN is (or is not) a number. "value": every seed brackets a
#: sign change; "none": nu <= 0 up to hi for every seed; "unconverged": a point that decides the
#: sign did not converge within the budget; "disagree": seeds differ (some bracket, some not);
#: "not_applicable": the theory does not apply to this target/activation/loss.
STATUSES = ("value", "none", "unconverged", "disagree", "not_applicable")

#: Defaults of the estimator (the config schema's theory/thresholds defaults and the CLI's).
ESTIMATOR_DEFAULTS = {"d": 400, "seeds": 4, "delta_range": (1.0, 32.0), "n_grid": 7, "refine": 4,
                      "base_seed": 20260}


@dataclass
class Evaluation:
    """The converged point of one (seed, delta): nu = mu(min(edge, 0)) > 0 iff negative outlier."""

    delta: float
    nu: float
    mu_edge: float
    edge: float
    lam: float
    overlap2: float
    converged: bool
    iterations: int
    reason: str = ""


@dataclass
class SeedThreshold:
    """One seed's scan: status 'bracket' (lo < delta_NN <= hi), 'none' (nu <= 0 up to hi),
    'below' (nu > 0 at the lowest delta) or 'unconverged' (a point that decides the sign did not
    converge; a diverged first phase counts as nu <= 0 unless it is the last grid point)."""

    seed: int
    status: str
    lo: float = float("nan")
    hi: float = float("nan")
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def value(self) -> float:
        return float(np.sqrt(self.lo * self.hi)) if self.status == "bracket" else float("nan")

    def to_dict(self) -> dict:
        """JSON-able form (``from_dict`` inverts it): how a workflow part stores its seeds."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SeedThreshold:
        return cls(int(d["seed"]), d["status"], float(d["lo"]), float(d["hi"]),
                   [Evaluation(**e) for e in d["evaluations"]])


@dataclass
class NNThreshold:
    """delta_alg, delta_NN +- err (None with a reason when not defined) and what is behind it."""

    delta_alg: float | None
    delta_nn: float | None
    reason: str
    delta_nn_err: float | None = None
    delta_nn_sd: float | None = None
    converged: bool = False
    d: int = 0
    seeds: list[SeedThreshold] = field(default_factory=list)
    point: str = ""
    status: str = "not_applicable"

    def as_dict(self) -> dict:
        """The JSON of ``deltann threshold --json``."""
        return {"delta_alg": self.delta_alg, "delta_nn": self.delta_nn,
                "delta_nn_err": self.delta_nn_err, "delta_nn_sd": self.delta_nn_sd,
                "converged": self.converged, "d": self.d, "status": self.status,
                "reason": self.reason,
                "seed_values": [None if not np.isfinite(s.value) else s.value
                                for s in self.seeds],
                "brackets": [[s.lo, s.hi] if s.status == "bracket" else None for s in self.seeds],
                "seed_status": [s.status for s in self.seeds], "second_phase_point": self.point}

    def evaluations(self) -> list[dict]:
        """Every evaluation as a row (seed, delta, nu, ...)."""
        return [{"seed": s.seed, **asdict(e)} for s in self.seeds for e in s.evaluations]


def estimator_args(cfg) -> dict:
    """Keyword arguments of ``delta_nn`` from a theory/thresholds config mapping (defaults filled
    by the schema): seeds, delta_range, n_grid, refine, base_seed and the PointConfig (scalar
    keys only: a thresholds ``schedule`` list is a factor of the table, set per cell)."""
    lo, hi = cfg["delta_range"]
    cfg = {k: v for k, v in cfg.items() if not isinstance(v, list | tuple)}  # factor lists
    return {"seeds": int(cfg["seeds"]), "delta_range": (float(lo), float(hi)),
            "n_grid": int(cfg["n_grid"]), "refine": int(cfg["refine"]),
            "base_seed": int(cfg["base_seed"]), "point": PointConfig.from_mapping(cfg)}


def _evaluate(target, activation, loss, m, d, delta, point, seed, base_seed, noise) -> Evaluation:
    cp = converged_point(target, activation, loss, m, d, delta, point, seed=seed,
                         base_seed=base_seed, noise=noise)
    r = cp.last
    return Evaluation(float(delta), r.mu_neg, r.mu_edge, r.edge, r.lam_eff, r.overlap2_eff,
                      cp.converged, r.t, "" if cp.converged else cp.reason)


def delta_nn(target: str, activation: str, loss: str, m: int, d: int = 400,
             point: PointConfig | None = None, seeds: int = 4,
             delta_range: tuple[float, float] = (1.0, 32.0), n_grid: int = 7, refine: int = 4,
             base_seed: int = 20260, noise: float = 0.0,
             progress: Callable[[int, int, str], None] | None = None,
             seed_ids: Sequence[int] | None = None) -> NNThreshold:
    """delta_alg and delta_NN +- err for one architecture (module docstring).

    point: how the second-phase point is reached (schedule, lr, method, budget, tolerances).
    progress(done, total, message): called after every evaluation; total is an upper bound.
    seed_ids: scan only these of the ``seeds`` seeds (a workflow part; ``combine_seeds`` joins
    the parts' ``seeds`` into the estimate of all of them).
    """
    point = point or PointConfig()
    lo_d, hi_d = (float(v) for v in delta_range)
    if not (np.isfinite(lo_d) and np.isfinite(hi_d) and 0 < lo_d < hi_d):
        raise ValueError(f"delta_range={delta_range}: need 0 < lo < hi, both finite")
    alg = delta_alg(target, noise)
    why = applicability(target, activation, loss)
    out = NNThreshold(alg.value, None, why or "", d=int(d), point=point.describe())
    if why:
        return out
    grid = np.geomspace(lo_d, hi_d, n_grid)
    ids = list(range(seeds)) if seed_ids is None else [int(s) for s in seed_ids]
    total, done, t0 = len(ids) * (n_grid + refine), 0, time.perf_counter()
    label = f"{target}/{activation}/{loss} m={m} {point.schedule} d={d}"

    def ev(seed, delta):
        nonlocal done
        try:
            e = _evaluate(target, activation, loss, m, d, delta, point, seed, base_seed, noise)
        except ProjectedGDDiverged as err:
            e = Evaluation(float(delta), float("nan"), float("nan"), float("nan"), float("nan"),
                           float("nan"), False, 0, f"diverged: {err}")
        done += 1
        msg = (f"{label} seed {seed} delta={delta:.4g}: nu={e.nu:.3g} lam={e.lam:.3g} "
               f"ov2={e.overlap2:.2f} {'converged' if e.converged else 'NOT converged'} "
               f"({e.iterations} it, {time.perf_counter() - t0:.0f}s)")
        log.info(msg)
        if progress:
            progress(done, total, msg)
        return e

    for s in ids:
        st = SeedThreshold(s, "none")
        prev = None  # the last evaluation with nu <= 0 (or diverged)
        for x in grid:
            e = ev(s, x)
            st.evaluations.append(e)
            if e.nu > 0:
                if not e.converged or (prev is not None and not prev.converged
                                       and not prev.reason.startswith("diverged")):
                    st.status = "unconverged"
                elif prev is None:
                    st.status, st.hi = "below", x
                else:
                    st.status, st.lo, st.hi = "bracket", prev.delta, x
                break
            prev = e
        else:
            if not st.evaluations[-1].converged:
                st.status = "unconverged"
        if st.status == "bracket":
            for _ in range(refine):
                mid = float(np.sqrt(st.lo * st.hi))
                e = ev(s, mid)
                st.evaluations.append(e)
                if not e.converged:
                    st.status = "unconverged"
                    break
                st.lo, st.hi = (mid, st.hi) if e.nu <= 0 else (st.lo, mid)
        total -= (n_grid + refine) - len(st.evaluations)
        out.seeds.append(st)
        if st.status == "unconverged":
            break  # no converged threshold: further seeds would not give one
    _summarise(out, hi_d, lo_d, seeds)
    return out


def combine_seeds(target: str, activation: str, loss: str, seeds: Sequence[SeedThreshold],
                  n_seeds: int, delta_range: tuple[float, float], d: int, point: str = "",
                  noise: float = 0.0) -> NNThreshold:
    """delta_NN +- err of the seeds scanned by separate parts (``delta_nn(seed_ids=...)``), the
    same summary ``delta_nn`` gives when it scans them in one process (sorted by seed; a part's
    unconverged seed makes the whole unconverged, as it would have stopped the scan)."""
    alg = delta_alg(target, noise)
    why = applicability(target, activation, loss)
    out = NNThreshold(alg.value, None, why or "", d=int(d), point=point)
    if why:
        return out
    st = sorted(seeds, key=lambda x: x.seed)
    first_bad = next((i for i, x in enumerate(st) if x.status == "unconverged"), None)
    out.seeds = st if first_bad is None else st[:first_bad + 1]
    lo, hi = (float(v) for v in delta_range)
    _summarise(out, hi, lo, n_seeds)
    return out


def _summarise(out: NNThreshold, hi: float, lo: float, n_seeds: int) -> None:
    st = out.seeds
    where = f"d={out.d}, {len(st)} seed(s), delta in [{lo:g}, {hi:g}]"
    loose = [e for s in st for e in s.evaluations if not e.converged]
    note = ""
    if loose:
        note = ("; not converged (nu <= 0 there, outside the brackets) at delta "
                + ", ".join(sorted({f"{e.delta:.3g}" for e in loose})))
    bad = [s for s in st if s.status == "unconverged"]
    out.converged = not bad
    out.status = "unconverged" if bad else "none"
    if bad:
        s = bad[0]
        e = next(e for e in reversed(s.evaluations) if not e.converged)
        out.reason = (f"no converged second-phase point where the sign of nu is decided (seed "
                      f"{s.seed}, delta={e.delta:.4g}, nu={e.nu:.3g} after {e.iterations} "
                      f"iterations): {e.reason}"
                      + (f"; seeds {len(st)}-{n_seeds - 1} not run" if len(st) < n_seeds else ""))
        return
    vals = np.array([s.value for s in st])
    if all(s.status == "none" for s in st):
        out.reason = (f"no negative theta-outlier at the converged point up to delta={hi:g} "
                      f"({where}){note}")
        return
    if any(s.status != "bracket" for s in st):
        out.status = "disagree"
        out.reason = ("seeds disagree: " + ", ".join(
            f"seed {s.seed}: " + {"bracket": f"{s.value:.3g}", "none": f"none up to {hi:g}",
                                  "below": f"<= {lo:g}"}[s.status] for s in st)
            + f" ({where}){note}")
        return
    mean = float(vals.mean())
    sd = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    half = float(np.mean([(s.hi - s.lo) / 2 for s in st]))
    sem2 = sd**2 / len(vals) if len(vals) > 1 else 0.0
    out.status = "value"
    out.delta_nn, out.delta_nn_sd = mean, (sd if np.isfinite(sd) else None)
    out.delta_nn_err = float(np.sqrt(sem2 + half**2))
    out.reason = (f"mean of {len(vals)} seed brackets (seed sd {sd:.2g}, mean half-bracket "
                  f"{half:.2g}; {where}){note}")
