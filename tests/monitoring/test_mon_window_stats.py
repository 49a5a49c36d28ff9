from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitoring.window_stats import NumericReference


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 1.0])
def test_numeric_window_stats_match_scipy(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 10))
    ref_values = rng.standard_normal(2000)
    window = rng.standard_normal(1000) * 1.2 + shift
    got = NumericReference(ref_values).compare(window)
    ks = stats.ks_2samp(ref_values, window, method="asymp")
    assert got["ks"] == pytest.approx(ks.statistic, abs=1e-12)
    # Kolmogorov's limit with Stephens' correction vs scipy's Smirnov distribution
    assert np.log(got["ks_p"]) == pytest.approx(np.log(ks.pvalue), rel=0.05, abs=0.05)
    w1 = stats.wasserstein_distance(ref_values, window) / ref_values.std(ddof=1)
    assert got["wasserstein"] == pytest.approx(w1, rel=1e-9)


def test_window_stats_ignore_non_finite_values() -> None:
    ref = NumericReference(np.arange(100.0))
    got = ref.compare(np.array([np.nan, 1.0, 2.0, np.inf, 3.0]))
    assert got["ks"] == pytest.approx(stats.ks_2samp(np.arange(100.0), [1.0, 2.0, 3.0]).statistic)


def test_psi_and_js_against_hand_computed_values() -> None:
    """Deciles of the reference; a window with every value in the top decile."""
    ref_values = np.arange(1000.0)
    window = np.full(50, 999.0)
    got = NumericReference(ref_values).compare(window)
    expected = np.full(10, 0.1)
    actual = np.array([1e-4] * 9 + [1.0])  # empty bins floored at 1e-4
    assert got["psi"] == pytest.approx(float(np.sum((actual - expected)
                                                    * np.log(actual / expected))), rel=1e-9)
    m = (np.full(10, 0.1) + np.eye(10)[9]) / 2
    kl = 0.1 * np.log2(0.1 / m[:9]).sum() + 0.1 * np.log2(0.1 / m[9])
    js = np.sqrt((kl + np.log2(1.0 / m[9])) / 2)
    assert got["js"] == pytest.approx(js, rel=1e-9)
