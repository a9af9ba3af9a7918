"""The JAX backend of GD (train.backend: jax) against the numpy reference.

Same data and init (z2sat at d = 60, delta = 6 unless said; seeded), both backends run the same
GD: every record, snapshot, stop and divergence step must agree. Tolerances: 1e-8 relative in
float64 (the two differ only by rounding: ~1e-15 per step, grown through at most 400 steps;
measured <= 1e-15 here) and 1e-4 in float32 (measured ~3e-7).
"""

import dataclasses

import numpy as np
import pytest

from deltann.activations import get_activation
from deltann.data import make_dataset, seed_sequence
from deltann.losses import get_loss
from deltann.targets import get_target
from deltann.train import TrainConfig, train

pytest.importorskip("jax", reason="the jax backend needs the [jax] extra (in [test])")

TOL = {"float64": 1e-8, "float32": 1e-4}
FIELDS = ("train_risk", "test_risk", "grad_norm", "overlap", "cosine", "w_norm", "a", "c")


def _data(d=60, delta=6.0, target="z2sat", seed=0):
    return make_dataset(get_target(target), d, int(delta * d), 300, 0.0,
                        seed_sequence(3, "jax", seed))


def _both(cfg, data=None, m=3, act="softplus", loss="square", **kw):
    data = data or _data()
    out = [train(data, get_activation(act), get_loss(loss), m,
                 dataclasses.replace(cfg, backend=b), np.random.default_rng(7), **kw)
           for b in ("numpy", "jax")]
    return out


def _close(r0, r1, tol):
    for f in FIELDS:
        a, b = np.asarray(getattr(r0, f), float), np.asarray(getattr(r1, f), float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f)
        ok = ~np.isnan(a)
        scale = max(np.max(np.abs(a[ok]), initial=0.0), 1e-6)  # ~0 fields: absolute 1e-14
        assert np.max(np.abs(a[ok] - b[ok]), initial=0.0) <= tol * scale, f
    assert len(r0.snapshots) == len(r1.snapshots)
    for s0, s1 in zip(r0.snapshots, r1.snapshots, strict=True):
        np.testing.assert_allclose(s1.W, s0.W, rtol=0, atol=tol * np.max(np.abs(s0.W)))
    assert (r0.diverged, r0.diverged_step, r0.stop_step, r0.stop_reason) == \
        (r1.diverged, r1.diverged_step, r1.stop_step, r1.stop_reason)


