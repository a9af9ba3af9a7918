"""Theory curves over delta for an experiment (the workflow's theory.nc).

For every (target, activation, loss, m) of the experiment, every size d of ``theory.d``, every
delta of ``theory.deltas`` and seed: run projected GD to the second-phase point, then record

* theory (empirical kernel law at that point): bulk edge, mu(edge), outlier lam*, overlap^2;
* simulation (dense eigh of the same network Hessian): the theta-carrying eigenvalue among the
  lowest three, its overlap^2 with the hard subspace, the lowest bulk eigenvalue.

delta_NN(d) is where the seed-mean mu(edge) first changes sign on the delta grid (linear
interpolation in log delta); NaN when it does not, with the reason in the ``reasons`` attribute.
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
from ..train import TrainConfig
from .alg import delta_alg
from .network import applicability, kernel_law, second_phase_point
from .spectrum import outlier

__all__ = ["theory_curves", "crossing"]

log = logging.getLogger(__name__)

_ATTRS = {
    "th_edge": ("theory: lower bulk edge of the Hessian at the second-phase point", "1"),
    "th_mu_edge": ("theory: mu(lam_edge), outlier exists iff > 0", "1"),
    "th_lambda": ("theory: outlier eigenvalue along the hard directions", "1"),
    "th_overlap2": ("theory: squared overlap of the outlier eigenvector with the hard subspace",
                    "1"),
    "sim_lambda": ("simulation: theta-carrying eigenvalue among the lowest three", "1"),
    "sim_overlap2": ("simulation: its squared overlap with the hard subspace", "1"),
    "sim_edge": ("simulation: lowest bulk eigenvalue (theta-carrying one removed)", "1"),
    "delta_nn": ("delta_NN: first sign change of the seed-mean mu(edge) on the delta grid", "1"),
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


def _one(target, activation, loss, m, d, delta, cfg, seed, base_seed, noise):
    sp = second_phase_point(target, activation, loss, m, d, delta, cfg, seed=seed,
                            base_seed=base_seed, noise=noise)
    th = outlier(kernel_law(sp, activation, loss), delta)
    spec = hs.spectrum(sp.params, sp.X, sp.y, get_activation(activation), get_loss(loss),
                       n_vecs=3, method="dense")
    ov = hs.eigvec_overlaps(spec.eigvecs, sp.U, m).sum(axis=(1, 2))
    i = int(np.argmax(ov[:3]))
    return (th.edge, th.mu_edge, th.lam, th.overlap2 if th.exists else 0.0,
            spec.eigvals[i], ov[i], np.delete(spec.eigvals, i)[0])


def theory_curves(config_slice: Mapping) -> xr.Dataset:
    """theory.nc of one experiment (see module docstring)."""
    tc = config_slice["theory"]
    axes = {"target": list(config_slice["target"]), "activation": list(config_slice["activation"]),
            "loss": list(config_slice["loss"]), "m": [int(v) for v in config_slice["width"]],
            "d": [int(v) for v in tc["d"]], "delta": [float(v) for v in tc["deltas"]],
            "seed": list(range(int(tc["seeds"])))}
    shape = [len(v) for v in axes.values()]
    names = ["th_edge", "th_mu_edge", "th_lambda", "th_overlap2", "sim_lambda", "sim_overlap2",
             "sim_edge"]
    arrs = {k: np.full(shape, np.nan) for k in names}
    # the experiment's schedule and init, with the first phase's own length and learning rate
    cfg = TrainConfig(**{**config_slice["train"], "steps": int(tc["steps"]), "lr": float(tc["lr"])})
    reasons = {}
    base = int(config_slice["base_seed"])
    for idx in itertools.product(*[range(s) for s in shape]):
        t, a, lo, m, d, dl, s = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        why = applicability(t, a, lo)
        if why:
            reasons[f"{t}/{a}/{lo}"] = why
            continue
        vals = _one(t, a, lo, m, d, dl, cfg, s, base, float(config_slice["noise"]))
        log.info("theory %s/%s/%s m=%d d=%d delta=%g seed=%d: edge %.4g mu %.3g lam %.4g ov2 %.3f"
                 " | sim lam %.4g ov2 %.3f", t, a, lo, m, d, dl, s, *vals[:4], *vals[4:6])
        for k, v in zip(names, vals, strict=True):
            arrs[k][idx] = v
    dims = tuple(axes)
    ds = xr.Dataset({k: (dims, v) for k, v in arrs.items()},
                    coords={k: (k, np.asarray(v)) for k, v in axes.items()})
    mu = ds["th_mu_edge"].mean("seed")
    dnn = xr.apply_ufunc(lambda x: crossing(axes["delta"], x), mu, input_core_dims=[["delta"]],
                         vectorize=True)
    ds["delta_nn"] = dnn
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
    ds.attrs["second_phase_point"] = (f"projected GD, {cfg.steps} steps, lr {cfg.lr}, "
                                      "hard directions removed from W; theory on the empirical "
                                      "law of (K_i, z_i)")
    return ds
