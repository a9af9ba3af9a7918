"""The finite-d escape predictor (deltann.escape) against GD from the same data and init."""

import numpy as np
import pytest

from deltann.activations import get_activation
from deltann.escape import predict_escape
from deltann.losses import get_loss
from deltann.phases import ESCAPE_LEVEL, escape_step
from deltann.pipeline import init_seed, make_data
from deltann.sweep import Point
from deltann.train import TrainConfig, train

ACT, LOSS = get_activation("softplus"), get_loss("square")
EXP = {"noise": 0.0, "center_labels": True, "n_test": 300}


def _pair(schedule, d=200, delta=4.0, m=2, steps=400, seed=0, stop_level=1.1):
    """Prediction and GD run of one point, same data and init seeds."""
    p = Point("z2sat", "softplus", "square", m, d, delta, seed)
    data = make_data(20260, EXP, p)
    cfg = TrainConfig(steps=steps, lr=0.1, schedule=schedule, n_records=25)
    pr = predict_escape(data, ACT, LOSS, m, cfg, np.random.default_rng(init_seed(20260, p)),
                        stop_level=stop_level)
    gd = train(data, ACT, LOSS, m, cfg, np.random.default_rng(init_seed(20260, p)))
    return pr, gd


@pytest.mark.parametrize("schedule", ["first_layer", "both"])
def test_linearised_hard_component_follows_gd_while_small(schedule):
    """The recursion is GD's first-order expansion around projected GD: while the predicted
    hard overlap is within 1.5x its initial value (d = 200, delta = 4, m = 2, 400 steps) the log
    growth of the hard component |W_t theta| agrees with the GD run's to 0.01 (the neglected
    terms are second order: measured ~1e-4 over the first 100 steps, 5e-3 at q = 0.11 from
    q0 = 0.07); the prediction is not a replay of GD: the two part once the hard component is
    O(1)."""
    pr, gd = _pair(schedule)
    real = np.log(np.linalg.norm(gd.overlap, axis=(1, 2)) / np.linalg.norm(gd.overlap[0]))
    small = pr.q_pred <= 1.5 * pr.q0
    assert small.sum() >= 10
    np.testing.assert_allclose(pr.growth[small], real[small], atol=0.01)
    assert pr.q0 == pytest.approx(np.max(np.abs(gd.cosine[0])), rel=1e-12)


def test_stop_level_ends_the_projected_run_once_the_escape_is_known():
    pr, _ = _pair("first_layer", delta=6.0, steps=3000, stop_level=0.6)
    assert np.isfinite(pr.escape_step) and pr.stop_step < 3000
    assert pr.stop_step >= pr.escape_step
    after = pr.steps > pr.stop_step
    assert after.any() and np.isnan(pr.q_pred[after]).all()
    assert np.isfinite(pr.q_pred[~after]).all()


def test_float32_is_refused():
    p = Point("z2sat", "softplus", "square", 2, 20, 2.0, 0)
    data = make_data(1, EXP, p)
    with pytest.raises(ValueError, match="float64"):
        predict_escape(data, ACT, LOSS, 2, TrainConfig(steps=5, dtype="float32"),
                       np.random.default_rng(0))


def test_predictor_decides_and_times_gd_escapes_at_d200():
    """Against GD at d = 200 (first_layer, m = 2, 6000 steps, 4 seeds, n_test = 500), below
    (delta = 2.5: no seed escapes) and above (delta = 4: all escape) GD's transition near 3:
    whether each run escapes agrees in >= 7 of 8 runs (measured: 8 of 8, and 19 of 20 over
    delta = 2.5-5), and the seed-median escape step at delta = 4 is within a factor 1.5 of GD's
    (the issue's goal; measured 0.93)."""
    exp = {**EXP, "n_test": 500}
    agree, pred_tau, gd_tau = 0, [], []
    for delta in (2.5, 4.0):
        for seed in range(4):
            p = Point("z2sat", "softplus", "square", 2, 200, delta, seed)
            data = make_data(20260, exp, p)
            cfg = TrainConfig(steps=6000, lr=0.1, schedule="first_layer", n_records=60)
            pr = predict_escape(data, ACT, LOSS, 2, cfg,
                                np.random.default_rng(init_seed(20260, p)))
            gd = train(data, ACT, LOSS, 2, cfg, np.random.default_rng(init_seed(20260, p)))
            q = np.max(np.abs(gd.cosine[:, :, 0]), axis=1)
            agree += bool(np.isfinite(pr.escape_step)) == bool(q[-1] >= ESCAPE_LEVEL)
            if delta == 4.0:
                pred_tau.append(pr.escape_step)
                gd_tau.append(escape_step(gd.steps, q))
    assert agree >= 7
    ratio = np.median(pred_tau) / np.median(gd_tau)
    assert 1 / 1.5 <= ratio <= 1.5, (pred_tau, gd_tau)


def test_gd_early_stopping_does_not_cut_the_projected_run():
    """The projected run's hard overlap is 0: GD's 'stuck' rule (train.stuck_after) would end it
    at once. The predictor ignores train.early_stop: the same prediction with or without it."""
    p = Point("z2sat", "softplus", "square", 2, 100, 4.0, 0)
    data = make_data(20260, EXP, p)
    base = TrainConfig(steps=600, lr=0.1, schedule="first_layer", n_records=25)
    stop = TrainConfig(steps=600, lr=0.1, schedule="first_layer", n_records=25,
                       early_stop=True, stuck_after=50)
    a, b = (predict_escape(data, ACT, LOSS, 2, c, np.random.default_rng(init_seed(20260, p)))
            for c in (base, stop))
    assert b.stop_step == a.stop_step and np.array_equal(a.q_pred, b.q_pred, equal_nan=True)
    assert np.isfinite(b.q_pred[-1]) or b.stop_step < 600


def test_escape_run_predicts_in_float64_when_gd_trains_in_float32():
    """train.dtype float32 with predictor.enabled: the prediction is made in float64 (it is the
    same as for a float64 experiment), not refused at run time."""
    from deltann.config import validate_config
    from deltann.escape import escape_run

    out = []
    for dtype in ("float32", "float64"):
        cfg = validate_config({"experiments": {"e": {
            "target": ["z2sat"], "width": [2], "d": [40], "delta": [4], "seeds": 1,
            "n_test": 200, "predictor": {"enabled": True},
            "train": {"steps": 100, "lr": 0.1, "dtype": dtype}}}})
        sl = {"experiment": "e", "base_seed": cfg["base_seed"], **cfg["experiments"]["e"]}
        out.append(escape_run(sl, Point("z2sat", "softplus", "square", 2, 40, 4.0, 0)))
    assert np.array_equal(out[0]["pred_overlap"].values, out[1]["pred_overlap"].values,
                          equal_nan=True)
