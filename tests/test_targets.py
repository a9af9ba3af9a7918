import numpy as np
import pytest

from deltann.targets import TARGETS, get_target, target_mean


def test_unknown_target_lists_known_ones():
    with pytest.raises(KeyError, match="known targets: z2, abs"):
        get_target("z3")


def test_aliases_resolve():
    assert get_target("z1+z2^2").name == "z1_plus_z2sq"
    assert get_target("z1*z2").name == "z1z2"


@pytest.mark.parametrize("name", list(TARGETS))
def test_easy_hard_labels_match_first_order_correlation(name):
    """easy <=> E[z_a y] != 0, checked by Monte Carlo with 4e5 samples (se ~ 2e-3 * sd(y))."""
    t = TARGETS[name]
    rng = np.random.default_rng(7)
    z = rng.standard_normal((400_000, t.k))
    y = t(z)
    corr = (z * y[:, None]).mean(axis=0)
    se = np.sqrt(((z * y[:, None]) ** 2).mean(axis=0) / len(y))
    for a in range(t.k):
        if a in t.easy:
            assert abs(corr[a]) > 10 * se[a]
        else:
            assert abs(corr[a]) < 5 * se[a]
    assert sorted(t.easy + t.hard) == list(range(t.k))


def test_target_mean_quadrature():
    assert target_mean(TARGETS["z2"]) == pytest.approx(1.0, abs=1e-12)
    assert target_mean(TARGETS["he2"]) == pytest.approx(0.0, abs=1e-12)
    assert target_mean(TARGETS["abs"]) == pytest.approx(np.sqrt(2 / np.pi), abs=1e-10)
    assert target_mean(TARGETS["z1z2"]) == pytest.approx(0.0, abs=1e-12)


def test_noise_is_added():
    t = TARGETS["z2"]
    z = np.ones((4, 1))
    np.testing.assert_allclose(t(z, np.arange(4.0), 0.5), 1 + 0.5 * np.arange(4.0))
    with pytest.raises(ValueError, match="shape"):
        t(np.ones((4, 2)))
