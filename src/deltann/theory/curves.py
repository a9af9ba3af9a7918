"""Theory at the converged second-phase point for an experiment (the workflow's theory.nc).

For every (target, activation, loss, m) of the experiment, every size d of ``theory.d``, every
delta of ``theory.deltas`` and seed: the converged second-phase point (``second_phase``; the
experiment's schedule and init, common random numbers per seed), then record

* theory (empirical kernel law at that point): bulk edge, mu(edge), nu = mu(min(edge, 0)), the
  outlier lam*, overlap^2, and whether the point converged (with its iteration count);
* simulation (dense eigh of the same network Hessian): the theta-carrying eigenvalue among the
  lowest three, its overlap^2 with the hard subspace, the lowest bulk eigenvalue.

delta_NN(d) +- err and its convergence status come from the one estimator
``threshold.delta_nn`` with the theory config's estimator keys (docs/theory.md section 7) -- the
same value thresholds.nc and ``deltann threshold`` give for the same arguments.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr

from .. import hessian as hs
from ..activations import get_activation
from ..io import provenance_attrs
from ..losses import get_loss
from .alg import delta_alg
from .network import applicability
from .second_phase import PointConfig, converged_point
from .threshold import delta_nn, estimator_args

__all__ = ["theory_curves", "crossing", "point_config", "dense_theta_eigen"]

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


def point_config(config_slice: Mapping) -> PointConfig:
    """The experiment's second-phase point: schedule and init from ``train``, the first phase's
    learning rate, method, budget and tolerances from ``theory``."""
    return PointConfig.from_mapping({**config_slice["train"], **config_slice["theory"]})


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


def theory_curves(config_slice: Mapping) -> xr.Dataset:
    """theory.nc of one experiment (see module docstring)."""
    tc = config_slice["theory"]
    axes = {"target": list(config_slice["target"]), "activation": list(config_slice["activation"]),
            "loss": list(config_slice["loss"]), "m": [int(v) for v in config_slice["width"]],
            "d": [int(v) for v in tc["d"]], "delta": [float(v) for v in tc["deltas"]],
            "seed": list(range(int(tc["seeds"])))}
    shape = [len(v) for v in axes.values()]
    names = ["th_edge", "th_mu_edge", "th_nu", "th_lambda", "th_overlap2", "th_converged",
             "th_iterations", "sim_lambda", "sim_overlap2", "sim_edge"]
    arrs = {k: np.full(shape, np.nan) for k in names}
    pc = point_config(config_slice)
    kw = estimator_args({**tc, "base_seed": config_slice["base_seed"]})
    kw.pop("point")
    est_shape = shape[:5]
    est = {k: np.full(est_shape, np.nan) for k in ("delta_nn", "delta_nn_err",
                                                   "delta_nn_converged")}
    status = np.full(est_shape, "not_applicable", dtype=object)
    reasons = {}
    base = int(config_slice["base_seed"])
    for idx in itertools.product(*[range(s) for s in shape]):
        t, a, lo, m, d, dl, s = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        why = applicability(t, a, lo)
        if why:
            reasons[f"{t}/{a}/{lo}"] = why
            continue
        vals = _one(t, a, lo, m, d, dl, pc, s, base, float(config_slice["noise"]))
        log.info("theory %s/%s/%s m=%d d=%d delta=%g seed=%d: edge %.4g nu %.3g lam %.4g ov2 %.3f"
                 " converged %d (%d it) | sim lam %.4g ov2 %.3f", t, a, lo, m, d, dl, s,
                 vals[0], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8])
        for k, v in zip(names, vals, strict=True):
            arrs[k][idx] = v
    for idx in itertools.product(*[range(s) for s in est_shape]):
        t, a, lo, m, d = (axes[k][i] for k, i in zip(list(axes)[:5], idx, strict=True))
        if applicability(t, a, lo):
            continue
        r = delta_nn(t, a, lo, m, d=d, point=pc, noise=float(config_slice["noise"]), **kw)
        log.info("delta_NN %s/%s/%s m=%d d=%d: %s +- %s (%s)", t, a, lo, m, d, r.delta_nn,
                 r.delta_nn_err, r.reason)
        est["delta_nn"][idx] = np.nan if r.delta_nn is None else r.delta_nn
        est["delta_nn_err"][idx] = np.nan if r.delta_nn_err is None else r.delta_nn_err
        est["delta_nn_converged"][idx] = float(r.converged)
        status[idx] = r.status
        reasons[f"{t}/{a}/{lo}/m={m}/d={d}"] = r.reason
    dims = tuple(axes)
    ds = xr.Dataset({k: (dims, v) for k, v in arrs.items()},
                    coords={k: (k, np.asarray(v)) for k, v in axes.items()})
    for k, v in est.items():
        ds[k] = (dims[:5], v)
    ds["delta_nn_status"] = (dims[:5], status)
    ds["delta_alg"] = ("target", np.array([delta_alg(t, config_slice["noise"]).value or np.nan
                                           for t in axes["target"]], dtype=float))
    for k, (ln, u) in _ATTRS.items():
        ds[k].attrs.update(long_name=ln, units=u)
    from ..pipeline import VAR_ATTRS

    for k in axes:
        ds[k].attrs.update(long_name=VAR_ATTRS[k][0], units=VAR_ATTRS[k][1])
    ds.attrs.update(provenance_attrs(f"deltann theory curves {config_slice['experiment']}",
                                     dict(config_slice), f"base_seed={base}",
                                     "deltann.theory.curves.theory_curves"))
    ds.attrs["experiment"] = config_slice["experiment"]
    ds.attrs["reasons"] = json.dumps(reasons)
    ds.attrs["second_phase_point"] = (f"converged: {pc.describe()}; theory on the empirical law "
                                      "of (K_i, z_i); common random numbers across delta")
    return ds
