"""The second phase in time (the workflow's trajectory.nc): the theory's readings along projected
GD, to show what a fixed step count reads and what converges (docs/theory.md section 6).

For every (target, activation, loss, m) of the experiment, delta of ``trajectory.deltas`` and
seed, at one size ``trajectory.d``: projected GD with the experiment's schedule and init (lr of
``theory.lr``, common random numbers as in ``second_phase``), read at T = t_first 2^j up to
t_max: bulk edge, nu, the theta-outlier and overlap^2 on the empirical kernel law, the risk and
|W|, |a|; at the steps of ``trajectory.dense`` also the dense-Hessian theta eigenvalue, its
overlap^2 and the lowest other eigenvalue. ``converged_t`` is the first T at which the
convergence criterion of ``second_phase`` held (NaN: never within t_max).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import xarray as xr

from ..io import provenance_attrs
from .curves import dense_theta_eigen, point_config
from .network import applicability
from .second_phase import converged_point

__all__ = ["check_steps", "trajectory", "trajectory_steps"]

log = logging.getLogger(__name__)

_VARS = {
    "th_edge": "theory: lower bulk edge",
    "th_nu": "theory: nu = mu(min(edge, 0)), negative theta-outlier iff > 0",
    "th_lambda": "theory: theta-outlier eigenvalue (NaN: none below the bulk)",
    "th_overlap2": "theory: overlap^2 of the outlier eigenvector with the hard subspace (0: none)",
    "risk": "training risk",
    "w_norm": "Frobenius norm of W",
    "a_norm": "norm of the second layer a",
    "sim_lambda": "dense Hessian: theta-carrying eigenvalue among the lowest three",
    "sim_overlap2": "dense Hessian: its overlap^2 with the hard subspace",
    "sim_edge": "dense Hessian: lowest other eigenvalue",
}


def trajectory_steps(t_first: int, t_max: int) -> list[int]:
    """The check steps t_first 2^j <= t_max."""
    out, t = [], int(t_first)
    while t <= t_max:
        out.append(t)
        t *= 2
    return out


def check_steps(tc: Mapping) -> str | None:
    """None if every ``dense`` step is a check step, else the message (for the config check)."""
    steps = trajectory_steps(tc["t_first"], tc["t_max"])
    bad = [t for t in tc["dense"] if t not in steps]
    if bad:
        return f"dense steps {bad} are not check steps t_first * 2^j <= t_max: {steps}"
    return None


def trajectory(config_slice: Mapping) -> xr.Dataset:
    """trajectory.nc of one experiment (module docstring)."""
    tc = config_slice["trajectory"]
    why = check_steps(tc)
    if why:
        raise ValueError(f"trajectory: {why}")
    steps = trajectory_steps(tc["t_first"], tc["t_max"])
    d = int(tc["d"])
    axes = {"target": list(config_slice["target"]), "activation": list(config_slice["activation"]),
            "loss": list(config_slice["loss"]), "m": [int(v) for v in config_slice["width"]],
            "delta": [float(v) for v in tc["deltas"]], "seed": list(range(int(tc["seeds"]))),
            "t": steps}
    shape = [len(v) for v in axes.values()]
    arrs = {k: np.full(shape, np.nan) for k in _VARS}
    conv_t = np.full(shape[:-1], np.nan)
    pc = replace(point_config(config_slice), method="gd", transient=0,
                 first_check=int(tc["t_first"]), budget=int(tc["t_max"]))
    dense = {int(t) for t in tc["dense"]}
    base = int(config_slice["base_seed"])
    reasons = {}
    for idx in itertools.product(*[range(s) for s in shape[:-1]]):
        t, a, lo, m, dl, s = (axes[k][i] for k, i in zip(list(axes)[:-1], idx, strict=True))
        na = applicability(t, a, lo)
        if na:
            reasons[f"{t}/{a}/{lo}"] = na
            continue

        def on_check(r, sp, idx=idx, a=a, lo=lo):
            j = steps.index(r.t)
            vals = {"th_edge": r.edge, "th_nu": r.mu_neg,
                    "th_lambda": r.lam if r.exists else np.nan,
                    "th_overlap2": r.overlap2_eff, "risk": r.risk, "w_norm": r.w_norm,
                    "a_norm": r.a_norm}
            if r.t in dense:
                vals.update(zip(("sim_lambda", "sim_overlap2", "sim_edge"),
                                dense_theta_eigen(sp, a, lo), strict=True))
            for k, v in vals.items():
                arrs[k][idx + (j,)] = v

        cp = converged_point(t, a, lo, m, d, dl, pc, seed=s, base_seed=base,
                             noise=float(config_slice["noise"]), stop_on_convergence=False,
                             on_check=on_check)
        if cp.converged_t is not None:
            conv_t[idx] = cp.converged_t
        log.info("trajectory %s/%s/%s m=%d d=%d delta=%g seed=%d: %s", t, a, lo, m, d, dl, s,
                 cp.reason if not cp.converged else f"{cp.reason}; {cp.trend()}")
    dims = tuple(axes)
    ds = xr.Dataset({k: (dims, v, {"long_name": ln, "units": "1"})
                     for (k, ln), v in zip(_VARS.items(), arrs.values(), strict=True)},
                    coords={k: (k, np.asarray(v)) for k, v in axes.items()})
    ds["converged_t"] = (dims[:-1], conv_t, {"long_name": "first projected-GD step at which the "
                                             "convergence criterion held (NaN: never)",
                                             "units": "1"})
    from ..pipeline import VAR_ATTRS

    for k in dims[:-1]:
        ds[k].attrs.update(long_name=VAR_ATTRS[k][0], units=VAR_ATTRS[k][1])
    ds["t"].attrs.update(long_name="projected-GD step", units="1")
    title = f"deltann second-phase trajectory {config_slice['experiment']}"
    ds.attrs.update(provenance_attrs(title, dict(config_slice), f"base_seed={base}",
                                     "deltann.theory.trajectory.trajectory"))
    ds.attrs.update(experiment=config_slice["experiment"], d=d, reasons=str(reasons),
                    schedule=pc.schedule, lr=pc.lr)
    return ds
