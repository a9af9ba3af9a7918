"""Architecture and algorithm: theory delta_NN against width m, activation, loss and schedule for
several targets, each target's delta_alg as a horizontal line, and GD checks (the delta where the
seed-mean final hard overlap crosses 1/2) from the sweeps named in ``checks`` (claim 4).

One panel per factor; a point is the design's base (first value of every factor) with that one
factor changed. "No outlier up to delta_max" is drawn as an arrow at delta_max.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np

from ..phases import ESCAPE_LEVEL, cells, gd_threshold
from ..sweep import INIT_DEFAULTS
from ..theory.table import FACTORS, point_key
from .style import PALETTE, last_finite

MARKERS = "osD^v<>"
REQUIRES = {
    "thresholds": {"variables": ("delta_nn", "delta_alg"),
                   "dims": ("target", "activation", "loss", "m", "schedule"),
                   "attrs": ("reasons", "max_delta", "config")},
    "checks": {"variables": ("hard_overlap", "diverged", "step"),
               "dims": ("target", "activation", "loss", "m", "d", "delta", "seed", "step"),
               "attrs": ("experiment", "config")},
}
TITLES = {"m": "width m", "activation": "activation σ", "loss": "loss", "schedule": "schedule",
          "init_scale": "init scale (W0 ~ N(0, s²/d))", "a_init": "a_init (a0 = a_init/m)"}


def gd_checks(sweep, d_pref: int) -> list[dict]:
    """Empirical GD thresholds of a sweep at the d closest to ``d_pref``: one dict per
    (target, activation, loss, m[, init_scale, a_init]) with its schedule (from the sweep's
    config) and delta_GD."""
    sched = json.loads(sweep.attrs["config"])["train"].get("schedule", "both")
    dvals = sweep["d"].values
    d = dvals[np.argmin(np.abs(dvals - d_pref))]
    q = last_finite(sweep["hard_overlap"].sel(d=d)).where(~sweep["diverged"].sel(d=d).astype(bool))
    q = q.mean("seed")
    out = []
    for sel, v in cells(q, ("target", "activation", "loss", "m", *INIT_DEFAULTS)):
        out.append({**sel, "schedule": sched, "d": int(d),
                    "delta_gd": gd_threshold(v["delta"].values, v.values),
                    "delta_max": float(v["delta"].values.max()),
                    "experiment": sweep.attrs["experiment"]})
    return out


def draw(data, cfg):
    th = data["thresholds"]
    # one panel per factor; the initialisation's only where the table varies it
    base = {k: th[k].values[0] for k in FACTORS.values() if k in th.dims}
    dims = [k for k in base if k not in INIT_DEFAULTS or th.sizes[k] > 1]
    dmax = float(th.attrs["max_delta"])
    d_theory = int(json.loads(th.attrs["config"])["d"])
    targets = [str(t) for t in th["target"].values]
    fig, axes = plt.subplots(1, len(dims), figsize=(3.0 * len(dims) + 1, 3.9), sharey=True,
                             layout="constrained",
                             gridspec_kw={"width_ratios": [max(th.sizes[k], 2) for k in dims]})
    reasons = json.loads(th.attrs["reasons"])
    checks = []
    for role, sw in data.items():
        if role.startswith("check_"):
            checks += gd_checks(sw, d_theory)
    th = th.sortby("m")  # widths in increasing order (the base is still the first in config)
    shown_marks = set()  # status markers drawn (only those get a legend entry)
    for ax, dim in zip(axes, dims, strict=True):
        vals = list(th[dim].values)
        ntar = len(targets)
        for i, t in enumerate(targets):
            c = PALETTE[i % len(PALETTE)]
            off = (i - (ntar - 1) / 2) * 0.12
            row = th["delta_nn"].sel(target=t, **{k: v for k, v in base.items() if k != dim})
            y = row.values
            x = np.arange(len(vals)) + off
            ok = np.isfinite(y)
            label = f"{t}: δ_NN theory"
            if not np.isfinite(th["delta_nn"].sel(target=t).values).any():
                why = next((r for k, r in reasons.items() if k.startswith(f"{t}/")), "")
                label = f"{t}: δ_NN not defined ({why.split(':')[0][:60]})"
            err = None
            if "delta_nn_err" in th:
                err = th["delta_nn_err"].sel(target=t, **{k: v for k, v in base.items()
                                                          if k != dim}).values[ok]
            ax.errorbar(x[ok], y[ok], yerr=err, fmt=MARKERS[i % len(MARKERS)], color=c, ms=7,
                        capsize=3, label=label if dim == dims[0] else None)
            for xi, v in zip(x[~ok], np.asarray(vals)[~ok], strict=True):
                pt = {**base, dim: v}
                why = reasons.get(point_key(t, *(pt[k] for k in base)), "")
                if why.startswith(("no theta-outlier", "no negative theta-outlier")):
                    ax.annotate("", (xi, dmax * 1.25), (xi, dmax * 0.8),
                                arrowprops={"arrowstyle": "->", "color": c, "lw": 1.5})
                    shown_marks.add("none")
                elif "diverged" in why:
                    ax.plot(xi, dmax, "x", color=c, ms=8, mew=2)
                    shown_marks.add("diverged")
                elif why.startswith("no converged"):
                    ax.plot(xi, dmax, "s", color=c, ms=7, mfc="none", mew=1.5)
                    shown_marks.add("unconverged")
                elif why.startswith("seeds disagree"):
                    ax.plot(xi, dmax, "d", color=c, ms=7, mfc="none", mew=1.5)
                    shown_marks.add("disagree")
            dalg = float(th["delta_alg"].sel(target=t))
            if np.isfinite(dalg) and dalg > 0:
                # interleaved dashes: equal delta_alg of several targets stay visible
                ls = "--" if ntar == 1 else (4 * i, (4, 4 * (ntar - 1)))
                ax.axhline(dalg, color=c, ls=ls, lw=1.2,
                           label=f"{t}: δ_alg = {dalg:.3g}" if dim == dims[0] else None)
            for ch in checks:
                if ch["target"] != t:
                    continue
                diff = [k for k in base if str(ch.get(k, INIT_DEFAULTS.get(k))) != str(base[k])]
                at = ch.get(dim, INIT_DEFAULTS.get(dim))  # sweeps without the init axes: 1
                shown = [type(at)(v) for v in vals]  # numpy scalars as the check's type
                if diff not in ([], [dim]) or at not in shown:
                    continue
                xi = shown.index(at) + off
                if np.isfinite(ch["delta_gd"]):
                    ax.plot(xi, ch["delta_gd"], MARKERS[i % len(MARKERS)], mfc="none", mec="k",
                            ms=11, mew=1.3)
                else:
                    ax.annotate("", (xi, ch["delta_max"] * 1.3), (xi, ch["delta_max"]),
                                arrowprops={"arrowstyle": "->", "color": "k", "lw": 1})
                    shown_marks.add("none")
        ax.set_xticks(range(len(vals)), [str(v) for v in vals])
        ax.set_xlim(-0.6, len(vals) - 0.4)
        ax.set_xlabel(TITLES[dim])
        ax.set_title(f"vary {TITLES[dim]}", fontsize=10)
    ax0 = axes[0]
    ax0.set_yscale("log")
    ax0.set_ylabel(r"threshold $\delta$")
    ax0.set_ylim(min(0.3, float(np.nanmin(th["delta_alg"].values)) * 0.8), dmax * 1.6)
    if checks:
        d_chk = ", ".join(str(d) for d in sorted({c["d"] for c in checks}))
        ax0.plot([], [], "o", mfc="none", mec="k", ms=11,
                 label=f"GD check: final overlap crosses {ESCAPE_LEVEL:g} (d = {d_chk})")
    if "none" in shown_marks:
        ax0.plot([], [], marker=r"$\uparrow$", ls="none", color="0.3",
                 label=f"no negative outlier / no learning up to δ={dmax:g}")
    if "unconverged" in shown_marks:
        ax0.plot([], [], "s", color="0.3", mfc="none", mew=1.5,
                 label="second-phase point not converged (no δ_NN)")
    if "disagree" in shown_marks:
        ax0.plot([], [], "d", color="0.3", mfc="none", mew=1.5, label="seeds disagree (no δ_NN)")
    if "diverged" in shown_marks:
        ax0.plot([], [], "x", color="0.3", mew=2, label="first phase diverges")
    base_txt = ", ".join(f"{k}={v}" for k, v in base.items())
    fig.suptitle(f"δ_NN ± err (theory at the converged second-phase point, d={d_theory}) vs "
                 f"δ_alg; base point {base_txt}", fontsize=10)
    fig.legend(loc="outside lower center", ncol=3, fontsize=9)
    return fig
