"""Final overlap with the hard latent subspace vs delta: mean +- sd over seeds, seeds as dots."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .style import PALETTE, clipped_sd, delta_axis, describe, last_finite, select

MARKERS = "osD^v<>"
REQUIRES = {
    "sweep": {
        "variables": ("hard_overlap", "diverged", "step"),
        "dims": ("m", "d", "delta", "seed", "step"),
        "attrs": ("experiment",),
    },
}


def draw(data, cfg):
    ds = data["sweep"]
    sub = select(ds, cfg.get("select", {}), keep=("m", "d", "delta", "seed"))
    # a diverged run is NaN after its divergence: plot its last finite record as a black x
    last = last_finite(sub["hard_overlap"])
    div = sub["diverged"].astype(bool)
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for i, m in enumerate(sub["m"].values):
        for j, d in enumerate(sub["d"].values):
            f = last.sel(m=m, d=d).where(~div.sel(m=m, d=d))
            x = f["delta"].values
            color = PALETTE[(i * len(sub["d"]) + j) % len(PALETTE)]
            ax.errorbar(x, f.mean("seed"), yerr=clipped_sd(f.mean("seed"), f.std("seed")),
                        color=color,
                        marker=MARKERS[j % len(MARKERS)], capsize=3, label=f"m={m}, d={d}")
            for s in range(f.sizes["seed"]):
                ax.plot(x, f.isel(seed=s), ".", color=color, alpha=0.35, ms=4)
            bad = div.sel(m=m, d=d)
            if bad.any():
                lb = last.sel(m=m, d=d).where(bad)
                for s in range(lb.sizes["seed"]):
                    ax.plot(x, lb.isel(seed=s), "x", color="k", ms=6)
    if div.any():
        ax.plot([], [], "x", color="k", label="diverged run (last record)")
    delta_axis(ax, sub["delta"].values)
    ax.set_xlabel(r"sample ratio $\delta = n/d$")
    ax.set_ylabel(r"final overlap $\max_j \|P_{\rm hard} w_j\| / \|w_j\|$")
    ax.set_ylim(-0.02, 1.02)
    steps = int(ds["step"].values[-1])
    ax.set_title(f"{ds.attrs.get('experiment', '')}: {describe(sub)}, after {steps} GD steps")
    ax.legend(loc="upper left")
    return fig
