"""GD's transition against d: the finite-size table, the escape predictor's transition, the fit.

From sweep datasets (one or more d, any schedule, with or without the predictor's ``pred_*``):

- delta_GD(d): where the seed-mean final hard overlap crosses 1/2 (``phases.gd_transitions``),
  err = sqrt(sem_seeds^2 + w^2/12), w the grid bracket (the grid's resolution, uniform prior);
- delta_pred(d): where the fraction of seeds the predictor says escape within the same step
  budget crosses 1/2, same interpolation and error;
- escape steps: per (m, d, delta) the seed-median escape step of GD and of the predictor (a run
  that never escapes counts as infinitely late), and their ratio;
- "stuck means stuck": per run not escaped at the end, the rise of its hard overlap over the last
  doubling of steps, q(T) - q(T/2); its largest value over the stuck runs;
- the fit delta_GD(d) = alpha + beta ln d (weighted least squares, Birge-inflated as
  ``theory.limit``) and the d at which it reaches a given delta (e.g. delta_NN(inf));
- two sweeps of the same runs compared run by run (``compare_sweeps``: float32 against
  float64, or two commits);
- sweeps of the same cells merged (``merge_sweeps``: e.g. the predictor run on a few runs of a
  GD sweep, or more delta values and seeds for a cell): the table and the plateaus count each
  run once; a run a sweep does not hold is missing (NaN), not "never escaped";
- grokking plateaus: the escape step tau against the step t_fit at which the training set is
  fitted, plateau length tau - t_fit, the test risk on the plateau and after (``plateau_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

from .phases import (
    CELL_DIMS,
    ESCAPE_LEVEL,
    STUCK_QTOL,
    cells,
    escape_steps,
    gd_transitions,
    last_finite,
    median_escape,
    seed_crossings,
)
from .sweep import INIT_DEFAULTS
from .theory.limit import fit_limit, wls

__all__ = ["LogFit", "schedule_of", "late_rise", "predicted_escaped", "predicted_transitions",
           "transition_rows", "theory_points", "theory_markdown",
           "fit_log_d", "rows_dataset", "rows_markdown", "fit_step", "plateau_rows",
           "replay_early_stop", "compare_sweeps", "compare_text", "fit_plateaus", "nn_reference",
           "plateau_fit_markdown", "merge_sweeps", "runs_alive", "at_step"]


def schedule_of(ds: xr.Dataset) -> str:
    """The training schedule recorded in a sweep's config attribute."""
    return json.loads(ds.attrs["config"])["train"]["schedule"]


def _budget(ds: xr.Dataset) -> int:
    return int(json.loads(ds.attrs["config"])["train"]["steps"])


def merge_sweeps(sweeps: Sequence[xr.Dataset]) -> list[xr.Dataset]:
    """Sweeps with the same schedule, step budget and cells (``CELL_DIMS`` coordinates) merged
    into one over the union of their delta and seed grids; where two hold the same run the first
    one's values are kept (``Dataset.combine_first``). A run no sweep holds is NaN, ``diverged``
    included, so it counts as missing (not alive), never as a run that did not escape. Other
    sweeps are returned as they are, in their order."""
    groups: dict[tuple, list[xr.Dataset]] = {}
    for ds in sweeps:
        key = (schedule_of(ds), _budget(ds),
               tuple((k, tuple(ds[k].values.tolist())) for k in CELL_DIMS if k in ds.dims))
        groups.setdefault(key, []).append(ds)
    out = []
    for group in groups.values():
        merged = group[0]
        for other in group[1:]:
            merged = merged.combine_first(other)
        out.append(merged)
    return out


def at_step(ds: xr.Dataset, step: int) -> xr.Dataset:
    """The sweep as it stood at step ``step`` (a record step of it): the same runs read at budget
    T = ``step``, e.g. a run trained to 4 T with ``train.record_at: [T/2, T]`` read as the run
    of budget T (GD is deterministic, so its first T steps are that run). Records after T are
    dropped; per run, what happened after T is undone: ``diverged`` / ``stop_step`` /
    ``pred_escape_step`` after T become not diverged (-1) / no stop (-1, reason budget) / NaN,
    ``pred_stop_step`` is at most T; ``config``'s train.steps becomes T. Raises ValueError if
    T is not a record step."""
    steps = ds["step"].values
    if int(step) not in set(steps.tolist()):
        near = steps[np.argsort(np.abs(steps - step))[:2]]
        raise ValueError(f"step {step} is not a record step of the sweep (nearest: "
                         f"{sorted(int(x) for x in near)}; train.record_at adds record steps)")
    out = ds.sel(step=steps <= step)
    after = {"diverged_step": ("diverged", 0), "stop_step": ("stop_reason", 0)}
    for var, (flag, value) in after.items():
        if var in out and flag in out:
            late = out[var] > step
            out[flag] = out[flag].where(~late, value)
            out[var] = out[var].where(~late, -1)
    if "pred_escape_step" in out:
        out["pred_escape_step"] = out["pred_escape_step"].where(~(out["pred_escape_step"] > step))
    if "pred_stop_step" in out:
        out["pred_stop_step"] = out["pred_stop_step"].clip(max=step)
    cfg = json.loads(ds.attrs.get("config", "{}"))
    cfg.setdefault("train", {})["steps"] = int(step)
    out.attrs = {**ds.attrs, "config": json.dumps(cfg), "at_step": int(step)}
    return out


