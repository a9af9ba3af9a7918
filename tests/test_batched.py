"""Batched GD runs (deltann.batched, pipeline.train_batch, the workflow's batch jobs).

Bitwise claims are exact (np.array_equal on every record); the stacked path is compared at a
stated tolerance because OpenBLAS's value of a row depends on the GEMM's row count.
"""

import numpy as np
import pytest

from deltann.activations import get_activation as A
from deltann.batched import RunSpec, train_many
from deltann.data import make_dataset
from deltann.losses import get_loss as L
from deltann.targets import get_target
from deltann.train import TrainConfig, train

RECORDS = ("train_risk", "test_risk", "grad_norm", "overlap", "cosine", "w_norm", "a", "c")


def _specs(schedule="both", steps=600, **extra):
    """Five runs on one dataset: widths 1, 2, 4, two activations, two losses, two inits."""
    base = dict(steps=steps, lr=0.1, schedule=schedule, snapshot_steps=(40,), **extra)
    rows = [("softplus", "square", 1, {}), ("softplus", "square", 2, {"a_init": 2.0}),
            ("tanh", "square", 4, {"init_scale": 0.5}), ("softplus", "correlation", 2, {}),
            ("softplus", "square", 2, {})]
    return [RunSpec(A(a), L(lo), m, TrainConfig(**base, **kw), np.random.default_rng(7 + i),
                    watch=(0,)) for i, (a, lo, m, kw) in enumerate(rows)]


def _alone(data, specs):
    return [train(data, s.act, s.loss, s.m, s.cfg, s.rng, watch=s.watch) for s in specs]


def _equal(a, b):
    return all(np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True) for k in RECORDS)


@pytest.mark.parametrize("schedule", ["both", "first_layer"])
def test_shared_pass_is_bitwise_the_runs_alone(schedule):
    """d = 60, n = 480 (delta 8, direct path): five mixed runs, one pass over X per step,
    against each run alone: every record, snapshot and the stop are bit for bit equal."""
    data = make_dataset(get_target("z2sat"), 60, 480, 300, 0.0, np.random.SeedSequence(3))
    alone, batch = _alone(data, _specs(schedule)), train_many(data, _specs(schedule))
    for a, b in zip(alone, batch, strict=True):
        assert _equal(a, b)
        assert np.array_equal(a.snapshots[0].W, b.snapshots[0].W)
        assert (a.stop_step, a.stop_reason) == (b.stop_step, b.stop_reason)


def test_runs_stopping_at_different_steps_leave_the_batch():
    """Early stopping (first_layer, delta 8, d = 60): runs stop at different steps (checked),
    the others go on, and every run still equals its run alone bitwise."""
    data = make_dataset(get_target("z2sat"), 60, 480, 300, 0.0, np.random.SeedSequence(3))
    kw = dict(schedule="first_layer", steps=4000, early_stop=True, stuck_after=400)
    alone, batch = _alone(data, _specs(**kw)), train_many(data, _specs(**kw))
    stops = {a.stop_step for a in alone}
    assert len(stops) >= 3, stops  # the test exercises runs leaving at different times
    for a, b in zip(alone, batch, strict=True):
        assert _equal(a, b) and (a.stop_step, a.stop_reason) == (b.stop_step, b.stop_reason)


def test_stacked_pass_agrees_to_rounding():
    """One (sum m) x d GEMM for all runs: records within 1e-9 of the runs alone after 600
    steps of schedule both at d = 60 (differences start at ~1e-16 per product; 1e-9 leaves
    room for their growth through 600 steps, and is far below any physical difference)."""
    data = make_dataset(get_target("z2sat"), 60, 480, 300, 0.0, np.random.SeedSequence(3))
    alone, batch = _alone(data, _specs()), train_many(data, _specs(), stacked=True)
    for a, b in zip(alone, batch, strict=True):
        for k in RECORDS:
            np.testing.assert_allclose(getattr(b, k), getattr(a, k), rtol=1e-9, atol=1e-12)


def test_stacked_uniform_runs_agree_to_rounding():
    """Runs of one activation, loss and width take the vectorised output layer: same check."""
    data = make_dataset(get_target("z2sat"), 60, 480, 300, 0.0, np.random.SeedSequence(4))
    cfg = TrainConfig(steps=300, lr=0.1)
    mk = lambda: [RunSpec(A("softplus"), L("square"), 2, cfg, np.random.default_rng(i))  # noqa: E731
                  for i in range(4)]
    for a, b in zip(_alone(data, mk()), train_many(data, mk(), stacked=True), strict=True):
        for k in RECORDS:
            np.testing.assert_allclose(getattr(b, k), getattr(a, k), rtol=1e-9, atol=1e-12)


def test_jax_backend_runs_are_not_batched():
    data = make_dataset(get_target("z2sat"), 20, 80, 50, 0.0, np.random.SeedSequence(0))
    specs = _specs(steps=5, backend="jax")
    with pytest.raises(ValueError, match="train.backend jax one by one"):
        train_many(data, specs)


