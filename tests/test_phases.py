"""Phases of a run (escape, plateau), the GD threshold, the threshold table and its figure."""

import json

import numpy as np
import pytest
import xarray as xr

from deltann.phases import (
    escape_step,
    escape_steps,
    gd_threshold,
    gd_transitions,
    plateau_step,
    plateau_steps,
)
from deltann.theory.table import table_points

STEPS = np.array([0, 1, 3, 10, 30, 100, 300, 1000])


def test_escape_step_interpolates_in_log_time():
    q = np.array([0.1, 0.1, 0.1, 0.2, 0.3, 0.7, 0.99, 1.0])
    # crossing of 0.5 halfway between records 30 (0.3) and 100 (0.7), in log(1 + t)
    want = np.expm1(0.5 * (np.log1p(30) + np.log1p(100)))
    assert escape_step(STEPS, q) == pytest.approx(want)
    assert escape_step(STEPS, q, level=0.99) == pytest.approx(300)
    assert np.isnan(escape_step(STEPS, np.full(8, 0.4)))
    assert escape_step(STEPS, np.full(8, 0.6)) == 0
    q_div = q.copy()
    q_div[4:] = np.nan  # diverged at record 4: never escaped
    assert np.isnan(escape_step(STEPS, q_div))


def test_plateau_step_is_the_gradient_minimum_before_escape():
    g = np.array([1.0, 0.5, 0.2, 0.1, 0.05, 0.2, 0.01, 0.001])
    assert plateau_step(STEPS, g, t_escape=60.0) == 30
    assert plateau_step(STEPS, g, t_escape=2000.0) == 1000
    assert np.isnan(plateau_step(STEPS, g, t_escape=np.nan))


def test_vectorised_over_a_sweep():
    q = np.stack([np.full(8, 0.1), np.linspace(0, 1, 8)])  # (delta, step)
    ds = xr.Dataset({"hard_overlap": (("delta", "step"), q),
                     "grad_norm": (("delta", "step"), np.tile(np.linspace(1, 0.1, 8), (2, 1)))},
                    coords={"delta": [1.0, 4.0], "step": STEPS})
    tau = escape_steps(ds)
    assert tau.dims == ("delta",) and np.isnan(tau.values[0]) and 10 < tau.values[1] < 30
    tpl = plateau_steps(ds, tau)
    assert np.isnan(tpl.values[0]) and tpl.values[1] == 10  # grad still falling: last record


def test_gd_threshold():
    deltas = np.array([1.0, 2.0, 4.0, 8.0])
    assert gd_threshold(deltas, [0.1, 0.3, 0.7, 1.0]) == pytest.approx(np.sqrt(8.0))
    assert np.isnan(gd_threshold(deltas, [0.1, 0.2, 0.3, 0.4]))
    assert gd_threshold(deltas, [0.9, 1, 1, 1]) == 1.0


def test_gd_transitions_mean_bracket_and_seed_error():
    # final overlaps (delta, seed): seed 0 crosses between 2 and 4, seed 1 between 4 and 8
    final = np.array([[0.1, 0.1], [0.9, 0.2], [1.0, 0.9]])
    q = np.repeat(final[:, :, None], 3, axis=2)  # constant in time
    ds = xr.Dataset({"hard_overlap": (("m", "delta", "seed", "step"), q[None]),
                     "diverged": (("m", "delta", "seed"), np.zeros((1, 3, 2), bool))},
                    coords={"m": [2], "delta": [2.0, 4.0, 8.0], "seed": [0, 1],
                            "step": [0, 10, 100]})
    (r,) = gd_transitions(ds)
    assert r["m"] == 2 and r["seeds"] == 2 and r["bracket"] == [2.0, 4.0]
    assert r["delta_gd"] == pytest.approx(gd_threshold([2.0, 4.0, 8.0], final.mean(1)))
    c = [gd_threshold([2.0, 4.0, 8.0], final[:, s]) for s in range(2)]
    assert r["seed_crossings"] == pytest.approx(c)
    assert r["seed_sem"] == pytest.approx(np.std(c, ddof=1) / np.sqrt(2))
    assert r["monotone"] and not r["below_grid"]
    assert r["mean_overlap"] == pytest.approx(final.mean(1).tolist())


