"""Section jax: GD step, HVP and a whole GD run against jitted JAX code of the same model.

JAX is optional (``pip install -e .[bench]``) and imported lazily, on one thread (XLA's CPU
thread pool off, like our one BLAS thread) with float64 enabled. Its network is f = softplus(X
W^T) a + c with R = mean((f - y)^2 / 2): step = ``jit(value_and_grad(R))``, HVP =
``jit(jvp(grad(R)))``, run = ``jit`` of a ``lax.scan`` of ``steps`` GD steps (schedule both: W
at lr m, a and c at lr). Ours: ``model.value_and_grad``, ``model.hvp`` and ``train.train`` (its
records at step 0 and the end only) on the numpy backend and on the jax backend
(``train.backend: jax``, ``deltann.jax_backend``: a jitted loop between records), from the same
initial parameters on the same data. Results are compared before timing (relative difference in
the note): a step or HVP that differs by more than 1e-8 (float64; 1e-3 float32), or a whole
float64 run by more than 1e-5 (rounding differences grow through the dynamics; float32 runs
drift apart by up to ~6e-2 in 500 steps at m = 16 and are only reported), is an error. ratio =
JAX / ours (> 1: ours faster); target: the whole run at >= 1.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from deltann import jax_backend
from deltann.data import Dataset
from deltann.model import Params, Workspace, hvp, value_and_grad
from deltann.train import TrainConfig, train

from .problems import problem
from .timing import Row, progress, time_pair

FULL = dict(cases=((1000, 250, 1, "float64"), (4000, 1000, 2, "float64"),
                   (4000, 1000, 4, "float64"), (20000, 500, 4, "float64"),
                   (20000, 500, 16, "float64"), (20000, 500, 4, "float32"),
                   (1000, 250, 1, "float32"), (20000, 500, 16, "float32")), steps=500)
QUICK = dict(cases=((200, 50, 1, "float64"), (200, 50, 3, "float32")), steps=20)
RUN_TARGET = 1.0
LR = 0.1
#: agreement required before timing (relative 2-norm over all outputs): one step or HVP, and
#: whole runs, where rounding differences grow through the dynamics (2e-7 seen at m = 16 after
#: 500 steps at lr m = 1.6, float64)
TOL = {"float64": 1e-8, "float32": 1e-3}
RUN_TOL = {"float64": 1e-5, "float32": np.inf}  # float32 runs: reported (6e-2 seen at m = 16)


def available() -> str | None:
    """None if jax imports, else why not."""
    return jax_backend.available()


def _jax():
    return jax_backend.import_jax()


def _jax_fns(m: int, steps: int):
    jax = _jax()
    jnp = jax.numpy

    def risk(p, X, y):
        W, a, c = p
        return 0.5 * jnp.mean((jax.nn.softplus(X @ W.T) @ a + c - y) ** 2)

    step = jax.jit(jax.value_and_grad(risk))
    hv = jax.jit(lambda p, v, X, y: jax.jvp(lambda q: jax.grad(risk)(q, X, y), (p,), (v,))[1])
    eta = (LR * m, LR, LR)

    @jax.jit
    def run(p, X, y):
        def body(q, _):
            g = jax.grad(risk)(q, X, y)
            return tuple(qi - e * gi for qi, e, gi in zip(q, eta, g, strict=True)), None

        return jax.lax.scan(body, p, None, length=steps)[0]

    return step, hv, run


def _rel(a, b) -> float:
    a = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in a])
    b = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in b])
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _block(x):
    import jax

    return jax.block_until_ready(x)


def _call(fn, *args):
    """A jitted call, waited for (JAX dispatches asynchronously)."""
    return _block(fn(*args))


def run(quick: bool, repeats: int) -> list[Row]:
    jax = _jax()
    cfg = QUICK if quick else FULL
    steps = cfg["steps"]
    rows = []
    with threadpool_limits(1):
        for n, d, m, dt in cfg["cases"]:
            dtype = np.dtype(dt)
            X, y, p, v, act, loss = problem(n, d, m, dtype)
            p = Params(p.W, p.a, float(p.c))
            v = Params(v.W.astype(dtype), v.a.astype(dtype), float(v.c))
            jp = tuple(jax.numpy.asarray(x) for x in (p.W, p.a, dtype.type(p.c)))
            jv = tuple(jax.numpy.asarray(x) for x in (v.W, v.a, dtype.type(v.c)))
            jX, jy = jax.numpy.asarray(X), jax.numpy.asarray(y)
            j_step, j_hv, j_run = _jax_fns(m, steps)
            ws = Workspace(n, d, m, dtype)
            data = Dataset(X=X, y=y, X_test=X[:100], y_test=y[:100], theta=np.eye(d)[:, :1],
                           entropy=(0,))
            tc = TrainConfig(steps=steps, lr=LR, n_records=2, dtype=dt, snapshot_steps=(steps,))

            def ours_run(data=data, tc=tc, m=m, p=p, act=act, loss=loss):
                return train(data, act, loss, m, tc, None, init=p, progress_seconds=1e9)

            ours_jax = partial(ours_run, tc=dataclasses.replace(tc, backend="jax"))
            hv_jax = jax_backend.JaxHVP("softplus", "square", X, y)

            val, g = value_and_grad(p, X, y, act, loss, ws)
            (jval, jg) = _block(j_step(jp, jX, jy))
            err_g = _rel([val, g.W, g.a, g.c], [jval, *jg])
            err_h = _rel(hvp(p, X, y, act, loss, v).vector(), [np.ravel(x) for x in
                                                              _block(j_hv(jp, jv, jX, jy))])
            err_hb = _rel(hv_jax(p, v).vector(), [np.ravel(x) for x in
                                                 _block(j_hv(jp, jv, jX, jy))])
            snap = ours_run().snapshots[-1]
            err_r = _rel([snap.W, snap.a, snap.c], _block(j_run(jp, jX, jy)))
            snap = ours_jax().snapshots[-1]
            err_b = _rel([snap.W, snap.a, snap.c], _block(j_run(jp, jX, jy)))
            tol = TOL[dt]
            for what, err, bound in (("GD steps", err_g, tol), ("HVPs", err_h, tol),
                                     ("HVPs (backend jax)", err_hb, tol),
                                     (f"{steps}-step runs", err_r, RUN_TOL[dt]),
                                     (f"{steps}-step runs (backend jax)", err_b,
                                      RUN_TOL[dt])):
                if not err <= bound:
                    raise AssertionError(f"jax: {what} differ by {err:.1e} > {bound:g} "
                                         f"(n={n} d={d} m={m} {dt})")
            case = f"n={n} d={d} m={m} {dt}"
            for kind, ours_fn, ref_fn, err, tgt in (
                    ("GD step", partial(value_and_grad, p, X, y, act, loss, ws),
                     partial(_call, j_step, jp, jX, jy), err_g, None),
                    ("HVP", partial(hvp, p, X, y, act, loss, v),
                     partial(_call, j_hv, jp, jv, jX, jy), err_h, None),
                    ("HVP, backend jax", partial(hv_jax, p, v),
                     partial(_call, j_hv, jp, jv, jX, jy), err_hb, None),
                    (f"{steps}-step run", ours_run, partial(_call, j_run, jp, jX, jy), err_r,
                     RUN_TARGET),
                    (f"{steps}-step run, backend jax", ours_jax,
                     partial(_call, j_run, jp, jX, jy), err_b, RUN_TARGET)):
                ours, ref = time_pair(ours_fn, ref_fn, repeats)
                ratio = ref.median / ours.median
                rows.append(Row("jax", f"{kind} {case}", ours, f"jax {jax.__version__} (jit)",
                                ref, ratio, "jax / ours",
                                target="" if tgt is None else f"≥ {tgt:g}",
                                met=None if tgt is None else ratio >= tgt,
                                note=f"rel. diff {err:.1e}",
                                extra=dict(n=n, d=d, m=m, dtype=dt, kind=kind, rel_diff=err)))
                progress(f"jax {kind} {case}: ours {ours.fmt()}, jax {ref.fmt()}, "
                         f"ratio {ratio:.2f}")
    return rows
