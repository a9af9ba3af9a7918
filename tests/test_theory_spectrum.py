"""Deterministic-equivalent solver: closed forms (m = 1), known thresholds, and delta_alg."""

import numpy as np
import pytest
from scipy.optimize import brentq

from deltann.targets import gaussian_rule
from deltann.theory.alg import delta_alg
from deltann.theory.spectrum import KernelLaw, bulk_density, edge, outlier, threshold_delta

Z, W = gaussian_rule(1)
Y = Z[:, 0] ** 2


def _mm(T, tau, delta):
    """Lu-Li / Mondelli-Montanari closed form for D_T = (1/n) sum T(y) x x^T (top side)."""
    z2 = Z[:, 0] ** 2

    def E(f):
        return W @ f

    def psi(x):
        return x * (1 / delta + E(T / (x - T)))

    def dpsi(x):
        return 1 / delta - E(T**2 / (x - T) ** 2)

    xb = brentq(dpsi, tau + 1e-12, 1e6) if dpsi(tau + 1e-9) < 0 else tau
    q = lambda x: E((z2 - 1) * T / (x - T)) - 1 / delta  # noqa: E731
    if q(xb) <= 0:
        return psi(xb), None, None
    xs = brentq(q, xb, 1e6)
    dphi = -E(z2 * T**2 / (xs - T) ** 2)
    return psi(xb), psi(xs), dpsi(xs) / (dpsi(xs) - dphi)


@pytest.mark.parametrize("delta", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("name", ["y/(y+1)", "tanh(y-1)"])
def test_matrix_solver_equals_scalar_closed_form(name, delta):
    """m = 1 with K = -T: edge, outlier and overlap^2 equal the closed form (flipped sign)."""
    T = Y / (Y + 1) if name == "y/(y+1)" else np.tanh(Y - 1)
    e_mm, l_mm, ov_mm = _mm(T, 1.0, delta)
    r = outlier(KernelLaw(-T, W, Z, support=np.array([-1.0])), delta)
    assert r.edge == pytest.approx(-e_mm, abs=1e-7)
    assert r.exists == (l_mm is not None)
    if l_mm is not None:
        assert r.lam == pytest.approx(-l_mm, abs=1e-8)
        assert r.overlap2 == pytest.approx(ov_mm, abs=1e-7)


@pytest.mark.parametrize(("name", "expected"), [("y/(y+1)", 0.92089), ("tanh(y-1)", 0.63874)])
def test_threshold_matches_reference(name, expected):
    """delta_c of docs/theory.md section 8 (closed-form values), brentq xtol 1e-4."""
    T = Y / (Y + 1) if name == "y/(y+1)" else np.tanh(Y - 1)
    law = KernelLaw(-T, W, Z, support=np.array([-1.0]))
    assert threshold_delta(lambda d: outlier(law, d).mu_edge, 0.2, 20) == pytest.approx(
        expected, abs=5e-4)


@pytest.mark.parametrize("dprime", [0.55, 1.0, 2.0])
def test_optimal_preprocessing_threshold_is_sqrt_dprime_over_2(dprime):
    """y = z^2, T*_{d'} = (y-1)/(y-1+sqrt(2 d')): delta_c = sqrt(d'/2) (hard-edge regime), so the
    spectral threshold tends to delta_alg = 1/2 as d' -> 1/2."""
    T = (Y - 1) / (Y - 1 + np.sqrt(2 * dprime))
    law = KernelLaw(-T, W, Z, support=np.array([-1.0]))  # sup T = 1 (y -> inf), missed by nodes
    dc = threshold_delta(lambda d: outlier(law, d).mu_edge, 0.3, 10, xtol=1e-6)
    assert dc == pytest.approx(np.sqrt(dprime / 2), abs=2e-3)


def test_bulk_density_is_marchenko_pastur_for_scalar_identity_kernel():
    """m = 1, K = 1: H = X^T X / n, Marchenko-Pastur with ratio 1/delta."""
    delta = 4.0
    law = KernelLaw(np.ones(1), np.ones(1), np.zeros((1, 1)))
    lams = np.linspace(0.3, 2.2, 40)
    c = 1 / delta
    a, b = (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2
    mp = np.sqrt(np.clip((b - lams) * (lams - a), 0, None)) / (2 * np.pi * c * lams)
    rho = bulk_density(lams, law, delta, eta=1e-6)
    assert np.max(np.abs(rho - mp)) < 2e-3
    assert edge(law, delta).lam == pytest.approx(a, abs=1e-6)


@pytest.mark.parametrize(
    ("target", "noise", "expected", "tol"),
    [("z2", 0, 0.5, 1e-9), ("abs", 0, 0.5, 1e-9), ("z2sat", 0, 0.5, 1e-6),
     ("tanh2", 0, 0.5, 1e-9), ("step_abs", 0, 0.9250, 2e-4), ("he2", 0.5, 0.5416, 1e-4),
     ("he2", 1.0, 0.6466, 1e-4), ("he2", 2.0, 1.0550, 1e-4), ("linear", 0, 0.0, 0),
     ("z1_plus_z2sq", 0, 0.5, 1e-9)],
)
def test_delta_alg_table(target, noise, expected, tol):
    assert delta_alg(target, noise).value == pytest.approx(expected, abs=tol)


def test_delta_alg_multi_index():
    """y = z1 z2: no first-order signal (E[z|y] = 0 by z -> -z); second order from the exact law
    p(y) = K0(|y|)/pi, E[z1^2|y] = |y| K1/K0: G has fixed eigenvectors (1, +-1), so
    delta_alg = 1 / E[(a(y) - 1 + y)^2] = 0.59375. Staircase z1 + z1 z2 + z1 z2 z3 with z1 known:
    z2 is first-order visible, so delta_alg = 0."""
    assert delta_alg("z1z2").value == pytest.approx(0.59375, abs=1e-4)
    assert delta_alg("staircase3").value == 0.0


def test_product_conditional_law_is_normalised():
    from scipy.integrate import quad

    from deltann.targets import get_target

    cond = get_target("z1z2").conditional
    for moment, expected in [(lambda p, M2, y: p, 1.0), (lambda p, M2, y: p * M2[0, 0], 1.0),
                             (lambda p, M2, y: p * y * y, 1.0)]:
        def f(y, moment=moment):
            p, _, M2 = cond(np.array([y]))
            return moment(p[0], M2[0], y)

        total = quad(f, -np.inf, 0, limit=200)[0] + quad(f, 0, np.inf, limit=200)[0]
        assert total == pytest.approx(expected, abs=1e-8)