def test_one_dtype_per_batch():
    data = make_dataset(get_target("z2sat"), 20, 100, 50, 0.0, np.random.SeedSequence(1))
    specs = [RunSpec(A("softplus"), L("square"), 1, TrainConfig(steps=5, dtype=dt),
                     np.random.default_rng(0)) for dt in ("float64", "float32")]
    with pytest.raises(ValueError, match="one train.dtype"):
        train_many(data, specs)


def test_pipeline_train_batch_equals_train_run():
    """A batch of a whole experiment (two widths x two a_init share data at each (delta, seed);
    delta 0.5 takes the Gram path, run alone) writes the run files train_run writes, bitwise
    apart from the wall time."""
    from deltann.config import validate_config
    from deltann.pipeline import train_batch, train_run
    from deltann.sweep import expand

    cfg = validate_config({"experiments": {"e": {
        "target": ["z2sat"], "width": [1, 2], "a_init": [1.0, 2.0], "d": [40],
        "delta": [0.5, 6], "seeds": 1, "n_test": 200,
        "train": {"steps": 200, "lr": 0.1, "early_stop": True}}}})
    sl = {"experiment": "e", "base_seed": cfg["base_seed"], **cfg["experiments"]["e"]}
    pts = expand(sl)
    got = dict(train_batch(sl, pts))
    assert set(got) == set(pts)
    for p in pts:
        a, b = (x.drop_vars("train_seconds") for x in (train_run(sl, p), got[p]))
        for x in (a, b):  # the creation time (s) may differ
            del x.attrs["history"], x.attrs["created"]
        assert a.identical(b), p


def _layout(**top):
    from deltann.config import validate_config
    from deltann.workflow import Layout

    exp = {"target": ["z2sat"], "width": [1, 2, 4], "d": [50, 100], "delta": [2, 4, 8],
           "seeds": 2, "n_test": 100, "train": {"steps": 1000}}
    return Layout(validate_config({"experiments": {"e": exp, "f": {**exp, "width": [2]}},
                                   **top}))


def test_layout_packs_runs_on_the_same_samples_together():
    """Every run is in exactly one job; runs on the same samples share a job; no job exceeds
    batch.runs; experiment f (one run per sample set) is packed 5 to a job."""
    from deltann.sweep import data_key, parse_run_id

    lay = _layout(batch={"runs": 5})
    jobs = lay.batches()
    for exp in ("e", "f"):
        batched = [r for e, _, runs in jobs if e == exp for r in runs]
        assert len(batched) == len(set(batched))
        singles = set(lay.run_ids(exp)) - set(batched)
        assert len(singles) <= 1  # at most one run left alone, at the end
        assert all(len(runs) <= 5 for _, _, runs in jobs)
    keys = {}
    for e, bid, runs in jobs:
        for r in runs:
            keys.setdefault((e, data_key(parse_run_id(r))), set()).add(bid)
    assert all(len(b) == 1 for b in keys.values())  # a sample set is never split (3 runs <= 5)
    assert [len(r) for e, _, r in jobs if e == "f"] == [5, 5, 2]


def test_layout_batches_fit_max_job_hours_and_default_is_one_job_per_run():
    """500000-step runs (0-10 min each beyond the floor, by the estimate): with
    max_job_hours = 0.4 every job fits 24 min, so there are more, smaller jobs than at 4 h;
    runs: 1 (the default) gives no batch rules."""
    def jobs(hours):
        lay = _layout(batch={"runs": 10}, max_job_hours=hours)
        lay.config["experiments"]["f"]["train"]["steps"] = 500000
        return lay, [j for j in lay.batches() if j[0] == "f"]

    lay, short = jobs(0.4)
    _, long = jobs(4)
    assert all(lay.batch_runtime("train", e, r) <= 24 for e, _, r in short)
    assert 2 <= max(len(r) for _, _, r in short) < 10 == max(len(r) for _, _, r in long)
    assert _layout().batches() == []


def test_bad_batch_is_refused_naming_the_key():
    from deltann.config import ConfigError, validate_config

    for bad, key in (({"runs": 0}, "batch.runs"), ({"size": 2}, "batch: unknown key")):
        with pytest.raises(ConfigError, match=key):
            validate_config({"experiments": {}, "batch": bad})


def test_command_line_strings_are_read_as_the_schema_types(tmp_path):
    """``snakemake --config 'batch={runs: 4, stack: true}'`` delivers '4' and 'true': the
    workflow's config entry reads them as YAML where the schema wants an integer or boolean
    (also inside experiments); a string that is not one is still refused, naming the key."""
    from deltann.config import default_schema_path, workflow_config

    cfg = {"experiments": {"e": {"target": ["z2sat"], "d": ["100"], "delta": ["2.5"],
                                 "train": {"steps": "50", "early_stop": "true"}}},
           "batch": {"runs": "4", "stack": "true"}}
    out = workflow_config(cfg, default_schema_path())
    assert out["batch"] == {"runs": 4, "stack": True}
    e = out["experiments"]["e"]
    assert (e["d"], e["delta"], e["train"]["steps"], e["train"]["early_stop"]) == \
        ([100], [2.5], 50, True)
    with pytest.raises(SystemExit):
        workflow_config({**cfg, "batch": {"runs": "four"}}, default_schema_path())
