"""The engine's own Student-t tail and paired t-test (C++, no statistics library) against scipy."""
import numpy as np
import pytest

from genfast._native import available, native

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")
pytestmark = pytest.mark.skipif(not available(), reason="genfast._C is not built")


@pytest.mark.parametrize("df", [1, 2, 3.5, 7, 19, 30, 199, 1999, 1e5])
def test_student_t_sf_matches_scipy(df):
    C = native()
    ts = np.concatenate([np.linspace(-12, 12, 97), [0.0, 1e-9, -1e-9, 40.0, -40.0, 1e3]])
    ours = np.array([C.student_t_sf(float(t), float(df)) for t in ts])
    ref = scipy_stats.t.sf(ts, df)
    # relative accuracy where the tail is representable, absolute near 1
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-300)


def test_student_t_sf_edges():
    C = native()
    assert C.student_t_sf(float("inf"), 5.0) == 0.0
    assert C.student_t_sf(float("-inf"), 5.0) == 1.0
    assert np.isnan(C.student_t_sf(float("nan"), 5.0))
    assert C.student_t_sf(0.0, 3.0) == pytest.approx(0.5, abs=1e-15)
    with pytest.raises(ValueError, match="df must be positive"):
        C.student_t_sf(1.0, 0.0)


def test_incomplete_beta_matches_scipy():
    C = native()
    rng = np.random.default_rng(0)
    for a, b, x in zip(rng.uniform(0.1, 50, 200), rng.uniform(0.1, 50, 200), rng.uniform(0, 1, 200)):
        assert C.regularized_incomplete_beta(a, b, x) == pytest.approx(scipy_special.betainc(a, b, x), rel=1e-9,
                                                                       abs=1e-300)
    with pytest.raises(ValueError, match="x must be in"):
        C.regularized_incomplete_beta(1.0, 1.0, 1.5)


@pytest.mark.parametrize("n", [2, 3, 20, 200, 2000])
def test_paired_t_pvalue_matches_ttest_rel(n):
    C = native()
    rng = np.random.default_rng(n)
    for shift in (-0.3, 0.0, 0.05, 0.3, 1.0):
        a = rng.normal(1.0 + shift, 1.0, n)
        b = rng.normal(1.0, 1.0, n) + 0.5 * (a - 1.0)  # correlated pairs, like the classes of one image
        ref = scipy_stats.ttest_rel(a, b, alternative="greater").pvalue
        assert C.paired_t_pvalue(a - b) == pytest.approx(ref, rel=1e-8, abs=1e-300)


def test_paired_t_pvalue_zero_spread_uses_the_sign():
    C = native()
    assert C.paired_t_pvalue(np.full(5, 0.25)) == pytest.approx(0.0, abs=1e-12)
    assert C.paired_t_pvalue(np.zeros(5)) == 1.0
    assert C.paired_t_pvalue(np.full(5, -0.25)) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        C.paired_t_pvalue(np.ones(1))


def test_paired_t_rejects_is_the_pvalue_comparison():
    """The engine's decision (with its normal-tail shortcut) equals p < alpha for p from scipy."""
    C = native()
    rng = np.random.default_rng(7)
    decided = []
    for n in (2, 5, 20, 200, 2000):
        for shift in np.linspace(-0.2, 1.2, 15):
            d = rng.normal(shift / np.sqrt(n), 1.0, n)
            p = scipy_stats.ttest_rel(d, np.zeros(n), alternative="greater").pvalue
            for alpha in (2e-3, 1e-2, 0.05, 0.5):
                assert C.paired_t_rejects(d, alpha) == (p < alpha), (n, shift, alpha, p)
                decided.append(p < alpha)
    assert 0.1 < np.mean(decided) < 0.9  # both outcomes were exercised
    assert C.paired_t_rejects(np.full(4, 0.5), 1e-3) and not C.paired_t_rejects(np.zeros(4), 0.9)
