"""HDDM_A (river) on a model's error stream: a Hoeffding-bound test of a rising mean."""

from __future__ import annotations

import math

from river import drift, stats

from monitoring.detectors.base import RiverDetector, below_alarm

__all__ = ["HDDMA"]


class HDDMA(RiverDetector):
    """river's ``HDDM_A`` (one-sided, mean increase) at its default setting.

    Fires when the mean since the start exceeds the mean up to a cut point by more than a
    Hoeffding bound at ``drift_confidence``. river decides; the score is that difference over
    the bound, followed from river's public parameters and ``stats.Mean``.

    Examples
    --------
    >>> import numpy as np
    >>> from monitoring.detectors.base import Budget
    >>> rng = np.random.default_rng(0)
    >>> det = HDDMA.calibrate(None, Budget(None))
    >>> errors = (rng.random(2000) < np.where(np.arange(2000) < 1000, 0.1, 0.4)).astype(float)
    >>> [a.row for a in det.update_many(errors)][:1]
    [1017]
    """

    name = "hddm_a"
    kind = "errors"
    skip_nan = False

    def __init__(self, drift_confidence: float = 0.001) -> None:
        self.drift_confidence = float(drift_confidence)
        self._reset()

    def _make(self) -> drift.binary.HDDMA:
        return drift.binary.HDDMA(drift_confidence=self.drift_confidence)

    def _clear(self) -> None:
        self._z = stats.Mean()
        self._min: tuple[float, float] = (0, 0.0)  # (n, mean) at the cut point

    def _bound(self, n: float) -> float:
        return math.sqrt(1.0 / (2 * n) * math.log(1.0 / self.drift_confidence))

    def _follow(self, x: float) -> None:
        self._z.update(x)
        n, mean = self._z.n, self._z.get()
        if self._min[0] == 0 or self._min[1] + self._bound(self._min[0]) >= (
                mean + self._bound(n)):
            self._min = (n, mean)

    @property
    def statistic(self) -> float:
        """Rise of the mean since the cut point."""
        return self._z.get() - self._min[1] if self._z.n else 0.0

    @property
    def threshold(self) -> float:
        """The Hoeffding bound the rise must reach (``inf`` without a cut point yet)."""
        n, n_min = self._z.n, self._min[0]
        if n_min == 0 or n_min == n:
            return math.inf
        m = (n - n_min) / n_min * (1.0 / n)
        return math.sqrt(m / 2 * math.log(2.0 / self.drift_confidence))

    @property
    def score(self) -> float:
        return below_alarm(self.statistic / self.threshold, self._det.drift_detected)
