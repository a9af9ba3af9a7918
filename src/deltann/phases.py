"""Phases of a GD run read off its records, and the empirical learning threshold of a sweep.

A run that learns the hard direction goes through (i) a gradient-dominated phase in which the
gradient norm decays while the easy part (mean, second layer, easy directions) is fitted, (ii) a
plateau near a saddle where the gradient is smallest and the dynamics follow the most negative
Hessian direction, and (iii) the escape, when the hard overlap grows to O(1) and the risk drops.

- escape step tau_esc: first step where the hard overlap q(t) reaches ``level`` (default 0.5),
  log-linearly interpolated between the two records around the crossing (NaN: never reached);
- plateau step t_pl: the step of the smallest gradient norm among records before tau_esc;
- GD threshold delta_GD: the first delta where the seed-mean final overlap crosses ``level``
  (log-linear interpolation, as ``theory.curves.crossing``).
All functions take plain arrays on the record grid (steps ascending).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CELL_DIMS", "ESCAPE_LEVEL", "STUCK_QTOL", "cells", "last_finite", "escape_step",
           "escape_steps", "gd_threshold", "gd_transitions", "plateau_step", "plateau_steps",
           "seed_crossings"]

ESCAPE_LEVEL = 0.5
#: a run below ESCAPE_LEVEL whose hard overlap rose by at most this over its last doubling of
#: steps is flat ("stuck": train.stuck_qtol, the budget check's flat_tol)
STUCK_QTOL = 0.01


def escape_step(steps, overlap, level: float = ESCAPE_LEVEL) -> float:
    """First step where ``overlap`` >= level, interpolated in log(1 + t); NaN if never.

    steps, overlap: (R,) records. Non-finite records (after a divergence) count as not reached.
    """
    t = np.asarray(steps, float)
    q = np.asarray(overlap, float)
    hit = np.isfinite(q) & (q >= level)
    if not hit.any():
        return float("nan")
    i = int(np.argmax(hit))
    if i == 0:
        return float(t[0])
    x0, x1 = np.log1p(t[i - 1]), np.log1p(t[i])
    frac = (level - q[i - 1]) / (q[i] - q[i - 1]) if np.isfinite(q[i - 1]) else 1.0
    return float(np.expm1(x0 + (x1 - x0) * np.clip(frac, 0.0, 1.0)))


def plateau_step(steps, grad_norm, t_escape: float) -> float:
    """Step of the smallest gradient norm among records before ``t_escape`` (NaN if none)."""
    t = np.asarray(steps, float)
    g = np.asarray(grad_norm, float)
    ok = np.isfinite(g) & (t < t_escape) & (t > 0)
    if not np.isfinite(t_escape) or not ok.any():
        return float("nan")
    return float(t[ok][np.argmin(g[ok])])


def median_escape(tau, alive=None) -> np.ndarray:
    """Median escape step over the last axis of ``tau`` (NaN = never escaped), counting a run
    that never escaped as infinitely late; runs with ``alive`` False (diverged) are left out.
    NaN where the median run never escaped or no run is alive."""
    tau = np.asarray(tau, float)
    alive = np.ones(tau.shape, bool) if alive is None else np.asarray(alive, bool)
    late = np.where(np.isfinite(tau), tau, np.inf)
    out = np.full(tau.shape[:-1], np.nan)
    for idx in np.ndindex(*tau.shape[:-1]):
        runs = late[idx][alive[idx]]
        if runs.size:
            out[idx] = np.median(runs)
    return np.where(np.isfinite(out), out, np.nan)


def gd_threshold(deltas, final_overlap, level: float = ESCAPE_LEVEL) -> float:
    """First delta where the (seed-mean) final overlap crosses ``level``, log-linear
    interpolation; NaN if never, deltas[0] if already above there."""
    from .theory.curves import crossing

    return crossing(deltas, np.asarray(final_overlap, float) - level)


def last_finite(da, dim: str = "step"):
    """Last finite value along ``dim`` of a DataArray (NaN where none): a diverged or early-stopped
    run's last record."""
    import xarray as xr

    vals = np.moveaxis(da.values, da.get_axis_num(dim), -1)
    ok = np.isfinite(vals)
    idx = np.where(ok.any(-1), vals.shape[-1] - 1 - np.argmax(ok[..., ::-1], axis=-1), 0)
    out = np.take_along_axis(vals, idx[..., None], -1)[..., 0]
    out = np.where(ok.any(-1), out, np.nan)
    return xr.DataArray(out, dims=[x for x in da.dims if x != dim],
                        coords={k: v for k, v in da.coords.items() if dim not in v.dims})


