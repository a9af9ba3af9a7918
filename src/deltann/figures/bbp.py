"""BBP curve at the second-phase point: outlier eigenvalue and overlap^2 vs delta, theory lines
(empirical kernel law) with dense-Hessian simulation points (mean +- sd over seeds), per d."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np

from .style import PALETTE, clipped_sd, delta_axis, delta_nn_label, describe, select

REQUIRES = {
    "theory": {
        "variables": ("th_lambda", "th_edge", "th_overlap2", "sim_lambda", "sim_overlap2",
                      "sim_edge", "delta_nn", "delta_alg"),
        "dims": ("d", "delta", "seed"),
        "attrs": ("experiment", "reasons"),
    },
}


def draw(data, cfg):
    ds = data["theory"]
    sub = select(ds, cfg.get("select", {}), keep=("d", "delta", "seed"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    x = sub["delta"].values
    if not np.isfinite(sub["th_edge"].values).any():
        reasons = json.loads(ds.attrs["reasons"])
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "theory not applicable:\n" + "\n".join(reasons.values()),
                    ha="center", va="center", transform=ax.transAxes, wrap=True, fontsize=8)
    for i, d in enumerate(sub["d"].values):
        c = PALETTE[i % len(PALETTE)]
        r = sub.sel(d=d)
        ax1.plot(x, r["th_edge"].mean("seed"), "--", color=c, lw=1, label=f"edge, theory, d={d}")
        ax1.plot(x, r["th_lambda"].mean("seed"), "-", color=c, label=f"outlier, theory, d={d}")
        ax1.errorbar(x, r["sim_lambda"].mean("seed"), r["sim_lambda"].std("seed"), fmt="o",
                     color=c, ms=4, capsize=2, label=f"θ-eigenvalue, dense Hessian, d={d}")
        ax1.plot(x, r["sim_edge"].mean("seed"), "v", color=c, mfc="none", ms=5,
                 label=f"lowest bulk eigenvalue, d={d}")
        ov = r["th_overlap2"].mean("seed")
        ax2.plot(x, ov, "-", color=c, label=f"theory, d={d}")
        m2 = r["sim_overlap2"].mean("seed")
        ax2.errorbar(x, m2, clipped_sd(m2, r["sim_overlap2"].std("seed")), fmt="o",
                     color=c, ms=4, capsize=2, label=f"dense Hessian, d={d}")
        dnn, text = delta_nn_label(sub, d)
        if np.isfinite(dnn):
            for ax in (ax1, ax2):
                ax.axvline(dnn, color=c, ls=":", lw=1.2)
        ax2.plot([], [], ls=":", color=c, label=f"δ_NN (d={d}): {text}")  # legend, off the data
        if "th_converged" in r and (r["th_converged"] == 0).any():
            bad = r["th_lambda"].where(r["th_converged"] == 0).mean("seed")
            ax1.plot(x, bad, "x", color=c, ms=6)
    dalg = float(sub["delta_alg"])
    if np.isfinite(dalg) and dalg > 0:
        for ax in (ax1, ax2):
            ax.axvline(dalg, color="k", ls="-.", lw=1)
        ax2.text(dalg, 0.5, f" δ_alg={dalg:.2f}", va="top", fontsize=8,
                 transform=ax2.get_xaxis_transform())
    for ax in (ax1, ax2):
        delta_axis(ax, x)
        ax.set_xlabel(r"sample ratio $\delta = n/d$")
    ax1.set_ylabel(r"Hessian eigenvalue $\lambda$")
    ax2.set_ylabel(r"overlap$^2$ with $\Theta_{\rm hard}$")
    ax2.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncol=2)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncol=1)
    ax1.set_title("lowest Hessian eigenvalues (W block)")
    ax2.set_title("eigenvector overlap with the hard direction")
    if "th_converged" in sub and (sub["th_converged"] == 0).any():
        ax1.plot([], [], "x", color="0.3", label="point not converged within the budget")
        ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncol=2)
    fig.suptitle(f"{ds.attrs['experiment']}: {describe(sub)}, at the converged second-phase "
                 "point", fontsize=10)
    return fig
