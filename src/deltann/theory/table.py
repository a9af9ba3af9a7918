"""delta_NN vs delta_alg over targets x activations x losses x widths x schedules x
initialisations (init_scale, a_init): the workflow's thresholds.nc, each delta_NN +- err from
``threshold.delta_nn`` (the converged second-phase point; docs/theory.md section 7), with its
convergence status.

Designs: ``factorial`` computes every combination; ``one_at_a_time`` takes the first value of each
of activation, loss, width, schedule, init_scale and a_init as the base point and varies one factor
at a time (for each target), leaving the other cells NaN with the reason "not computed".
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
from ..sweep import INIT_DEFAULTS, init_key_parts, init_tags, parse_init_key_parts, parse_init_tags
from .threshold import SeedThreshold, combine_seeds, delta_nn, estimator_args

__all__ = ["FACTORS", "assemble_table", "cell_id", "cell_slice", "parse_cell", "parse_key",
           "parse_part", "part_id", "point_key", "table_cells", "table_points", "threshold_table"]

log = logging.getLogger(__name__)

# config key -> dataset dimension, in dataset order after "target"
FACTORS = {"activation": "activation", "loss": "loss", "width": "m", "schedule": "schedule",
           "init_scale": "init_scale", "a_init": "a_init"}


def _axes(cfg: Mapping, targets=None) -> dict:
    axes = {"target": list(targets if targets is not None else cfg["target"])}
    for key, dim in FACTORS.items():
        v = cfg.get(key, [INIT_DEFAULTS[key]] if key in INIT_DEFAULTS else None)
        vals = v if isinstance(v, list | tuple) else [v]
        axes[dim] = ([int(x) for x in vals] if key == "width" else
                     [float(x) for x in vals] if key in INIT_DEFAULTS else list(vals))
    return axes


def table_points(cfg: Mapping, targets=None) -> list[tuple]:
    """Index tuples (into the axes of ``threshold_table``) that the design computes."""
    axes = _axes(cfg, targets)
    shape = [len(v) for v in axes.values()]
    if cfg.get("design", "factorial") == "factorial":
        return list(itertools.product(*[range(s) for s in shape]))
    pts = []
    for t in range(shape[0]):
        pts.append((t,) + (0,) * (len(shape) - 1))
        for f in range(1, len(shape)):
            for i in range(1, shape[f]):
                idx = [t] + [0] * (len(shape) - 1)
                idx[f] = i
                pts.append(tuple(idx))
    return pts


_VAR_ATTRS = {
    "delta_nn": "delta_NN: smallest delta with a negative theta-outlier at the converged "
                "second-phase point, mean over seeds (NaN: see reasons)",
    "delta_nn_err": "uncertainty of delta_NN: seed standard error and bisection half-bracket in "
                    "quadrature",
    "delta_nn_converged": "1 if every second-phase point deciding delta_NN converged, 0 if not, "
                          "NaN where not computed",
    "delta_nn_status": "why delta_NN is or is not a number: value | none | unconverged | "
                       "disagree | not_applicable | not_computed (docs/theory.md section 7)",
}
_CELL_VARS = ("delta_nn", "delta_nn_err", "delta_nn_converged", "delta_nn_status")


def _empty(axes: dict) -> dict:
    shape = [len(v) for v in axes.values()]
    out = {k: np.full(shape, np.nan) for k in _CELL_VARS[:3]}
    out["delta_nn_status"] = np.full(shape, "not_computed", dtype=object)
    return out


def _dataset(axes: dict, arrs: dict, dalg, reasons: dict, cfg: Mapping, source: str,
             entropy: str) -> xr.Dataset:
    """The thresholds table of the contract from filled arrays (cells not computed: reason)."""
    shape = [len(v) for v in axes.values()]
    for idx in itertools.product(*[range(s) for s in shape]):
        key = point_key(*(axes[k][i] for k, i in zip(axes, idx, strict=True)))
        reasons.setdefault(key, "not computed (one_at_a_time design)")
    arrs["delta_nn_status"] = np.vectorize(str, otypes=[object])(arrs["delta_nn_status"])
    data = {k: (tuple(axes), arrs[k], {"long_name": _VAR_ATTRS[k], "units": "1"})
            for k in _CELL_VARS}
    data["delta_alg"] = ("target", dalg, {"long_name": "algorithmic threshold delta_alg",
                                          "units": "1"})
    ds = xr.Dataset(data, coords={k: (k, np.asarray(v), {"long_name": k, "units": "1"})
                                  for k, v in axes.items()})
    ds.attrs.update(provenance_attrs("deltann delta_NN vs delta_alg", dict(cfg), entropy, source))
    ds.attrs["reasons"] = json.dumps(reasons)
    ds.attrs["design"] = cfg.get("design", "factorial")
    ds.attrs["max_delta"] = float(max(cfg["delta_range"]))
    ds.attrs["d"] = int(cfg["d"])
    return ds


def threshold_table(cfg: Mapping, targets=None) -> xr.Dataset:
    """Dataset with delta_nn, delta_nn_err, delta_nn_converged, delta_nn_status (target,
    activation, loss, m, schedule, init_scale, a_init) and delta_alg (target), every cell of the
    design computed in this process. The workflow computes one cell per job (``cell_slice``)
    and joins them with ``assemble_table``.

    targets: compute only these targets (default: all of cfg["target"]).
    """
    axes = _axes(cfg, targets)
    arrs = _empty(axes)
    dalg = np.full(len(axes["target"]), np.nan)
    kw = estimator_args(cfg)
    base_point = kw.pop("point")
    if cfg.get("seed_ids") is not None:  # a part of a cell: only these seeds
        kw["seed_ids"] = [int(v) for v in cfg["seed_ids"]]
    reasons, scans = {}, {}
    points = table_points(cfg, targets)
    for count, idx in enumerate(points, 1):
        t, a, lo, m, sch, isc, ain = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        pc = replace(base_point, schedule=sch, init_scale=isc, a_init=ain)
        r = delta_nn(t, a, lo, m, d=int(cfg["d"]), point=pc, **kw)
        key = point_key(t, a, lo, m, sch, isc, ain)
        log.info("[%d/%d] %s: delta_alg=%s delta_NN=%s +- %s (%s)", count, len(points), key,
                 r.delta_alg, r.delta_nn, r.delta_nn_err, r.reason)
        arrs["delta_nn"][idx] = np.nan if r.delta_nn is None else r.delta_nn
        arrs["delta_nn_err"][idx] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        arrs["delta_nn_converged"][idx] = float(r.converged) if r.seeds else np.nan
        arrs["delta_nn_status"][idx] = r.status
        dalg[idx[0]] = np.nan if r.delta_alg is None else r.delta_alg
        reasons[key] = r.reason
        scans[key] = [st.to_dict() for st in r.seeds]
    ds = _dataset(axes, arrs, dalg, reasons, cfg, "deltann.theory.table.threshold_table",
                  f"base_seed={cfg['base_seed']}")
    ds.attrs["seed_scans"] = json.dumps(scans)  # what assemble_table joins across parts
    return ds


def point_key(t, a, lo, m, sch, init_scale=1.0, a_init=1.0) -> str:
    """Key of one table cell in the ``reasons`` attribute: ``t/a/lo/m=<m>/<schedule>``, then
    ``/i=<init_scale>`` and ``/a=<a_init>`` where they are not the default 1."""
    return "/".join([t, a, lo, f"m={m}", sch, *init_key_parts(init_scale, a_init)])


def parse_key(key: str) -> tuple:
    """Inverse of ``point_key``: (t, a, lo, m, sch, init_scale, a_init)."""
    t, a, lo, m, sch, *rest = key.split("/")
    init = parse_init_key_parts(rest)
    return t, a, lo, int(m.removeprefix("m=")), sch, init["init_scale"], init["a_init"]


def part_id(cell: str, seed_ids=None) -> str:
    """File-name id of one job of a cell: the cell id (all seeds), or ``<cell>__s<a>-<b>`` for
    seeds a..b (a cell split to fit the per-job time limit)."""
    return cell if seed_ids is None else f"{cell}__s{min(seed_ids)}-{max(seed_ids)}"


def parse_part(part: str) -> tuple[str, list[int] | None]:
    """Inverse of ``part_id``: (cell id, seed ids or None)."""
    head, _, tail = part.rpartition("__s")
    if head and tail and "-" in tail and head.count("__") >= 3:
        a, b = (int(v) for v in tail.split("-"))
        return head, list(range(a, b + 1))
    return part, None


def cell_id(a, lo, m, sch, init_scale=1.0, a_init=1.0) -> str:
    """File-name id of one cell of a target's table: ``<activation>__<loss>__m<m>__<schedule>``
    and, where the initialisation is not the default, ``__i<init_scale>__a<a_init>``."""
    return f"{a}__{lo}__m{int(m)}__{sch}" + init_tags(init_scale, a_init)


def parse_cell(cell: str) -> tuple[str, str, int, str, float, float]:
    """Inverse of ``cell_id``: (activation, loss, m, schedule, init_scale, a_init)."""
    a, lo, m, sch, *rest = cell.split("__")
    init = parse_init_tags(rest)
    return a, lo, int(m[1:]), sch, init["init_scale"], init["a_init"]


def table_cells(cfg: Mapping, target: str) -> list[str]:
    """Ids of the cells the design computes for ``target`` (one workflow job each)."""
    axes = _axes(cfg, [target])
    return [cell_id(*(axes[k][i] for k, i in list(zip(axes, idx, strict=True))[1:]))
            for idx in table_points(cfg, [target])]


def cell_slice(cfg: Mapping, target: str, cell: str) -> dict:
    """The config of one cell's job (a cell id or a ``part_id``): single-valued factors,
    factorial design (a one-cell table), and the part's ``seed_ids`` if it has some."""
    cell, seed_ids = parse_part(cell)
    a, lo, m, sch, isc, ain = parse_cell(cell)
    out = {**dict(cfg), "target": [target], "activation": [a], "loss": [lo], "width": [m],
           "schedule": [sch], "init_scale": [isc], "a_init": [ain], "design": "factorial"}
    if seed_ids is not None:
        out["seed_ids"] = seed_ids
    return out


