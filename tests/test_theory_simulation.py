"""Theory vs dense-eigh simulation of H = (1/n) sum_i K_i (x) x_i x_i^T at d >= 1500.

Tolerances (issue 4): bulk edge and outlier within 2 %, overlap^2 within 0.05, for the mean over
seeded replicates. Measured here, one replicate's outlier fluctuates by ~3 % (sd) at d = 1500-2000
(eigenvalue sd ~ d^{-1/2}, docs/theory.md section 5), so each kernel averages 8 replicates (standard
error ~1 %) and the network case 4. Seeds are 0..N-1, fixed before looking at any result.
"""

import numpy as np
import pytest

from deltann import hessian as hs
from deltann.activations import get_activation
from deltann.losses import get_loss
from deltann.model import kron_hessian
from deltann.targets import gaussian_rule
from deltann.theory.network import kernel_law
from deltann.theory.second_phase import PointConfig, converged_point
from deltann.theory.spectrum import KernelLaw, bulk_density, outlier

pytestmark = pytest.mark.slow


def _simulate(kfun, m, d, delta, seed):
    """Lowest eigenpairs of the kernel Hessian with theta = e_1; returns (eigvals, overlap2)."""
    rng = np.random.default_rng(seed)
    n = int(delta * d)
    X = rng.standard_normal((n, d))
    K = kfun(X[:, 0] ** 2)
    spec = hs.dense_spectrum(kron_hessian(K, X), 8)
    theta = np.zeros((d, 1))
    theta[0, 0] = 1.0
    ov = hs.eigvec_overlaps(spec.eigvecs, theta, m).sum(axis=(1, 2))
    return spec.eigvals, ov


def _scalar_kernel(y):
    return -np.tanh(y - 1)[:, None, None]


def _matrix_kernel(y):
    """m = 2 kernel with y-dependent off-diagonal entries (bounded)."""
    t, u = np.tanh(y - 1), y / (y + 1)
    K = np.empty((len(y), 2, 2))
    K[:, 0, 0] = -t
    K[:, 1, 1] = 0.3 - 0.8 * u
    K[:, 0, 1] = K[:, 1, 0] = 0.4 * (u - 0.5)
    return K


def _law(kfun):
    z, w = gaussian_rule(1)
    return KernelLaw(kfun(z[:, 0] ** 2), w, z, support=kfun(np.array([1e12])))


@pytest.mark.parametrize(("name", "kfun", "m", "d", "delta"),
                         [("scalar -tanh(y-1)", _scalar_kernel, 1, 2000, 2.0),
                          ("m=2 off-diagonal", _matrix_kernel, 2, 1500, 2.0)])
def test_edge_outlier_overlap_match_simulation(name, kfun, m, d, delta):
    th = outlier(_law(kfun), delta)
    assert th.exists
    lam, ov, edge2 = [], [], []
    for seed in range(8):
        ev, o = _simulate(kfun, m, d, delta, seed)
        i = int(np.argmax(o[:3]))  # the theta-carrying one among the lowest three
        lam.append(ev[i])
        ov.append(o[i])
        edge2.append(np.delete(ev, i)[0])  # lowest bulk eigenvalue
    assert np.mean(lam) == pytest.approx(th.lam, rel=0.02), name
    assert np.mean(edge2) == pytest.approx(th.edge, rel=0.02), name
    assert abs(np.mean(ov) - th.overlap2) < 0.05, name


def test_bulk_density_matches_histogram_m2():
    """All 3000 eigenvalues (d = 1500, delta = 2) vs the theory density: L1 distance < 0.1."""
    d, delta = 1500, 2.0
    ev, _ = _simulate(_matrix_kernel, 2, d, delta, 13)
    hist, edges = np.histogram(ev, bins=60)
    width = edges[1] - edges[0]
    mids = 0.5 * (edges[1:] + edges[:-1])
    rho = bulk_density(mids, _law(_matrix_kernel), delta, eta=1e-3)
    emp = hist / (len(ev) * width)
    assert np.sum(rho) * width == pytest.approx(1.0, abs=0.02)  # mass
    assert np.sum(np.abs(rho - emp)) * width < 0.1


def test_network_hessian_at_converged_second_phase_point_matches_theory():
    """Real network Hessian at the converged second-phase point (L-BFGS from 200 projected-GD
    steps): z2sat, softplus, m = 2, squared loss, first_layer, d = 1000, delta = 6, 2 seeds.
    Theory on the empirical law of (K_i, z_i) of the same samples (docs/theory.md section 6)
    against dense eigh: 2 % on the outlier eigenvalue (seed mean; the outlier sits ~0.03 below an
    edge at ~0), 0.05 on its overlap^2, the edge within d^(-2/3) x the bulk width."""
    d, delta = 1000, 6.0
    pc = PointConfig(schedule="first_layer")
    rows = []
    for seed in range(2):
        cp = converged_point("z2sat", "softplus", "square", 2, d, delta, pc, seed=seed)
        assert cp.converged, cp.reason
        sp = cp.point
        th = outlier(kernel_law(sp, "softplus", "square"), delta)
        assert th.exists and th.mu_neg > 0
        spec = hs.spectrum(sp.params, sp.X, sp.y, get_activation("softplus"),
                           get_loss("square"), n_vecs=6, method="dense")
        ov = hs.eigvec_overlaps(spec.eigvecs, sp.U, 2).sum(axis=(1, 2))
        i = int(np.argmax(ov[:3]))
        rows.append((spec.eigvals[i], th.lam, ov[i], th.overlap2,
                     np.delete(spec.eigvals, i)[0], th.edge, spec.eigvals[-1] - spec.eigvals[0]))
    sim_l, th_l, sim_o, th_o, sim_e, th_e, width = np.mean(rows, axis=0)
    assert sim_l == pytest.approx(th_l, rel=0.02)
    assert abs(sim_o - th_o) < 0.05
    assert abs(sim_e - th_e) < d ** (-2 / 3) * width
