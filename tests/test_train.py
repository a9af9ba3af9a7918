"""GD training: records, schedules, determinism, divergence, and the z2 phenomenon at small d."""

import numpy as np
import pytest

from deltann.activations import get_activation
from deltann.data import make_dataset, seed_sequence
from deltann.losses import get_loss
from deltann.targets import get_target
from deltann.train import TrainConfig, record_steps, train


def _data(d=40, delta=4.0, seed=0, target="z2"):
    return make_dataset(get_target(target), d, int(delta * d), 500, 0.0,
                        seed_sequence(1, "test", seed))


def _run(cfg, data=None, m=2, seed=0):
    data = data or _data()
    return train(data, get_activation("softplus"), get_loss("square"), m, cfg,
                 np.random.default_rng(seed))


def test_record_grid_is_log_spaced_and_contains_extras():
    g = record_steps(1000, 10, extra=[7, 5000])
    assert g[0] == 0 and g[-1] == 1000 and 7 in g
    assert np.all(np.diff(g) > 0)


def test_record_at_adds_records_and_a_longer_run_starts_as_the_shorter_one():
    """train.record_at puts T/2 and T on the grid of a 4 T run, and its records up to T equal
    the T run's (the budget check reads the longer run at T: finite_size.at_step)."""
    short = _run(TrainConfig(steps=300, n_records=10))
    long = _run(TrainConfig(steps=1200, n_records=10, record_at=[150, 300]))
    assert {150, 300} <= set(long.steps.tolist()) and long.steps[-1] == 1200
    assert 300 not in record_steps(1200, 10)  # not on the log grid by itself
    i = int(np.nonzero(long.steps == 300)[0][0])
    np.testing.assert_array_equal(long.train_risk[i], short.train_risk[-1])
    np.testing.assert_array_equal(long.cosine[i], short.cosine[-1])
    with pytest.raises(ValueError, match="record_at"):
        TrainConfig(record_at=(-1,))


def test_training_decreases_risk_and_records_everything():
    res = _run(TrainConfig(steps=300, snapshot_steps=(0, 50)))
    assert res.train_risk[-1] < 0.5 * res.train_risk[0]
    assert np.all(np.isfinite(res.test_risk)) and not res.diverged
    assert [s.W.shape for s in res.snapshots] == [(2, 40), (2, 40)]
    np.testing.assert_allclose(np.sum(res.cosine[-1] ** 2, axis=1) <= 1 + 1e-12, True)


def test_first_layer_schedule_keeps_second_layer_fixed():
    res = _run(TrainConfig(steps=50, schedule="first_layer"))
    np.testing.assert_array_equal(res.a[-1], res.a[0])
    assert res.c[-1] == 0.0


def test_two_timescale_moves_second_layer_slower():
    fast = _run(TrainConfig(steps=20, schedule="both"))
    slow = _run(TrainConfig(steps=20, schedule="two_timescale", lr_ratio=0.01))
    assert np.abs(slow.a[-1] - slow.a[0]).max() < 0.1 * np.abs(fast.a[-1] - fast.a[0]).max()


def test_same_seed_is_bitwise_identical_and_other_seed_differs():
    a = _run(TrainConfig(steps=30))
    b = _run(TrainConfig(steps=30))
    c = _run(TrainConfig(steps=30), seed=1)
    np.testing.assert_array_equal(a.train_risk, b.train_risk)
    assert not np.array_equal(a.train_risk, c.train_risk)


def test_divergence_is_recorded_not_raised():
    res = _run(TrainConfig(steps=200, lr=50.0))
    assert res.diverged and 0 < res.diverged_step <= 200
    last = np.flatnonzero(np.isfinite(res.train_risk))[-1]
    assert np.all(np.isnan(res.train_risk[last + 1:]))


def test_bad_schedule_names_allowed_values():
    with pytest.raises(ValueError, match="allowed: both, first_layer, two_timescale"):
        TrainConfig(schedule="sgd")


