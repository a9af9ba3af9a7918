import pytest

from deltann.sweep import Point, expand, parse_run_id, run_id


def test_run_id_roundtrip():
    p = Point("z1_plus_z2sq", "softplus", "square", 4, 300, 0.75, 2)
    assert run_id(p) == "z1_plus_z2sq__softplus__square__m4__d300__delta0.75__s2"
    assert parse_run_id(run_id(p)) == p
    assert p.n == 225


def test_expand_is_the_product_grid():
    exp = {"target": ["z2"], "activation": ["tanh", "erf"], "loss": ["square"], "width": [1, 2],
           "d": [10], "delta": [1, 2, 3], "seeds": 2}
    pts = expand(exp)
    assert len(pts) == 2 * 2 * 3 * 2 and len(set(pts)) == len(pts)


def test_malformed_run_id():
    with pytest.raises(ValueError, match="malformed run id"):
        parse_run_id("z2__tanh")
