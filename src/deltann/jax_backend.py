"""Optional JAX backend of full-batch GD (``train.backend: jax``; ``pip install -e '.[jax]'``).

The same network, loss and schedule as ``deltann.model`` and ``deltann.train``,

    f(x) = sigma(W x) . a + c,    R(W, a, c) = mean_i l(f(x_i), y_i),

with the gradient from ``jax.value_and_grad`` and the steps between two record steps run as one
jitted XLA loop (``lax.while_loop``): each step W <- W - eta_W P g_W (P = I - U U^T off the
frozen directions U, if any), a <- a - eta_a g_a, c <- c - eta_c g_c, then R and g at the new
point and the check of ``train.RunState.check`` there (R non-finite or max |W_ij| above
``max_weight_norm``: the loop stops at that point, which the host then records as diverged). The
records, early stopping and snapshots stay in numpy (``RunState``), at the record steps. The
numpy path is the reference: the tests hold both to 1e-8 in float64. XLA runs on one thread
(``XLA_FLAGS`` set before jax is first imported), like the one BLAS thread of a job.
"""

from __future__ import annotations

import math
import os
from functools import cache

import numpy as np

from .model import Params

__all__ = ["available", "import_jax", "JaxGD", "JaxHVP", "ACTIVATIONS", "LOSSES"]

#: sigma(u) in jax.numpy, by ``deltann.activations`` name
ACTIVATIONS = {
    "tanh": lambda jax, u: jax.numpy.tanh(u),
    "erf": lambda jax, u: jax.scipy.special.erf(u / math.sqrt(2.0)),
    "relu": lambda jax, u: jax.numpy.maximum(u, 0.0),
    "softplus": lambda jax, u: jax.nn.softplus(u),
    "he1": lambda jax, u: u,
    "he2": lambda jax, u: u * u - 1.0,
    "he3": lambda jax, u: u ** 3 - 3.0 * u,
    "he4": lambda jax, u: u ** 4 - 6.0 * u * u + 3.0,
}
#: l(f, y) in jax.numpy, by ``deltann.losses`` name
LOSSES = {
    "square": lambda f, y: 0.5 * (f - y) ** 2,
    "correlation": lambda f, y: -y * f,
}


def available() -> str | None:
    """None if jax imports, else why not (for error messages)."""
    try:
        import jax  # noqa: F401
    except ImportError as err:
        return f"jax is not installed ({err}); pip install -e '.[jax]'"
    return None


def import_jax():
    """jax, on one CPU thread and with float64 enabled."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _risk(act: str, loss: str):
    """R(W, a, c, X, y) in jax.numpy."""
    jax = import_jax()
    sigma, ell = ACTIVATIONS[act], LOSSES[loss]

    def risk(W, a, c, X, y):
        return jax.numpy.mean(ell(sigma(jax, X @ W.T) @ a + c, y))

    return risk


@cache
def _compiled_hvp(act: str, loss: str):
    """H v = d/ds grad R(p + s v) at s = 0 (``jax.jvp`` of ``jax.grad``), jitted."""
    jax = import_jax()
    grad = jax.grad(_risk(act, loss), argnums=(0, 1, 2))

    def hv(W, a, c, vW, va, vc, X, y):
        return jax.jvp(lambda W, a, c: grad(W, a, c, X, y), (W, a, c), (vW, va, vc))[1]

    return jax.jit(hv)


@cache
def _compiled(act: str, loss: str, frozen: bool):
    """(value_and_grad, advance) jitted for one activation, loss and projection."""
    jax = import_jax()
    jnp = jax.numpy
    risk = _risk(act, loss)

    vg = jax.value_and_grad(risk, argnums=(0, 1, 2))

    def advance(state, X, y, U, eta, bound, k):
        """Up to k GD steps from state = (W, a, c, R, (g_W, g_a, g_c)) (R and g at (W, a, c));
        each step ends with R, g at the new point and the check there; the loop stops early at
        a point failing it. Returns (state at the last point, steps taken, ok)."""

        def cond(s):
            return (s[1] < k) & s[2]

        def body(s):
            (W, a, c, _, (gW, ga, gc)), i, _ = s
            if frozen:
                gW = gW - (gW @ U) @ U.T
            W, a, c = W - eta[0] * gW, a - eta[1] * ga, c - eta[2] * gc
            v, g = vg(W, a, c, X, y)
            good = jnp.isfinite(v) & (jnp.max(jnp.abs(W)) <= bound)
            return (W, a, c, v, g), i + 1, good

        return jax.lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int64),
                                               jnp.ones((), bool)))

    return jax.jit(vg), jax.jit(advance)


def _on_device(act: str, loss: str, X: np.ndarray, y: np.ndarray):
    """(X, y) as device arrays and X's dtype, once the activation and loss are known here."""
    if act not in ACTIVATIONS or loss not in LOSSES:
        raise ValueError(f"backend jax: activation {act!r} / loss {loss!r} not available "
                         f"(activations: {', '.join(ACTIVATIONS)}; losses: {', '.join(LOSSES)})")
    jnp = import_jax().numpy
    return jnp.asarray(X), jnp.asarray(y), X.dtype