def assemble_table(parts: list[xr.Dataset], cfg: Mapping) -> xr.Dataset:
    """The whole thresholds table of ``cfg`` from computed cells or parts of cells (one-cell
    tables, any order): the seed scans of a cell's parts joined (``combine_seeds``), values
    placed on the full axes, cells the design skips marked not computed, the reasons and the
    seed entropies of all parts, provenance of the whole ``cfg``."""
    if not parts:
        raise ValueError("assemble_table: no cells given")
    axes = _axes(cfg)
    arrs = _empty(axes)
    dalg = np.full(len(axes["target"]), np.nan)
    reasons: dict = {}
    scans: dict = {}
    for p in parts:
        for idx in itertools.product(*[range(n) for n in p["delta_nn"].shape]):
            at = {**INIT_DEFAULTS,  # a part without the initialisation dims: the default
                  **{k: p[k].values[i] for k, i in zip(p["delta_nn"].dims, idx, strict=True)}}
            pos = tuple(list(map(str, axes[k])).index(str(at[k])) for k in axes)
            for k in _CELL_VARS:
                if k in p:
                    arrs[k][pos] = p[k].values[idx]  # statuses made str in _dataset
        for t, v in zip(p["target"].values, p["delta_alg"].values, strict=True):
            dalg[list(axes["target"]).index(str(t))] = v
        reasons.update(json.loads(p.attrs["reasons"]))
        for key, seeds in json.loads(p.attrs.get("seed_scans", "{}")).items():
            scans.setdefault(key, []).extend(seeds)
    lo_hi = tuple(float(v) for v in cfg["delta_range"])
    for key, seeds in scans.items():
        at = parse_key(key)
        sts = [SeedThreshold.from_dict(x) for x in seeds]
        if not sts:  # not applicable: the cell's values stand
            continue
        r = combine_seeds(*at[:3], sts, int(cfg["seeds"]), lo_hi, int(cfg["d"]))
        pos = tuple(vals.index(v) for vals, v in zip(axes.values(), at, strict=True))
        arrs["delta_nn"][pos] = np.nan if r.delta_nn is None else r.delta_nn
        arrs["delta_nn_err"][pos] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        arrs["delta_nn_converged"][pos] = float(r.converged) if r.seeds else np.nan
        arrs["delta_nn_status"][pos] = r.status
        reasons[key] = r.reason
    reasons = {k: v for k, v in reasons.items() if not v.startswith("not computed")}
    ds = _dataset(axes, arrs, dalg, reasons, cfg, "deltann.theory.table.assemble_table",
                  "; ".join(sorted({str(p.attrs.get("seed_entropy", "")) for p in parts})))
    ds.attrs["seed_scans"] = json.dumps(scans)
    return ds