def runs_alive(ds: xr.Dataset, var: str = "diverged") -> xr.DataArray:
    """True for the runs a sweep holds that did not diverge (``var``: ``diverged`` for GD,
    ``pred_diverged`` for the predictor; NaN, a run the sweep lacks, is not alive)."""
    return ~ds[var].fillna(1).astype(bool)


def late_rise(ds: xr.Dataset) -> xr.DataArray:
    """q(T) - q(T/2) of every run: the hard overlap at its last finite record T (the budget, or
    an early stop) minus at the record nearest T/2 (the last doubling of steps: a run still
    moving toward theta at the end)."""
    t = ds["step"].values.astype(float)

    def rise(q):
        ok = np.nonzero(np.isfinite(q))[0]
        if ok.size == 0:
            return np.nan
        last = ok[-1]
        mid = int(np.argmin(np.abs(t - t[last] / 2)))
        return q[last] - q[mid]

    return xr.apply_ufunc(rise, ds["hard_overlap"], input_core_dims=[["step"]],
                          vectorize=True).rename("late_rise")


def replay_early_stop(sweeps: Sequence[xr.Dataset], stop_rtol: float,
                      stop_overlap: float = 0.9, stuck_after: int = 0,
                      stuck_qtol: float = STUCK_QTOL) -> dict:
    """Replay the early-stopping rules (``train.early_stop_reason``) at ``stop_rtol`` (and, if
    ``stuck_after`` > 0, the 'stuck' rule at ``stuck_qtol``) on recorded runs: where each would
    have stopped, and what that would have changed.

    Runs stopped as escaped at a record t_s (before their last finite record T): how many later
    fell below ``stop_overlap`` or below 1/2, the largest |q(T) - q(t_s)|. Runs stopped as stuck:
    how many ended at or above 1/2 after all (a stuck stop would have called them wrongly) and
    the largest q(T) - q(t_s). Over all stops, the fraction of their steps saved,
    1 - sum t_s / sum T. Runs already stopped early count at their own stop T."""
    from .train import TrainConfig, early_stop_reason

    cfg = TrainConfig(early_stop=True, stop_rtol=stop_rtol, stop_overlap=stop_overlap,
                      stuck_after=stuck_after, stuck_qtol=stuck_qtol)
    n = stopped = below_level = below_half = stuck = stuck_wrong = 0
    max_change, stuck_rise, ran, kept = 0.0, 0.0, 0.0, 0.0
    for ds in sweeps:
        steps = ds["step"].values
        q = ds["hard_overlap"].transpose(..., "step").values.reshape(-1, steps.size)
        r = ds["train_risk"].transpose(..., "step").values.reshape(-1, steps.size)
        for qi, ri in zip(q, r, strict=True):
            ok = np.nonzero(np.isfinite(qi) & np.isfinite(ri))[0]
            if ok.size == 0:
                continue
            n += 1
            last = ok[-1]
            rec, why = next(((k, w) for k in range(1, last) if (w := early_stop_reason(
                cfg, steps, ri, qi, k)) is not None), (None, None))
            if rec is None:
                continue
            ran += float(steps[last])
            kept += float(steps[rec])
            if why == "stuck":
                stuck += 1
                stuck_wrong += bool(qi[last] >= ESCAPE_LEVEL)
                stuck_rise = max(stuck_rise, float(qi[last] - qi[rec]))
                continue
            stopped += 1
            after = qi[rec:last + 1]
            below_level += bool(np.nanmin(after) < stop_overlap)
            below_half += bool(np.nanmin(after) < ESCAPE_LEVEL)
            max_change = max(max_change, abs(float(qi[last] - qi[rec])))
    return {"runs": n, "stop_rtol": stop_rtol, "stop_overlap": stop_overlap,
            "would_stop": stopped, "fell_below_stop_overlap": below_level,
            "fell_below_half": below_half, "max_final_change": max_change,
            "stuck_after": stuck_after, "stuck_qtol": stuck_qtol, "would_stop_stuck": stuck,
            "stuck_escaped_later": stuck_wrong, "stuck_max_rise": stuck_rise,
            "steps_saved": 1.0 - kept / ran if ran else float("nan")}