class JaxGD:
    """One run's GD on the JAX backend: data on the device once, parameters moved to and from
    numpy ``Params`` at the record steps.

    X: (n, d), y: (n,) in the compute dtype; frozen: (d, r) orthonormal or None; eta:
    (eta_W, eta_a, eta_c); bound: max_weight_norm.
    """

    def __init__(self, act: str, loss: str, X: np.ndarray, y: np.ndarray,
                 frozen: np.ndarray | None, eta, bound: float):
        self.jnp = jnp = import_jax().numpy
        self.X, self.y, self.dtype = _on_device(act, loss, X, y)
        d = X.shape[1]
        self.U = jnp.asarray(np.zeros((d, 0), self.dtype) if frozen is None
                             else frozen.astype(self.dtype))
        self.eta = jnp.asarray(np.array(eta, self.dtype))
        self.bound = jnp.asarray(self.dtype.type(bound))
        self._vg, self._advance = _compiled(act, loss, frozen is not None)

    def start(self, p: Params) -> tuple[float, Params]:
        """Put p on the device; R and its (unprojected) gradient there, as numpy."""
        W, a, c = (self.jnp.asarray(x) for x in (p.W.astype(self.dtype, copy=False),
                                                  p.a.astype(self.dtype, copy=False),
                                                  np.asarray(p.c, self.dtype)))
        v, g = self._vg(W, a, c, self.X, self.y)
        self.state = (W, a, c, v, g)
        return self._host(p)

    def _host(self, p: Params) -> tuple[float, Params]:
        W, a, c, v, (gW, ga, gc) = self.state
        p.W, p.a, p.c = np.array(W), np.array(a), float(c)
        return float(v), Params(np.array(gW), np.array(ga), float(gc))

    def advance(self, p: Params, k: int) -> tuple[int, float, Params]:
        """Up to k GD steps; p <- the last point (in place). Returns (steps taken, R and the
        gradient at the last point): fewer than k steps if that point fails the check."""
        self.state, taken, _ = self._advance(self.state, self.X, self.y, self.U, self.eta,
                                             self.bound, k)
        return (int(taken), *self._host(p))


class JaxHVP:
    """H(p) v of the training risk on the JAX backend, as ``model.hvp`` (same model and loss;
    equal to rounding): X, y on the device once, p and v moved per call.

    X: (n, d), y: (n,); p and v are cast to X's dtype (the escape predictor is float64)."""

    def __init__(self, act: str, loss: str, X: np.ndarray, y: np.ndarray):
        self.X, self.y, self.dtype = _on_device(act, loss, X, y)
        self._hv = _compiled_hvp(act, loss)

    def __call__(self, p: Params, v: Params) -> Params:
        t = self.dtype.type
        hW, ha, hc = self._hv(*(np.asarray(x, self.dtype) for x in (p.W, p.a)), t(p.c),
                              *(np.asarray(x, self.dtype) for x in (v.W, v.a)), t(v.c),
                              self.X, self.y)
        return Params(np.array(hW), np.array(ha), float(hc))
