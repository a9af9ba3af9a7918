"""Theory at the converged second-phase point for an experiment (the workflow's theory.nc).

For every (target, activation, loss, m, init_scale, a_init) of the experiment, every size d of
``theory.d``, every delta of ``theory.deltas`` and seed: the converged second-phase point
(``second_phase``; the experiment's schedule, that initialisation, common random numbers per
seed), then record

* theory (empirical kernel law at that point): bulk edge, mu(edge), nu = mu(min(edge, 0)), the
  outlier lam*, overlap^2, and whether the point converged (with its iteration count);
* simulation (dense eigh of the same network Hessian): the theta-carrying eigenvalue among the
  lowest three, its overlap^2 with the hard subspace, the lowest bulk eigenvalue.

delta_NN(d) +- err and its convergence status come from the one estimator
``threshold.delta_nn`` with the theory config's estimator keys (docs/theory.md section 7) -- the
same value thresholds.nc and ``deltann threshold`` give for the same arguments.

The workflow may split the work into parts (``theory_curves(cfg, part)``, ``Part``: the curve
points of one d and seed, or some of its deltas, and/or that seed's estimator scans at d) joined
by ``combine_parts``; the result is the same theory.nc.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import hessian as hs
from ..activations import get_activation
from ..io import provenance_attrs
from ..losses import get_loss
from ..sweep import init_key_parts, parse_init_key_parts
from .alg import delta_alg
from .network import applicability
from .second_phase import PointConfig, converged_point
from .threshold import SeedThreshold, combine_seeds, delta_nn, estimator_args

__all__ = ["Part", "theory_curves", "combine_parts", "crossing", "point_config",
           "dense_theta_eigen", "CURVE_VARS", "EST_DIMS"]

CURVE_VARS = ("th_edge", "th_mu_edge", "th_nu", "th_lambda", "th_overlap2", "th_converged",
              "th_iterations", "sim_lambda", "sim_overlap2", "sim_edge")

log = logging.getLogger(__name__)

_ATTRS = {
    "th_edge": ("theory: lower bulk edge of the Hessian at the second-phase point", "1"),
    "th_mu_edge": ("theory: mu(lam_edge), outlier exists iff > 0", "1"),
    "th_nu": ("theory: nu = mu(min(lam_edge, 0)), negative outlier exists iff > 0", "1"),
    "th_converged": ("1 if the second-phase point converged within the budget, else 0", "1"),
    "th_iterations": ("iterations after the transient at the last convergence check", "1"),
    "th_lambda": ("theory: outlier eigenvalue along the hard directions", "1"),
    "th_overlap2": ("theory: squared overlap of the outlier eigenvector with the hard subspace",
                    "1"),
    "sim_lambda": ("simulation: theta-carrying eigenvalue among the lowest three", "1"),
    "sim_overlap2": ("simulation: its squared overlap with the hard subspace", "1"),
    "sim_edge": ("simulation: lowest bulk eigenvalue (theta-carrying one removed)", "1"),
    "delta_nn": ("delta_NN: smallest delta with a negative theta-outlier at the converged "
                 "second-phase point, mean over seeds (NaN: see reasons)", "1"),
    "delta_nn_err": ("uncertainty of delta_NN: seed standard error and bisection half-bracket "
                     "in quadrature", "1"),
    "delta_nn_converged": ("1 if every second-phase point deciding delta_NN converged", "1"),
    "delta_nn_status": ("why delta_NN is or is not a number: value | none | unconverged | "
                        "disagree | not_applicable (docs/theory.md section 7)", "1"),
    "delta_alg": ("algorithmic threshold delta_alg of the target", "1"),
}


def crossing(deltas, mu) -> float:
    """First delta where mu goes from <= 0 to > 0 (log-linear interpolation); NaN if never,
    deltas[0] if mu > 0 already there."""
    deltas, mu = np.asarray(deltas, float), np.asarray(mu, float)
    ok = np.isfinite(mu)
    deltas, mu = deltas[ok], mu[ok]
    if mu.size == 0 or not (mu > 0).any():
        return float("nan")
    i = int(np.argmax(mu > 0))
    if i == 0:
        return float(deltas[0])
    x0, x1 = np.log(deltas[i - 1]), np.log(deltas[i])
    return float(np.exp(x0 + (x1 - x0) * (-mu[i - 1]) / (mu[i] - mu[i - 1])))


def point_config(config_slice: Mapping, **init) -> PointConfig:
    """The experiment's second-phase point: schedule from ``train``, the first phase's learning
    rate, method, budget and tolerances from ``theory``, and the initialisation ``init``
    (init_scale=, a_init=) or else the experiment's, which must then be a single value each."""
    for k in ("init_scale", "a_init"):
        if k not in init:
            vals = config_slice.get(k, [1.0])
            if len(vals) != 1:
                raise ValueError(f"experiment {config_slice.get('experiment')!r}: {k} = {vals}; "
                                 "one initialisation is needed here")
            init[k] = float(vals[0])
    return PointConfig.from_mapping({**config_slice["train"], **config_slice["theory"], **init})