def compare_sweeps(a: xr.Dataset, b: xr.Dataset, level: float = ESCAPE_LEVEL,
                   flat_tol: float = STUCK_QTOL) -> dict:
    """The runs two sweeps have in common, run by run (same seeds, e.g. ``train.dtype`` float64
    against float32, two commits, or b = a with a longer budget): how many end on the same side
    of ``level`` (final hard overlap), the largest |q_a - q_b| of the final overlaps, the
    escape-step ratio tau_b / tau_a over the runs both escaped (median, range), and per cell
    delta_GD of each with its error and the seed-mean final overlap per delta.
    Budget check: of the runs below ``level`` in a, how many were flat at a's end (late rise
    q(T) - q(T/2) <= ``flat_tol``, the stuck rule) or still moving, and how many of each end at
    or above ``level`` in b (``crossed_up``: [flat, moving]); ``crossed_down``: the reverse.
    Diverged runs (in either) are left out."""
    missing = [v for v in ("hard_overlap", "diverged") if v not in a or v not in b]
    if missing:
        raise ValueError(f"both sweeps need {', '.join(missing)}")
    a2, b2 = xr.align(a[["hard_overlap", "diverged"]], b[["hard_overlap", "diverged"]],
                      join="inner", exclude=["step"])
    if a2["hard_overlap"].size == 0:
        raise ValueError("the two sweeps have no run in common (coordinates differ)")
    alive = ~(a2["diverged"].astype(bool) | b2["diverged"].astype(bool))
    qa, qb = last_finite(a2["hard_overlap"]), last_finite(b2["hard_overlap"])
    ok = alive & np.isfinite(qa) & np.isfinite(qb)
    ta, tb = escape_steps(a2, level), escape_steps(b2, level)
    both = ok & np.isfinite(ta) & np.isfinite(tb)
    ratio = (tb / ta).where(both).values.ravel()
    ratio = ratio[np.isfinite(ratio)]
    below_a, above_b = qa < level, qb >= level  # counted over ok runs only (count)
    flat_a = late_rise(a2) <= flat_tol
    cells_ = []
    ga = {_cell_key(r): r for r in gd_transitions(a2.where(alive), level)}
    for r in gd_transitions(b2.where(alive), level):
        ra = ga[_cell_key(r)]
        cells_.append({k: r[k] for k in CELL_DIMS if k in r}
                      | {"delta_gd_a": ra["delta_gd"], "delta_gd_a_err": _err(ra["seed_sem"],
                                                                           ra["bracket"]),
                         "delta_gd_b": r["delta_gd"], "delta_gd_b_err": _err(r["seed_sem"],
                                                                          r["bracket"]),
                         "deltas": [float(x) for x in b2["delta"].values],
                         "mean_overlap_a": ra["mean_overlap"],
                         "mean_overlap_b": r["mean_overlap"]})

    def count(mask) -> int:
        return int(mask.where(ok, False).sum())

    return {"runs": int(ok.sum()), "diverged": int((~alive).sum()),
            "below_a": [count(below_a & flat_a), count(below_a & ~flat_a)],
            "crossed_up": [count(below_a & flat_a & above_b), count(below_a & ~flat_a & above_b)],
            "crossed_down": count(~below_a & ~above_b), "flat_tol": flat_tol,
            "decided_alike": count(below_a == ~above_b),
            "max_final_diff": float(np.abs(qa - qb).where(ok).max()),
            "escaped_both": int(both.sum()),
            "escape_ratio_median": float(np.median(ratio)) if ratio.size else float("nan"),
            "escape_ratio_range": [float(ratio.min()), float(ratio.max())] if ratio.size
            else [float("nan")] * 2, "cells": cells_}


def compare_text(rep: dict) -> str:
    """``compare_sweeps``'s report as text: one summary line, then delta_GD per cell."""
    lo, hi = rep["escape_ratio_range"]
    lines = [f"{rep['runs']} runs ({rep['diverged']} diverged left out), {rep['decided_alike']} "
             f"end on the same side of 1/2, largest final-overlap difference "
             f"{rep['max_final_diff']:.2g}; escape-step ratio b/a over the {rep['escaped_both']} "
             f"runs both escaped: median {rep['escape_ratio_median']:.3g}, range "
             f"{lo:.3g}–{hi:.3g}"]
    (flat, moving), (up_flat, up_moving) = rep["below_a"], rep["crossed_up"]
    lines.append(f"below 1/2 in a: {flat} flat at its end (late rise <= {rep['flat_tol']:g}), "
                 f"{up_flat} of them "
                 f"at or above 1/2 in b; {moving} still moving, {up_moving} of them above in b; "
                 f"{rep['crossed_down']} above in a and below in b")
    for c in rep["cells"]:
        a, b = _pm(c["delta_gd_a"], c["delta_gd_a_err"]), _pm(c["delta_gd_b"], c["delta_gd_b_err"])
        means = ", ".join(f"{x:g}: {qa:.2f}→{qb:.2f}" for x, qa, qb in
                          zip(c["deltas"], c["mean_overlap_a"], c["mean_overlap_b"], strict=True))
        lines.append(f"  m = {c['m']}, d = {c['d']}: δ_GD {a} (a), {b} (b); seed-mean final "
                     f"overlap a→b at δ = {means}")
    return "\n".join(lines)


def _err(sem: float, bracket) -> float:
    grid = (bracket[1] - bracket[0]) / np.sqrt(12) if bracket else 0.0
    sem = 0.0 if not np.isfinite(sem) else sem
    return float(np.hypot(sem, grid)) if (bracket or sem) else float("nan")


