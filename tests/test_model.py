"""Gradient, HVP and dense Hessians against central finite differences, every activation x loss."""

import numpy as np
import pytest

from deltann import model as M
from deltann.activations import ACTIVATIONS
from deltann.losses import LOSSES

N, D, MM = 60, 7, 3


def _setup(act, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    y = rng.standard_normal(N)
    p = M.Params(rng.standard_normal((MM, D)) * 1.3 / np.sqrt(D), rng.standard_normal(MM), 0.3)
    return X, y, p


def _fd(fun, v0, h=1e-6):
    return np.array([(fun(v0 + h * e) - fun(v0 - h * e)) / (2 * h) for e in np.eye(len(v0))])


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_gradient_hvp_hessian_match_finite_differences(act, loss):
    a, ls = ACTIVATIONS[act], LOSSES[loss]
    X, y, p = _setup(a, ls)
    v0 = p.vector()

    def risk(v):
        return M.risk(M.Params.from_vector(v, MM, D), X, y, a, ls)

    def grad(v):
        return M.gradient(M.Params.from_vector(v, MM, D), X, y, a, ls).vector()

    g = M.gradient(p, X, y, a, ls).vector()
    assert _rel(g, _fd(risk, v0)) < 1e-6
    H = M.hessian(p, X, y, a, ls)
    Hfd = _fd(grad, v0)
    assert _rel(H, Hfd) < 1e-6
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    vv = np.random.default_rng(1).standard_normal(len(v0))
    hv = M.hvp(p, X, y, a, ls, M.Params.from_vector(vv, MM, D)).vector()
    assert _rel(hv, Hfd @ vv) < 1e-6
    # the W block of the full Hessian is the Kronecker-structured one of the theory
    HW = M.hessian_W(p, X, y, a, ls)
    np.testing.assert_allclose(HW, H[: MM * D, : MM * D], rtol=0, atol=1e-12 * np.abs(H).max())


def test_hessian_W_equals_kernel_sum():
    """H_WW = (1/n) sum_i K_i (x) x_i x_i^T, built sample by sample."""
    a, ls = ACTIVATIONS["tanh"], LOSSES["square"]
    X, y, p = _setup(a, ls, seed=3)
    K = M.kernel(p, X, y, a, ls)
    H = sum(np.kron(K[i], np.outer(X[i], X[i])) for i in range(N)) / N
    np.testing.assert_allclose(M.hessian_W(p, X, y, a, ls), H, atol=1e-12)


def test_params_vector_roundtrip():
    rng = np.random.default_rng(0)
    p = M.Params(rng.standard_normal((3, 5)), rng.standard_normal(3), 0.7)
    q = M.Params.from_vector(p.vector(), 3, 5)
    np.testing.assert_array_equal(q.W, p.W)
    np.testing.assert_array_equal(q.a, p.a)
    assert q.c == p.c
