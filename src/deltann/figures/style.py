"""One style for every figure: Agg backend, Okabe-Ito colour-blind-safe palette, labelled axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from ..phases import last_finite  # noqa: E402, F401  (re-exported for the figure modules)

__all__ = ["PALETTE", "apply_style", "describe", "last_finite", "nearest", "relation", "select",
           "theory_at", "theory_delta_nn", "delta_nn_label", "diverged_note", "delta_axis",
           "clipped_sd", "plural"]

# Okabe & Ito (2008), colour-blind safe.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}


def apply_style() -> None:
    plt.rcParams.update(RC)


def select(ds: xr.Dataset, fixed: dict, keep=()) -> xr.Dataset:
    """Fix sweep axes: ``fixed[axis]`` where given, else the first value for axes not in ``keep``.

    Axes in ``keep`` stay dimensions (length 1 when fixed).
    """
    from ..sweep import SWEEP_AXES

    sel = {}
    for ax in SWEEP_AXES:
        if ax not in ds.dims:
            continue
        if ax in fixed:
            if fixed[ax] not in ds[ax].values:
                raise KeyError(f"figure select {ax}={fixed[ax]!r} not in sweep values "
                               f"{list(ds[ax].values)}")
            sel[ax] = [fixed[ax]] if ax in keep else fixed[ax]  # a kept axis stays a dimension
        elif ax not in keep:
            sel[ax] = ds[ax].values[0]
    return ds.sel(sel)


def describe(ds: xr.Dataset, axes=("target", "activation", "loss", "m", "d")) -> str:
    """Short text of the fixed coordinates, for titles."""
    parts = []
    for ax in axes:
        if ax in ds.coords and ds[ax].ndim == 0:
            v = ds[ax].item()
            parts.append(f"{ax}={v:g}" if isinstance(v, float) else f"{ax}={v}")
    return ", ".join(parts)


def nearest(values: np.ndarray, wanted) -> list:
    """Values of ``values`` nearest to each wanted one (exact when present)."""
    return [values[np.argmin(np.abs(values - w))] for w in wanted]


def delta_axis(ax, values, axis: str = "x") -> None:
    """Log delta axis labelled at the swept values (plain numbers, no 10^k ticks)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    vals = sorted({float(v) for v in np.ravel(values) if np.isfinite(v) and v > 0})
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if 0 < len(vals) <= 12:
        a.set_major_locator(FixedLocator(vals))
        a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.set_minor_locator(NullLocator())


def clipped_sd(mean, sd, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Asymmetric error bars mean +- sd cut to [lo, hi] (an overlap cannot exceed 1): (2, N)."""
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    return np.vstack([mean - np.maximum(lo, mean - sd), np.minimum(hi, mean + sd) - mean])


def plural(n: int, word: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def diverged_note(ax, diverged: xr.DataArray, what: str = "runs") -> int:
    """Say in the axes how many of the drawn runs diverged (they are not drawn as data); a large
    centred note when all did. Returns the number diverged."""
    div = np.asarray(diverged.values, bool)
    k, n = int(div.sum()), int(div.size)
    if k == n and n:
        ax.text(0.5, 0.5, f"all {n} {what} diverged:\nnothing to draw (see sweep.nc 'diverged')",
                transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#D55E00")
    elif k:
        ax.text(0.99, 0.02, f"{k} of {n} {what} diverged (not drawn)", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="#D55E00")
    return k


def theory_at(th, sub):
    """theory.nc ``th`` at the coordinates (target, activation, loss, m, d, initialisation) that
    ``sub`` fixes."""
    sel = {k: sub[k].item() for k in ("target", "activation", "loss", "m", "d", "init_scale",
                                      "a_init")
           if k in th.dims and k in sub.coords and sub[k].ndim == 0}
    return th.sel(sel)


def theory_delta_nn(th, sub) -> float:
    """delta_NN of theory.nc ``th`` at the fixed coordinates of ``sub`` (NaN if none/ambiguous)."""
    if th is None:
        return float("nan")
    try:
        v = theory_at(th, sub)["delta_nn"]
    except KeyError:
        return float("nan")
    return float(v) if v.ndim == 0 else float("nan")


def delta_nn_label(th, d) -> tuple[float, str]:
    """(delta_NN, legend text) of theory.nc ``th`` (fixed but for d) at size d: 'x.xx +- e' or
    why there is none ('not converged' / 'no negative outlier up to ...')."""
    r = th.sel(d=d)
    dnn = float(r["delta_nn"])
    if np.isfinite(dnn):
        err = float(r["delta_nn_err"]) if "delta_nn_err" in r else float("nan")
        return dnn, f"{dnn:.2f}" + (f" ± {err:.2f}" if np.isfinite(err) else "")
    conv = float(r["delta_nn_converged"]) if "delta_nn_converged" in r else float("nan")
    if conv == 0:
        return dnn, "none (second-phase point not converged)"
    return dnn, "none (no negative θ-outlier in the δ range)"


def relation(delta: float, dnn: float) -> str:
    """' < delta_NN = x (theory)' or '' when delta_NN is unknown."""
    if not np.isfinite(dnn):
        return ""
    return f" {'<' if delta < dnn else '≥'} δ_NN = {dnn:.2f} (theory)"