def dense_theta_eigen(sp, activation: str, loss: str) -> tuple[float, float, float]:
    """Dense eigh of the W-block Hessian at a point: (theta-carrying eigenvalue among the lowest
    three, its overlap^2 with the hard subspace, the lowest other eigenvalue)."""
    spec = hs.spectrum(sp.params, sp.X, sp.y, get_activation(activation), get_loss(loss),
                       n_vecs=3, method="dense")
    ov = hs.eigvec_overlaps(spec.eigvecs, sp.U, sp.params.m).sum(axis=(1, 2))
    i = int(np.argmax(ov[:3]))
    return float(spec.eigvals[i]), float(ov[i]), float(np.delete(spec.eigvals, i)[0])


def _one(target, activation, loss, m, d, delta, pc, seed, base_seed, noise):
    cp = converged_point(target, activation, loss, m, d, delta, pc, seed=seed,
                         base_seed=base_seed, noise=noise)
    r = cp.last
    return (r.edge, r.mu_edge, r.mu_neg, r.lam, r.overlap2 if r.exists else 0.0,
            float(cp.converged), r.t, *dense_theta_eigen(cp.point, activation, loss))


#: dimensions of delta_NN(d) in theory.nc; the curves add (delta, seed)
EST_DIMS = ("target", "activation", "loss", "m", "init_scale", "a_init", "d")
_NE = len(EST_DIMS)


def _axes(config_slice: Mapping) -> dict:
    tc = config_slice["theory"]
    return {"target": list(config_slice["target"]),
            "activation": list(config_slice["activation"]),
            "loss": list(config_slice["loss"]), "m": [int(v) for v in config_slice["width"]],
            **{k: [float(v) for v in config_slice.get(k, [1.0])] for k in ("init_scale", "a_init")},
            "d": [int(v) for v in tc["d"]], "delta": [float(v) for v in tc["deltas"]],
            "seed": list(range(int(tc["seeds"])))}


def _key(t, a, lo, m, isc, ain, d) -> str:
    """Key of one delta_NN(d) cell in ``reasons`` / ``seed_scans``: ``t/a/lo/m=<m>/d=<d>``, with
    ``/i=<init_scale>`` and ``/a=<a_init>`` before ``d=`` where they are not the default 1."""
    return "/".join([t, a, lo, f"m={m}", *init_key_parts(isc, ain), f"d={d}"])


def _parse_key(key: str) -> tuple:
    t, a, lo, m, *rest, d = key.split("/")
    init = parse_init_key_parts(rest)
    return (t, a, lo, int(m.removeprefix("m=")), init["init_scale"], init["a_init"],
            int(d.removeprefix("d=")))


