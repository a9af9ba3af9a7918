"""Training dynamics at a few delta: risks, gradient norm and hard overlap vs step (log axis)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import PALETTE, describe, nearest, select

REQUIRES = {
    "variables": ("train_risk", "test_risk", "grad_norm", "hard_overlap", "easy_overlap",
                  "diverged", "diverged_step", "step"),
    "dims": ("delta", "seed", "step"),
    "attrs": ("experiment",),
}


def draw(ds, cfg):
    sub = select(ds, cfg.get("select", {}), keep=("delta", "seed"))
    deltas = sub["delta"].values
    want = cfg.get("deltas") or [deltas.min(), deltas.max()]
    shown = nearest(deltas, want)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    step = np.maximum(sub["step"].values, 0.5)  # step 0 drawn at 0.5 on the log axis
    for i, dl in enumerate(shown):
        color = PALETTE[i % len(PALETTE)]
        r = sub.sel(delta=dl)
        for s in range(r.sizes["seed"]):
            rs = r.isel(seed=s)
            tag = f", δ={dl:g}" if s == 0 else None

            def lab(t, tag=tag):
                return t + tag if tag else None

            axes[0].plot(step, rs["train_risk"], color=color, label=lab("train"))
            axes[0].plot(step, rs["test_risk"], "--", color=color, label=lab("test"))
            axes[1].plot(step, rs["grad_norm"], color=color, label=lab("grad"))
            axes[2].plot(step, rs["hard_overlap"], color=color, label=lab("hard"))
            if np.isfinite(rs["easy_overlap"]).any():
                axes[2].plot(step, rs["easy_overlap"], ":", color=color, label=lab("easy"))
            if int(rs["diverged"]):
                for ax in axes:
                    ax.axvline(max(int(rs["diverged_step"]), 0.5), color=color, lw=0.8, ls="-.")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("GD step t")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("risk")
    axes[1].set_yscale("log")
    axes[1].set_ylabel(r"gradient norm $\|\nabla R\|$")
    axes[2].set_ylabel(r"overlap $\max_j \|P w_j\|/\|w_j\|$")
    axes[2].set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.legend(loc="best")
    fig.suptitle(f"{ds.attrs.get('experiment', '')}: {describe(sub)}; seeds as separate lines")
    return fig
