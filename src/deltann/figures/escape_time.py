"""Escape time vs delta - delta_NN(d): how long GD sits on the plateau before learning the hard
direction, per d, with the linearised escape time from the theory's outlier eigenvalue.

Linearised escape: along an eigenvector with eigenvalue lam < 0 the hard component of W grows like
(1 + eta_W |lam|)^t from its initial size ~ 1/sqrt(d), so q(t) reaches ``level`` after
tau_lin = ln(level sqrt(d)) / ln(1 + eta_W |lam_out|) steps (eta_W = the W learning rate).
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np

from ..phases import ESCAPE_LEVEL, escape_steps, median_escape
from .style import PALETTE, delta_axis, describe, diverged_note, plural, select, theory_at

MARKERS = "osD^v<>"
REQUIRES = {
    "sweep": {"variables": ("hard_overlap", "diverged", "step"),
              "dims": ("d", "delta", "seed", "step"), "attrs": ("experiment", "config")},
    "theory": {"variables": ("delta_nn", "th_lambda"), "dims": ("d", "delta", "seed"),
               "attrs": ("second_phase_point",)},
}


def eta_w(config_json: str, m: int) -> float:
    """W learning rate of the experiment's GD (``TrainConfig.learning_rates``)."""
    from ..train import TrainConfig

    tr = json.loads(config_json)["train"]
    return TrainConfig(**tr).learning_rates(int(m))[0]


def draw(data, cfg):
    ds, th = data["sweep"], data["theory"]
    level = float(cfg.get("level", ESCAPE_LEVEL))
    sub = select(ds, cfg.get("select", {}), keep=("d", "delta", "seed"))
    th = theory_at(th, sub)
    m = int(sub["m"]) if "m" in sub.coords else 1
    eta = eta_w(ds.attrs["config"], m)
    budget = float(ds["step"].values[-1])
    div = sub["diverged"].astype(bool)
    tau = escape_steps(sub, level).where(~div)
    fig, (axf, ax) = plt.subplots(2, 1, figsize=(6.2, 5.4), sharex=True, layout="constrained",
                                  gridspec_kw={"height_ratios": [1, 2.6]})
    censored = False
    ds_th = [d for d in sub["d"].values if d in th["d"].values]
    shift = any(np.isfinite(float(th["delta_nn"].sel(d=d))) for d in ds_th)
    for j, d in enumerate(sub["d"].values):
        c = PALETTE[j % len(PALETTE)]
        mk = MARKERS[j % len(MARKERS)]
        if shift and (d not in ds_th or not np.isfinite(float(th["delta_nn"].sel(d=d)))):
            continue
        dnn = float(th["delta_nn"].sel(d=d)) if shift else 0.0
        t = tau.sel(d=d)
        x = t["delta"].values - dnn
        escaped = np.isfinite(t.values)  # (delta, seed)
        alive = ~div.sel(d=d).values  # diverged runs are neither escaped nor stuck
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (escaped & alive).sum(axis=1) / alive.sum(axis=1)
        axf.plot(x, frac, "-", marker=mk, color=c, label=f"d={d}")
        for s in range(t.sizes["seed"]):
            v = t.isel(seed=s).values
            ax.plot(x, v, mk, color=c, alpha=0.45, ms=4, mfc="none")
            miss = ~np.isfinite(v) & alive[:, s]
            if miss.any():
                censored = True
                ax.plot(x[miss], np.full(miss.sum(), budget), "^", color=c, ms=6, alpha=0.7)
        med = median_escape(t.values, alive)  # never-escaped runs count as infinitely late
        ax.plot(x, med, "-", marker=mk, color=c,
                label=f"GD median, d={d}" + (f" (δ_NN={dnn:.2f})" if shift else ""))
        if not shift:
            continue
        lam = th["th_lambda"].sel(d=d).mean("seed")
        xs = lam["delta"].values - dnn
        ok = np.isfinite(lam.values) & (lam.values < 0) & (xs >= 0)
        if ok.any():
            tl = np.log(level * np.sqrt(d)) / np.log1p(eta * np.abs(lam.values[ok]))
            ax.plot(xs[ok], tl, "--", color=c, lw=1.2,
                    label=f"linearised escape from theory outlier, d={d}")
    axf.set_ylabel("fraction of\nseeds escaped")
    axf.set_ylim(-0.05, 1.05)
    if shift:
        axf.axvline(0, color="k", lw=0.8, ls=":")
    axf.legend(loc="lower right", fontsize=8)
    if censored:
        ax.plot([], [], "^", color="0.3", label=f"no escape within {budget:g} steps")
    ax.set_yscale("log")
    if shift:
        ax.axvline(0, color="k", lw=0.8, ls=":")
        ax.set_xlabel(r"$\delta - \delta_{\rm NN}(d)$  (theory $\delta_{\rm NN}$ at each d)")
    else:
        delta_axis(ax, sub["delta"].values)
        ax.set_xlabel(r"sample ratio $\delta$  (theory $\delta_{\rm NN}$ not defined at any d: "
                      "see theory.nc reasons)")
    ax.set_ylabel(rf"escape step $\tau$: first $t$ with overlap $\geq {level:g}$")
    axf.set_title(f"{ds.attrs['experiment']}: {describe(sub)}; η_W={eta:g}, "
                  f"{plural(sub.sizes['seed'], 'seed')} (hollow: single seeds)")
    diverged_note(ax, div)
    ax.legend(loc="best", fontsize=8)
    return fig
