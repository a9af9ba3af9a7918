"""Hessian eigenvalue histogram at a chosen GD step, lowest eigenvalues marked by theta overlap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import describe, nearest, relation, select, theory_delta_nn

REQUIRES = {
    "sweep": {"variables": ("eigval", "vec_eigval", "vec_hard_overlap", "hstep"),
              "dims": ("delta", "hstep", "eig", "vec"), "attrs": ("experiment",)},
    "theory": {"variables": ("delta_nn",), "dims": ("d",), "attrs": ()},
}


def draw(data, cfg):
    ds = data["sweep"]
    if "eigval" not in ds:
        raise KeyError("spectrum figure needs variable 'eigval' (set hessian.steps in the "
                       "experiment config)")
    sub = select(ds, cfg.get("select", {}), keep=("delta",))
    sub = sub.isel(seed=0) if "seed" in sub.dims else sub
    hsteps = sub["hstep"].values
    step = cfg.get("step")
    if step is None:
        step = hsteps[0]
    if step not in hsteps:
        raise KeyError(f"spectrum figure: step {step} not among Hessian steps {list(hsteps)}")
    deltas = sub["delta"].values
    dnn = theory_delta_nn(data.get("theory"), sub)
    shown = nearest(deltas, cfg.get("deltas") or [deltas.min(), deltas.max()])
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown) + 1, 5.2), squeeze=False,
                             layout="constrained")
    sc = None
    for ax, dl in zip(axes[0], shown, strict=True):
        r = sub.sel(delta=dl, hstep=step)
        ev = r["eigval"].values
        ev = ev[np.isfinite(ev)]
        if ev.size == 0:
            ax.text(0.5, 0.5, "no spectrum (diverged or Lanczos only)", ha="center",
                    transform=ax.transAxes)
            continue
        ax.hist(ev, bins=int(cfg.get("bins", 60)), density=True, color="0.6",
                label=f"{ev.size} eigenvalues")
        low = r["vec_eigval"].values
        ov = r["vec_hard_overlap"].values
        ok = np.isfinite(low)
        sc = ax.scatter(low[ok], np.zeros(ok.sum()), c=ov[ok], cmap="viridis", vmin=0, vmax=1,
                        marker="|", s=400, linewidths=2, zorder=3,
                        label=f"lowest {ok.sum()} (colour: overlap²)")
        if "th_density" in r and np.isfinite(r["th_density"]).any():
            ax.plot(r["th_lam"], r["th_density"], color="#D55E00", lw=1.5,
                    label="theory density (empirical kernel law)")
            ax.axvline(float(r["th_edge"]), color="#D55E00", ls="--", lw=1, label="theory edge")
            if np.isfinite(float(r["th_lambda"])):
                ax.plot(float(r["th_lambda"]), 0, marker="^", color="#D55E00", ms=10,
                        clip_on=False, zorder=4,
                        label=f"theory outlier (overlap² {float(r['th_overlap2']):.2f})")
        ax.set_xlabel(r"Hessian eigenvalue $\lambda$ (first-layer block)")
        ax.set_ylabel("density")
        ax.set_title(f"δ = {dl:g}{relation(dl, dnn)}\nstep {step}: λ_min = {ev.min():.3g}")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.9)  # head room for the inset
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), fontsize=8, ncol=1)
        _edge_inset(ax, ev, low[ok], ov[ok], r)
    if sc is not None:  # at least one panel has a spectrum
        fig.colorbar(sc, ax=axes[0].tolist(), label=r"eigenvector overlap$^2$ with hard subspace")
    seed = int(sub["seed"]) if "seed" in sub.coords and sub["seed"].ndim == 0 else 0
    fig.suptitle(f"{ds.attrs.get('experiment', '')}: {describe(sub)}, seed {seed}")
    return fig


def _edge_inset(ax, ev, low, ov, r) -> None:
    """Zoom on the lower edge: the lowest eigenvalues (coloured by overlap^2), the theory edge
    and outlier, so an outlier a hair below the bulk is visible."""
    if low.size == 0:
        return
    pts = [*low, float(r["th_edge"]) if "th_edge" in r else np.nan,
           float(r["th_lambda"]) if "th_lambda" in r else np.nan]
    pts = np.array([p for p in pts if np.isfinite(p)])
    lo, hi = pts.min(), pts.max()
    pad = 0.15 * (hi - lo) if hi > lo else 0.05 * max(abs(lo), 1e-3)
    ins = ax.inset_axes([0.56, 0.56, 0.42, 0.32])
    ins.scatter(low, np.zeros_like(low), c=ov, cmap="viridis", vmin=0, vmax=1, marker="|",
                s=300, linewidths=2)
    if "th_edge" in r and np.isfinite(float(r["th_edge"])):
        ins.axvline(float(r["th_edge"]), color="#D55E00", ls="--", lw=1)
    if "th_lambda" in r and np.isfinite(float(r["th_lambda"])):
        ins.plot(float(r["th_lambda"]), 0, marker="^", color="#D55E00", ms=8)
    ins.set_xlim(lo - pad, hi + pad)
    ins.set_yticks([])
    ins.tick_params(labelsize=8)
    ins.set_title("lower edge (zoom)", fontsize=8)