@pytest.mark.parametrize("final,below,monotone", [
    ([[0.9, 0.8], [0.2, 0.3], [1.0, 0.9]], True, False),  # above at the lowest, then below again
    ([[0.1, 0.1], [0.9, 0.8], [0.2, 0.3]], False, False),
    ([[0.1, 0.1], [0.2, 0.1], [0.3, 0.2]], False, True),  # never crosses
])
def test_gd_transitions_flags_grid_and_monotonicity(final, below, monotone):
    q = np.repeat(np.array(final)[:, :, None], 3, axis=2)
    ds = xr.Dataset({"hard_overlap": (("m", "delta", "seed", "step"), q[None]),
                     "diverged": (("m", "delta", "seed"), np.zeros((1, 3, 2), bool))},
                    coords={"m": [2], "delta": [2.0, 4.0, 8.0], "seed": [0, 1],
                            "step": [0, 10, 100]})
    (r,) = gd_transitions(ds)
    assert r["below_grid"] is below and r["monotone"] is monotone


def test_one_at_a_time_design_varies_one_factor():
    cfg = {"target": ["a", "b"], "activation": ["softplus", "tanh"], "loss": ["square"],
           "width": [2, 1, 4], "schedule": ["both", "first_layer"], "design": "one_at_a_time"}
    pts = table_points(cfg)
    assert len(pts) == 2 * (1 + 1 + 0 + 2 + 1)  # per target: base + one per other value
    for p in pts:
        assert sum(i != 0 for i in p[1:]) <= 1
    assert len(table_points({**cfg, "design": "factorial"})) == 2 * 2 * 1 * 3 * 2


def test_cells_cover_the_design_and_assemble_into_the_table(tmp_path):
    """One-cell tables (the workflow's jobs) assemble into the table of the whole design."""
    from deltann.theory.table import (
        assemble_table,
        cell_slice,
        parse_cell,
        parse_key,
        point_key,
        table_cells,
    )

    cfg = {"target": ["a", "b"], "activation": ["softplus", "tanh"], "loss": ["square"],
           "width": [2, 1, 4], "schedule": ["first_layer"], "init_scale": [1.0, 0.5],
           "design": "one_at_a_time", "delta_range": [1.0, 16.0], "d": 20, "base_seed": 1}
    cells = table_cells(cfg, "a")
    assert cells == ["softplus__square__m2__first_layer", "tanh__square__m2__first_layer",
                     "softplus__square__m1__first_layer", "softplus__square__m4__first_layer",
                     "softplus__square__m2__first_layer__i0.5"]
    assert parse_cell(cells[2]) == ("softplus", "square", 1, "first_layer", 1.0, 1.0)
    assert parse_cell(cells[4]) == ("softplus", "square", 2, "first_layer", 0.5, 1.0)
    assert cell_slice(cfg, "a", cells[4])["init_scale"] == [0.5]

    def part(t, cell, v):
        c = cell_slice(cfg, t, cell)
        a, lo, m, sch, isc, ain = parse_cell(cell)
        coords = {"target": [t], "activation": [a], "loss": [lo], "m": [m], "schedule": [sch],
                  "init_scale": [isc], "a_init": [ain]}
        shape = (1,) * 7
        ds = xr.Dataset({"delta_nn": (tuple(coords), np.full(shape, v)),
                         "delta_nn_err": (tuple(coords), np.full(shape, 0.1)),
                         "delta_nn_converged": (tuple(coords), np.full(shape, 1.0)),
                         "delta_nn_status": (tuple(coords), np.full(shape, "value")),
                         "delta_alg": ("target", [0.5])}, coords=coords)
        ds.attrs.update(reasons=json.dumps({point_key(t, a, lo, m, sch, isc, ain): "mean of"}),
                        design=c["design"], max_delta=16.0, d=20, seed_entropy="x")
        return ds

    parts = [part(t, c, 3.0 + k) for t in ("b", "a") for k, c in enumerate(table_cells(cfg, t))]
    ds = assemble_table(parts, cfg)
    assert list(ds["target"].values) == ["a", "b"] and list(ds["m"].values) == [2, 1, 4]
    v = ds["delta_nn"].sel(target="a", loss="square", schedule="first_layer", a_init=1.0)
    assert float(v.sel(activation="tanh", m=2, init_scale=1.0)) == 4.0
    assert float(v.sel(activation="softplus", m=4, init_scale=1.0)) == 6.0
    assert float(v.sel(activation="softplus", m=2, init_scale=0.5)) == 7.0
    assert np.isnan(float(v.sel(activation="tanh", m=4, init_scale=1.0)))  # not in the design
    st = ds["delta_nn_status"].sel(target="a", loss="square", schedule="first_layer", a_init=1.0)
    assert st.sel(activation="tanh", m=4, init_scale=1.0).item() == "not_computed"
    reasons = json.loads(ds.attrs["reasons"])
    assert reasons["a/tanh/square/m=4/first_layer"].startswith("not computed")
    assert reasons["a/tanh/square/m=4/first_layer/i=0.5"].startswith("not computed")
    assert parse_key("a/tanh/square/m=4/first_layer/i=0.5") == (
        "a", "tanh", "square", 4, "first_layer", 0.5, 1.0)
    assert ds["delta_nn"].attrs["long_name"].startswith("delta_NN")
    # written and read back like the workflow's thresholds.nc (mixed str kinds once failed here)
    from deltann.io import write_netcdf

    ds.attrs.update(config="{}", config_sha256="x", source="t", history="t", git_commit="x",
                    Conventions="CF-1.8", title="t", created="t")
    out = xr.load_dataset(write_netcdf(ds, tmp_path / "thresholds.nc"))
    assert out["delta_nn_status"].sel(target="a", activation="tanh", m=4, loss="square",
                                      schedule="first_layer", init_scale=1.0,
                                      a_init=1.0).item() == "not_computed"