def predicted_escaped(ds: xr.Dataset, pred_level: float = ESCAPE_LEVEL) -> xr.DataArray:
    """1 where the predictor says a run escapes within its budget, 0 if not, NaN if the
    projected run diverged: q_pred reaches ``pred_level`` (at 1/2: ``pred_escape_step`` is
    finite, step-exact; at another level, a sensitivity reading: the largest recorded
    ``pred_overlap`` reaches it)."""
    if np.isclose(pred_level, ESCAPE_LEVEL):
        esc = np.isfinite(ds["pred_escape_step"])
    else:
        esc = ds["pred_overlap"].max("step") >= pred_level
    return esc.astype(float).where(runs_alive(ds, "pred_diverged"))


def predicted_transitions(ds: xr.Dataset, level: float = ESCAPE_LEVEL,
                          pred_level: float = ESCAPE_LEVEL) -> list[dict]:
    """The predictor's transition per (target, activation, loss, m, d) of a sweep with
    ``pred_escape_step``: the seed fraction predicted to escape within the budget
    (``predicted_escaped`` at ``pred_level``) crosses ``level``; per-seed crossings and their
    sem; the fraction per delta."""
    esc = predicted_escaped(ds, pred_level)
    x = ds["delta"].values
    out = []
    for sel, v in cells(esc):
        # only the delta values the predictor ran at (a merged sweep may hold it at a few)
        keep = np.isfinite(v.values).any(axis=v.get_axis_num("seed"))
        if not keep.any():  # not run in this cell: no row, not "none up to"
            continue
        frac, dpred, i, _, sem = seed_crossings(x[keep], v.isel(delta=keep), level)
        fraction = np.full(x.size, np.nan)
        fraction[keep] = frac
        xk = x[keep]
        out.append({**sel, "delta_pred": dpred,
                    "bracket": [float(xk[i - 1]), float(xk[i])] if i > 0 else None,
                    "fraction": [float(f) for f in fraction], "seed_sem": sem})
    return out


def transition_rows(sweeps: Sequence[xr.Dataset], level: float = ESCAPE_LEVEL,
                    pred_level: float = ESCAPE_LEVEL) -> list[dict]:
    """One row per (schedule, target, activation, loss, m, init_scale, a_init, d) over all
    sweeps (module doc);
    ``pred_level``: the predicted overlap that counts as an escape (sensitivity; default 1/2)."""
    rows = []
    for ds in merge_sweeps(sweeps):
        sch, steps = schedule_of(ds), _budget(ds)
        pred = {_cell_key(r): r for r in predicted_transitions(ds, level, pred_level)} \
            if "pred_escape_step" in ds else {}
        tau = escape_steps(ds, level)
        alive = runs_alive(ds)
        rise = late_rise(ds)
        final = last_finite(ds["hard_overlap"])  # at the budget or an early stop
        for r in gd_transitions(ds, level):
            sel = {k: r[k] for k in CELL_DIMS if k in r}
            row = {"schedule": sch, **INIT_DEFAULTS, **sel, "steps": steps,
                   "deltas": [float(v) for v in ds["delta"].values],
                   "delta_gd": r["delta_gd"], "delta_gd_err": _err(r["seed_sem"], r["bracket"]),
                   "bracket": r["bracket"], "below_grid": r["below_grid"],
                   "monotone": r["monotone"], "mean_overlap": r["mean_overlap"],
                   "seeds": r["seeds"]}
            stuck = (final.sel(sel) < level) & alive.sel(sel)
            lr = rise.sel(sel).where(stuck)
            row["stuck_runs"] = int(stuck.sum())
            row["max_late_rise"] = float(lr.max()) if int(stuck.sum()) else float("nan")
            row["escape_median"] = [float(v) for v in median_escape(
                tau.sel(sel).transpose("delta", "seed").values,
                alive.sel(sel).transpose("delta", "seed").values)]
            p = pred.get(_cell_key(r))
            if p is not None:
                ptau = ds["pred_escape_step"].sel(sel).transpose("delta", "seed").values
                palive = runs_alive(ds, "pred_diverged").sel(sel)
                row.update(delta_pred=p["delta_pred"],
                           delta_pred_err=_err(p["seed_sem"], p["bracket"]),
                           pred_fraction=p["fraction"],
                           pred_escape_median=[float(v) for v in median_escape(
                               ptau, palive.transpose("delta", "seed").values)])
                both = (alive.sel(sel) & palive).transpose("delta", "seed").values
                # GD's median over the runs the predictor has (all of them unless merged)
                gd_m = median_escape(tau.sel(sel).transpose("delta", "seed").values, both)
                pr_m = np.array(row["pred_escape_median"])
                ok = np.isfinite(gd_m) & np.isfinite(pr_m)
                row["escape_ratio"] = [float(v) for v in np.where(ok, pr_m / np.where(
                    ok, gd_m, 1.0), np.nan)]
                # runs on which GD and the predictor agree whether the escape happened
                gd_esc = final.sel(sel) >= level
                pr_esc = predicted_escaped(ds, pred_level).sel(sel) == 1
                both = alive.sel(sel) & palive  # runs GD and the predictor both finished
                row["decision_agree"] = [int(((gd_esc == pr_esc) & both).sum()), int(both.sum())]
            rows.append(row)
    return sorted(rows, key=lambda r: (r["schedule"], r["target"], r["activation"], r["loss"],
                                       r["m"], r["init_scale"], r["a_init"], r["d"]))


