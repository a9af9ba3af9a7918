"""The initialisation as a sweep axis: run ids, GD runs, theory.nc and thresholds cells."""

import numpy as np
import pytest

from deltann.config import read_yaml, validate_config
from deltann.pipeline import train_run
from deltann.sweep import Point, axis_values, expand, parse_run_id, run_id
from deltann.theory.curves import theory_curves
from deltann.theory.table import cell_slice, table_cells, threshold_table
from deltann.workflow import Layout


def test_run_ids_name_only_a_non_default_initialisation():
    p = Point("z2sat", "softplus", "square", 2, 200, 3.5, 1)
    assert run_id(p) == "z2sat__softplus__square__m2__d200__delta3.5__s1"  # as before the axis
    for q in (p, Point("z2sat", "softplus", "square", 2, 200, 3.5, 1, init_scale=0.5),
                 Point("z2sat", "softplus", "square", 2, 200, 3.5, 1, a_init=-2.0),
                 Point("z2sat", "softplus", "square", 2, 200, 3.5, 1, 0.25, 4.0)):
        assert parse_run_id(run_id(q)) == q
    assert run_id(Point("z2", "erf", "square", 1, 20, 1, 0, 0.25, 4.0)).endswith("__i0.25__a4")
    for bad in ("z2__erf__square__m1__d20__delta1__s0__a4__i0.25",  # order i, a
                "z2__erf__square__m1__d20__delta1__s0__x3",
                "z2__erf__square__m1__d20__delta1__s0__i0.5__i2"):
        with pytest.raises(ValueError, match="malformed run id"):
            parse_run_id(bad)


def test_sweep_axes_include_the_initialisation():
    exp = {"target": ["z2"], "activation": ["tanh"], "loss": ["square"], "width": [1],
           "d": [10], "delta": [1, 2], "seeds": 2, "init_scale": [0.5, 1, 2], "a_init": [1, 3]}
    pts = expand(exp)
    assert len(pts) == 2 * 2 * 3 * 2 and len({run_id(p) for p in pts}) == len(pts)
    assert axis_values(exp)["init_scale"] == [0.5, 1.0, 2.0]
    assert axis_values({k: v for k, v in exp.items() if k not in ("init_scale", "a_init")})[
        "a_init"] == [1.0]


def _ci():
    cfg = validate_config(read_yaml("configs/ci.yaml"))
    return cfg, Layout(cfg).exp_slice("ci")


def test_gd_run_starts_from_the_scaled_initialisation():
    """init_scale rescales the same Gaussian draw (common random numbers across scales);
    a0 = a_init / m; the rest of the run is a different trajectory."""
    _, sl = _ci()
    base = Point("z2sat", "softplus", "square", 2, 20, 6.0, 0)
    runs = {(s, a): train_run(sl, Point(*list(base.as_dict().values())[:7], s, a))
            for s, a in ((1.0, 1.0), (0.5, 1.0), (1.0, 3.0))}
    w0 = {k: r["overlap"].isel(step=0).values for k, r in runs.items()}
    np.testing.assert_allclose(w0[0.5, 1.0], 0.5 * w0[1.0, 1.0], rtol=1e-14)
    np.testing.assert_array_equal(w0[1.0, 3.0], w0[1.0, 1.0])
    np.testing.assert_allclose(runs[1.0, 3.0]["a"].isel(step=0).values, 3.0 / 2)
    assert runs[0.5, 1.0].attrs["init_scale"] == 0.5
    assert runs[0.5, 1.0].attrs["run_id"].endswith("__i0.5")
    assert not np.allclose(runs[0.5, 1.0]["train_risk"].values[-1],
                           runs[1.0, 1.0]["train_risk"].values[-1])


def test_theory_nc_carries_the_initialisation():
    """theory.nc of an experiment with a_init [1, 3]: the a_init = 1 slice equals the theory of
    the same experiment at a_init [1] alone, exactly (one second-phase point per
    initialisation; ci settings: first_layer, d = 20, one seed); with the second layer fixed at
    a_init/m the a_init = 3 point is another network, and its curves differ."""
    _, sl = _ci()
    sl = {**sl, "theory": {**sl["theory"], "d": [20], "seeds": 1}}
    both = theory_curves({**sl, "a_init": [1.0, 3.0]})
    one = theory_curves({**sl, "a_init": [1.0]})
    assert both["delta_nn"].dims == ("target", "activation", "loss", "m", "init_scale", "a_init",
                                     "d")
    for k in ("th_edge", "th_lambda", "sim_lambda", "delta_nn"):
        np.testing.assert_array_equal(both[k].sel(a_init=[1.0]).values, one[k].values,
                                      err_msg=k)
    assert not np.allclose(both["th_edge"].sel(a_init=3.0).values,
                           both["th_edge"].sel(a_init=1.0).values, rtol=1e-3)


def test_thresholds_cell_at_another_initialisation():
    """A thresholds cell with init_scale 0.5 computes its delta_NN at that initialisation: the
    same value as the theory of an experiment at init_scale 0.5 (ci estimator settings, d = 20)."""
    cfg, sl = _ci()
    thr = {**Layout(cfg).thresholds_slice("z2sat"), "init_scale": [1.0, 0.5]}
    cells = table_cells(thr, "z2sat")
    assert "softplus__square__m2__first_layer__i0.5" in cells
    tab = threshold_table(cell_slice(thr, "z2sat", "softplus__square__m2__first_layer__i0.5"))
    assert float(tab["init_scale"].item()) == 0.5
    th = theory_curves({**sl, "init_scale": [0.5], "theory": {**sl["theory"], "d": [20]}})
    np.testing.assert_allclose(tab["delta_nn"].values.ravel(),
                               th["delta_nn"].sel(d=20, m=2).values.ravel(), rtol=1e-12)