def test_architecture_figure_marks_missing_thresholds(tmp_path):
    """NaN cells are drawn by their reason: arrow (no outlier up to delta_max), x (diverged)."""
    import json

    import matplotlib

    from deltann.figures import draw, save
    from deltann.theory.table import point_key

    axes = {"target": ["t"], "activation": ["softplus", "tanh"], "loss": ["square", "correlation"],
            "m": [2], "schedule": ["both"]}
    dnn = np.full((1, 2, 2, 1, 1), np.nan)
    dnn[0, 0, 0, 0, 0] = 3.0
    reasons = {point_key("t", "softplus", "square", 2, "both"): "first sign change",
               point_key("t", "tanh", "square", 2, "both"): "no theta-outlier up to delta=16",
               point_key("t", "softplus", "correlation", 2, "both"):
                   "projected GD diverged at every delta tried at delta 1, 4, 16"}
    th = xr.Dataset({"delta_nn": (tuple(axes), dnn), "delta_alg": ("target", [0.5])},
                    coords=axes)
    th.attrs.update(reasons=json.dumps(reasons), max_delta=16.0, config=json.dumps({"d": 50}))
    fig = draw("architecture", {"thresholds": th}, {})
    act, loss = fig.axes[0], fig.axes[1]
    assert [a.arrow_patch is not None for a in act.texts] == [True]  # tanh: arrow, no point
    crosses = [ln for ln in loss.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_ydata()[0] == 16.0
    base = [ln for ln in act.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata())]
    assert base and base[0].get_ydata()[0] == 3.0
    assert matplotlib.colors.to_hex(base[0].get_color()) == "#0072b2"
    save(fig, tmp_path / "arch.png")
    assert (tmp_path / "arch.png").stat().st_size > 10_000


def test_median_escape_counts_never_as_late_and_drops_diverged():
    from deltann.phases import median_escape

    nan = np.nan
    tau = np.array([[10.0, nan, 30.0], [10.0, nan, nan], [nan, nan, 5.0]])
    alive = np.array([[True, True, True], [True, True, True], [False, False, True]])
    np.testing.assert_array_equal(median_escape(tau, alive), [30.0, nan, 5.0])
    assert np.isnan(median_escape([[nan, nan]], [[False, False]])[0])
