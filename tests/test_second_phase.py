"""The converged second-phase point, its convergence criterion and the delta_NN estimator."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from deltann.activations import get_activation
from deltann.losses import get_loss
from deltann.model import kernel
from deltann.theory.second_phase import (
    PointConfig,
    Reading,
    _check,
    converged_point,
    crn_data,
)
from deltann.theory.threshold import (
    ESTIMATOR_DEFAULTS,
    NNThreshold,
    SeedThreshold,
    _summarise,
)

ROOT = Path(__file__).resolve().parents[1]


def _K(cp):
    sp = cp.point
    return kernel(sp.params, sp.X, sp.y, get_activation("softplus"), get_loss("square"))


def test_lbfgs_and_long_gd_reach_the_same_point():
    """A case with a known limit: with the second layer fixed (first_layer, m = 2) projected GD
    converges to a stationary point of the restricted risk. Continued GD (lr 0.2, up to 25600
    steps) and L-BFGS from the same 200-step transient must both pass the convergence criterion
    and land on the same law of (K_i, z_i): max |K_i difference| < 1e-4 (|K| ~ 0.1), and theory
    readings within the criterion's own tolerances. d = 200, delta = 6, seed 0."""
    kw = dict(schedule="first_layer")
    lb = converged_point("z2sat", "softplus", "square", 2, 200, 6.0, PointConfig(**kw))
    gd = converged_point("z2sat", "softplus", "square", 2, 200, 6.0,
                         PointConfig(method="gd", budget=25600, **kw))
    assert lb.converged, lb.reason
    assert gd.converged, gd.reason
    assert gd.last.t > lb.last.t  # GD needs many more iterations than L-BFGS
    assert np.abs(_K(lb) - _K(gd)).max() < 1e-4
    pc = PointConfig()
    assert abs(lb.last.lam_eff - gd.last.lam_eff) <= pc.tol_eig
    assert abs(lb.last.mu_neg - gd.last.mu_neg) <= pc.tol_eig
    assert abs(lb.last.overlap2_eff - gd.last.overlap2_eff) <= pc.tol_overlap


def test_trained_second_layer_is_reported_unconverged_with_its_trend():
    """Schedule both: the restricted risk keeps decreasing while |W| grows and |a| shrinks
    (docs/theory.md section 6), so within a small budget the point must be reported as not
    converged, with the trend in the reason -- never as a silent number."""
    cp = converged_point("z2sat", "softplus", "square", 2, 100, 8.0,
                         PointConfig(schedule="both", budget=400))
    assert not cp.converged
    assert "not converged within 400" in cp.reason and "trend" in cp.reason
    assert [r.t for r in cp.readings] == [100, 200, 400]
    assert cp.readings[-1].w_norm > cp.readings[0].w_norm


def _reading(**kw):
    base = dict(t=100, risk=0.5, grad_norm=1e-9, w_norm=1.0, a_norm=0.7, edge=-1e-3,
                mu_edge=0.05, mu_neg=0.05, lam=-0.03, overlap2=0.8)
    return Reading(**{**base, **kw})


def test_convergence_check_names_what_moves():
    pc = PointConfig()
    a = _reading()
    assert _check(a, None, pc) == "first check"
    assert _check(_reading(t=200), a, pc) is None
    assert "lam moved" in _check(_reading(lam=-0.03 - 2e-4), a, pc)
    assert "overlap2 moved" in _check(_reading(overlap2=0.78), a, pc)
    assert "|W| moved" in _check(_reading(w_norm=1.05), a, pc)
    assert "|grad|" in _check(_reading(grad_norm=1e-2), a, pc)
    # no outlier on both sides: lam := edge and overlap2 := 0, so NaN outliers compare equal
    none = _reading(mu_edge=-0.01, mu_neg=-0.01, lam=np.nan, overlap2=0.0)
    assert _check(_reading(mu_edge=-0.01, mu_neg=-0.01, lam=np.nan, overlap2=0.0), none,
                  pc) is None