@pytest.mark.parametrize("schedule", ["both", "first_layer", "two_timescale"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_jax_backend_records_equal_numpy(schedule, dtype):
    cfg = TrainConfig(steps=400, lr=0.1, schedule=schedule, n_records=25, dtype=dtype,
                      snapshot_steps=(0, 137, 400))
    r0, r1 = _both(cfg)
    assert r0.train_risk[-1] < 0.9 * r0.train_risk[0]  # the run really moves
    _close(r0, r1, TOL[dtype])


@pytest.mark.parametrize("act,loss", [("relu", "square"), ("tanh", "correlation"),
                                      ("erf", "square"), ("he3", "square")])
def test_jax_backend_every_activation_and_loss(act, loss):
    cfg = TrainConfig(steps=60, lr=0.05, n_records=8)
    r0, r1 = _both(cfg, act=act, loss=loss, m=2)
    _close(r0, r1, TOL["float64"])


def test_jax_backend_projected_gd_and_the_gram_sized_case():
    """frozen directions (projected GD) stay unseen; n <= d, where numpy takes the Gram path."""
    data = _data()
    U = data.theta[:, :1]
    cfg = TrainConfig(steps=200, lr=0.1, n_records=12)
    r0, r1 = _both(cfg, data=data, frozen=U)
    _close(r0, r1, TOL["float64"])
    assert np.max(np.abs(r1.overlap[..., 0])) < 1e-12
    r0, r1 = _both(cfg, data=_data(d=80, delta=0.75))
    _close(r0, r1, TOL["float64"])


def test_jax_backend_early_stop_and_divergence_at_the_same_step():
    cfg = TrainConfig(steps=3000, lr=0.1, n_records=40, early_stop=True, stop_overlap=0.05,
                      stop_rtol=0.05)
    r0, r1 = _both(cfg)
    assert r0.stop_reason == "escaped" and 0 < r0.stop_step < 3000
    _close(r0, r1, TOL["float64"])
    r0, r1 = _both(TrainConfig(steps=300, lr=40.0, n_records=30, max_weight_norm=50.0))
    assert r0.diverged and 0 < r0.diverged_step < 300
    _close(r0, r1, TOL["float64"])


def test_jax_backend_refuses_the_predictor_hook():
    cfg = TrainConfig(steps=5, backend="jax")
    with pytest.raises(ValueError, match="hook .* needs the numpy backend"):
        train(_data(), get_activation("softplus"), get_loss("square"), 2, cfg,
              np.random.default_rng(0), hook=lambda t, p, g: False)


def test_pipeline_batch_on_the_jax_backend_equals_numpy():
    """train_batch from a config with train.backend: jax (the runs of one sample set one by
    one, the Gram-path delta included) against the same config on numpy."""
    from deltann.config import validate_config
    from deltann.pipeline import train_batch
    from deltann.sweep import expand

    def sl(backend):
        cfg = validate_config({"experiments": {"e": {
            "target": ["z2sat"], "width": [1, 2], "d": [40], "delta": [0.5, 6], "seeds": 1,
            "n_test": 200, "train": {"steps": 200, "lr": 0.1, "backend": backend}}}})
        return {"experiment": "e", "base_seed": cfg["base_seed"], **cfg["experiments"]["e"]}

    pts = expand(sl("numpy"))
    ref = dict(train_batch(sl("numpy"), pts))
    got = dict(train_batch(sl("jax"), pts))
    assert set(got) == set(pts)
    for p in pts:
        for v in ("hard_overlap", "train_risk", "test_risk", "a"):
            a, b = ref[p][v].values, got[p][v].values
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-8 * np.nanmax(np.abs(a)))


def test_config_names_train_backend_when_it_cannot_be_used(monkeypatch):
    from deltann import jax_backend
    from deltann.config import ConfigError, validate_config

    def cfg(backend):
        return {"experiments": {"e": {"train": {"backend": backend}}}}

    with pytest.raises(ConfigError, match=r"experiments\.e\.train\.backend.*allowed"):
        validate_config(cfg("torch"))
    monkeypatch.setattr(jax_backend, "available", lambda: "jax is not installed (test)")
    with pytest.raises(ConfigError, match=r"experiments\.e\.train\.backend: jax: jax is not "
                                          r"installed \(test\)"):
        validate_config(cfg("jax"))
    with pytest.raises(ConfigError, match=r"experiments\.e\.predictor\.backend: jax: jax "):
        validate_config({"experiments": {"e": {"predictor": {"backend": "jax"}}}})
    assert validate_config(cfg("numpy"))["experiments"]["e"]["train"]["backend"] == "numpy"


def test_predictor_with_jax_hvp_equals_numpy():
    """predictor.backend jax: H v by jax.jvp(jax.grad) (projected GD stays numpy). d = 100,
    delta = 5, m = 2, first_layer, 600 steps: every recorded q_pred, growth and Rayleigh quotient
    and the predicted escape step equal the numpy predictor's to 1e-8 (one HVP agrees to ~1e-15;
    the recursion is linear, so rounding does not grow)."""
    from deltann.escape import predict_escape
    from deltann.jax_backend import JaxHVP
    from deltann.model import Params, hvp
    from deltann.pipeline import init_seed, make_data
    from deltann.sweep import Point

    p = Point("z2sat", "softplus", "square", 2, 100, 5.0, 1)
    data = make_data(20260, {"noise": 0.0, "center_labels": True, "n_test": 200}, p)
    act, loss = get_activation("softplus"), get_loss("square")
    rng = np.random.default_rng(0)
    P = Params(rng.standard_normal((2, 100)) / 10, np.array([0.5, -0.5]), 0.1)
    V = Params(rng.standard_normal((2, 100)), rng.standard_normal(2), 0.3)
    ref, got = hvp(P, data.X, data.y, act, loss, V), JaxHVP("softplus", "square", data.X,
                                                             data.y)(P, V)
    np.testing.assert_allclose(got.vector(), ref.vector(), rtol=1e-12, atol=1e-14)
    out = []
    cfg = TrainConfig(steps=600, lr=0.1, schedule="first_layer", n_records=30)
    for backend in ("numpy", "jax"):
        out.append(predict_escape(data, act, loss, 2, cfg,
                                  np.random.default_rng(init_seed(20260, p)),
                                  hvp_backend=backend))
    a, b = out
    assert np.isfinite(a.q_pred).sum() > 10
    for f in ("q_pred", "growth", "rayleigh", "train_risk"):
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-8, atol=1e-12,
                                   err_msg=f)
    assert a.escape_step == pytest.approx(b.escape_step, rel=1e-8, nan_ok=True)
