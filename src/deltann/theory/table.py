"""delta_NN vs delta_alg over targets x activations x losses x widths (the workflow's
thresholds.nc), each delta_NN from ``threshold.delta_nn`` (projected GD + empirical kernel law)."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..io import provenance_attrs
from ..train import TrainConfig
from .threshold import delta_nn

__all__ = ["threshold_table"]

log = logging.getLogger(__name__)


def threshold_table(cfg: Mapping) -> xr.Dataset:
    """Dataset with delta_nn (target, activation, loss, m) and delta_alg (target)."""
    axes = {"target": list(cfg["target"]), "activation": list(cfg["activation"]),
            "loss": list(cfg["loss"]), "m": [int(v) for v in cfg["width"]]}
    shape = [len(v) for v in axes.values()]
    dnn = np.full(shape, np.nan)
    dalg = np.full(shape[0], np.nan)
    reasons = {}
    tc = TrainConfig(steps=int(cfg["steps"]), lr=float(cfg["lr"]), schedule=cfg["schedule"])
    for idx in itertools.product(*[range(s) for s in shape]):
        t, a, lo, m = (axes[k][i] for k, i in zip(axes, idx, strict=True))
        r = delta_nn(t, a, lo, m, d=int(cfg["d"]), cfg=tc, seeds=int(cfg["seeds"]),
                     grid=np.asarray(cfg["deltas"], float), refine=int(cfg["refine"]),
                     base_seed=int(cfg["base_seed"]))
        log.info("%s/%s/%s m=%d: delta_alg=%s delta_NN=%s (%s)", t, a, lo, m, r.delta_alg,
                 r.delta_nn, r.reason)
        dnn[idx] = np.nan if r.delta_nn is None else r.delta_nn
        dalg[idx[0]] = np.nan if r.delta_alg is None else r.delta_alg
        reasons[f"{t}/{a}/{lo}/m={m}"] = r.reason
    ds = xr.Dataset(
        {"delta_nn": (tuple(axes), dnn, {"long_name": "delta_NN: smallest delta with a theta-"
                                         "outlier at the second-phase point (NaN: see reasons)",
                                         "units": "1"}),
         "delta_alg": ("target", dalg, {"long_name": "algorithmic threshold delta_alg",
                                        "units": "1"})},
        coords={k: (k, np.asarray(v), {"long_name": k, "units": "1"}) for k, v in axes.items()})
    ds.attrs.update(provenance_attrs("deltann delta_NN vs delta_alg", dict(cfg),
                                     f"base_seed={cfg['base_seed']}",
                                     "deltann.theory.table.threshold_table"))
    ds.attrs["reasons"] = json.dumps(reasons)
    return ds
