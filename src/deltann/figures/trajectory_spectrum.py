"""The second phase in time: bulk edge, theta-outlier and its overlap^2 along projected GD against
the step T (log axis), one colour per delta; dense-Hessian points at a few T on top. Shows why a
fixed T was the wrong reading and what converges (a grey band from the step the convergence
criterion first held)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import PALETTE, describe, select

REQUIRES = {
    "trajectory": {
        "variables": ("th_edge", "th_lambda", "th_overlap2", "th_nu", "sim_lambda",
                      "sim_overlap2", "w_norm", "a_norm", "converged_t"),
        "dims": ("delta", "seed", "t"),
        "attrs": ("experiment", "d", "schedule"),
    },
}


def draw(data, cfg):
    ds = data["trajectory"]
    sub = select(ds, cfg.get("select", {}), keep=("delta", "seed"))
    deltas = [float(x) for x in cfg.get("deltas") or sub["delta"].values]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.9), layout="constrained")
    t = sub["t"].values
    for i, dl in enumerate(deltas):
        c = PALETTE[i % len(PALETTE)]
        r = sub.sel(delta=dl).isel(seed=0)
        lab = f"δ={dl:g}"
        ax1.plot(t, r["th_edge"], "--", color=c, lw=1)
        ax1.plot(t, r["th_lambda"], "-", color=c, marker=".", label=f"{lab}: outlier (theory)")
        ax1.plot(t, r["sim_lambda"], "o", color=c, mfc="none", ms=7)
        ax2.plot(t, r["th_overlap2"], "-", color=c, marker=".", label=lab)
        ax2.plot(t, r["sim_overlap2"], "o", color=c, mfc="none", ms=7)
        ax3.plot(t, r["w_norm"], "-", color=c, label=f"{lab}: |W|")
        ax3.plot(t, r["a_norm"], ":", color=c, label=f"{lab}: |a|")
        ct = float(r["converged_t"])
        if np.isfinite(ct):
            for ax in (ax1, ax2):
                ax.axvline(ct, color=c, lw=0.8, alpha=0.6)
    ax1.plot([], [], "k--", lw=1, label="bulk edge (theory)")
    ax1.plot([], [], "ko", mfc="none", label="dense Hessian (θ-eigenvalue)")
    ax2.plot([], [], "ko", mfc="none", label="dense Hessian")
    if any(np.isfinite(float(sub.sel(delta=dl).isel(seed=0)["converged_t"])) for dl in deltas):
        ax2.plot([], [], "-", color="0.5", lw=0.8, label="criterion first met")
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xlabel("projected-GD step T")
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_ylabel(r"Hessian eigenvalue $\lambda$")
    ax1.set_title("θ-outlier and bulk edge (W block)")
    ax2.set_ylabel(r"overlap$^2$ with $\Theta_{\rm hard}$")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("outlier eigenvector overlap (0: no outlier)")
    ax3.set_yscale("log")
    ax3.set_title("weights: |W| (solid), |a| (dotted)")
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2)
    ax3.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2)
    fig.suptitle(f"{ds.attrs['experiment']}: {describe(sub)}, d={int(ds.attrs['d'])}, schedule "
                 f"{ds.attrs['schedule']}, seed 0: the theory along projected GD", fontsize=10)
    return fig
