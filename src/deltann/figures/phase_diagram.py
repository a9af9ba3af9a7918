"""Phase diagram: final hard overlap vs delta for each d (finite-size curves sharpening), with
delta_alg and the theory's delta_NN(d) as vertical lines (claims 1 and 4)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..phases import ESCAPE_LEVEL, gd_threshold
from .style import (
    PALETTE,
    clipped_sd,
    delta_axis,
    delta_nn_label,
    describe,
    diverged_note,
    last_finite,
    plural,
    select,
    theory_at,
)

MARKERS = "osD^v<>"
REQUIRES = {
    "sweep": {"variables": ("hard_overlap", "diverged", "step"),
              "dims": ("m", "d", "delta", "seed", "step"), "attrs": ("experiment",)},
    "theory": {"variables": ("delta_nn", "delta_alg"), "dims": ("d",),
               "attrs": ("second_phase_point",)},
}


def draw(data, cfg):
    ds, th = data["sweep"], data["theory"]
    sub = select(ds, cfg.get("select", {}), keep=("d", "delta", "seed"))
    th = theory_at(th, sub)
    last = last_finite(sub["hard_overlap"]).where(~sub["diverged"].astype(bool))
    fig, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    x = sub["delta"].values
    for j, d in enumerate(sub["d"].values):
        c = PALETTE[j % len(PALETTE)]
        f = last.sel(d=d)
        mean = f.mean("seed")
        dgd = gd_threshold(x, mean.values)
        ax.errorbar(x, mean, yerr=clipped_sd(mean, f.std("seed")), color=c,
                    marker=MARKERS[j % len(MARKERS)], capsize=3,
                    label=f"GD, d={d}" + (f" (crosses {ESCAPE_LEVEL:g} at δ={dgd:.2f})"
                                          if np.isfinite(dgd) else ""))
        for s in range(f.sizes["seed"]):
            ax.plot(x, f.isel(seed=s), ".", color=c, alpha=0.35, ms=4)
        if "d" in th.dims and d in th["d"].values:
            dnn, text = delta_nn_label(th, d)
            if np.isfinite(dnn):
                nd = sub.sizes["d"]  # interleaved dashes: equal delta_NN of several d stay visible
                ls = ":" if nd == 1 else (3 * j, (3, 3 * (nd - 1)))
                ax.axvline(dnn, color=c, ls=ls, lw=1.6, label=f"δ_NN theory, d={d}: {text}")
            else:
                ax.plot([], [], ls=":", color=c, label=f"δ_NN theory, d={d}: {text}")
    dalg = float(th["delta_alg"])
    if np.isfinite(dalg) and dalg > 0:
        ax.axvline(dalg, color="k", ls="-.", lw=1.2, label=f"δ_alg = {dalg:.3g}")
    delta_axis(ax, x)
    lo = min(x.min(), dalg if np.isfinite(dalg) and dalg > 0 else x.min())
    ax.set_xlim(lo / 1.15, x.max() * 1.15)
    ax.set_xlabel(r"sample ratio $\delta = n/d$")
    ax.set_ylabel(r"final overlap $\max_j \|P_{\rm hard} w_j\| / \|w_j\|$")
    ax.set_ylim(-0.02, 1.02)
    steps = int(ds["step"].values[-1])
    ax.set_title(f"{ds.attrs['experiment']}: {describe(sub)}; GD {steps} steps, "
                 f"{plural(sub.sizes['seed'], 'seed')} (mean ± sd, cut to [0, 1])")
    diverged_note(ax, sub["diverged"])
    ax.legend(loc="upper left", fontsize=8)
    return fig
