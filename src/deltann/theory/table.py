"""delta_NN vs delta_alg over targets x activations x losses x widths x schedules (the workflow's
thresholds.nc), each delta_NN +- err from ``threshold.delta_nn`` (the converged second-phase
point; docs/theory.md section 7), with its convergence status.

Designs: ``factorial`` computes every combination; ``one_at_a_time`` takes the first value of each
of activation, loss, width and schedule as the base point and varies one factor at a time (for each
target), leaving the other cells NaN with the reason "not computed".
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import xarray as xr

from ..io import provenance_attrs
from .threshold import delta_nn, estimator_args

__all__ = ["FACTORS", "combine_tables", "point_key", "table_points", "threshold_table"]

log = logging.getLogger(__name__)

# config key -> dataset dimension, in dataset order after "target"
FACTORS = {"activation": "activation", "loss": "loss", "width": "m", "schedule": "schedule"}


def _axes(cfg: Mapping, targets=None) -> dict:
    axes = {"target": list(targets if targets is not None else cfg["target"])}
    for key, dim in FACTORS.items():
        vals = cfg[key] if isinstance(cfg[key], list | tuple) else [cfg[key]]
        axes[dim] = [int(v) for v in vals] if key == "width" else list(vals)
    return axes


def table_points(cfg: Mapping, targets=None) -> list[tuple]:
    """Index tuples (into the axes of ``threshold_table``) that the design computes."""
    axes = _axes(cfg, targets)
    shape = [len(v) for v in axes.values()]
    if cfg.get("design", "factorial") == "factorial":
        return list(itertools.product(*[range(s) for s in shape]))
    pts = []
    for t in range(shape[0]):
        pts.append((t, 0, 0, 0, 0))
        for f in range(1, len(shape)):
            for i in range(1, shape[f]):
                idx = [t, 0, 0, 0, 0]
                idx[f] = i
                pts.append(tuple(idx))
    return pts


def threshold_table(cfg: Mapping, targets=None) -> xr.Dataset:
    """Dataset with delta_nn (target, activation, loss, m, schedule) and delta_alg (target).

    targets: compute only these targets (default: all of cfg["target"]); the workflow runs one
    job per target and joins them with ``combine_tables``.
    """
    axes = _axes(cfg, targets)
    shape = [len(v) for v in axes.values()]
    dnn, err, conv = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    dalg = np.full(shape[0], np.nan)
    status = np.full(shape, "not_computed", dtype=object)
    kw = estimator_args(cfg)
    base_point = kw.pop("point")
    reasons = {}
    points = table_points(cfg, targets)
    for count, idx in enumerate(points, 1):
        t, a, lo, m, sch = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        r = delta_nn(t, a, lo, m, d=int(cfg["d"]), point=replace(base_point, schedule=sch), **kw)
        log.info("[%d/%d] %s/%s/%s m=%d %s: delta_alg=%s delta_NN=%s +- %s (%s)", count,
                 len(points), t, a, lo, m, sch, r.delta_alg, r.delta_nn, r.delta_nn_err, r.reason)
        dnn[idx] = np.nan if r.delta_nn is None else r.delta_nn
        err[idx] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        conv[idx] = float(r.converged) if r.seeds else np.nan
        status[idx] = r.status
        dalg[idx[0]] = np.nan if r.delta_alg is None else r.delta_alg
        reasons[point_key(t, a, lo, m, sch)] = r.reason
    for idx in itertools.product(*[range(s) for s in shape]):
        key = point_key(*(axes[k][i] for k, i in zip(axes, idx, strict=True)))
        reasons.setdefault(key, "not computed (one_at_a_time design)")
    ds = xr.Dataset(
        {"delta_nn": (tuple(axes), dnn, {"long_name": "delta_NN: smallest delta with a negative "
                                         "theta-outlier at the converged second-phase point, "
                                         "mean over seeds (NaN: see reasons)", "units": "1"}),
         "delta_nn_err": (tuple(axes), err, {"long_name": "uncertainty of delta_NN: seed "
                                             "standard error and bisection half-bracket in "
                                             "quadrature", "units": "1"}),
         "delta_nn_converged": (tuple(axes), conv, {"long_name": "1 if every second-phase point "
                                                    "deciding delta_NN converged, 0 if not, NaN "
                                                    "where not computed", "units": "1"}),
         "delta_nn_status": (tuple(axes), status, {
             "long_name": "why delta_NN is or is not a number: value | none | unconverged | "
                          "disagree | not_applicable | not_computed (docs/theory.md section 7)",
             "units": "1"}),
         "delta_alg": ("target", dalg, {"long_name": "algorithmic threshold delta_alg",
                                        "units": "1"})},
        coords={k: (k, np.asarray(v), {"long_name": k, "units": "1"}) for k, v in axes.items()})
    ds.attrs.update(provenance_attrs("deltann delta_NN vs delta_alg", dict(cfg),
                                     f"base_seed={cfg['base_seed']}",
                                     "deltann.theory.table.threshold_table"))
    ds.attrs["reasons"] = json.dumps(reasons)
    ds.attrs["design"] = cfg.get("design", "factorial")
    ds.attrs["max_delta"] = float(max(cfg["delta_range"]))
    ds.attrs["d"] = int(cfg["d"])
    return ds


def point_key(t, a, lo, m, sch) -> str:
    """Key of one table cell in the ``reasons`` attribute."""
    return f"{t}/{a}/{lo}/m={m}/{sch}"


def combine_tables(parts: list[xr.Dataset], cfg: Mapping) -> xr.Dataset:
    """Join per-target tables along ``target`` (order as given), with the provenance of the
    whole ``cfg`` and the seed entropies and reasons of all parts."""
    if not parts:
        raise ValueError("combine_tables: no tables given")
    parts = [p.assign(delta_nn_status=p["delta_nn_status"].astype(object))
             if "delta_nn_status" in p else p for p in parts]  # <U5 + <U14 would truncate
    ds = xr.concat(parts, dim="target", data_vars="minimal", coords="minimal",
                   combine_attrs="override")
    ds.attrs = {}
    reasons = {}
    for p in parts:
        reasons.update(json.loads(p.attrs["reasons"]))
    ds.attrs.update(provenance_attrs("deltann delta_NN vs delta_alg", dict(cfg),
                                     f"base_seed={cfg['base_seed']}",
                                     "deltann.theory.table.combine_tables"))
    ds.attrs.update(reasons=json.dumps(reasons), design=parts[0].attrs["design"],
                    max_delta=parts[0].attrs["max_delta"],
                    d=parts[0].attrs.get("d", cfg.get("d")))
    return ds