def _cell_key(r: dict) -> tuple:
    return tuple(r.get(k, INIT_DEFAULTS.get(k)) for k in CELL_DIMS)


class LogFit:
    """delta(d) = alpha + beta ln d by weighted least squares (Birge-inflated), over the d with a
    finite delta and error; ``d_at(x)``: the d where the line reaches x, with its error."""

    def __init__(self, d, delta, err):
        d, y, e = (np.asarray(v, float) for v in (d, delta, err))
        ok = np.isfinite(y) & np.isfinite(e) & (e > 0)
        self.d = d[ok]
        self.n = int(ok.sum())
        self.alpha = self.beta = self.alpha_err = self.beta_err = self.chi2_dof = float("nan")
        self.cov = np.full((2, 2), np.nan)
        if self.n < 2:
            return
        coef, cov, self.chi2_dof = wls(np.column_stack([np.ones(self.n), np.log(self.d)]),
                                       y[ok], e[ok])
        self.alpha, self.beta = (float(c) for c in coef)
        self.alpha_err, self.beta_err = (float(v) for v in np.sqrt(np.diag(cov)))
        self.cov = cov

    def __call__(self, d):
        return self.alpha + self.beta * np.log(np.asarray(d, float))

    def d_at(self, x: float, x_err: float = 0.0) -> tuple[float, float]:
        """d* with alpha + beta ln d* = x; error of ln d* propagated (alpha, beta, x), returned
        as the factor exp(err ln d*). NaN unless beta > 0 and the line is below x."""
        if not (np.isfinite(self.beta) and self.beta > 0 and np.isfinite(x)):
            return float("nan"), float("nan")
        ln = (x - self.alpha) / self.beta
        g = np.array([-1.0 / self.beta, -ln / self.beta])  # d ln / d (alpha, beta)
        var = float(g @ self.cov @ g) + (x_err / self.beta) ** 2
        return float(np.exp(ln)), float(np.exp(np.sqrt(var)))