def test_common_random_numbers_nest_across_delta():
    small, s1 = crn_data("z2sat", 50, 100, seed=3, base_seed=1, noise=0.1)
    big, s2 = crn_data("z2sat", 50, 250, seed=3, base_seed=1, noise=0.1)
    np.testing.assert_array_equal(small.theta, big.theta)
    np.testing.assert_array_equal(small.X, big.X[:100])
    np.testing.assert_array_equal(small.y, big.y[:100])
    assert s1.entropy == s2.entropy and s1.spawn_key == s2.spawn_key
    other, _ = crn_data("z2sat", 50, 100, seed=4, base_seed=1, noise=0.1)
    assert not np.array_equal(other.X, small.X)


def test_estimator_error_combines_seed_spread_and_brackets():
    out = NNThreshold(0.5, None, "", d=400)
    out.seeds = [SeedThreshold(0, "bracket", 3.0, 3.2), SeedThreshold(1, "bracket", 3.6, 3.8)]
    _summarise(out, 32.0, 1.0, 2)
    vals = np.sqrt([3.0 * 3.2, 3.6 * 3.8])
    assert out.delta_nn == pytest.approx(vals.mean())
    assert out.delta_nn_sd == pytest.approx(vals.std(ddof=1))
    assert out.delta_nn_err == pytest.approx(np.sqrt(vals.var(ddof=1) / 2 + 0.1**2))
    assert out.converged
    out = NNThreshold(0.5, None, "", d=400)
    out.seeds = [SeedThreshold(0, "bracket", 3.0, 3.2), SeedThreshold(1, "none")]
    _summarise(out, 32.0, 1.0, 2)
    assert out.delta_nn is None and "seeds disagree" in out.reason


def test_schema_defaults_are_the_estimator_defaults():
    """theory.nc, thresholds.nc and the CLI share defaults: the schema's must equal Python's."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    thr = schema["properties"]["thresholds"]["properties"]
    th = schema["$defs"]["experiment"]["properties"]["theory"]["properties"]
    pc = PointConfig()
    for block in (thr, th):
        assert block["seeds"]["default"] == ESTIMATOR_DEFAULTS["seeds"]
        assert tuple(block["delta_range"]["default"]) == ESTIMATOR_DEFAULTS["delta_range"]
        for k in ("n_grid", "refine"):
            assert block[k]["default"] == ESTIMATOR_DEFAULTS[k], k
        for k in ("lr", "transient", "method", "budget", "first_check", "tol_eig",
                  "tol_overlap", "tol_weight", "gtol"):
            assert block[k]["default"] == getattr(pc, k), k
    assert thr["d"]["default"] == ESTIMATOR_DEFAULTS["d"]


@pytest.mark.parametrize("args, names", [
    (["--activation", "foo"], "--activation"),
    (["--loss", "hinge"], "--loss"),
    (["--width", "0"], "--width"),
    (["--d", "-5"], "--d"),
    (["--seeds", "0"], "--seeds"),
    (["--noise", "nan"], "--noise"),
    (["--noise", "inf"], "--noise"),
    (["--deltas", "4,2"], "--deltas"),
    (["--lr", "-1"], "--lr"),
])
def test_cli_threshold_bad_arguments_one_line_exit_2(args, names):
    out = subprocess.run([sys.executable, "-m", "deltann.cli", "threshold", "--target", "z2sat",
                          *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_cli_threshold_json_fields():
    out = subprocess.run([sys.executable, "-m", "deltann.cli", "threshold", "--target", "z2sat",
                          "--schedule", "first_layer", "--d", "30", "--seeds", "1",
                          "--deltas", "2,16", "--n-grid", "3", "--refine", "0", "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    res = json.loads(out.stdout)
    for k in ("delta_alg", "delta_nn", "delta_nn_err", "converged", "d", "reason"):
        assert k in res, k
    assert res["d"] == 30 and isinstance(res["converged"], bool)
    assert "left" in out.stderr  # progress with a remaining-time estimate on stderr
