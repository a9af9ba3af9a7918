"""Long theory work split into jobs (max_job_hours): parts join into the same results."""

import json

import numpy as np
import pytest

from deltann.config import read_yaml, validate_config
from deltann.theory.curves import Part, combine_parts, theory_curves
from deltann.theory.table import assemble_table, cell_slice, parse_part, part_id, threshold_table
from deltann.workflow import Layout


def _cfg():
    cfg = validate_config(read_yaml("configs/ci.yaml"))
    return cfg, Layout(cfg).exp_slice("ci")


def test_theory_parts_join_into_the_whole_theory():
    """combine_parts of the (d, seed) parts -- one of them split further into its scan and two
    curve chunks -- equals theory_curves computed in one process: every curve point and
    delta_NN, err, status per d (d = 20, 30, 2 seeds, ci settings)."""
    _, sl = _cfg()
    whole = theory_curves(sl)
    parts = [Part(20, 0), Part(20, 1), Part(30, 0), Part(30, 1, (), True),
             Part(30, 1, (0,), False), Part(30, 1, (1,), False)]
    assert [Part.parse(p.id) for p in parts] == parts and Part.parse("all") is None
    joined = combine_parts([theory_curves(sl, p) for p in parts], sl)
    for k in ("th_edge", "th_lambda", "th_overlap2", "sim_lambda", "delta_nn", "delta_nn_err",
              "delta_nn_converged"):
        np.testing.assert_allclose(joined[k].values, whole[k].values, rtol=0, atol=0,
                                   equal_nan=True, err_msg=k)
    assert (joined["delta_nn_status"].values == whole["delta_nn_status"].values).all()
    assert json.loads(joined.attrs["reasons"]) == json.loads(whole.attrs["reasons"])


def test_threshold_cell_seeds_split_and_join():
    """A cell computed as two one-seed parts assembles to the values of the cell computed in
    one job (thresholds of configs/ci.yaml, z2sat base cell)."""
    cfg, _ = _cfg()
    thr = Layout(cfg).thresholds_slice("z2sat")
    cell = "softplus__square__m2__first_layer"
    whole = assemble_table([threshold_table(cell_slice(thr, "z2sat", cell))], thr)
    parts = [threshold_table(cell_slice(thr, "z2sat", part_id(cell, [s]))) for s in (0, 1)]
    joined = assemble_table(parts, thr)
    for k in ("delta_nn", "delta_nn_err", "delta_nn_converged"):
        np.testing.assert_array_equal(joined[k].values, whole[k].values, err_msg=k)
    assert parse_part(part_id(cell, [0, 1])) == (cell, [0, 1])
    assert parse_part(cell) == (cell, None)


@pytest.mark.parametrize("hours,expect_split", [(4, False), (1e-6, True)])
def test_layout_splits_to_fit_max_job_hours(hours, expect_split):
    """Paper size (configs/paper.yaml): every theory and thresholds job fits the default 4 h
    (worst-case estimate); a tiny limit gives one-seed parts (and the config check refuses
    what still does not fit)."""
    cfg = validate_config(read_yaml("configs/paper.yaml"))
    cfg["max_job_hours"] = hours
    lay = Layout(cfg)
    parts = lay.theory_parts("z2sat")
    thr = cfg["thresholds"]
    from deltann.theory.table import table_cells

    cells = [(t, p) for t in thr["target"] for c in table_cells(thr, t)
             for p in lay.cell_parts(t, c)]
    if not expect_split:
        assert max(lay.theory_runtime("z2sat", p) for p in parts) <= 240
        assert max(lay.threshold_cell_runtime(t, p) for t, p in cells) <= 240
    else:
        assert all(parse_part(p)[1] is not None and len(parse_part(p)[1]) == 1
                   for _, p in cells)
        assert all(Part.parse(p) is not None for p in parts)
        with pytest.raises(Exception, match="max_job_hours"):
            validate_config({**read_yaml("configs/paper.yaml"), "max_job_hours": hours})
