"""The initialisation: GD's transition delta_GD(d), the theory's delta_NN(d) and its d -> infinity
limit against the first-layer scale init_scale (W0 ~ N(0, init_scale^2/d)) and the second-layer
a_init (a0 = a_init/m), one panel per (schedule, initialisation axis), the other axis at its
default 1. Sweeps: ``checks`` (any d, schedule and initialisation; ``deltann.finite_size``);
theory: the theory.nc of each experiment in ``theories`` (delta_NN(d) per initialisation; the
limit a + b/sqrt(d) where it has two or more d). ``select: {m: ...}`` keeps one width.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..finite_size import theory_points, transition_rows
from ..sweep import INIT_DEFAULTS
from .style import PALETTE, plural

REQUIRES = {
    "checks": {"variables": ("hard_overlap", "diverged", "step"),
               "dims": ("target", "activation", "loss", "m", "d", "delta", "seed", "step"),
               "attrs": ("experiment", "config")},
    "theory": {"variables": ("delta_nn", "delta_nn_err"), "dims": ("m", "d"),
               "attrs": ("config", "experiment")},
}
LABELS = {"init_scale": "init_scale (W0 ~ N(0, s²/d))", "a_init": "a_init (a0 = a_init/m)"}


def _on_axis(r: dict, axis: str) -> bool:
    """A point of the ``axis`` panel: the other initialisation axis at its default."""
    return all(float(r[k]) == v for k, v in INIT_DEFAULTS.items() if k != axis)


def draw(data, cfg):
    sweeps = [ds for role, ds in sorted(data.items()) if role.startswith("check_")]
    theories = [ds for role, ds in sorted(data.items()) if role.startswith("theory_")]
    if not sweeps and not theories:
        raise ValueError(f"figure {cfg.get('figure', 'initialisation')!r}: list sweeps in "
                         "'checks' and/or theory experiments in 'theories'")
    m = cfg.get("select", {}).get("m")
    rows = [r for r in transition_rows(sweeps) if m is None or r["m"] == int(m)]
    th = [p for t in theories for p in theory_points(t, m)]
    scheds = sorted({r["schedule"] for r in rows} | {p["schedule"] for p in th})
    axes_used = [a for a in INIT_DEFAULTS
                 if len({r[a] for r in rows} | {p[a] for p in th}) > 1] or list(INIT_DEFAULTS)
    fig, axs = plt.subplots(len(scheds), len(axes_used), squeeze=False, sharey=True,
                            figsize=(5.4 * len(axes_used), 3.9 * len(scheds)),
                            layout="constrained")
    dall = sorted({r["d"] for r in rows} | {p["d"] for p in th if np.isfinite(p["d"])})
    color = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(dall)}
    for i, sch in enumerate(scheds):
        for j, axis in enumerate(axes_used):
            ax = axs[i][j]
            rs = [r for r in rows if r["schedule"] == sch and _on_axis(r, axis)]
            ps = [p for p in th if p["schedule"] == sch and _on_axis(p, axis)]
            widths = sorted({r["m"] for r in rs} | {p["m"] for p in ps})
            for k, mm in enumerate(widths):
                ls = ("-", "--", ":")[k % 3]
                for d in dall:
                    g = sorted((r for r in rs if r["m"] == mm and r["d"] == d),
                               key=lambda r: r[axis])
                    if g:
                        x = np.array([r[axis] for r in g])
                        y = np.array([r["delta_gd"] for r in g])
                        e = np.array([r["delta_gd_err"] for r in g])
                        ok = np.isfinite(y)
                        ax.errorbar(x[ok], y[ok], yerr=e[ok], fmt="o" + ls, color=color[d],
                                    capsize=3, label=f"GD, d={d}, m={mm}")
                        hi = np.array([max(r["deltas"]) for r in g])
                        if (~ok).any():
                            ax.plot(x[~ok], hi[~ok], "^", color=color[d], mfc="none", ms=8,
                                    label=f"GD, d={d}, m={mm}: none up to δ = {hi.min():g}")
                    q = sorted((p for p in ps if p["m"] == mm and p["d"] == d),
                               key=lambda p: p[axis])
                    okq = [p for p in q if np.isfinite(p["delta"])]
                    if okq:
                        ax.errorbar([p[axis] for p in okq], [p["delta"] for p in okq],
                                    yerr=[p["err"] for p in okq], fmt="*" + ls, color=color[d],
                                    ms=10, mfc="none", capsize=2, alpha=0.8,
                                    label=f"δ_NN(d) theory, d={d}, m={mm}")
                    none = [p for p in q if p["status"] == "none"]
                    if none:  # no negative theta-outlier up to the scan's end: a mark at the top
                        y_top = 0.97 - 0.05 * dall.index(d)  # one row per d: none hidden
                        ax.plot([p[axis] for p in none], [y_top] * len(none), "^",
                                color=color[d], ms=9, mfc="none",
                                transform=ax.get_xaxis_transform(), clip_on=False,
                                label=f"δ_NN(d={d}): none up to δ = {none[0]['max_delta']:g}")
                lim = sorted((p for p in ps if p["m"] == mm and not np.isfinite(p["d"])
                              and np.isfinite(p["delta"])), key=lambda p: p[axis])
                if lim:
                    ax.errorbar([p[axis] for p in lim], [p["delta"] for p in lim],
                                yerr=[p["err"] for p in lim], fmt="D" + ls, color="k", ms=6,
                                capsize=3, label=f"δ_NN(∞) = a + b/√d limit, m={mm}")
            if theories and not ps:
                ax.text(0.02, 0.03, "no theory for this schedule in 'theories'\n(schedule both: "
                        "no converged second-phase point, docs/theory.md §6)",
                        transform=ax.transAxes, fontsize=7, color="0.4", va="bottom")
            xs = sorted({r[axis] for r in rs} | {p[axis] for p in ps})
            if xs and min(xs) > 0:
                ax.set_xscale("log")
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
            ax.set_xlabel(LABELS[axis])
            seeds = sorted({r["seeds"] for r in rs})
            other = ", ".join(f"{k} = 1" for k in INIT_DEFAULTS if k != axis)
            ax.set_title(f"schedule {sch}, {other}"
                         + (f"; GD {plural(seeds[-1], 'seed')}" if seeds else ""), fontsize=9)
            ax.legend(fontsize=7, loc="best")
        axs[i][0].set_ylabel("transition δ")
    fig.suptitle("The initialisation: GD's transition (overlap ½) and the theory's δ_NN")
    return fig
