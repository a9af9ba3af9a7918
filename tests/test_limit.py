"""delta_NN over d and its limit (deltann.theory.limit, ``deltann table``): the fit recovers a
known a + b/sqrt(d), its errors are the textbook weighted-least-squares ones, tables at one d
merge cell by cell, and the CLI writes the merged NetCDF."""

import contextlib
import io
import json

import numpy as np
import pytest
import xarray as xr

from deltann.theory.limit import cell_status, fit_limit, limit_table

KEY = "z2sat/softplus/square/m=2/first_layer"


def test_fit_recovers_exact_law_and_weighted_mean_error():
    d = np.array([400, 800, 1600, 3200])
    y = 3.1 + 2.0 / np.sqrt(d)
    f = fit_limit(d, y, np.full(4, 0.05))
    assert f.a == pytest.approx(3.1, abs=1e-12) and f.b == pytest.approx(2.0, abs=1e-10)
    assert f.chi2_dof == pytest.approx(0.0, abs=1e-12)
    # constant fit: weighted mean, error 1/sqrt(sum 1/err^2) = 0.05/2 (chi2 inflates it here)
    g = fit_limit(d, np.full(4, 3.0), np.full(4, 0.05))
    assert g.const == pytest.approx(3.0) and g.const_err == pytest.approx(0.025)
    assert g.a == pytest.approx(3.0) and np.isfinite(g.a_err)


def test_fit_error_matches_monte_carlo():
    """The a error (no Birge inflation in expectation) is the scatter of a over noisy draws."""
    rng = np.random.default_rng(7)
    d, err = np.array([400, 800, 1600]), np.array([0.08, 0.1, 0.08])
    a_hat = [fit_limit(d, 3.3 + 1.0 / np.sqrt(d) + rng.normal(0, err), err).a
             for _ in range(2000)]
    ref = fit_limit(d, 3.3 + 1.0 / np.sqrt(d), err).a_err  # chi2 = 0: the propagated error
    assert np.std(a_hat) == pytest.approx(ref, rel=0.06)  # 2000 draws: s.e. of an sd ~1.6 %
    assert np.mean(a_hat) == pytest.approx(3.3, abs=3 * ref / np.sqrt(2000))


def test_fit_drops_nan_and_needs_two_d():
    f = fit_limit([400, 800], [3.0, np.nan], [0.1, np.nan])
    assert f.d == [400] and np.isnan(f.a) and f.const == 3.0
    with pytest.raises(ValueError, match="errors must be > 0"):
        fit_limit([400, 800], [3.0, 3.1], [0.0, 0.1])


def test_cell_status():
    assert cell_status(["none", "none", "not_computed"]) == "none"
    assert cell_status(["unconverged", "none"]) == "mixed"
    assert cell_status(["value", "none"]) == "fit"
    assert cell_status(["not_computed"]) == "not_computed"


def _table(d, cells):
    """A thresholds table of one target x schedules; cells: {schedule: (v, e, status)}."""
    sch = list(cells)
    coords = {"target": ["z2sat"], "activation": ["softplus"], "loss": ["square"], "m": [2],
              "schedule": sch}
    shape = (1, 1, 1, 1, len(sch))
    v = np.array([cells[s][0] for s in sch], float).reshape(shape)
    e = np.array([cells[s][1] for s in sch], float).reshape(shape)
    st = np.array([cells[s][2] for s in sch]).reshape(shape)
    reasons = {f"z2sat/softplus/square/m=2/{s}": cells[s][2] for s in sch}
    return xr.Dataset({"delta_nn": (tuple(coords), v), "delta_nn_err": (tuple(coords), e),
                       "delta_nn_status": (tuple(coords), st)}, coords=coords,
                      attrs={"d": d, "max_delta": 32.0, "reasons": json.dumps(reasons)})


def test_limit_table_merges_same_d_and_fits():
    nan = np.nan
    t400 = _table(400, {"first_layer": (3.35, 0.08, "value"), "both": (nan, nan, "unconverged")})
    t800a = _table(800, {"first_layer": (3.35, 0.10, "value"),
                         "both": (nan, nan, "not_computed")})
    t800b = _table(800, {"both": (nan, nan, "unconverged")})
    t1600 = _table(1600, {"first_layer": (3.29, 0.08, "value")})
    ds = limit_table([t1600, t800a, t400, t800b])
    assert list(ds["d"].values) == [400, 800, 1600]
    fl = ds.sel(target="z2sat", activation="softplus", loss="square", m=2, schedule="first_layer")
    f = fit_limit([400, 800, 1600], [3.35, 3.35, 3.29], [0.08, 0.10, 0.08])
    assert float(fl["delta_nn_inf"]) == pytest.approx(f.a)
    assert str(fl["limit_status"].values) == "fit"
    both = ds.sel(target="z2sat", activation="softplus", loss="square", m=2, schedule="both")
    assert list(both["delta_nn_status"].values) == ["unconverged", "unconverged", "not_computed"]
    assert str(both["limit_status"].values) == "unconverged"
    clash = _table(800, {"first_layer": (3.0, 0.1, "value")})
    with pytest.raises(ValueError, match="d=800 disagree"):
        limit_table([t800a, clash])


def test_scan_end_is_per_d():
    """'none up to delta = hi' uses each d's own scan end; the limit the smallest of them."""
    nan = np.nan
    a = _table(800, {"first_layer": (nan, nan, "none")})
    b = _table(1600, {"first_layer": (nan, nan, "none")})
    b.attrs["max_delta"] = 16.0
    from deltann.theory.limit import limit_markdown

    row = limit_markdown(limit_table([a, b])).splitlines()[2]
    assert row == (f"| {KEY} | none up to δ = 32 | none up to δ = 16 | "
                   "no finite threshold up to δ = 16 |")


def test_limit_table_reads_older_files_without_status():
    t = _table(400, {"first_layer": (np.nan, np.nan, "x")}).drop_vars("delta_nn_status")
    t.attrs["reasons"] = json.dumps({KEY: "no negative theta-outlier at the converged point"})
    ds = limit_table([t])
    assert str(ds["limit_status"].values.ravel()[0]) == "none"


def test_cli_table_writes_merged_netcdf(tmp_path):
    from deltann.cli import main
    from deltann.io import read_netcdf

    paths = []
    for name, ds in (("a.nc", _table(800, {"first_layer": (np.nan, np.nan, "none")})),
                     ("b.nc", _table(400, {"first_layer": (3.35, 0.08, "value")}))):
        ds.to_netcdf(tmp_path / name)
        paths.append(str(tmp_path / name))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["table", *paths, "--out", str(tmp_path / "lim.nc")]) == 0
    lines = buf.getvalue().splitlines()
    assert "d = 400 | d = 800 | δ_NN(∞)" in lines[0]  # columns sorted by d
    assert lines[2] == f"| {KEY} | 3.35 ± 0.08 | none up to δ = 32 | const 3.35 ± 0.08 (one d) |"
    out = read_netcdf(tmp_path / "lim.nc")
    assert "delta_nn_inf" in out and "limit_status" in out and json.loads(out.attrs["sources"])
    assert main(["table", str(tmp_path / "missing.nc")]) == 2
