"""Matrix-free Lanczos spectra agree with dense eigh; eigenvector overlaps are normalised."""

import numpy as np
import pytest

from deltann import hessian as hs
from deltann import model as M
from deltann.activations import get_activation
from deltann.losses import get_loss


@pytest.mark.parametrize("block", ["W", "all"])
def test_lanczos_matches_dense(block):
    rng = np.random.default_rng(5)
    n, d, m = 300, 40, 3
    X = rng.standard_normal((n, d))
    y = X[:, 0] ** 2
    p = M.Params(rng.standard_normal((m, d)) / np.sqrt(d), np.full(m, 1 / m), 0.2)
    act, loss = get_activation("softplus"), get_loss("square")
    dense = hs.spectrum(p, X, y, act, loss, block=block, n_vecs=6, method="dense")
    lz = hs.spectrum(p, X, y, act, loss, block=block, n_vecs=6, method="lanczos")
    assert dense.eigvals.shape == (m * d + (m + 1 if block == "all" else 0),)
    np.testing.assert_allclose(lz.eigvals, dense.eigvals[:6], rtol=0, atol=1e-8)
    # same eigenvectors up to sign (the lowest ones are simple here)
    dots = np.abs(np.sum(lz.eigvecs * dense.eigvecs, axis=0))
    np.testing.assert_allclose(dots, 1.0, atol=1e-6)


def test_eigvec_overlaps_sum_to_one_for_full_basis():
    d, m, k = 6, 2, 1
    theta = np.zeros((d, k))
    theta[0, 0] = 1.0
    ov = hs.eigvec_overlaps(np.eye(m * d), theta, m)
    assert ov.shape == (m * d, m, k)
    assert ov.sum() == pytest.approx(m)  # each neuron block sees theta once


def test_unknown_method_is_an_error():
    p = M.Params(np.zeros((1, 3)), np.ones(1))
    with pytest.raises(ValueError, match="hessian.method"):
        hs.spectrum(p, np.ones((4, 3)), np.ones(4), get_activation("tanh"), get_loss("square"),
                    method="power")
