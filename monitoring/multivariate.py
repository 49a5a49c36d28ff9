"""Multivariate drift score: Mahalanobis distance to the reference, for a CUSUM chart."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

__all__ = ["MahalanobisScore", "distance_cap", "heavy_tailed"]

#: Distances of a heavy-tailed reference are capped at this quantile of new rows' distances:
#: one wild row adds a bounded step to the chart, not thousands.
CAP_QUANTILE = 0.99

#: A reference whose distances show no heavy tail has them capped where a Gaussian
#: population's rows lie beyond the cap once per this many rows (the false-alarm budget's
#: horizon): the cap then bounds a wild live row's step and leaves the tail of the distances,
#: where a broken correlation shows, as it is.
GAUSSIAN_TAIL = 1e-5

#: Distances are heavy-tailed when their :data:`CAP_QUANTILE` exceeds a Gaussian population's
#: (scaled to their median) by more than this factor (Gaussian references of 2,000 rows:
#: 0.94-1.12; every real data set of the benchmark: 1.25-13).
HEAVY_TAIL_FACTOR = 1.2


@lru_cache(maxsize=256)
def _chi2(p: int) -> tuple[float, float, float]:
    """Median, :data:`CAP_QUANTILE` and :data:`GAUSSIAN_TAIL` upper quantile of a chi-square
    with ``p`` degrees of freedom (scipy's are slow next to one calibration draw)."""
    return (float(stats.chi2.median(p)), float(stats.chi2.isf(1.0 - CAP_QUANTILE, p)),
            float(stats.chi2.isf(GAUSSIAN_TAIL, p)))


def heavy_tailed(sorted_ref: np.ndarray, p: int) -> bool:
    """Whether new rows' squared distances ``sorted_ref`` over ``p`` features are heavier-tailed
    than a Gaussian population's: their :data:`CAP_QUANTILE` above :data:`HEAVY_TAIL_FACTOR`
    times that of a chi-square with ``p`` degrees of freedom scaled to their median."""
    median, top, _ = _chi2(p)
    gaussian = float(np.median(sorted_ref)) / median * top
    return float(np.quantile(sorted_ref, CAP_QUANTILE)) > HEAVY_TAIL_FACTOR * gaussian


def distance_cap(sorted_ref: np.ndarray, p: int, heavy: bool) -> float:
    """Cap of squared distances whose new rows' distances are ``sorted_ref``, over ``p``
    features: their :data:`CAP_QUANTILE` if ``heavy`` (:func:`heavy_tailed`), else the
    :data:`GAUSSIAN_TAIL` quantile of a chi-square with ``p`` degrees of freedom scaled to
    their median.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gaussian = np.sort((rng.standard_normal((2000, 5)) ** 2).sum(axis=1))
    >>> heavy_tailed(gaussian, 5), round(distance_cap(gaussian, 5, False), 1)
    (False, 30.8)
    >>> wild = np.sort(gaussian * rng.pareto(3.0, 2000))
    >>> heavy_tailed(wild, 5), distance_cap(wild, 5, True) == float(np.quantile(wild, 0.99))
    (True, True)
    """
    if heavy:
        return float(np.quantile(sorted_ref, CAP_QUANTILE))
    median, _, tail = _chi2(p)
    return float(np.median(sorted_ref)) / median * tail


#: Folds of the cross-validation that measures how far *new* rows lie from a fit.
FOLDS = 5


class MahalanobisScore:
    """Standardised, capped squared Mahalanobis distance of each record to the reference.

    ``u = (min(d2, cap) - mean) / sd`` with ``d2 = (x - mean)' inv(cov) (x - mean)`` on the
    reference's standardised features, where ``cap``, ``mean`` and ``sd`` describe the
    distances of *new* rows, measured by :data:`FOLDS`-fold cross-validation on the reference
    (each row scored by a fit on the other folds). Two things break the textbook
    ``(d2 - p) / sqrt(2 p)`` on real data, and this answers both:

    * A row the covariance was fitted on lies closer to the fit than a new row of the same
      population (about ``p`` versus ``p * n / (n - p - 2)`` on Gaussian data: 17 instead of 13
      for 13 features and 65 rows), so on a small reference the textbook score of live rows
      climbs with no change at all.
    * Heavy-tailed, skewed or integer features put a few rows at distances of thousands, whose
      share of the score's variance left a CUSUM threshold in the thousands (a chart that
      cannot fire). Distances are capped (:func:`distance_cap`): at the
      :data:`CAP_QUANTILE` of new rows' distances when these are heavy-tailed, else where a
      Gaussian population's end.

    Under the reference's population a live row's ``u`` then has mean about 0 and sd about 1
    whatever the reference's size or the features' tails, and a change of the joint
    distribution that no marginal shows (a broken correlation) raises its mean. The monitor
    feeds ``u - k`` to a calibrated one-sided CUSUM.

    Parameters
    ----------
    reference
        Array ``(n, p)`` of complete reference rows.
    ridge
        Ridge added to the diagonal of the features' correlation matrix (the features are
        standardised first, so the ridge weighs every feature alike whatever its units).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=2000)
    >>> score = MahalanobisScore(ref)
    >>> same = score.transform(rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=5000))
    >>> broken = score.transform(rng.standard_normal((5000, 2)))
    >>> bool(abs(same.mean()) < 0.1), bool(broken.mean() > 0.5)
    (True, True)

    A small reference: new rows lie farther from the fit than its own rows, which the
    out-of-fold centring accounts for (the rows the fit saw score below 0).

    >>> few = rng.standard_normal((65, 13))
    >>> small = MahalanobisScore(few)
    >>> new = small.transform(rng.standard_normal((20_000, 13)))
    >>> bool(abs(new.mean()) < 0.25), bool(small.transform(few).mean() < -0.5)
    (True, True)
    """

    def __init__(self, reference: np.ndarray, ridge: float = 1e-6) -> None:
        ref = np.asarray(reference, dtype=float)
        self.p = ref.shape[1]
        self.ridge = ridge
        self.mean, self.precision = self.fit(ref, ridge)
        #: sorted out-of-fold distances of the reference rows: new rows' distances
        self.new_distances = np.sort(self.out_of_fold(ref, ridge))
        #: whether the distances are heavy-tailed, which decides their cap (also in every
        #: calibration draw, so that the chart is calibrated for the cap it uses)
        self.heavy = heavy_tailed(self.new_distances, self.p)
        #: the cap of the distances (:func:`distance_cap`)
        self.cap = distance_cap(self.new_distances, self.p, self.heavy)
        #: out-of-fold scores of the reference rows: what new rows of its population score
        self.reference_scores = self.capped_score(self.new_distances, self.new_distances,
                                                  self.cap)

    # monitors pickled before the out-of-fold scores: u = (d2 - p) / sqrt(2 p)
    new_distances: np.ndarray | None = None
    # monitors pickled before distance_cap: the CAP_QUANTILE of new rows' distances
    cap: float | None = None
    heavy: bool = True

    @staticmethod
    def fit(ref: np.ndarray, ridge: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Mean and inverse covariance of ``ref``, regularised on the correlation scale:
        ``inv(D (R + ridge I) D)`` for standard deviations ``D`` and correlations ``R``."""
        mean = ref.mean(axis=0)
        cov = np.atleast_2d(np.cov(ref, rowvar=False))
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        corr = cov / np.outer(sd, sd) + ridge * np.eye(cov.shape[0])
        return mean, np.linalg.pinv(corr) / np.outer(sd, sd)

    @classmethod
    def out_of_fold(cls, ref: np.ndarray, ridge: float = 1e-6, folds: int = FOLDS) -> np.ndarray:
        """Squared distance of every row of ``ref`` to a fit on the other folds (folds dealt in
        a fixed shuffled order, so the result does not depend on the rows' order's accidents)."""
        n = ref.shape[0]
        fold = np.random.default_rng(0).permutation(n) % max(min(folds, n), 2)
        out = np.empty(n)
        for f in np.unique(fold):
            test = fold == f
            m, prec = cls.fit(ref[~test], ridge)
            d = ref[test] - m
            out[test] = np.einsum("ij,jk,ik->i", d, prec, d)
        return out

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Score rows of ``x`` (NaN where a row has a missing value)."""
        return self.score_with(np.asarray(x, dtype=float), self.mean, self.precision)

    def score_with(
        self, x: np.ndarray, mean: np.ndarray, precision: np.ndarray,
        new_distances: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score with given statistics (used by the calibration)."""
        d = x - mean
        d2 = np.einsum("ij,jk,ik->i", d, precision, d)
        if new_distances is not None:  # a calibration draw: its own cap, by the same rule
            return self.capped_score(d2, new_distances,
                                     distance_cap(new_distances, self.p, self.heavy))
        if self.new_distances is None:
            return (d2 - self.p) / np.sqrt(2.0 * self.p)
        own = self.cap if self.cap is not None else float(
            np.quantile(self.new_distances, CAP_QUANTILE))
        return self.capped_score(d2, self.new_distances, own)

    @staticmethod
    def capped_score(d2: np.ndarray, sorted_ref: np.ndarray, cap: float) -> np.ndarray:
        """``(min(d2, cap) - mean) / sd``: distances capped at ``cap`` and standardised with
        the mean and sd of the capped ``sorted_ref``; NaN stays NaN.

        Examples
        --------
        >>> ref = np.arange(1.0, 101.0)
        >>> MahalanobisScore.capped_score(np.array([50.5, 1e6, np.nan]), ref, 99.01).round(2)
        array([0.  , 1.68,  nan])
        """
        ref = np.minimum(sorted_ref, cap)
        sd = float(ref.std()) or 1.0
        return (np.minimum(d2, cap) - float(ref.mean())) / sd


    def bootstrap_increments(
        self, ref: np.ndarray, k: float, draws: int, rng: np.random.Generator,
        holdout: int = 50,
    ) -> np.ndarray:
        """CUSUM increments ``u - k`` of new rows under ``draws`` refits of the reference.

        Each draw fits (and measures ``F``, out of fold) on a random part of the rows and
        scores the rest, which that fit has never seen: the increments carry the fit's own
        sampling error (a lucky or unlucky covariance shifts every live row's score alike),
        the same way a live stream meets the monitor's one fit. A fifth of the rows, at least
        ``holdout`` (at most half), are held out: fewer would make each draw's mean score
        noisy enough to pass for a fit that climbs.
        """
        n = ref.shape[0]
        n_test = min(max(n // 5, holdout), n // 2)
        out = np.empty((draws, n_test))
        for b in range(draws):
            perm = rng.permutation(n)
            train, test = ref[perm[n_test:]], ref[perm[:n_test]]
            m, prec = self.fit(train, self.ridge)
            new = np.sort(self.out_of_fold(train, self.ridge))
            out[b] = self.score_with(test, m, prec, new) - k
        return out