#: the dimensions of a sweep that label one transition (the rest: delta, seed, step)
CELL_DIMS = ("target", "activation", "loss", "m", "d", "init_scale", "a_init")


def cells(da, dims=CELL_DIMS):
    """(labels, sub-array) for every combination of the ``dims`` that ``da`` has, labels as
    Python scalars (the rows of ``gd_transitions`` and ``deltann.finite_size``)."""
    keys = [k for k in dims if k in da.dims]
    for idx in np.ndindex(*[da.sizes[k] for k in keys]):
        sel = {k: da[k].values[i] for k, i in zip(keys, idx, strict=True)}
        yield {k: (v.item() if hasattr(v, "item") else v) for k, v in sel.items()}, da.sel(sel)


def seed_crossings(x, v, level: float = ESCAPE_LEVEL):
    """Crossings of ``level`` by a (delta, seed) DataArray ``v`` on the grid ``x``: the seed
    mean, its crossing, the index of the first grid point at or above level (-1: none), each
    seed's own crossing and the standard error of the finite ones (NaN if fewer than two)."""
    mean = v.mean("seed").values
    above = np.nonzero(mean >= level)[0]
    i = int(above[0]) if above.size else -1
    per_seed = [gd_threshold(x, v.isel(seed=s).values, level) for s in range(v.sizes["seed"])]
    fin = np.array([p for p in per_seed if np.isfinite(p)])
    sem = float(fin.std(ddof=1) / np.sqrt(fin.size)) if fin.size > 1 else float("nan")
    return mean, gd_threshold(x, mean, level), i, per_seed, sem


def gd_transitions(ds, level: float = ESCAPE_LEVEL) -> list[dict]:
    """GD's transition of a sweep, one dict per ``CELL_DIMS`` cell (target, activation, loss, m,
    d and the initialisation, where the sweep has them): ``delta_gd``
    where the seed-mean final hard overlap crosses ``level`` (log-linear), its grid bracket, the
    per-seed crossings and their standard error (the uncertainty reported with delta_gd), the
    seed-mean overlaps, whether the transition is below the grid and whether the mean stays
    above ``level`` after it crosses. Diverged runs are left out of the means."""
    q = last_finite(ds["hard_overlap"]).where(~ds["diverged"].astype(bool))
    x = ds["delta"].values
    out = []
    for sel, v in cells(q):
        mean, dgd, i, per_seed, sem = seed_crossings(x, v, level)
        out.append({**sel, "delta_gd": dgd,
                    "bracket": [float(x[i - 1]), float(x[i])] if i > 0 else None,
                    "below_grid": i == 0,  # already >= level at the lowest delta
                    # crosses back below level after the first crossing (seed noise, or runs
                    # still escaping at the last step)
                    "monotone": bool(i < 0 or (mean[i:] >= level).all()),
                    "mean_overlap": [float(m) for m in mean],
                    "seed_crossings": per_seed, "seed_sem": sem,
                    "seeds": int(v.sizes["seed"])})
    return out


def escape_steps(ds, level: float = ESCAPE_LEVEL):
    """tau_esc of every run of a sweep dataset (``hard_overlap`` over ``step``): DataArray with
    the sweep's other dimensions; NaN where a run never reached ``level``."""
    import xarray as xr

    return xr.apply_ufunc(lambda q: escape_step(ds["step"].values, q, level), ds["hard_overlap"],
                          input_core_dims=[["step"]], vectorize=True).rename("escape_step")


def plateau_steps(ds, t_escape):
    """t_pl of every run (``grad_norm`` over ``step``) given its escape step (DataArray)."""
    import xarray as xr

    return xr.apply_ufunc(lambda g, te: plateau_step(ds["step"].values, g, te), ds["grad_norm"],
                          t_escape, input_core_dims=[["step"], []], vectorize=True)
