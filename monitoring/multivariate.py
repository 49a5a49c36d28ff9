"""Multivariate drift score: Mahalanobis distance to the reference, for a CUSUM chart."""

from __future__ import annotations

import numpy as np

__all__ = ["MahalanobisScore"]


class MahalanobisScore:
    """Standardised squared Mahalanobis distance of each record to the reference.

    ``u = (d2 - p) / sqrt(2 p)`` with ``d2 = (x - mean)' inv(cov) (x - mean)``; under the
    reference ``u`` has mean about 0 and variance about 1, and a change of the joint
    distribution that no marginal shows (a broken correlation) raises its mean. The monitor
    feeds ``u - k`` to a calibrated one-sided CUSUM.

    Parameters
    ----------
    reference
        Array ``(n, p)`` of complete reference rows.
    ridge
        Relative ridge added to the covariance diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=2000)
    >>> score = MahalanobisScore(ref)
    >>> same = score.transform(rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=5000))
    >>> broken = score.transform(rng.standard_normal((5000, 2)))
    >>> bool(abs(same.mean()) < 0.1), bool(broken.mean() > 1.0)
    (True, True)
    """

    def __init__(self, reference: np.ndarray, ridge: float = 1e-6) -> None:
        ref = np.asarray(reference, dtype=float)
        self.p = ref.shape[1]
        self.ridge = ridge
        self.mean, self.precision = self.fit(ref, ridge)

    @staticmethod
    def fit(ref: np.ndarray, ridge: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (ridge-regularised) inverse covariance of ``ref``."""
        mean = ref.mean(axis=0)
        cov = np.atleast_2d(np.cov(ref, rowvar=False))
        cov = cov + ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        return mean, np.linalg.pinv(cov)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Score rows of ``x`` (NaN where a row has a missing value)."""
        return self.score_with(np.asarray(x, dtype=float), self.mean, self.precision)

    def score_with(self, x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
        """Score with given statistics (used by the calibration's bootstrap)."""
        d = x - mean
        d2 = np.einsum("ij,jk,ik->i", d, precision, d)
        return (d2 - self.p) / np.sqrt(2.0 * self.p)

    def bootstrap_increments(
        self, ref: np.ndarray, k: float, draws: int, rng: np.random.Generator
    ) -> np.ndarray:
        """CUSUM increments ``u - k`` of every reference row under ``draws`` bootstrap fits."""
        n = ref.shape[0]
        out = np.empty((draws, n))
        for b in range(draws):
            sample = ref if b == 0 else ref[rng.integers(0, n, n)]
            m, prec = self.fit(sample, self.ridge)
            out[b] = self.score_with(ref, m, prec) - k
        return out
