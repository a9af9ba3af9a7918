"""Grokking: train and test risk and the hard overlap against the step, just above GD's
transition, for several d (one sweep per d, or one sweep with several d, in ``checks``).

Per d: the delta drawn is ``deltas`` (one per d, in the order of the sweeps' d) or, by default,
the smallest delta at which at least half the seeds escape; the run drawn is the seed with the
median escape step. The network fits its training set early (t_fit), the test risk stays on a
plateau and drops at the escape tau; the predictor's escape step (``pred_escape_step``, if the
sweep has it) is marked on each curve. Right: tau - t_fit of every escaped seed against d, with
the medians of GD and of the predictor (as ``deltann.finite_size.plateau_rows``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..finite_size import fit_step, merge_sweeps, runs_alive
from ..phases import ESCAPE_LEVEL, escape_steps, median_escape
from .style import PALETTE, plural, select

REQUIRES = {
    "checks": {"variables": ("hard_overlap", "train_risk", "test_risk", "diverged", "step"),
               "dims": ("d", "delta", "seed", "step"), "attrs": ("experiment", "config")},
}


def _runs(sweeps, cfg):
    """(d, sub-sweep at that d with m etc. fixed) over all sweeps, ascending d (sweeps of the
    same cells merged: ``finite_size.merge_sweeps``)."""
    out = []
    for ds in merge_sweeps(sweeps):
        sub = select(ds, cfg.get("select", {}), keep=("d", "delta", "seed"))
        out += [(int(d), sub.sel(d=d)) for d in sub["d"].values]
    return sorted(out, key=lambda x: x[0])


def _pick_delta(sub, level: float) -> float | None:
    """Smallest delta where at least half the seeds escape (None: none does)."""
    frac = np.isfinite(escape_steps(sub, level)).where(runs_alive(sub)).mean("seed")
    ok = np.nonzero(frac.values >= 0.5)[0]
    return float(sub["delta"].values[ok[0]]) if ok.size else None


def draw(data, cfg):
    sweeps = [ds for role, ds in sorted(data.items()) if role.startswith("check_")]
    if not sweeps:
        raise ValueError(f"figure {cfg.get('figure', 'grokking')!r}: list the sweeps to draw "
                         "in 'checks'")
    level = float(cfg.get("level", ESCAPE_LEVEL))
    runs = _runs(sweeps, cfg)
    wanted = list(cfg.get("deltas", []))
    fig, (ax_r, ax_q, ax_p) = plt.subplots(1, 3, figsize=(13.5, 4.2), layout="constrained")
    picked, drawn_pred = [], False
    for j, (d, sub) in enumerate(runs):
        c = PALETTE[j % len(PALETTE)]
        delta = wanted[j] if j < len(wanted) else _pick_delta(sub, level)
        if delta is None:
            continue
        r = sub.sel(delta=delta, method="nearest")
        r = r.isel(seed=runs_alive(r).values)  # the runs this delta has (a merged sweep)
        tau = escape_steps(r, level).values
        if not np.isfinite(tau).any():
            continue
        late = np.where(np.isfinite(tau), tau, np.inf)
        s = int(np.argsort(late)[(np.isfinite(late).sum() - 1) // 2])  # median escaped seed
        run = r.isel(seed=s)
        t = run["step"].values
        x = np.maximum(t, 1)
        ax_r.plot(x, run["test_risk"], "-", color=c, label=f"d={d}, δ={float(r['delta']):g}")
        ax_r.plot(x, run["train_risk"], "--", color=c, lw=1)
        ax_q.plot(x, run["hard_overlap"], "-", color=c, label=f"d={d}")
        t_fit = fit_step(t, run["train_risk"].values, tau[s])
        for ax in (ax_r, ax_q):
            ax.axvline(tau[s], color=c, lw=0.8, alpha=0.6)
            if np.isfinite(t_fit):
                ax.axvline(max(t_fit, 1), color=c, lw=0.8, ls=":", alpha=0.6)
        if "pred_escape_step" in run:
            tp = float(run["pred_escape_step"])
            if np.isfinite(tp):
                drawn_pred = True
                ax_q.plot([tp], [level], "v", color=c, ms=9, mfc="none")
                ax_r.plot([tp], [float(run["test_risk"].max())], "v", color=c, ms=9,
                          mfc="none")
        picked.append((d, float(r["delta"]), r))
    for ax, lab in ((ax_r, "risk (solid: test, dashed: train)"), (ax_q, "hard overlap q(t)")):
        ax.set_xscale("log")
        ax.set_xlabel("GD step")
        ax.set_ylabel(lab)
        ax.legend(fontsize=8, loc="best")
    ax_q.axhline(level, color="0.5", lw=0.8, ls="--")
    pred_note = "▽ predicted escape" if drawn_pred else "no predictor run (no ▽)"
    ax_r.set_title("one seed per d (median escape); vertical: t_fit (dotted), escape (solid); "
                   + pred_note, fontsize=8)
    # right: plateau lengths of every escaped seed against d
    for j, (d, delta, r) in enumerate(picked):
        c = PALETTE[j % len(PALETTE)]
        tau = escape_steps(r, level).values
        fits = np.array([fit_step(r["step"].values, r["train_risk"].isel(seed=s).values, tau[s])
                         for s in range(tau.size)])
        ok = np.isfinite(tau) & np.isfinite(fits)
        plateau = (tau - fits)[ok]
        ax_p.plot(np.full(ok.sum(), d), plateau, "o", color=c, mfc="none", alpha=0.6)
        ax_p.plot([d], [np.median(plateau)], "s", color=c, ms=8,
                  label=f"d={d}, δ={delta:g}: median {np.median(plateau):.0f} "
                        f"({int(np.isfinite(tau).sum())}/{tau.size} escaped)")
        if "pred_escape_step" in r:
            tp = median_escape(r["pred_escape_step"].values[None],
                               runs_alive(r, "pred_diverged").values[None])[0]
            if np.isfinite(tp):
                drawn_pred = True
                ax_p.plot([d], [tp - np.median(fits[ok])], "v", color=c, ms=9, mfc="none")
    ax_p.set_xscale("log")
    ax_p.set_yscale("log")
    ds_ = [d for d, *_ in picked]
    if ds_:
        ax_p.set_xticks(ds_, [str(v) for v in ds_])
        ax_p.minorticks_off()
    ax_p.set_xlabel("d")
    ax_p.set_ylabel("plateau length τ_esc − t_fit (steps)")
    ax_p.set_title("per seed (○), median (■)" + (", predictor (▽)" if drawn_pred else ""),
                   fontsize=8)
    ax_p.legend(fontsize=8, loc="best")
    m = sorted({int(r["m"]) for *_, r in picked if "m" in r.coords}) if picked else []
    fig.suptitle("Grokking: the training set is fitted, the test risk waits for the escape"
                 + (f" (m={m[0]}, {plural(len(picked), 'size')})" if m else ""))
    return fig