def fit_log_d(rows: list[dict], key: str = "delta_gd") -> dict[tuple, LogFit]:
    """``LogFit`` of ``key`` against d per (schedule, target, activation, loss, m, init_scale,
    a_init)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["schedule"], r["target"], r["activation"], r["loss"], r["m"],
                           r.get("init_scale", 1.0), r.get("a_init", 1.0)), []).append(r)
    return {k: LogFit([r["d"] for r in g], [r.get(key, np.nan) for r in g],
                      [r.get(f"{key}_err", np.nan) for r in g]) for k, g in groups.items()}


def rows_dataset(rows: list[dict]) -> xr.Dataset:
    """The table as a labelled Dataset over (row) with the cell labels as coordinates."""
    from .io import provenance_attrs

    n = len(rows)
    lab = {k: ("row", [r.get(k, INIT_DEFAULTS.get(k)) for r in rows],
               {"long_name": ln, "units": "1"}) for k, ln in (
        ("schedule", "training schedule"), ("target", "target function name"),
        ("activation", "activation name"), ("loss", "loss name"),
        ("m", "number of hidden units"), ("d", "input dimension"),
        ("init_scale", "first-layer initialisation scale"),
        ("a_init", "second-layer initialisation a0 m"),
        ("steps", "GD step budget"), ("seeds", "replicates"))}
    num = {}
    for k, ln in (("delta_gd", "GD transition: seed-mean final hard overlap crosses 1/2"),
                  ("delta_gd_err", "its error (seed sem and grid resolution)"),
                  ("delta_pred", "predictor's transition: fraction predicted to escape = 1/2"),
                  ("delta_pred_err", "its error (seed sem and grid resolution)"),
                  ("max_late_rise", "largest q(T) - q(T/2) among runs stuck at T"),
                  ("stuck_runs", "runs with final hard overlap < 1/2")):
        num[k] = ("row", np.array([float(r.get(k, np.nan)) for r in rows]), {"long_name": ln,
                                                                             "units": "1"})
    ds = xr.Dataset(num, coords={**lab, "row": ("row", np.arange(n), {
        "long_name": "table row", "units": "1"})})
    ds.attrs.update(provenance_attrs("deltann finite-size table", {"rows": len(rows)}, "",
                                     "deltann.finite_size.rows_dataset"))
    ds.attrs["rows_json"] = json.dumps(rows, default=float)
    return ds


def _pm(v, e, nd=2) -> str:
    if not np.isfinite(v):
        return "none"
    return f"{v:.{nd}f} ± {e:.{nd}f}" if np.isfinite(e) else f"{v:.{nd}f}"


def rows_markdown(rows: list[dict]) -> str:
    """The table in Markdown: one line per row, then the log-d fits."""
    init = any(r.get(k, v) != v for r in rows for k, v in INIT_DEFAULTS.items())
    head = ("| schedule | m | " + ("init_scale | a_init | " if init else "") + "d | steps | δ_GD "
            "| δ_pred | δ_pred/δ_GD − 1 | escape-step ratio (pred/GD medians) | decisions agree "
            "| stuck runs, max late rise |")
    lines = [head, "|" + "---|" * (12 if init else 10)]
    for r in rows:
        ini = f"{r.get('init_scale', 1.0):g} | {r.get('a_init', 1.0):g} | " if init else ""
        hi = max(r["deltas"])
        gd = _pm(r["delta_gd"], r["delta_gd_err"]) if np.isfinite(r["delta_gd"]) else \
            f"none ≤ {hi:g}"
        if "delta_pred" in r:
            pr = _pm(r["delta_pred"], r["delta_pred_err"]) if np.isfinite(r["delta_pred"]) \
                else f"none ≤ {hi:g}"
            rel = r["delta_pred"] / r["delta_gd"] - 1
            rel = f"{100 * rel:+.0f} %" if np.isfinite(rel) else "–"
            ratios = [v for v in r["escape_ratio"] if np.isfinite(v)]
            ratio = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "–"
            agree = f"{r['decision_agree'][0]}/{r['decision_agree'][1]}"
        else:
            pr = rel = ratio = agree = "–"
        flag = "" if r["monotone"] else " (not monotone)"
        rise = f"{r['stuck_runs']}, {r['max_late_rise']:+.3f}" if r["stuck_runs"] else "0"
        lines.append(f"| {r['schedule']} | {r['m']} | {ini}{r['d']} | {r['steps']} | {gd}{flag} | "
                     f"{pr} | {rel} | {ratio} | {agree} | {rise} |")
    fits = {k: f for k, f in sorted(fit_log_d(rows).items()) if f.n >= 2}
    if fits:
        lines += ["", "| schedule | m | " + ("init_scale | a_init | " if init else "")
                  + "fit δ_GD = α + β ln d | d used | χ²/dof |",
                  "|" + "---|" * (7 if init else 5)]
    for (sch, _t, _a, _l, m, isc, ain), f in fits.items():
        chi = f"{f.chi2_dof:.2f}" if np.isfinite(f.chi2_dof) else "– (2 points)"
        used = ", ".join(str(int(v)) for v in f.d)
        ini = f"{isc:g} | {ain:g} | " if init else ""
        lines.append(f"| {sch} | {m} | {ini}α = {_pm(f.alpha, f.alpha_err)}, "
                     f"β = {_pm(f.beta, f.beta_err, 3)} | {used} | {chi} |")
    return "\n".join(lines)


def fit_step(steps, train_risk, t_escape: float, frac: float = 0.1) -> float:
    """The step the network has fitted its training set before escaping: the first record where
    the train risk is within ``frac`` of its drop from r(0) to r_pl (its lowest value before
    ``t_escape``). NaN if the run never escaped."""
    t, r = np.asarray(steps, float), np.asarray(train_risk, float)
    before = np.isfinite(r) & (t < t_escape)
    if not np.isfinite(t_escape) or before.sum() < 2:
        return float("nan")
    r_pl = np.min(r[before])
    hit = before & (r <= r_pl + frac * (r[0] - r_pl))
    return float(t[np.argmax(hit)])


def plateau_rows(sweeps: Sequence[xr.Dataset], level: float = ESCAPE_LEVEL) -> list[dict]:
    """Grokking plateaus: per (schedule, m, d, delta) with at least one escaped seed, the
    seed-median escape step tau, fit step t_fit (``fit_step``), plateau length tau - t_fit, the
    test risk on the plateau and after, and the predictor's median escape step (if present)."""
    out = []
    for ds in merge_sweeps(sweeps):
        sch = schedule_of(ds)
        tau = escape_steps(ds, level)
        alive_all = runs_alive(ds)  # diverged or missing runs: left out
        steps = ds["step"].values
        for sel, ts in cells(tau, (*CELL_DIMS, "delta")):
            alive = alive_all.sel(sel).values
            t = ts.values[alive]
            if not np.isfinite(t).any():
                continue
            runs = ds.sel(sel).isel(seed=alive)
            fit = np.array([fit_step(steps, runs["train_risk"].isel(seed=s).values, t[s])
                            for s in range(t.size)])
            ok = np.isfinite(t) & np.isfinite(fit)
            test = runs["test_risk"].values
            i_fit = [int(np.searchsorted(steps, f)) if np.isfinite(f) else -1 for f in fit]
            plateau_test = [test[s, i] for s, i in enumerate(i_fit) if i >= 0]
            row = {"schedule": sch, **sel,
                   "escaped": int(np.isfinite(t).sum()), "seeds": int(t.size),
                   "tau_median": float(median_escape(t[None])[0]),
                   "fit_median": float(np.median(fit[ok])) if ok.any() else float("nan"),
                   "plateau_median": float(np.median((t - fit)[ok])) if ok.any() else
                   float("nan"),
                   "test_plateau": float(np.median(plateau_test)) if plateau_test else
                   float("nan"),
                   "test_final": float(np.nanmedian(last_finite(runs["test_risk"]).values))}
            if "pred_escape_step" in runs:
                pa = runs_alive(runs, "pred_diverged").values
                row["pred_tau_median"] = float(median_escape(
                    runs["pred_escape_step"].values[None], pa[None])[0]) if pa.any() else \
                    float("nan")
            out.append(row)
    return out


