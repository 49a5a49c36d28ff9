"""The joint (Mahalanobis) chart on small references and heavy-tailed features: live rows of the
reference's population score like new rows, not like the rows the fit saw, and heavy tails
leave a threshold the chart can reach."""

from __future__ import annotations

import numpy as np

from monitoring.detectors import Budget
from monitoring.detectors.mahalanobis import MahalanobisChart
from monitoring.multivariate import MahalanobisScore


def _correlated(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    x = rng.standard_normal((n, p))
    x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]
    return x


def test_small_reference_scores_new_rows_near_zero() -> None:
    rng = np.random.default_rng(0)
    ref = _correlated(rng, 65, 13)
    score = MahalanobisScore(ref)
    new = score.transform(_correlated(rng, 50_000, 13))
    assert abs(float(new.mean())) < 0.2 and 0.8 < float(new.std()) < 1.25
    # the textbook (d2 - p) / sqrt(2 p) of the same fit: new rows sit far above 0
    d = _correlated(rng, 50_000, 13) - score.mean
    d2 = np.einsum("ij,jk,ik->i", d, score.precision, d)
    assert float(((d2 - 13) / np.sqrt(26)).mean()) > 0.5


def test_small_reference_chart_is_quiet_and_still_sees_a_broken_correlation() -> None:
    rng = np.random.default_rng(1)
    chart = MahalanobisChart.calibrate(_correlated(rng, 65, 13), Budget(1e-6, rng))
    assert chart.threshold < 60
    assert chart.update_many(_correlated(rng, 30_000, 13)) == []
    broken = rng.standard_normal((400, 13))
    broken[:, 1] = -0.8 * broken[:, 0] + 0.6 * broken[:, 1]
    alarms = chart.update_many(broken)
    assert alarms and alarms[0].row < 100


def test_heavy_tailed_integer_features_leave_a_threshold_that_can_fire() -> None:
    rng = np.random.default_rng(2)

    def draw(n: int) -> np.ndarray:  # integer readings, Student t with 1.5 df: wild tails
        x = np.round(3 * rng.standard_t(1.5, size=(n, 5)))
        x[:, 1] = np.round(0.8 * x[:, 0] + 3 * rng.standard_t(1.5, size=n))
        return x

    chart = MahalanobisChart.calibrate(draw(2000), Budget(1e-6, rng))
    assert chart.threshold < 40  # the textbook score's threshold ran into the thousands
    assert chart.update_many(draw(30_000)) == []
    u = chart.scorer.transform(draw(20_000))
    assert abs(float(u.mean())) < 0.15 and float(np.abs(u).max()) < 10.0  # capped distances


def test_cap_follows_the_tail_of_the_reference_distances() -> None:
    """Gaussian distances are capped where a Gaussian population's end (a broken correlation
    keeps its tail); heavy-tailed ones at their 99th percentile."""
    rng = np.random.default_rng(3)
    gaussian = MahalanobisScore(_correlated(rng, 2000, 5))
    assert not gaussian.heavy
    assert gaussian.cap is not None
    assert gaussian.cap > 1.8 * float(np.quantile(gaussian.new_distances, 0.99))
    wild = np.round(3 * rng.standard_t(1.5, size=(2000, 5)))
    heavy = MahalanobisScore(wild)
    assert heavy.heavy and heavy.cap == float(np.quantile(heavy.new_distances, 0.99))
    # a broken correlation's rows score higher under the Gaussian cap than under the 99th
    # percentile's: the signal in the tail is kept
    broken = rng.standard_normal((20_000, 5))
    q99 = float(np.quantile(gaussian.new_distances, 0.99))
    d = broken - gaussian.mean
    d2 = np.einsum("ij,jk,ik->i", d, gaussian.precision, d)
    capped99 = MahalanobisScore.capped_score(d2, gaussian.new_distances, q99)
    assert float(gaussian.transform(broken).mean()) > float(capped99.mean()) + 0.2