@pytest.mark.slow
def test_z2_hard_direction_learned_only_at_large_delta():
    """y = z^2, softplus, m = 2, d = 100, 3000 steps, 3 seeds: the default figure's phenomenon.

    Below the transition (delta = 1) every seed stays near the random level (overlap < 0.35,
    ~ a few / sqrt(d) after overfitting noise directions); well above it (delta = 12) every seed
    aligns (overlap > 0.9). The gap between 0.35 and 0.9 leaves room for seed noise at this d.
    """
    for delta, lo, hi in [(1.0, 0.0, 0.35), (12.0, 0.9, 1.0)]:
        for seed in range(3):
            data = _data(d=100, delta=delta, seed=seed)
            res = _run(TrainConfig(steps=3000), data=data, seed=seed)
            ov = np.max(np.abs(res.cosine[-1, :, 0]))
            assert lo <= ov <= hi, (delta, seed, ov)


def _z2sat(delta, seed, d=100):
    return make_dataset(get_target("z2sat"), d, int(delta * d), 500, 0.0,
                        seed_sequence(1, "test", seed))


def _q(res):
    from deltann.train import subspace_overlap

    return np.array([subspace_overlap(c, [0]) for c in res.cosine])


def test_early_stop_rule():
    """escaped needs both q >= stop_overlap and a flat risk over the last doubling; stuck needs
    stuck_after > 0; nothing stops with early_stop off."""
    from deltann.train import early_stop_reason

    steps = np.array([0, 1, 2, 4, 8, 16, 32])
    flat = np.array([1.0, 0.9, 0.5, 0.2, 0.1, 0.1, 0.1])
    q_up = np.array([0.1, 0.1, 0.1, 0.5, 0.95, 0.95, 0.95])
    on = TrainConfig(early_stop=True)
    assert early_stop_reason(on, steps, flat, q_up, 6) == "escaped"  # t=32 vs t'=16
    assert early_stop_reason(on, steps, flat, q_up, 4) is None  # risk 0.1 vs 0.2 at t'=4
    assert early_stop_reason(TrainConfig(), steps, flat, q_up, 6) is None
    q_low = np.full(7, 0.2)
    assert early_stop_reason(on, steps, flat, q_low, 6) is None  # stuck_after = 0: never
    stuck = TrainConfig(early_stop=True, stuck_after=16)
    assert early_stop_reason(stuck, steps, flat, q_low, 6) == "stuck"
    q_rising = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3])
    assert early_stop_reason(stuck, steps, flat, q_rising, 6) is None


def test_early_stop_of_escaped_runs_loses_nothing():
    """z2sat, softplus, first_layer, m = 2, d = 100, delta = 8, lr 0.1, 4000 steps, seeds 0, 1
    (both escape by ~2600 steps): the stopped run is the full run's prefix bit for bit, and what
    the full run adds after the stop changes the hard overlap by < 0.02 and the train risk by
    < 1 % (the rule asked for a risk flat to 1e-3 over the last doubling)."""
    for seed in (0, 1):
        data = _z2sat(8.0, seed)
        kw = {"steps": 4000, "lr": 0.1, "schedule": "first_layer"}
        full = _run(TrainConfig(**kw), data=data, seed=seed)
        res = train(data, get_activation("softplus"), get_loss("square"), 2,
                    TrainConfig(**kw, early_stop=True), np.random.default_rng(seed), watch=[0])
        assert res.stop_reason == "escaped" and 0 < res.stop_step < 4000
        i = int(np.nonzero(res.steps == res.stop_step)[0][0])
        np.testing.assert_array_equal(res.train_risk[: i + 1], full.train_risk[: i + 1])
        assert np.all(np.isnan(res.train_risk[i + 1:]))
        q, qf = _q(res), _q(full)
        assert q[i] >= 0.9 and abs(qf[-1] - q[i]) < 0.02
        assert abs(full.train_risk[-1] - res.train_risk[i]) < 0.01 * res.train_risk[i]