@dataclass(frozen=True)
class Part:
    """One job's share of theory.nc: at size d and seed, the curve points of the deltas with
    index in ``curves`` (None: all) and, if ``scan``, the estimator's scans of that seed."""

    d: int
    seed: int
    curves: tuple[int, ...] | None = None
    scan: bool = True

    @property
    def id(self) -> str:
        head = f"d{self.d}_s{self.seed}"
        if self.curves is None and self.scan:
            return head
        if not self.curves and self.scan:
            return f"{head}_scan"
        if self.curves and not self.scan:
            return f"{head}_c{min(self.curves)}-{max(self.curves)}"
        raise ValueError(f"part {self}: no id for this combination")

    @classmethod
    def parse(cls, part: str) -> Part | None:
        """``all`` -> None; ``d<d>_s<seed>[_scan|_c<i>-<j>]`` -> Part."""
        if part == "all":
            return None
        d, rest = part.split("_", 1)
        s, _, what = rest.partition("_")
        base = {"d": int(d.removeprefix("d")), "seed": int(s.removeprefix("s"))}
        if not what:
            return cls(**base)
        if what == "scan":
            return cls(**base, curves=(), scan=True)
        a, b = (int(v) for v in what.removeprefix("c").split("-"))
        return cls(**base, curves=tuple(range(a, b + 1)), scan=False)


def theory_curves(config_slice: Mapping, part: Part | None = None) -> xr.Dataset:
    """theory.nc of one experiment (see module docstring), or only one ``Part`` of it (the
    other entries NaN; its scans in the ``seed_scans`` attribute, for ``combine_parts``)."""
    tc = config_slice["theory"]
    axes = _axes(config_slice)
    shape = [len(v) for v in axes.values()]
    names = list(CURVE_VARS)
    arrs = {k: np.full(shape, np.nan) for k in names}
    pcs = {(isc, ain): point_config(config_slice, init_scale=isc, a_init=ain)
           for isc in axes["init_scale"] for ain in axes["a_init"]}
    kw = estimator_args({**tc, "base_seed": config_slice["base_seed"]})
    kw.pop("point")
    if part is not None:
        kw["seed_ids"] = [int(part.seed)]
    scans = {}
    est_shape = shape[:_NE]
    est = {k: np.full(est_shape, np.nan) for k in ("delta_nn", "delta_nn_err",
                                                   "delta_nn_converged")}
    status = np.full(est_shape, "not_applicable", dtype=object)
    reasons = {}
    base = int(config_slice["base_seed"])
    for idx in itertools.product(*[range(s) for s in shape]):
        t, a, lo, m, isc, ain, d, dl, s = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        if part is not None and ((d, s) != (part.d, part.seed) or (
                part.curves is not None and idx[_NE] not in part.curves)):
            continue
        why = applicability(t, a, lo)
        if why:
            reasons[f"{t}/{a}/{lo}"] = why
            continue
        vals = _one(t, a, lo, m, d, dl, pcs[isc, ain], s, base, float(config_slice["noise"]))
        log.info("theory %s delta=%g seed=%d: edge %.4g nu %.3g lam %.4g ov2 %.3f converged %d "
                 "(%d it) | sim lam %.4g ov2 %.3f", _key(t, a, lo, m, isc, ain, d), dl, s,
                 vals[0], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8])
        for k, v in zip(names, vals, strict=True):
            arrs[k][idx] = v
    for idx in itertools.product(*[range(s) for s in est_shape]):
        t, a, lo, m, isc, ain, d = (axes[k][i] for k, i in zip(EST_DIMS, idx, strict=True))
        if applicability(t, a, lo) or (part is not None and (d != part.d or not part.scan)):
            continue
        r = delta_nn(t, a, lo, m, d=d, point=pcs[isc, ain], noise=float(config_slice["noise"]),
                     **kw)
        key = _key(t, a, lo, m, isc, ain, d)
        scans[key] = [st.to_dict() for st in r.seeds]
        log.info("delta_NN %s: %s +- %s (%s)", key, r.delta_nn, r.delta_nn_err, r.reason)
        est["delta_nn"][idx] = np.nan if r.delta_nn is None else r.delta_nn
        est["delta_nn_err"][idx] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        est["delta_nn_converged"][idx] = float(r.converged)
        status[idx] = r.status
        reasons[key] = r.reason
    return _dataset(config_slice, axes, arrs, est, status, reasons, scans,
                    "deltann.theory.curves.theory_curves", next(iter(pcs.values())))


