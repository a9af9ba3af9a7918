"""The fast paths agree with the reference ones: row-blocked gradient/HVP, Gram-matrix GD,
float32 GD, and the dense spectrum from one tridiagonalisation."""

import numpy as np
import pytest

from deltann import hessian as hs
from deltann import model as M
from deltann.activations import ACTIVATIONS, get_activation
from deltann.data import make_dataset, seed_sequence
from deltann.losses import LOSSES, get_loss
from deltann.targets import get_target
from deltann.train import TrainConfig, train


def _problem(n=700, d=9, m=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    p = M.Params(rng.standard_normal((m, d)) / np.sqrt(d), rng.standard_normal(m), 0.3)
    v = M.Params(rng.standard_normal((m, d)), rng.standard_normal(m), -0.4)
    return X, y, p, v


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("act", ["softplus", "tanh", "erf", "relu", "he3"])
def test_blocked_passes_equal_one_block(act, loss, monkeypatch):
    a, ls = ACTIVATIONS[act], LOSSES[loss]
    X, y, p, v = _problem()
    one_v, one_g = M.value_and_grad(p, X, y, a, ls)
    one_g = one_g.vector()
    one_h = M.hvp(p, X, y, a, ls, v).vector()
    monkeypatch.setattr(M, "SINGLE_BLOCK_BYTES", 0)
    monkeypatch.setattr(M, "BLOCK_ELEMS", 1)  # 64-row blocks: 11 blocks, the last one short
    assert M.block_rows(*X.shape, 8) == 64
    val, g = M.value_and_grad(p, X, y, a, ls)
    assert val == pytest.approx(one_v, rel=1e-13)
    np.testing.assert_allclose(g.vector(), one_g, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(M.hvp(p, X, y, a, ls, v).vector(), one_h, rtol=1e-11, atol=1e-13)


def test_workspace_is_reused_and_overwritten():
    a, ls = get_activation("softplus"), get_loss("square")
    X, y, p, _ = _problem()
    ws = M.Workspace(*X.shape, p.m, X.dtype)
    _, g1 = M.value_and_grad(p, X, y, a, ls, ws)
    ref = g1.vector().copy()
    p2 = p.copy()
    p2.W *= 2
    _, g2 = M.value_and_grad(p2, X, y, a, ls, ws)
    assert g2.W is g1.W  # same buffer
    np.testing.assert_allclose(M.gradient(p2, X, y, a, ls).vector(), g2.vector(), rtol=1e-13)
    assert not np.allclose(g2.vector(), ref)


def _data(d, delta, target="z2"):
    return make_dataset(get_target(target), d, int(delta * d), 300, 0.1,
                        seed_sequence(3, "fast", 0))


@pytest.mark.parametrize("frozen", [False, True])
def test_gram_path_equals_direct_path(frozen):
    data = _data(60, 0.8)  # n = 48 < d
    act, loss = get_activation("softplus"), get_loss("square")
    F = data.theta[:, :1] if frozen else None
    cfg = TrainConfig(steps=400, lr=0.1, schedule="two_timescale", snapshot_steps=(40,))
    runs = [train(data, act, loss, 3, cfg, np.random.default_rng(1), frozen=F, gram=g)
            for g in (False, True)]
    for name in ("train_risk", "test_risk", "grad_norm", "overlap", "w_norm", "a", "c"):
        np.testing.assert_allclose(getattr(runs[1], name), getattr(runs[0], name),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(runs[1].snapshots[0].W, runs[0].snapshots[0].W, atol=1e-12)
    if frozen:
        assert np.max(np.abs(runs[1].overlap)) < 1e-12


def test_gram_divergence_is_detected_at_the_same_step():
    data = _data(30, 0.5)
    act, loss = get_activation("he2"), get_loss("square")
    cfg = TrainConfig(steps=200, lr=5.0, max_weight_norm=1e3)
    runs = [train(data, act, loss, 2, cfg, np.random.default_rng(0), gram=g) for g in (0, 1)]
    assert runs[0].diverged and runs[1].diverged
    assert runs[0].diverged_step == runs[1].diverged_step


def test_float32_gd_tracks_float64():
    """Over 500 steps the float32 trajectory stays within 1e-4 of float64 (risk: relative)."""
    data = _data(50, 4.0)
    act, loss = get_activation("softplus"), get_loss("square")
    r64, r32 = (train(data, act, loss, 2, TrainConfig(steps=500, lr=0.1, dtype=dt),
                      np.random.default_rng(2)) for dt in ("float64", "float32"))
    np.testing.assert_allclose(r32.train_risk, r64.train_risk, rtol=1e-4)
    np.testing.assert_allclose(r32.overlap, r64.overlap, atol=1e-4)
    np.testing.assert_allclose(r32.a, r64.a, atol=1e-4)


@pytest.mark.parametrize("N", [1, 2, 7, 120])
def test_dense_spectrum_matches_eigh(N):
    rng = np.random.default_rng(N)
    A = rng.standard_normal((N, N))
    H = A + A.T
    spec = hs.dense_spectrum(H.copy(), 5, overwrite=True)
    w, v = np.linalg.eigh(H)
    k = min(5, N)
    np.testing.assert_allclose(spec.eigvals, w, atol=1e-12 * max(1, np.abs(w).max()))
    assert spec.eigvecs.shape == (N, k)
    np.testing.assert_allclose(np.abs(np.sum(spec.eigvecs * v[:, :k], axis=0)), 1, atol=1e-9)
    np.testing.assert_allclose(H @ spec.eigvecs, spec.eigvecs * w[:k], atol=1e-10)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("complex_g", [False, True])
def test_theory_B_closed_forms_equal_batched_solve(m, complex_g):
    from deltann.theory import spectrum as ts

    rng = np.random.default_rng(m)
    A = rng.standard_normal((50, m, m))
    law = ts.KernelLaw.empirical(A + np.swapaxes(A, 1, 2), rng.standard_normal((50, 1)))
    G = rng.standard_normal((m, m))
    g = np.eye(m) + 0.1 * (G + G.T) + (0.3j * np.eye(m) if complex_g else 0)
    M = np.eye(m) + np.einsum("ij,qjk->qik", g, law.K) / 1.7
    ref = np.einsum("qij,qjk->qik", law.K, np.linalg.inv(M))
    np.testing.assert_allclose(ts._B(g, law, 1.7), ref, rtol=1e-10, atol=1e-12)
    P, B = ts.phi(g, law, 1.7)
    np.testing.assert_allclose(P, ref.mean(axis=0), rtol=1e-10, atol=1e-12)
    EBB = np.einsum("q,qij,qkl->iljk", law.w, B, B).reshape(m * m, m * m)
    np.testing.assert_allclose(ts._L_matrix(g, B, law, 1.7), np.kron(g, g) @ EBB / 1.7,
                               rtol=1e-10, atol=1e-12)
    S = np.einsum("q,qa,qb,qij->aibj", law.w, law.z, law.z, B).reshape(m, m)
    np.testing.assert_allclose(ts._S(B, law), S, rtol=1e-10, atol=1e-12)