def test_stuck_stop_only_when_asked_and_the_full_run_stays_stuck():
    """z2sat, softplus, both, m = 2, d = 100, delta = 2 (below GD's transition), 8000 steps,
    seeds 0-2: with stuck_after = 2000 every run stops as stuck (hard overlap rose by <= 0.01
    over the last doubling); the full runs end below 1/2 too (the stop did not cut an escape)."""
    for seed in range(3):
        data = _z2sat(2.0, seed)
        kw = {"steps": 8000, "lr": 0.1, "schedule": "both"}
        full = _run(TrainConfig(**kw), data=data, seed=seed)
        res = train(data, get_activation("softplus"), get_loss("square"), 2,
                    TrainConfig(**kw, early_stop=True, stuck_after=2000),
                    np.random.default_rng(seed), watch=[0])
        assert res.stop_reason == "stuck" and 2000 <= res.stop_step < 8000
        assert _q(full)[-1] < 0.5


def test_run_file_and_sweep_record_the_stop(tmp_path):
    """The workflow's run file carries stop_step and stop_reason (CF flags), the sweep stacks
    them, and GD's transition reads the last record of a stopped run (not the NaN after it)."""
    from deltann.config import validate_config
    from deltann.phases import gd_transitions
    from deltann.pipeline import aggregate, train_run
    from deltann.sweep import expand

    cfg = validate_config({"experiments": {"e": {
        "target": ["z2sat"], "width": [2], "d": [100], "delta": [8], "seeds": 1, "n_test": 500,
        "train": {"steps": 4000, "lr": 0.1, "schedule": "first_layer", "early_stop": True}}}})
    sl = {"experiment": "e", "base_seed": cfg["base_seed"], **cfg["experiments"]["e"]}
    runs = {p: train_run(sl, p) for p in expand(sl)}
    ds = next(iter(runs.values()))
    assert ds["stop_reason"].attrs["flag_meanings"] == "budget escaped stuck diverged"
    assert int(ds["stop_reason"]) == 1 and 0 < int(ds["stop_step"]) < 4000
    import xarray as xr

    from deltann.io import write_netcdf

    back = xr.load_dataset(write_netcdf(ds, tmp_path / "run.nc"))  # netcdf4, CF flags kept
    assert list(back["stop_reason"].attrs["flag_values"]) == [0, 1, 2, 3]
    sw = aggregate(sl, runs)
    assert int(sw["stop_reason"].squeeze()) == 1 and np.isnan(sw["hard_overlap"][..., -1]).all()
    (row,) = gd_transitions(sw)
    assert row["mean_overlap"][0] >= 0.9


def test_sweep_records_the_float_width_each_run_trained_in():
    """A sweep whose runs were made at different train.dtype (the config changed between them)
    says so per run (train_float_bits: 64, 32), from each run file's own config."""
    from deltann.config import validate_config
    from deltann.pipeline import aggregate, train_run
    from deltann.sweep import expand

    def exp(dtype):
        cfg = validate_config({"experiments": {"e": {
            "target": ["z2sat"], "width": [2], "d": [30], "delta": [2, 4], "seeds": 1,
            "n_test": 100, "train": {"steps": 20, "lr": 0.1, "dtype": dtype}}}})
        return {"experiment": "e", "base_seed": cfg["base_seed"], **cfg["experiments"]["e"]}

    s64, s32 = exp("float64"), exp("float32")
    pts = expand(s64)
    runs = {pts[0]: train_run(s64, pts[0]), pts[1]: train_run(s32, pts[1])}
    bits = aggregate(s32, runs)["train_float_bits"].squeeze()
    assert bits.sel(delta=pts[0].delta) == 64 and bits.sel(delta=pts[1].delta) == 32
    assert "float32" in aggregate(s32, runs)["train_float_bits"].attrs["long_name"]