def _dataset(config_slice, axes, arrs, est, status, reasons, scans, source, pc) -> xr.Dataset:
    base = int(config_slice["base_seed"])
    dims = tuple(axes)
    ds = xr.Dataset({k: (dims, v) for k, v in arrs.items()},
                    coords={k: (k, np.asarray(v)) for k, v in axes.items()})
    for k, v in est.items():
        ds[k] = (dims[:_NE], v)
    ds["delta_nn_status"] = (dims[:_NE], status)
    ds["delta_alg"] = ("target", np.array([delta_alg(t, config_slice["noise"]).value or np.nan
                                           for t in axes["target"]], dtype=float))
    for k, (ln, u) in _ATTRS.items():
        ds[k].attrs.update(long_name=ln, units=u)
    from ..pipeline import VAR_ATTRS

    for k in axes:
        ds[k].attrs.update(long_name=VAR_ATTRS[k][0], units=VAR_ATTRS[k][1])
    ds.attrs.update(provenance_attrs(f"deltann theory curves {config_slice['experiment']}",
                                     dict(config_slice), f"base_seed={base}", source))
    ds.attrs["experiment"] = config_slice["experiment"]
    ds.attrs["reasons"] = json.dumps(reasons)
    ds.attrs["seed_scans"] = json.dumps(scans)
    ds.attrs["second_phase_point"] = (f"converged: {pc.describe()}; theory on the empirical law "
                                      "of (K_i, z_i); common random numbers across delta; "
                                      "initialisation per (init_scale, a_init)")
    return ds


def combine_parts(parts: list[xr.Dataset], config_slice: Mapping) -> xr.Dataset:
    """theory.nc from parts (``theory_curves(cfg, part)`` or a whole one): curve points placed
    where a part computed them, each (target, activation, loss, m, d)'s seed scans joined by
    ``combine_seeds`` (the estimate ``delta_nn`` gives in one process)."""
    if not parts:
        raise ValueError("combine_parts: no parts given")
    axes = _axes(config_slice)
    shape = [len(v) for v in axes.values()]
    arrs = {k: np.full(shape, np.nan) for k in CURVE_VARS}
    est = {k: np.full(shape[:_NE], np.nan) for k in ("delta_nn", "delta_nn_err",
                                                     "delta_nn_converged")}
    status = np.full(shape[:_NE], "not_applicable", dtype=object)
    reasons, scans = {}, {}
    for p in parts:
        for k in CURVE_VARS:
            v = p[k].transpose(*axes).values
            arrs[k] = np.where(np.isfinite(v), v, arrs[k])
        reasons.update(json.loads(p.attrs["reasons"]))
        for key, seeds in json.loads(p.attrs.get("seed_scans", "{}")).items():
            scans.setdefault(key, []).extend(seeds)
    tc = config_slice["theory"]
    lo_hi = tuple(float(v) for v in tc["delta_range"])
    for key, seeds in scans.items():
        at = _parse_key(key)
        pc = point_config(config_slice, init_scale=at[4], a_init=at[5])
        r = combine_seeds(*at[:3], [SeedThreshold.from_dict(x) for x in seeds],
                          int(tc["seeds"]), lo_hi, at[6], pc.describe(),
                          float(config_slice["noise"]))
        pos = tuple(axes[k].index(v) for k, v in zip(EST_DIMS, at, strict=True))
        est["delta_nn"][pos] = np.nan if r.delta_nn is None else r.delta_nn
        est["delta_nn_err"][pos] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        est["delta_nn_converged"][pos] = float(r.converged)
        status[pos] = r.status
        reasons[key] = r.reason
    return _dataset(config_slice, axes, arrs, est, status, reasons, scans,
                    "deltann.theory.curves.combine_parts", point_config(
                        config_slice, init_scale=axes["init_scale"][0],
                        a_init=axes["a_init"][0]))
