"""deltann.finite_size: the transition table, the log-d fit, plateaus, on synthetic sweeps."""

import json

import numpy as np
import pytest
import xarray as xr

from deltann.finite_size import (
    LogFit,
    fit_step,
    late_rise,
    merge_sweeps,
    plateau_rows,
    rows_markdown,
    transition_rows,
)


def _sweep(d, thresholds, schedule="first_layer", steps=1000, pred_shift=None,
           deltas=(2.0, 2.5, 3.0, 3.5, 4.0, 5.0)):
    """A sweep at one d whose seed s learns (final overlap 0.9, escape at step 100 (1 + delta
    - thr)) iff delta >= thresholds[s]; below it the overlap stays at 0.1. pred_shift: the
    predictor's per-seed thresholds are thresholds + pred_shift."""
    deltas = np.array(deltas, float)
    t = np.unique(np.rint(np.geomspace(1, steps, 30))).astype(int)
    t = np.concatenate([[0], t])
    S = len(thresholds)
    q = np.full((1, 1, 1, 1, 1, deltas.size, S, t.size), 0.1)
    tr = np.ones_like(q)
    te = np.ones_like(q)
    pred = np.full((1, 1, 1, 1, 1, deltas.size, S), np.nan)
    for i, x in enumerate(deltas):
        for s, thr in enumerate(thresholds):
            tr[..., i, s, :] = 0.2 + 0.8 * np.exp(-t / 10.0)
            te[..., i, s, :] = 1.0
            if x >= thr:
                tau = 100 * (1 + x - thr)
                q[..., i, s, :] = np.where(t >= tau, 0.9, 0.1)
                te[..., i, s, :] = np.where(t >= tau, 0.3, 1.0)
            if pred_shift is not None and x >= thr + pred_shift:
                pred[..., i, s] = 100 * (1 + x - thr)
    dims = ("target", "activation", "loss", "m", "d", "delta", "seed", "step")
    coords = {"target": ["z2sat"], "activation": ["softplus"], "loss": ["square"], "m": [2],
              "d": [d], "delta": deltas, "seed": np.arange(S), "step": t}
    data = {"hard_overlap": (dims, q), "train_risk": (dims, tr), "test_risk": (dims, te),
            "diverged": (dims[:-1], np.zeros(q.shape[:-1], np.int8))}
    if pred_shift is not None:
        data["pred_escape_step"] = (dims[:-1], pred)
        data["pred_diverged"] = (dims[:-1], np.zeros(pred.shape, np.int8))
        # recorded predicted overlap: 0.9 once escaped, else 0.35 at its peak
        po = np.where(np.isfinite(pred)[..., None], np.where(t >= np.nan_to_num(pred)[..., None],
                                                             0.9, 0.1), 0.1)
        po[..., t.size // 2] = np.maximum(po[..., t.size // 2], 0.35)
        data["pred_overlap"] = (dims, po)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["config"] = json.dumps({"train": {"schedule": schedule, "steps": steps}})
    return ds


def test_log_fit_recovers_a_line_and_inverts_it():
    d = np.array([200, 400, 800, 1600])
    f = LogFit(d, 1.0 + 0.3 * np.log(d), np.full(4, 0.05))
    assert f.alpha == pytest.approx(1.0) and f.beta == pytest.approx(0.3)
    assert f.chi2_dof == pytest.approx(0.0, abs=1e-12)
    dstar, factor = f.d_at(1.0 + 0.3 * np.log(5000.0))
    assert dstar == pytest.approx(5000.0) and factor >= 1.0
    assert np.isnan(LogFit([200], [3.0], [0.1]).alpha)  # one d: no fit
    assert np.isnan(LogFit(d, 5.0 - 0.1 * np.log(d), np.full(4, 0.05)).d_at(6.0)[0])  # beta < 0


def test_transition_rows_read_gd_and_predictor_thresholds():
    rows = transition_rows([_sweep(200, [2.9, 3.1, 3.2, 3.4], pred_shift=0.0),
                            _sweep(400, [3.4, 3.6, 3.7, 3.9], pred_shift=0.6)])
    r200, r400 = rows
    assert (r200["d"], r400["d"]) == (200, 400)
    # seed means 0.1/0.1/0.3/0.7/0.9 over 2.5..4: crossing of 1/2 between 3 and 3.5
    assert 3.0 < r200["delta_gd"] < 3.5 and 3.5 < r400["delta_gd"] < 4.0
    assert r200["delta_pred"] == pytest.approx(r200["delta_gd"], abs=0.25)
    assert r400["delta_pred"] > r400["delta_gd"] + 0.3  # the shifted predictor is later
    assert r200["decision_agree"] == [24, 24] and r400["decision_agree"][0] < 24
    assert r200["stuck_runs"] > 0 and r200["max_late_rise"] == pytest.approx(0.0)
    # GD escape steps are read off a 31-point log grid (interpolated): a few per cent
    assert np.nanmax(np.abs(np.array(r200["escape_ratio"]) - 1)) < 0.1
    assert r200["delta_gd_err"] > 0
    md = rows_markdown(rows)
    assert "| first_layer | 2 | 200 |" in md and "fit δ_GD = α + β ln d" in md


def test_late_rise_flags_a_run_still_moving():
    ds = _sweep(200, [10.0])  # never learns
    q = ds["hard_overlap"].values
    q[..., 0, 0, -1] = 0.4  # delta = 2: rose in the last doubling of steps
    rise = late_rise(ds)
    assert float(rise.sel(delta=2.0).max()) == pytest.approx(0.3)
    assert float(rise.sel(delta=3.0).max()) == pytest.approx(0.0)


def test_fit_step_and_plateau_rows():
    t = np.array([0, 1, 10, 20, 50, 100, 200, 400])
    r = np.array([1.0, 0.9, 0.5, 0.25, 0.21, 0.2, 0.2, 0.05])
    # drop to r_pl = 0.2 (before the escape at 300): within 10 % (<= 0.28) first at step 20
    assert fit_step(t, r, 300.0) == 20.0
    assert np.isnan(fit_step(t, r, float("nan")))
    rows = plateau_rows([_sweep(200, [2.9, 3.1, 3.2, 3.4], pred_shift=0.0)])
    top = [x for x in rows if x["delta"] == 5.0][0]
    assert top["escaped"] == 4 and top["test_plateau"] == pytest.approx(1.0)
    assert top["test_final"] == pytest.approx(0.3)
    assert top["plateau_median"] == pytest.approx(top["tau_median"] - top["fit_median"], rel=0.2)


def test_predictor_level_is_a_sensitivity_reading():
    """At 1/2 the step-exact pred_escape_step decides; at 0.3 the recorded peak (0.35 for every
    run here) counts every run as escaped, so the predicted transition drops to the grid's
    lowest delta."""
    from deltann.finite_size import predicted_escaped

    ds = _sweep(200, [2.9, 3.1, 3.2, 3.4], pred_shift=0.0)
    half = predicted_escaped(ds)
    assert (half == np.isfinite(ds["pred_escape_step"])).all()
    assert (predicted_escaped(ds, 0.3) == 1).all()
    rows = transition_rows([ds], pred_level=0.3)
    assert rows[0]["delta_pred"] == 2.0


def test_theory_points_per_initialisation_and_the_limit():
    """theory_points reads delta_NN(d) per (m, init_scale, a_init) from a theory.nc and fits the
    limit a + b/sqrt(d) (theory.limit.fit_limit) where two d have a value; an initialisation
    with no value at some d gets no limit."""
    import json

    import xarray as xr

    from deltann.finite_size import theory_markdown, theory_points
    from deltann.theory.limit import fit_limit

    dims = ("target", "activation", "loss", "m", "init_scale", "a_init", "d")
    y = np.array([[3.0, 3.2], [4.0, np.nan]]).reshape(1, 1, 1, 1, 2, 1, 2)
    e = np.full_like(y, 0.1)
    th = xr.Dataset({"delta_nn": (dims, y), "delta_nn_err": (dims, e)},
                    coords={"target": ["z2sat"], "activation": ["softplus"], "loss": ["square"],
                            "m": [2], "init_scale": [1.0, 0.5], "a_init": [1.0],
                            "d": [200, 400]})
    th.attrs["config"] = json.dumps({"train": {"schedule": "first_layer"},
                                     "theory": {"delta_range": [1, 16]}})
    pts = theory_points(th)
    lim = [p for p in pts if not np.isfinite(p["d"])]
    assert len(lim) == 1 and lim[0]["init_scale"] == 1.0
    assert lim[0]["delta"] == pytest.approx(fit_limit([200, 400], [3.0, 3.2], [0.1, 0.1]).a)
    md = theory_markdown(pts)
    assert "| first_layer | 2 | 0.5 | 1 | 4.00 ± 0.10 | none ≤ 16 | – |" in md


def test_figure_draws_the_predictor_only_where_it_was_run():
    """A study whose largest d is GD only (no pred_* variables): the figure draws GD at every d
    and the predictor's points at the d that carry it, with no 'none up to' marker for the rest."""
    import matplotlib

    matplotlib.use("Agg")
    from deltann.figures.finite_size import draw

    data = {"check_0": _sweep(200, [3.0, 3.0, 3.5, 3.5], pred_shift=0.5),
            "check_1": _sweep(400, [3.0, 3.5, 3.5, 4.0], pred_shift=0.5),
            "check_2": _sweep(1600, [3.5, 3.5, 4.0, 4.0])}
    fig = draw(data, {})
    handles, labels = fig.axes[0].get_legend_handles_labels()
    by = dict(zip(labels, handles, strict=True))
    assert list(by["GD, m=2"].lines[0].get_xdata()) == [200, 400, 1600]  # errorbar containers
    assert np.allclose(by["predictor, m=2"].lines[0].get_xdata(), [208, 416])
    assert not any(lab.startswith("predictor, m=2: none") for lab in labels)


def test_replay_early_stop_counts_what_a_stop_would_have_missed():
    """Escaped runs (overlap 0.9, train risk flat after ~50 steps) would stop at the first record
    >= 2 tau with a flat risk; one run that falls back to 0.1 at the end is counted as falling
    below 0.9 and 1/2, with the change of its final overlap."""
    from deltann.finite_size import replay_early_stop

    ds = _sweep(200, [3.0, 3.5, 4.0], steps=4000)
    rep = replay_early_stop([ds], stop_rtol=0.01)
    escaped = int((ds["hard_overlap"].isel(step=-1) >= 0.5).sum())
    assert rep["runs"] == 18 and rep["would_stop"] == escaped > 0
    assert rep["fell_below_stop_overlap"] == rep["fell_below_half"] == 0
    assert rep["max_final_change"] == 0.0 and 0.5 < rep["steps_saved"] < 1.0
    q = ds["hard_overlap"].values.copy()
    q[..., -1, 0, -1] = 0.1  # delta = 5, seed 0: escaped, then lost at the last record
    ds["hard_overlap"] = (ds["hard_overlap"].dims, q)
    rep2 = replay_early_stop([ds], stop_rtol=0.01)
    assert rep2["fell_below_stop_overlap"] == rep2["fell_below_half"] == 1
    assert rep2["max_final_change"] == pytest.approx(0.8)
    # an overlap the runs never reach stops none
    assert replay_early_stop([ds], stop_rtol=0.01, stop_overlap=0.95)["would_stop"] == 0


def test_fit_plateaus_recovers_the_exponents_and_skips_cells_near_the_transition():
    """Plateaus made exactly as 50 (delta - delta_GD)^-1 d^0.5: the fit returns b = -1 and
    c = 0.5 with no scatter; cells with a seed that did not escape, or within delta_GD's error
    of the transition, are left out (a wild plateau there would spoil the fit)."""
    from deltann.finite_size import fit_plateaus, plateau_fit_markdown

    base = {"schedule": "first_layer", "target": "z2sat", "activation": "softplus",
            "loss": "square", "m": 2, "init_scale": 1.0, "a_init": 1.0}
    gd = {200: 3.0, 400: 3.2, 800: 3.5}
    rows = [{**base, "d": d, "delta_gd": x, "delta_gd_err": 0.2} for d, x in gd.items()]
    plats = []
    for d, x in gd.items():
        for delta in (3.1, 4.0, 5.0, 6.0, 8.0):
            tau = 50.0 / (delta - x) * d ** 0.5 if delta > x else 1e6
            plats.append({**base, "d": d, "delta": delta, "escaped": 4, "seeds": 4,
                          "plateau_median": tau})
    plats.append({**base, "d": 400, "delta": 4.5, "escaped": 3, "seeds": 4,
                  "plateau_median": 1e6})
    (f,) = fit_plateaus(plats, rows)
    assert f["n"] == 12 and f["d"] == [200, 400, 800]
    assert f["b"] == pytest.approx(-1.0, abs=1e-9) and f["c"] == pytest.approx(0.5, abs=1e-9)
    assert f["scatter"] == pytest.approx(1.0, abs=1e-9)
    assert "-1.00 ± 0.00" in plateau_fit_markdown([f])
    # one d only: no fit
    (g,) = fit_plateaus([p for p in plats if p["d"] == 200], rows)
    assert g["n"] == 4 and not np.isfinite(g["b"])


def _limit_table(schedule="first_layer", inf=3.38):
    d, m = [400, 800, 1600], [2, 4]
    shape = (3, 1, 1, 1, 2, 1)
    dims = ("d", "target", "activation", "loss", "m", "schedule")
    y = np.full(shape, np.nan)
    y[:, 0, 0, 0, 0, 0] = [3.35, 3.35, 3.37]  # m = 2; m = 4: nothing (not converged)
    return xr.Dataset(
        {"delta_nn": (dims, y), "delta_nn_err": (dims, np.full(shape, 0.1)),
         "delta_nn_inf": (dims[1:], np.array([inf, np.nan]).reshape(shape[1:])),
         "delta_nn_inf_err": (dims[1:], np.full(shape[1:], 0.23))},
        coords={"d": d, "target": ["z2sat"], "activation": ["softplus"], "loss": ["square"],
                "m": m, "schedule": [schedule]})


def test_figure_draws_a_limit_table_for_the_matching_schedule_and_width():
    import matplotlib

    matplotlib.use("Agg")
    from deltann.figures.finite_size import draw

    sweeps = {"check_0": _sweep(200, [3.0, 3.0, 3.5, 3.5]),
              "check_1": _sweep(400, [3.0, 3.5, 3.5, 4.0])}
    fig = draw({**sweeps, "limit": _limit_table()}, {})
    _, labels = fig.axes[0].get_legend_handles_labels()
    assert "δ_NN(∞) = 3.38 ± 0.23, m=2 (table, d = 400, 800, 1600)" in labels
    assert "δ_NN(d) table, m=2" in labels
    # another schedule in the table: nothing drawn from it
    fig = draw({**sweeps, "limit": _limit_table(schedule="both")}, {})
    _, labels = fig.axes[0].get_legend_handles_labels()
    assert not any("table" in lab for lab in labels)


def test_limit_table_is_a_figure_input_read_from_its_path():
    """figures.<name>.limit: the workflow passes the file by path (role 'limit') and the figure
    reads the committed threshold-study table with what it needs."""
    from pathlib import Path

    from deltann.config import validate_config
    from deltann.figures import load_inputs
    from deltann.workflow import Layout

    table = str(Path(__file__).resolve().parents[1] / "results_study_limit.nc")
    cfg = validate_config({"experiments": {"e": {"d": [40], "delta": [2, 4]}}, "figures": {
        "fs": {"kind": "finite_size", "checks": ["e"], "limit": table}}})
    files = Layout(cfg).figure_inputs("fs")
    assert files["limit"] == table and set(files) == {"check_e", "limit"}
    data = load_inputs(cfg["figures"]["fs"], {"limit": table})
    r = data["limit"].sel(target="z2sat", activation="softplus", loss="square", m=2,
                          schedule="first_layer")
    assert 3.0 < float(r["delta_nn_inf"]) < 4.0  # the README's 3.38 ± 0.23


def test_compare_sweeps_counts_changed_decisions_escape_ratios_and_both_transitions():
    """b: the same runs with seed 1 escaping at 3.5 instead of 3.0 (so at delta = 3 it stays
    stuck) and escapes 1.5 x later elsewhere (read on the record grid, ratio 1.26 per record);
    one run diverged in b is left out; only the runs the sweeps share are compared."""
    from deltann.finite_size import compare_sweeps, compare_text

    a = _sweep(400, [3.0, 3.0, 4.0])
    b = _sweep(400, [3.0, 3.5, 4.0])
    q = b["hard_overlap"].values.copy()
    steps = b["step"].values
    for i, x in enumerate(b["delta"].values):  # escape at 1.5 tau in b
        for s, thr in enumerate([3.0, 3.5, 4.0]):
            if x >= thr:
                q[..., i, s, :] = np.where(steps >= 150 * (1 + x - thr), 0.9, 0.1)
    b["hard_overlap"] = (b["hard_overlap"].dims, q)
    div = b["diverged"].values.copy()
    div[..., -1, 2] = 1  # delta = 5, seed 2
    b["diverged"] = (b["diverged"].dims, div)
    rep = compare_sweeps(a, b)
    assert rep["runs"] == 17 and rep["diverged"] == 1
    assert rep["decided_alike"] == 16  # delta = 3, seed 1: escaped in a, stuck in b
    assert rep["max_final_diff"] == pytest.approx(0.8)
    assert rep["escaped_both"] == 8  # delta 3: 1; 3.5: 2; 4: 3; 5: 2 (one diverged)
    assert 1.2 <= rep["escape_ratio_median"] <= 1.7 and rep["escape_ratio_range"][0] >= 1.0
    (c,) = rep["cells"]
    assert c["m"] == 2 and c["d"] == 400 and c["delta_gd_b"] > c["delta_gd_a"]
    assert "δ_GD" in compare_text(rep)
    # the same sweep against itself: everything alike
    same = compare_sweeps(a, a)
    assert same["decided_alike"] == same["runs"] == 18 and same["max_final_diff"] == 0.0
    assert same["escape_ratio_range"] == [1.0, 1.0]
    assert rep["crossed_down"] == 1 and rep["crossed_up"] == [0, 0]  # delta 3, seed 1
    assert rep["below_a"] == [8, 0]  # a's stuck runs are flat at 0.1
    with pytest.raises(ValueError, match="no run in common"):
        compare_sweeps(a, _sweep(800, [3.0, 3.0, 4.0]))


def test_compare_sweeps_budget_check_splits_runs_below_half_by_their_late_rise():
    """b = a at 4 x the budget: at delta = 3.5 seed 2 was still moving at a's end (0.1 -> 0.3
    over its last doubling) and escapes in b; at delta = 2.5 seed 1 was flat at 0.1 and escapes
    in b too (what the stuck rule would have called wrongly); every other run below 1/2 in a
    (flat) stays below. The seed means per delta show the move."""
    from deltann.finite_size import compare_sweeps, compare_text

    a = _sweep(400, [3.0, 3.0, 4.0], steps=1000)
    q = a["hard_overlap"].values.copy()
    t = a["step"].values
    q[..., 3, 2, :] = np.clip(0.1 + 0.2 * (t - 500) / 500, 0.1, 0.3)  # delta = 3.5, seed 2
    a["hard_overlap"] = (a["hard_overlap"].dims, q)
    b = _sweep(400, [3.0, 2.5, 3.5], steps=4000)
    rep = compare_sweeps(a, b)
    # below 1/2 in a: delta 2 (3 runs), 2.5 (3), 3 (seed 2), 3.5 (seed 2, moving)
    assert rep["below_a"] == [7, 1]
    assert rep["crossed_up"] == [1, 1] and rep["crossed_down"] == 0
    (c,) = rep["cells"]
    i = c["deltas"].index(3.5)
    assert c["mean_overlap_a"][i] == pytest.approx((0.9 + 0.9 + 0.3) / 3)
    assert c["mean_overlap_b"][i] == pytest.approx(0.9)
    assert c["delta_gd_b"] < c["delta_gd_a"]
    text = compare_text(rep)
    assert "7 flat at its end (late rise <= 0.01), 1 of them at or above 1/2 in b" in text
    assert "3.5: 0.70→0.90" in text


def test_at_step_reads_a_longer_sweep_at_budget_t_for_the_budget_check():
    """b: escapes at tau = 100 (1 + delta - thr); read at a record step T ~ 150, exactly the
    runs with tau > T are below 1/2 at T and escape later (all flat at T: q = 0.1 until tau).
    Stops, divergences and predicted escapes after T are undone; a step off the grid is refused."""
    from deltann.finite_size import at_step, compare_sweeps

    thr = [3.0, 2.6, 3.4]
    b = _sweep(400, thr, steps=4000, pred_shift=0.0)
    t = b["step"].values
    T = int(t[np.argmin(np.abs(t - 150))])
    tau = np.array([[100 * (1 + x - h) if x >= h else np.inf for h in thr]
                    for x in b["delta"].values])
    shape = b["diverged"].shape
    b["stop_step"] = (b["diverged"].dims, np.where(np.isfinite(tau), tau, -1).reshape(shape))
    b["stop_reason"] = (b["diverged"].dims, np.isfinite(tau).astype(np.int8).reshape(shape))
    b["diverged_step"] = b["diverged"].astype(np.int64) * 0 - 1
    b["diverged"][..., 0, 0] = 1  # delta = 2, seed 0 diverged after T
    b["diverged_step"][..., 0, 0] = 3000
    a = at_step(b, T)
    assert a["step"].values.max() == T and json.loads(a.attrs["config"])["train"]["steps"] == T
    assert int(a["diverged"].sum()) == 0 and int(a["diverged_step"].max()) == -1
    late = (tau > T) & np.isfinite(tau)
    assert np.all(a["stop_reason"].values.reshape(tau.shape)[late] == 0)
    assert np.all(a["stop_step"].values.reshape(tau.shape)[late] == -1)
    assert np.all(np.isnan(a["pred_escape_step"].values.reshape(tau.shape)[late]))
    b["diverged"][..., 0, 0] = 0
    rep = compare_sweeps(a, b)
    assert rep["crossed_up"] == [int(late.sum()), 0] and rep["crossed_down"] == 0
    assert rep["below_a"][0] == int((~np.isfinite(tau) | late).sum())
    with pytest.raises(ValueError, match="not a record step"):
        at_step(b, T + 1)


def test_cli_compare_prints_the_report_and_refuses_unpaired_files(tmp_path, capsys):
    from deltann.cli import main

    fa, fb = tmp_path / "a.nc", tmp_path / "b.nc"
    _sweep(400, [3.0, 3.0, 4.0]).to_netcdf(fa)
    _sweep(400, [3.0, 3.5, 4.0]).to_netcdf(fb)
    assert main(["finite-size", str(fa), "--compare", str(fb)]) == 0
    out = capsys.readouterr().out
    assert "18 runs (0 diverged left out), 17 end on the same side of 1/2" in out
    assert main(["finite-size", str(fa), "--compare", str(fb), "--json"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)
    assert rep["b"] == str(fb) and rep["decided_alike"] == 17
    assert rep["flat_tol"] == 0.01 and rep["below_a"] == [8, 0]
    assert main(["finite-size", str(fa), "--compare", str(fb), "--json",
                 "--stuck-qtol", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["flat_tol"] == 0.5
    assert main(["finite-size", str(fa), "--compare", str(fb), str(fb)]) == 2
    assert "--compare needs one file per SWEEP_NC (1 given, 2 to compare)" in \
        capsys.readouterr().err
    assert main(["finite-size", str(fb), "--at-step", "999", "--compare", str(fb)]) == 2
    err = capsys.readouterr().err
    assert "--at-step 999" in err and "not a record step" in err and str(fb) in err
    t = int(xr.open_dataset(fb)["step"].values[-5])
    assert main(["finite-size", str(fb), "--at-step", str(t), "--compare", str(fb)]) == 0


def test_plateau_fit_against_delta_nn_from_a_limit_table():
    """The same plateaus made as 50 (delta - delta_NN(d))^-1 d^0.5 with delta_NN(d) from a
    ``deltann table`` (``theory_points`` reads it, ``nn_reference`` keys it): the fit against
    delta_NN recovers b = -1, c = 0.5, counts the escaped cells at or below delta_NN + err, and
    leaves out the d the table has no value at (d = 200)."""
    from deltann.finite_size import fit_plateaus, nn_reference, plateau_fit_markdown, theory_points

    pts = theory_points(_limit_table())
    assert {(p["m"], p["d"]) for p in pts if np.isfinite(p["delta"])} == {
        (2, 400), (2, 800), (2, 1600), (2, np.inf)}
    assert all(p["target"] == "z2sat" and p["schedule"] == "first_layer" for p in pts)
    ref = nn_reference(pts)
    assert ref[("first_layer", "z2sat", "softplus", "square", 2, 1.0, 1.0, 800)] == (3.35, 0.1)
    base = {"schedule": "first_layer", "target": "z2sat", "activation": "softplus",
            "loss": "square", "m": 2, "init_scale": 1.0, "a_init": 1.0}
    nn = {200: 3.3, 400: 3.35, 800: 3.35, 1600: 3.37}
    plats = [{**base, "d": d, "delta": delta, "escaped": 4, "seeds": 4,
              "plateau_median": 50.0 / (delta - x) * d ** 0.5 if delta > x else 3000.0}
             for d, x in nn.items() for delta in (3.0, 4.0, 5.0, 6.0)]
    (f,) = fit_plateaus(plats, [], ref)
    assert f["n"] == 9 and f["d"] == [400, 800, 1600] and f["left_out"] == 3  # delta 3 < NN
    assert f["b"] == pytest.approx(-1.0, abs=1e-9) and f["c"] == pytest.approx(0.5, abs=1e-9)
    assert "b (δ − δ_NN)" in plateau_fit_markdown([f], "δ_NN")


def test_replay_of_the_stuck_rule_counts_runs_it_would_call_wrongly(tmp_path, capsys):
    """Stuck runs (overlap flat at 0.1) stop at the first record >= stuck_after; a run that sits
    at 0.1 until step 1000 and then escapes is called wrongly by a stuck stop from step 600 (the
    other escapes, at steps <= 300, are over by then) but not from step 1500; the CLI prints
    the counts and refuses --replay-stuck without --replay-stop."""
    from deltann.cli import main
    from deltann.finite_size import replay_early_stop

    ds = _sweep(200, [3.0, 3.5, 9.0], steps=4000)  # seed 2 never escapes on this grid
    q = ds["hard_overlap"].values.copy()
    t = ds["step"].values
    q[..., 0, 1, :] = np.where(t >= 1000, 0.9, 0.1)  # delta = 2, seed 1: a late escape
    ds["hard_overlap"] = (ds["hard_overlap"].dims, q)
    stuck_runs = int((q[..., -1] < 0.5).sum())
    early = replay_early_stop([ds], 0.01, stuck_after=600)
    assert early["would_stop_stuck"] == stuck_runs + 1 and early["stuck_escaped_later"] == 1
    assert early["stuck_max_rise"] == pytest.approx(0.8)
    late = replay_early_stop([ds], 0.01, stuck_after=1500)
    assert late["would_stop_stuck"] == stuck_runs and late["stuck_escaped_later"] == 0
    assert replay_early_stop([ds], 0.01)["would_stop_stuck"] == 0  # stuck rule off
    f = tmp_path / "s.nc"
    ds.to_netcdf(f)
    assert main(["finite-size", str(f), "--replay-stop", "0.01", "--replay-stuck", "600"]) == 0
    assert f"{stuck_runs + 1} runs would stop as stuck; 1 of them ended at or above 1/2" in \
        capsys.readouterr().out
    assert main(["finite-size", str(f), "--replay-stuck", "600"]) == 2
    assert "--replay-stuck needs --replay-stop" in capsys.readouterr().err


def test_figure_title_gives_the_seed_range_and_every_budget():
    import matplotlib

    matplotlib.use("Agg")
    from deltann.figures.finite_size import draw

    fig = draw({"check_0": _sweep(200, [3.0, 3.0, 3.5, 3.5], steps=1000),
                "check_1": _sweep(400, [3.0, 3.5, 4.0], steps=2000)}, {})
    title = fig.axes[0].get_title()
    assert "3–4 seeds" in title and "1000 (d=200), 2000 (d=400)" in title


def test_a_predictor_run_on_a_few_runs_of_a_gd_sweep_merges_into_its_row():
    """GD at 6 deltas x 4 seeds; the predictor (shifted +0.8) on seeds 0, 1 at 3.5, 4, 5 and a
    new delta 6. One row; runs the second sweep lacks are missing, not 'never escaped'."""
    thr = [2.9, 3.1, 3.2, 3.4]
    full = _sweep(1600, thr)
    sub = _sweep(1600, thr[:2], pred_shift=0.8, deltas=(3.5, 4.0, 5.0, 6.0))
    assert len(merge_sweeps([full, sub])) == 1
    assert len(merge_sweeps([full, _sweep(800, thr)])) == 2  # other cells: left alone
    unrun = _sweep(1600, thr[:2], pred_shift=0.8)
    unrun["pred_escape_step"][:] = np.nan
    unrun["pred_diverged"] = unrun["pred_diverged"].astype(float) * np.nan
    assert "delta_pred" not in transition_rows([unrun])[0]  # a cell without predictor runs
    (r,), (r_full,) = transition_rows([full, sub]), transition_rows([full])
    assert r["deltas"] == [2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0]
    assert r["delta_gd"] == pytest.approx(r_full["delta_gd"])  # delta 6: all learned
    # predicted escape at delta >= thr + 0.8 = 3.7, 3.9: fraction 0 at 3.5, 1 at 4
    assert r["bracket"] == r_full["bracket"] and 3.5 < r["delta_pred"] < 4.0
    assert np.isnan(r["pred_fraction"][:3]).all() and r["pred_fraction"][3:5] == [0.0, 1.0]
    # both escape at 4, 5, 6; at 3.5 GD escapes, the predictor not: 6 of the 8 runs it has
    assert r["decision_agree"] == [6, 8]
    # delta 4: predicted steps 100 (1 + 4 - 2.9) = 210 and 190 (seeds 2, 3 not run)
    assert r["pred_escape_median"][4] == pytest.approx(200.0)
    assert np.isnan(r["pred_escape_median"][2])
    from deltann.phases import escape_steps  # ratio over the same runs: GD's seeds 0, 1
    gd01 = float(escape_steps(full).sel(delta=4.0).isel(seed=[0, 1]).median())
    assert r["escape_ratio"][4] == pytest.approx(200.0 / gd01)
    top = [x for x in plateau_rows([full, sub]) if x["delta"] == 6.0][0]
    assert (top["seeds"], top["escaped"]) == (2, 2)
    alone = [x for x in plateau_rows([sub]) if x["delta"] == 6.0][0]  # the same two runs
    assert np.isfinite(top["tau_median"]) and top["tau_median"] == alone["tau_median"]
    assert top["pred_tau_median"] == pytest.approx(400.0)


def test_grokking_figure_merges_a_predictor_subset_into_its_d():
    """The grokking figure with a GD sweep and a predictor run on two of its seeds at the same d:
    one d, its runs counted once (2 of 2 at the new delta 6), the predictor marked."""
    import matplotlib

    matplotlib.use("Agg")
    from deltann.figures.grokking import draw

    thr = [2.9, 3.1, 3.2, 3.4]
    data = {"check_0": _sweep(1600, thr),
            "check_1": _sweep(1600, thr[:2], pred_shift=0.8, deltas=(3.5, 4.0, 5.0, 6.0))}
    fig = draw(data, {"deltas": [6.0]})
    _, labels = fig.axes[2].get_legend_handles_labels()
    assert labels == [labels[0]] and "d=1600, δ=6:" in labels[0] and "(2/2 escaped)" in labels[0]
    marks = [ln for ln in fig.axes[2].lines if ln.get_marker() == "v"]
    assert len(marks) == 1 and np.isfinite(marks[0].get_ydata()).all()
    assert "predictor (▽)" in fig.axes[2].get_title()
    bare = draw({"check_0": _sweep(1600, thr)}, {"deltas": [5.0]})  # no predictor run: no ▽ named
    assert "d=1600, δ=5:" in bare.axes[2].get_legend_handles_labels()[1][0]
    assert "no predictor run" in bare.axes[0].get_title() and "▽)" not in bare.axes[2].get_title()