_PLATEAU_KEY = ("schedule", "target", "activation", "loss", "m", "init_scale", "a_init", "d")


def _plateau_key(r: dict) -> tuple:
    return tuple(r.get(k, INIT_DEFAULTS.get(k)) for k in _PLATEAU_KEY)


def nn_reference(points: list[dict]) -> dict[tuple, tuple[float, float]]:
    """(schedule, target, activation, loss, m, init_scale, a_init, d) -> (delta_NN(d), err) from
    ``theory_points`` (finite d, finite value; the first of several points for the same key),
    for ``fit_plateaus``."""
    out: dict[tuple, tuple[float, float]] = {}
    for p in points:
        if np.isfinite(p["d"]) and np.isfinite(p["delta"]):
            out.setdefault(_plateau_key({**p, "d": int(p["d"])}), (p["delta"], p["err"]))
    return out


def fit_plateaus(plateaus: list[dict], rows: list[dict],
                 ref: dict[tuple, tuple[float, float]] | None = None) -> list[dict]:
    """Plateau length against the distance to a transition and d, per (schedule, m, init):
    least squares of

        ln(tau - t_fit) = a + b ln(delta - delta_ref(d)) + c ln d

    over the cells of ``plateau_rows`` where every seed escaped and delta - delta_ref(d) exceeds
    delta_ref's error (cells inside the error, or below delta_ref, are left out and counted).
    delta_ref: GD's transition delta_GD(d) (``transition_rows``; ``ref`` None) or the theory's
    delta_NN(d) (``ref`` from ``nn_reference``; cells at a d without delta_NN are left out).
    The linear escape picture (a growth rate ~ (delta - delta_c), a distance ~ ln sqrt(d) to
    cover) gives b = -1 and c ~ 0 (ln ln d). Returns per group: n, the d used, b, c and their
    standard errors, the residual scatter as a factor exp(s) (NaN below 4 points or 2 d), and
    ``left_out``: escaped cells at or below delta_ref + err."""
    if ref is None:
        ref = {_plateau_key(r): (r["delta_gd"], r["delta_gd_err"]) for r in rows}
    groups: dict[tuple, list[tuple[float, float, float]]] = {}
    left: dict[tuple, int] = {}
    for p in plateaus:
        k = _plateau_key(p)
        g = (p["schedule"], p["m"], *k[5:7])
        r = ref.get(k)
        if r is None or not np.isfinite(r[0]) or p["escaped"] < p["seeds"]:
            continue
        x = float(p["delta"]) - r[0]
        err = r[1] if np.isfinite(r[1]) else 0.0
        if x > err and np.isfinite(p["plateau_median"]) and p["plateau_median"] > 0:
            groups.setdefault(g, []).append(
                (np.log(x), np.log(float(p["d"])), np.log(p["plateau_median"])))
        elif x <= err:
            left[g] = left.get(g, 0) + 1
    out = []
    for g in sorted(set(groups) | set(left)):
        sch, m, isc, ain = g
        a = np.array(groups.get(g, []), dtype=float).reshape(-1, 3)
        row = {"schedule": sch, "m": m, "init_scale": isc, "a_init": ain, "n": len(a),
               "d": sorted({int(round(np.exp(v))) for v in a[:, 1]}), "b": np.nan,
               "b_err": np.nan, "c": np.nan, "c_err": np.nan, "scatter": np.nan,
               "left_out": left.get(g, 0)}
        if len(a) >= 4 and len(row["d"]) >= 2:
            A = np.column_stack([np.ones(len(a)), a[:, 0], a[:, 1]])
            coef, *_ = np.linalg.lstsq(A, a[:, 2], rcond=None)
            res = a[:, 2] - A @ coef
            s2 = float(res @ res) / max(len(a) - 3, 1)
            cov = s2 * np.linalg.inv(A.T @ A)
            row.update(b=float(coef[1]), b_err=float(np.sqrt(cov[1, 1])), c=float(coef[2]),
                       c_err=float(np.sqrt(cov[2, 2])), scatter=float(np.exp(np.sqrt(s2))))
        out.append(row)
    return out


def plateau_fit_markdown(fits: list[dict], ref: str = "δ_GD") -> str:
    lines = [f"| schedule | m | init_scale | a_init | cells | d | b (δ − {ref}) | c (d) | "
             f"scatter (×) | escaped cells ≤ {ref} |", "|" + "---|" * 10]
    for f in fits:
        lines.append(f"| {f['schedule']} | {f['m']} | {f['init_scale']:g} | {f['a_init']:g} | "
                     f"{f['n']} | {', '.join(map(str, f['d'])) or '–'} | "
                     f"{_pm(f['b'], f['b_err'])} | {_pm(f['c'], f['c_err'])} | "
                     + (f"{f['scatter']:.2f} |" if np.isfinite(f["scatter"]) else "– |")
                     + f" {f.get('left_out', 0)} |")
    return "\n".join(lines)


