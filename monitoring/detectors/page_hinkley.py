"""Page-Hinkley (river) on a standardised stream, with a CUSUM-calibrated threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from river import drift, stats

from monitoring.detectors.base import Budget, RiverDetector, below_alarm
from monitoring.detectors.cusum import _DEFAULTS, calibrate_charts

__all__ = ["PageHinkley"]


class PageHinkley(RiverDetector):
    """river's ``PageHinkley`` with a threshold from the false-alarm budget.

    Page-Hinkley is a two-sided CUSUM on the deviation from the running mean, so its threshold
    is the larger of the calibrated CUSUM thresholds of the mean-up and mean-down charts for
    the same reference value ``delta``, each holding half the budget (river's default fires
    about 60 times per 100,000 standard normal values). river decides; the score follows the
    same statistic from river's public parameters and ``stats.Mean``: the larger cumulative
    deviation over the threshold (0 for the first ``min_instances`` values, which cannot fire).

    Parameters
    ----------
    threshold
        Page-Hinkley's threshold ``lambda``.
    delta
        Reference value in standard deviations.
    min_instances
        Values before the first test.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> det = PageHinkley(threshold=25.0)
    >>> z = np.concatenate([rng.standard_normal(500), rng.standard_normal(300) + 1.0])
    >>> [a.row for a in det.update_many(z)]
    [522]
    """

    name = "page_hinkley"
    kind = "numeric"

    def __init__(self, threshold: float, delta: float = 0.25, min_instances: int = 30) -> None:
        self.threshold_ = float(threshold)
        self.delta = float(delta)
        self.min_instances = int(min_instances)
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> PageHinkley:
        o = {**_DEFAULTS, **budget.settings}
        k = (o["cusum_k"], o["cusum_k"], o["variance_k"], o["variance_down_k"])
        clip2 = float(min(o["variance_clip_z"], o["clip_z"])) ** 2
        rate = float(budget.rate or 1e-6)
        hs = calibrate_charts(np.asarray(reference, dtype=float), k, o["clip_z"], clip2,
                              [0.5 * rate, 0.5 * rate], budget.rng,
                              o["calibration_streams"], o["calibration_steps"],
                              scale=o.get("scale"))
        return cls(max(hs), delta=o["cusum_k"])

    def _make(self) -> drift.PageHinkley:
        return drift.PageHinkley(min_instances=self.min_instances, delta=self.delta,
                                 threshold=self.threshold_, alpha=1.0)

    def _clear(self) -> None:
        self._mean = stats.Mean()
        self._up = self._down = 0.0
        self._min_up, self._max_down = math.inf, -1.0

    def _follow(self, z: float) -> None:
        self._mean.update(z)
        dev = z - self._mean.get()
        self._up += dev - self.delta
        self._down += dev + self.delta
        self._min_up = min(self._min_up, self._up)
        self._max_down = max(self._max_down, self._down)

    @property
    def statistic(self) -> float:
        """The larger cumulative deviation (up: from its minimum, down: from its maximum)."""
        if self._mean.n == 0:
            return 0.0
        return float(max(self._up - self._min_up, self._max_down - self._down))

    @property
    def threshold(self) -> float:
        return self.threshold_

    @property
    def score(self) -> float:
        if self._mean.n < self.min_instances:
            return 0.0
        return below_alarm(self.statistic / self.threshold_, self._det.drift_detected)
