"""Run builders for the workflow: one GD run, one Hessian run, and the sweep aggregate.

Each returns a labelled ``xr.Dataset`` of the output contract (see ``deltann.io``); the workflow
scripts only read inputs, call these and write the result with ``io.write_netcdf``.
The config slice of a run is ``{"experiment": name, "base_seed": s, **experiment_config}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from . import hessian as hess
from .activations import get_activation
from .batched import RunSpec, train_many
from .data import Dataset, make_dataset, seed_sequence
from .gram import use_gram
from .io import provenance_attrs
from .losses import get_loss
from .model import Params, kernel
from .sweep import SWEEP_AXES, Point, axis_values, data_key, expand, run_id
from .targets import get_target, target_mean
from .train import STOP_REASONS, TrainConfig, subspace_overlap, train

__all__ = ["data_seed", "init_seed", "make_data", "train_config", "train_run", "train_batch",
           "hessian_run", "hessian_batch",
           "aggregate", "run_attrs", "run_entropy", "VAR_ATTRS", "TIMING_VARS"]

log = logging.getLogger(__name__)

# long_name and units of every variable and coordinate the pipeline writes.
VAR_ATTRS = {
    "step": ("gradient-descent step", "1"),
    "neuron": ("hidden unit index j", "1"),
    "latent": ("latent direction index a (column of Theta*)", "1"),
    "latent_kind": ("easy (first-order) or hard latent direction", "1"),
    "snap": ("GD step of the parameter snapshot", "1"),
    "hstep": ("GD step at which the Hessian is evaluated", "1"),
    "eig": ("eigenvalue index (ascending)", "1"),
    "vec": ("index of the lowest eigenvectors (ascending eigenvalue)", "1"),
    "target": ("target function name", "1"),
    "activation": ("activation name", "1"),
    "loss": ("loss name", "1"),
    "m": ("number of hidden units", "1"),
    "d": ("input dimension", "1"),
    "delta": ("sample ratio n/d", "1"),
    "seed": ("replicate index", "1"),
    "init_scale": ("first-layer initialisation scale: W0 ~ N(0, init_scale^2/d)", "1"),
    "a_init": ("second-layer initialisation: a0 = a_init/m", "1"),
    "train_risk": ("empirical (training) risk", "1"),
    "test_risk": ("test risk on fresh samples", "1"),
    "grad_norm": ("Euclidean norm of the gradient over trained parameters", "1"),
    "overlap": ("first-layer overlap (W Theta*)_ja", "1"),
    "cosine": ("cosine between w_j and theta_a", "1"),
    "w_norm": ("norm of first-layer weight w_j", "1"),
    "a": ("second-layer weight a_j", "1"),
    "c": ("output offset c", "1"),
    "hard_overlap": ("max_j |P_hard w_j| / |w_j| (feature learning of the hard subspace)", "1"),
    "easy_overlap": ("max_j |P_easy w_j| / |w_j|", "1"),
    "W_snapshot": ("first-layer weights at the snapshot step", "1"),
    "a_snapshot": ("second-layer weights at the snapshot step", "1"),
    "c_snapshot": ("offset at the snapshot step", "1"),
    "theta": ("latent directions Theta* (orthonormal columns)", "1"),
    "diverged": ("1 if the run diverged (non-finite risk or exploding weights)", "1"),
    "diverged_step": ("step at which the run diverged (-1 if it did not)", "1"),
    "n": ("number of training samples", "1"),
    "train_seconds": ("wall time of the GD loop (of the shared loop, in a batched pass)", "s"),
    "stop_step": ("step at which early stopping ended the run (-1: it did not)", "1"),
    "stop_reason": ("why the run ended: 0 budget, 1 escaped, 2 stuck, 3 diverged", "1"),
    "train_float_bits": ("floating-point width GD trained in: 64 float64, 32 float32 (the "
                         "run's own train.dtype; -1 unknown)", "1"),
    "eigval": ("Hessian eigenvalues, ascending (NaN where not computed)", "1"),
    "vec_eigval": ("eigenvalues of the lowest eigenvectors", "1"),
    "vec_overlap": ("squared overlap <v_j, theta_a>^2 of eigenvector block j with theta_a", "1"),
    "vec_hard_overlap": ("squared overlap of the eigenvector with the hard subspace", "1"),
    "lambda_min": ("lowest Hessian eigenvalue", "1"),
    "th_edge": ("theory: lower bulk edge (empirical kernel law at this point)", "1"),
    "th_lambda": ("theory: outlier eigenvalue along the hard directions (NaN: none)", "1"),
    "th_overlap2": ("theory: squared overlap of the outlier eigenvector with the hard subspace",
                    "1"),
    "th_lam": ("eigenvalue grid of the theory density", "1"),
    "th_density": ("theory: bulk eigenvalue density on th_lam", "1"),
}


# Wall-clock measurements: the only data variables that differ between reruns of the same config.
TIMING_VARS = ("train_seconds", "pred_seconds")


def _attrs(name):
    ln, u = VAR_ATTRS[name]
    return {"long_name": ln, "units": u}


def _label(ds: xr.Dataset) -> xr.Dataset:
    for name in ds.variables:
        if name in VAR_ATTRS:
            ds[name].attrs.update(_attrs(name))
    return ds


def data_seed(base_seed: int, exp: Mapping, p: Point) -> np.random.SeedSequence:
    """Data seed: shared by runs that differ only in width, activation or loss."""
    key = (f"data|target={p.target}|noise={exp['noise']}|center={exp['center_labels']}"
           f"|d={p.d}|n={p.n}|n_test={exp['n_test']}")
    return seed_sequence(base_seed, key, p.seed)


def init_seed(base_seed: int, p: Point) -> np.random.SeedSequence:
    """Init seed: shared by runs that differ only in activation, loss, schedule or init scale
    (W0 = init_scale Z / sqrt(d) with the same Z)."""
    return seed_sequence(base_seed, f"init|m={p.m}|d={p.d}", p.seed)


def make_data(base_seed: int, exp: Mapping, p: Point, dtype=np.float64) -> Dataset:
    """Regenerate the train/test data of run ``p`` from its seed (no data on disk)."""
    target = get_target(p.target)
    offset = target_mean(target) if exp["center_labels"] else 0.0
    return make_dataset(target, p.d, p.n, int(exp["n_test"]), float(exp["noise"]),
                        data_seed(base_seed, exp, p), offset=offset, dtype=dtype)


def train_config(exp: Mapping, p: Point | None = None) -> TrainConfig:
    """TrainConfig of an experiment (the initialisation of run ``p``, when given); parameter
    snapshots at the Hessian steps."""
    t = dict(exp["train"])
    steps = [min(int(s), int(t["steps"])) for s in exp["hessian"]["steps"]]
    init = {"init_scale": p.init_scale, "a_init": p.a_init} if p is not None else {}
    return TrainConfig(**t, **init, snapshot_steps=tuple(sorted(set(steps))))


def run_entropy(data: Dataset, ss_init: np.random.SeedSequence) -> str:
    """The seed entropies of one run (its provenance): 'data=...; init=...'."""
    return (f"data={' '.join(map(str, data.entropy))}; "
            f"init={' '.join(map(str, ss_init.entropy))}")


def run_attrs(name: str, p: Point) -> dict:
    return {"experiment": name, "run_id": run_id(p), **{k: v for k, v in p.as_dict().items()},
            "n_samples": p.n}


def train_run(config_slice: Mapping, p: Point) -> xr.Dataset:
    """Train one network and return its records as a labelled Dataset (``train_batch`` of one
    run)."""
    return next(train_batch(config_slice, [p]))[1]


def train_batch(config_slice: Mapping, points: Iterable[Point], stacked: bool = False):
    """Train several runs of one experiment in this process; yields (point, Dataset) of each,
    as ``train_run`` makes it, a group of runs on the same samples (``sweep.data_key``) at a
    time. A group shares its data and, off the Gram path (n > d), one pass over X per step
    (``batched.train_many``: bitwise ``train_run``'s records unless ``stacked``); on the jax
    backend the runs of a group train one after another."""
    exp, name, base = config_slice, config_slice["experiment"], int(config_slice["base_seed"])
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        groups.setdefault(data_key(p), []).append(p)
    for i, group in enumerate(groups.values()):
        p0 = group[0]
        data = make_data(base, exp, p0)
        seeds = [init_seed(base, p) for p in group]
        for p in group:
            log.info("train %s/%s: n=%d d=%d m=%d steps=%d init_scale=%g a_init=%g%s", name,
                     run_id(p), p.n, p.d, p.m, int(exp["train"]["steps"]), p.init_scale,
                     p.a_init, f" (sample set {i + 1}/{len(groups)}, {len(group)} runs)"
                     if len(groups) > 1 or len(group) > 1 else "")
        specs = [RunSpec(get_activation(p.activation), get_loss(p.loss), p.m,
                         train_config(exp, p), np.random.default_rng(ss),
                         tuple(get_target(p.target).hard), f"{run_id(p)}: ")
                 for p, ss in zip(group, seeds, strict=True)]
        if len(group) == 1 or use_gram(p0.n, p0.d) or specs[0].cfg.backend == "jax":
            results = [train(data, s.act, s.loss, s.m, s.cfg, s.rng, watch=s.watch, name=s.name)
                       for s in specs]
        else:
            results = train_many(data, specs, stacked=stacked)
        for p, ss, res in zip(group, seeds, results, strict=True):
            yield p, _run_dataset(config_slice, p, data, ss, res)


def _run_dataset(config_slice: Mapping, p: Point, data: Dataset, ss_init, res) -> xr.Dataset:
    """The labelled run file of a finished run (records, snapshots, stop, provenance)."""
    name = config_slice["experiment"]
    target = get_target(p.target)
    hard = [subspace_overlap(c, target.hard) for c in res.cosine]
    easy = [subspace_overlap(c, target.easy) for c in res.cosine]
    snaps = res.snapshot_steps
    S = len(snaps)
    Wsnap = np.full((S, p.m, p.d), np.nan)
    asnap, csnap = np.full((S, p.m), np.nan), np.full(S, np.nan)
    for i, sp in enumerate(res.snapshots):  # snapshots exist only for steps reached
        Wsnap[i], asnap[i], csnap[i] = sp.W, sp.a, sp.c
    kind = ["hard" if a in target.hard else "easy" for a in range(target.k)]
    ds = xr.Dataset(
        {
            "train_risk": ("step", res.train_risk), "test_risk": ("step", res.test_risk),
            "grad_norm": ("step", res.grad_norm),
            "overlap": (("step", "neuron", "latent"), res.overlap),
            "cosine": (("step", "neuron", "latent"), res.cosine),
            "w_norm": (("step", "neuron"), res.w_norm), "a": (("step", "neuron"), res.a),
            "c": ("step", res.c), "hard_overlap": ("step", np.asarray(hard)),
            "easy_overlap": ("step", np.asarray(easy)),
            "W_snapshot": (("snap", "neuron", "dim"), Wsnap),
            "a_snapshot": (("snap", "neuron"), asnap), "c_snapshot": ("snap", csnap),
            "theta": (("dim", "latent"), data.theta),
            "diverged": ((), np.int8(res.diverged)),
            "diverged_step": ((), np.int64(res.diverged_step)),
            "n": ((), np.int64(p.n)), "train_seconds": ((), float(res.seconds)),
            "stop_step": ((), np.int64(res.stop_step)),
            "stop_reason": ((), np.int8(STOP_REASONS.index(res.stop_reason)),
                            {"flag_values": np.arange(len(STOP_REASONS), dtype=np.int8),
                             "flag_meanings": " ".join(STOP_REASONS)}),
        },
        coords={"step": res.steps, "neuron": np.arange(p.m), "latent": np.arange(target.k),
                "latent_kind": ("latent", kind), "snap": snaps},
    )
    ds.attrs.update(provenance_attrs(f"deltann GD run {run_id(p)}", dict(config_slice),
                                     run_entropy(data, ss_init), "deltann.pipeline.train_run"))
    ds.attrs.update(run_attrs(name, p))
    return _label(ds)


def hessian_run(config_slice: Mapping, p: Point, train_ds: xr.Dataset) -> xr.Dataset:
    """Hessian spectra of run ``p`` at its snapshot steps (data regenerated from the seed)."""
    exp, name, base = config_slice, config_slice["experiment"], int(config_slice["base_seed"])
    hc = exp["hessian"]
    target = get_target(p.target)
    data = make_data(base, exp, p)
    act, loss = get_activation(p.activation), get_loss(p.loss)
    snaps = train_ds["snap"].values
    size = p.m * p.d + (p.m + 1 if hc["block"] == "all" else 0)
    n_eig = size if _method(hc, size) == "dense" else min(hc["n_vecs"], size - 1)
    n_vecs = min(hc["n_vecs"], n_eig)
    S = len(snaps)
    eig = np.full((S, n_eig), np.nan)
    veig = np.full((S, n_vecs), np.nan)
    vov = np.full((S, n_vecs, p.m, target.k), np.nan)
    n_grid = int(hc["theory_grid"]) if hc["theory"] else 0
    th = {k: np.full(S, np.nan) for k in ("th_edge", "th_lambda", "th_overlap2")}
    th_lam, th_dens = np.full((S, n_grid), np.nan), np.full((S, n_grid), np.nan)
    for i, step in enumerate(snaps):
        W = train_ds["W_snapshot"].values[i]
        if not np.all(np.isfinite(W)):
            log.warning("%s: no parameters at step %d (diverged earlier); spectrum left NaN",
                        run_id(p), step)
            continue
        par = Params(W, train_ds["a_snapshot"].values[i], float(train_ds["c_snapshot"].values[i]))
        spec = hess.spectrum(par, data.X, data.y, act, loss, block=hc["block"], n_vecs=n_vecs,
                             method=hc["method"], dense_max=hc["dense_max"],
                             name=f"{name}/{run_id(p)} step {step}")
        log.info("hessian %s step %d: %s, lowest eigenvalues %s", run_id(p), step, spec.method,
                 np.array2string(spec.eigvals[:3], precision=4))
        eig[i, : len(spec.eigvals)] = spec.eigvals[:n_eig]
        veig[i] = spec.eigvals[:n_vecs]
        vov[i] = hess.eigvec_overlaps(spec.eigvecs[:, :n_vecs], data.theta, p.m)
        if n_grid and hc["block"] == "W":
            ov = _theory_overlay(par, data, p, act, loss, spec.eigvals, n_grid)
            if ov is not None:
                for k in th:
                    th[k][i] = ov[k]
                th_lam[i], th_dens[i] = ov["lam"], ov["density"]
    hard = list(target.hard)
    ds = xr.Dataset(
        {
            "eigval": (("hstep", "eig"), eig), "vec_eigval": (("hstep", "vec"), veig),
            "vec_overlap": (("hstep", "vec", "neuron", "latent"), vov),
            "vec_hard_overlap": (("hstep", "vec"), vov[..., hard].sum(axis=(2, 3))),
            "lambda_min": ("hstep", eig[:, 0]),
            **({k: ("hstep", v) for k, v in th.items()} if n_grid else {}),
            **({"th_lam": (("hstep", "grid"), th_lam), "th_density": (("hstep", "grid"), th_dens)}
               if n_grid else {}),
        },
        coords={"hstep": snaps, "eig": np.arange(n_eig), "vec": np.arange(n_vecs),
                "neuron": np.arange(p.m), "latent": np.arange(target.k)},
    )
    ds.attrs.update(provenance_attrs(f"deltann Hessian spectra {run_id(p)}", dict(config_slice),
                                     train_ds.attrs.get("seed_entropy", ""),
                                     "deltann.pipeline.hessian_run"))
    ds.attrs.update(run_attrs(name, p))
    ds.attrs["hessian_block"] = hc["block"]
    return _label(ds)


def hessian_batch(config_slice: Mapping, points: Iterable[Point], train_files: Iterable):
    """Yields (point, ``hessian_run`` Dataset) for runs of one experiment, reading each run's
    file (``io.read_result``, checked to be that run's) from ``train_files`` (same order)."""
    from .io import read_result

    for p, f in zip(points, train_files, strict=True):
        expect = {"experiment": config_slice["experiment"], "run_id": run_id(p)}
        yield p, hessian_run(config_slice, p, read_result(f, expect=expect, what="rule hessian"))


def _theory_overlay(par, data, p: Point, act, loss, eigvals, n_grid):
    """Deterministic-equivalent density, edge and outlier for the empirical law of (K_i, z_i) at
    this point (z: hard coordinates), on a grid spanning the spectrum; None when not applicable.

    At a GD point W carries a small hard component, so the hardness condition E[z B] = 0 holds
    only approximately: the overlay is the theory of the point, drawn next to its histogram.
    """
    from .theory.network import applicability
    from .theory.spectrum import KernelLaw, SolveError, bulk_density, outlier

    why = applicability(p.target, p.activation, p.loss)
    if why:
        log.info("%s: no theory overlay (%s)", run_id(p), why)
        return None
    target = get_target(p.target)
    law = KernelLaw.empirical(kernel(par, data.X, data.y, act, loss),
                              data.X @ data.theta[:, list(target.hard)])
    span = eigvals[-1] - eigvals[0]
    lam = np.linspace(eigvals[0] - 0.05 * span, eigvals[-1] + 0.05 * span, n_grid)
    try:
        r = outlier(law, p.delta)
        dens = bulk_density(lam, law, p.delta, eta=1e-3 * span)
    except SolveError as err:
        log.warning("%s: theory overlay failed: %s", run_id(p), err)
        return None
    return {"th_edge": r.edge, "th_lambda": r.lam, "th_overlap2": r.overlap2, "lam": lam,
            "density": dens}


def _method(hc: Mapping, size: int) -> str:
    if hc["method"] == "auto":
        return "dense" if size <= hc["dense_max"] else "lanczos"
    return hc["method"]


def _stack(runs: Iterable[tuple[Point, xr.Dataset]], axes: dict) -> xr.Dataset:
    """Place per-run datasets on the product grid of the sweep axes (NaN-padded ragged dims)."""
    runs = list(runs)
    shapes: dict[str, int] = {}
    coords: dict[str, np.ndarray] = {}
    for _, ds in runs:
        for dim, size in ds.sizes.items():
            if size >= shapes.get(dim, -1):
                shapes[dim] = size
                if dim in ds.coords:
                    coords[dim] = ds[dim].values
    grid_shape = [len(v) for v in axes.values()]
    out = {}
    for var in runs[0][1].data_vars:
        ref = runs[0][1][var]
        if var in ("theta", "W_snapshot"):
            continue  # per-run only: large and regenerable
        dims = tuple(axes) + ref.dims
        integer = ref.dtype.kind in "iu"
        arr = np.full(grid_shape + [shapes[d] for d in ref.dims], -1 if integer else np.nan,
                      dtype=np.int64 if integer else np.float64)
        for p, ds in runs:
            idx = tuple(axes[a].index(getattr(p, a)) for a in axes)
            v = ds[var].values
            arr[idx + tuple(slice(0, s) for s in v.shape)] = v
        out[var] = (dims, arr, dict(ref.attrs))
    c = {a: (a, np.asarray(v), _attrs(a)) for a, v in axes.items()}
    for dim, vals in coords.items():
        if dim not in axes and dim in VAR_ATTRS:
            c[dim] = (dim, vals, _attrs(dim))
    return xr.Dataset(out, coords=c)


def _float_bits(train_sets: Mapping[Point, xr.Dataset], axes: dict) -> np.ndarray:
    """Per run, the float width its own config trained GD in (64 or 32; -1 if the run file
    has no config): a sweep may hold runs of one experiment made at different train.dtype."""
    bits = np.full([len(v) for v in axes.values()], -1, dtype=np.int64)
    for p, ds in train_sets.items():
        cfg = json.loads(ds.attrs["config"]) if "config" in ds.attrs else None
        if cfg is not None:
            bits[tuple(axes[a].index(getattr(p, a)) for a in axes)] = \
                32 if cfg.get("train", {}).get("dtype") == "float32" else 64
    return bits


def aggregate(config_slice: Mapping, train_sets: Mapping[Point, xr.Dataset],
              hessian_sets: Mapping[Point, xr.Dataset] | None = None,
              escape_sets: Mapping[Point, xr.Dataset] | None = None) -> xr.Dataset:
    """One labelled dataset per experiment with the sweep axes as dimensions (sweep.nc); the
    Hessian and escape-predictor runs (if any) merged in."""
    axes = axis_values(config_slice)
    expected = {tuple(getattr(p, a) for a in SWEEP_AXES) for p in expand(config_slice)}
    got = {tuple(getattr(p, a) for a in SWEEP_AXES) for p in train_sets}
    if expected != got:
        raise ValueError(f"aggregate {config_slice['experiment']}: runs missing for "
                         f"{sorted(expected - got)[:5]} (and extra {sorted(got - expected)[:5]})")
    ds = _stack(train_sets.items(), axes)
    ds["train_float_bits"] = (tuple(axes), _float_bits(train_sets, axes))
    for extra in (hessian_sets, escape_sets):
        if extra:
            ds = xr.merge([ds, _stack(extra.items(), axes)], compat="override", join="outer")
    ds = _label(ds)
    entropy = "\n".join(f"{run_id(p)}: {train_sets[p].attrs.get('seed_entropy', 'unknown')}"
                        for p in expand(config_slice))  # every run's seeds, in grid order
    ds.attrs.update(provenance_attrs(f"deltann sweep {config_slice['experiment']}",
                                     dict(config_slice), entropy, "deltann.pipeline.aggregate"))
    ds.attrs["experiment"] = config_slice["experiment"]
    return ds


def aggregate_files(config_slice: Mapping, train_paths, hessian_paths, out_path,
                    escape_paths=()) -> xr.Dataset:
    """Read run files (run ids from their attributes), aggregate, write ``out_path``."""
    from .io import read_result, write_netcdf
    from .sweep import parse_run_id

    def load(paths):
        out = {}
        for path in paths:
            ds = read_result(path, expect={"experiment": config_slice["experiment"],
                                           "run_id": Path(path).stem}, what="rule aggregate")
            out[parse_run_id(ds.attrs["run_id"])] = ds
        return out

    ds = aggregate(config_slice, load(train_paths), load(hessian_paths) or None,
                   load(escape_paths) or None)
    write_netcdf(ds, out_path)
    return ds
