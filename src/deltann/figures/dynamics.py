"""Training dynamics at a few delta (one row each): risks, gradient norm and overlaps vs step
(log axis), seeds as separate lines, and the phases of ``deltann.phases`` shaded from the seed
medians: I gradient-dominated (t < t_pl), II plateau and Hessian-driven escape (t_pl <= t < tau),
III hard direction learned (t >= tau). With theory.nc, each row says where delta is w.r.t. delta_NN.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..phases import ESCAPE_LEVEL, escape_steps, median_escape, plateau_steps
from .style import PALETTE, describe, nearest, relation, select, theory_delta_nn

REQUIRES = {
    "sweep": {"variables": ("train_risk", "test_risk", "grad_norm", "hard_overlap",
                            "easy_overlap", "diverged", "diverged_step", "step"),
              "dims": ("delta", "seed", "step"), "attrs": ("experiment",)},
    "theory": {"variables": ("delta_nn",), "dims": ("d",), "attrs": ()},
}
PHASE_COLORS = ("#56B4E9", "#E69F00", "#009E73")
PHASE_NAMES = ("I: gradient", "II: plateau / Hessian escape", "III: learned")


def draw(data, cfg):
    ds = data["sweep"]
    sub = select(ds, cfg.get("select", {}), keep=("delta", "seed"))
    deltas = sub["delta"].values
    shown = nearest(deltas, cfg.get("deltas") or [deltas.min(), deltas.max()])
    dnn = theory_delta_nn(data.get("theory"), sub)
    tau = escape_steps(sub, ESCAPE_LEVEL)
    tpl = plateau_steps(sub, tau)
    fig, axes = plt.subplots(len(shown), 3, figsize=(11, 2.9 * len(shown) + 0.6), squeeze=False,
                             layout="constrained", sharex=True)
    step = np.maximum(sub["step"].values, 0.5)  # step 0 drawn at 0.5 on the log axis
    for row, dl in zip(axes, shown, strict=True):
        r = sub.sel(delta=dl)
        for s in range(r.sizes["seed"]):
            rs = r.isel(seed=s)
            c = PALETTE[s % len(PALETTE)]
            row[0].plot(step, rs["train_risk"], color=c)
            row[0].plot(step, rs["test_risk"], "--", color=c)
            row[1].plot(step, rs["grad_norm"], color=c, label=f"seed {s}")
            row[2].plot(step, rs["hard_overlap"], color=c)
            if np.isfinite(rs["easy_overlap"]).any():
                row[2].plot(step, rs["easy_overlap"], ":", color=c)
            t_s = float(tau.sel(delta=dl).isel(seed=s))
            if np.isfinite(t_s):  # this seed's own escape step
                row[2].plot(t_s, ESCAPE_LEVEL, "|", color=c, ms=14, mew=2)
            if int(rs["diverged"]):
                for ax in row:
                    ax.axvline(max(int(rs["diverged_step"]), 0.5), color=c, lw=0.8, ls="-.")
            if "stop_step" in rs and int(rs["stop_step"]) > 0:  # early stop: the run ends here
                t_stop = int(rs["stop_step"])
                row[2].plot(t_stop, float(rs["hard_overlap"].sel(step=t_stop)), "s", color=c,
                            ms=5, mfc="none")
        tv = tau.sel(delta=dl).values
        n_esc = int(np.isfinite(tv).sum())
        t_esc = float(median_escape(tv))  # never-escaped seeds count as infinitely late
        t_pl = float(tpl.sel(delta=dl).median("seed"))
        end = float(step[-1])
        bounds = [0.5, t_pl, t_esc, end] if np.isfinite(t_esc) else [0.5, end]
        for ax in row:
            for i in range(len(bounds) - 1):
                if np.isfinite(bounds[i]) and np.isfinite(bounds[i + 1]):
                    k = i if len(bounds) == 4 else 0
                    ax.axvspan(max(bounds[i], 0.5), bounds[i + 1], color=PHASE_COLORS[k],
                               alpha=0.12, lw=0)
        rel = relation(dl, dnn)
        esc = (f"escape τ = {t_esc:.0f} (median)" if np.isfinite(t_esc)
               else f"median: no escape within {end:g} steps")
        esc += f"; {n_esc} of {len(tv)} seeds escaped"
        row[0].set_title(f"δ = {dl:g}{rel}", loc="left", fontsize=9)
        row[2].set_title(esc, loc="right", fontsize=9)
        row[0].set_yscale("log")
        row[0].set_ylabel("risk")
        row[1].set_yscale("log")
        row[1].set_ylabel(r"gradient norm $\|\nabla R\|$")
        row[2].set_ylabel(r"overlap $\max_j \|P w_j\|/\|w_j\|$")
        row[2].set_ylim(-0.02, 1.02)
        row[2].axhline(ESCAPE_LEVEL, color="0.4", lw=0.7, ls=":")
    for ax in axes[-1]:
        ax.set_xscale("log")
        ax.set_xlabel("GD step t")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    gray = "0.35"  # line styles in gray: colours are seeds
    axes[0][0].legend(handles=[Line2D([], [], color=gray, label="train"),
                               Line2D([], [], color=gray, ls="--", label="test")], loc="best")
    axes[0][1].legend(loc="best")
    axes[0][2].legend(handles=[Line2D([], [], color=gray, label="hard"),
                               Line2D([], [], color=gray, ls=":", label="easy"),
                               Line2D([], [], color=gray, ls="none", marker="|", ms=12, mew=2,
                                      label="a seed's escape step")]
                      + ([Line2D([], [], color=gray, ls="none", marker="s", mfc="none",
                                 label="early stop (run ends)")]
                         if "stop_step" in sub and (sub["stop_step"] > 0).any() else []),
                      loc="best")
    fig.legend(handles=[Patch(color=c, alpha=0.3, label=f"phase {n}")
                        for c, n in zip(PHASE_COLORS, PHASE_NAMES, strict=True)],
               loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(f"{ds.attrs.get('experiment', '')}: {describe(sub)}; phases from seed medians "
                 f"(escape: overlap ≥ {ESCAPE_LEVEL:g})")
    return fig