def theory_points(th, m=None) -> list[dict]:
    """delta_NN(d) of a theory.nc per (m, init_scale, a_init, d), and the limit (d = inf) per
    (m, init_scale, a_init) where two or more d have a value: dicts with schedule, m, the
    initialisation, d (np.inf for the limit), delta, err, the estimator's status (value, none,
    unconverged, ...; "fit" for the limit) and the upper end of its scan (max_delta).
    A ``deltann table`` file (dims schedule, target, ...; e.g. the threshold study's
    results_study_limit.nc) gives the same per schedule, at the default initialisation, with
    its own delta_NN(inf) fit. Points carry target, activation and loss where the file has them."""
    if "schedule" in th.dims:
        return _table_points(th, m)
    cfg = json.loads(th.attrs["config"])
    sch = cfg["train"]["schedule"]
    hi = float(cfg.get("theory", {}).get("delta_range", [np.nan, np.nan])[-1])
    r = th.isel({k: 0 for k in ("target", "activation", "loss") if k in th.dims})
    lab = {k: str(r[k].values) for k in ("target", "activation", "loss") if k in r.coords}
    out = []
    for mm in r["m"].values:
        if m is not None and int(mm) != int(m):
            continue
        for isc in (r["init_scale"].values if "init_scale" in r.dims else [1.0]):
            for ain in (r["a_init"].values if "a_init" in r.dims else [1.0]):
                c = r.sel(m=mm, **{k: v for k, v in (("init_scale", isc), ("a_init", ain))
                                   if k in r.dims})
                d, y, e = c["d"].values, c["delta_nn"].values, c["delta_nn_err"].values
                st = (c["delta_nn_status"].values if "delta_nn_status" in c else
                      np.where(np.isfinite(y), "value", "none"))
                base = {"schedule": sch, **lab, "m": int(mm), "init_scale": float(isc),
                        "a_init": float(ain), "max_delta": hi}
                out += [{**base, "d": int(dd), "delta": float(yy), "err": float(ee),
                         "status": str(ss)} for dd, yy, ee, ss in zip(d, y, e, st, strict=True)]
                if np.isfinite(y).sum() >= 2:
                    f = fit_limit(list(d), list(y), list(e))
                    out.append({**base, "d": np.inf, "delta": float(f.a), "err": float(f.a_err),
                                "status": "fit"})
    return out


def _table_points(tab, m=None) -> list[dict]:
    out = []
    hi = float(np.nanmax(tab["max_delta"].values)) if "max_delta" in tab else np.nan
    for sel, c in cells(tab["delta_nn"], ("schedule", "target", "activation", "loss", "m")):
        if m is not None and int(sel["m"]) != int(m):
            continue
        x = tab.sel(sel)
        st = x["delta_nn_status"].values if "delta_nn_status" in x else \
            np.where(np.isfinite(c.values), "value", "none")
        base = {**sel, "m": int(sel["m"]), "init_scale": 1.0, "a_init": 1.0, "max_delta": hi}
        out += [{**base, "d": int(dd), "delta": float(yy), "err": float(ee), "status": str(ss)}
                for dd, yy, ee, ss in zip(x["d"].values, c.values, x["delta_nn_err"].values, st,
                                          strict=True)]
        if "delta_nn_inf" in x and np.isfinite(float(x["delta_nn_inf"])):
            out.append({**base, "d": np.inf, "delta": float(x["delta_nn_inf"]),
                        "err": float(x["delta_nn_inf_err"]), "status": "fit"})
    return out


def theory_markdown(points: list[dict]) -> str:
    """``theory_points`` as Markdown: one line per (schedule, m, initialisation), delta_NN(d)
    per d and the limit."""
    keys = sorted({(p["schedule"], p["m"], p["init_scale"], p["a_init"]) for p in points})
    ds_ = sorted({p["d"] for p in points if np.isfinite(p["d"])})
    lines = ["| schedule | m | init_scale | a_init | " + " | ".join(f"δ_NN(d = {d})" for d in ds_)
             + " | δ_NN(∞) (a + b/√d) |", "|" + "---|" * (5 + len(ds_))]
    for k in keys:
        at = {p["d"]: p for p in points if (p["schedule"], p["m"], p["init_scale"],
                                             p["a_init"]) == k}
        cols = [("–" if d not in at else _pm(at[d]["delta"], at[d]["err"])
                 if np.isfinite(at[d]["delta"]) else f"{at[d]['status']} ≤ {at[d]['max_delta']:g}"
                 if at[d]["status"] == "none" else at[d]["status"]) for d in ds_]
        lim = _pm(at[np.inf]["delta"], at[np.inf]["err"]) if np.inf in at else "–"
        lines.append(f"| {k[0]} | {k[1]} | {k[2]:g} | {k[3]:g} | " + " | ".join(cols)
                     + f" | {lim} |")
    return "\n".join(lines)
