"""A CUSUM chart on the Mahalanobis distance of each record to the reference (joint drift)."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitoring.calibration import calibrate_cusum
from monitoring.detectors.base import Alarm, Budget, StreamDetector
from monitoring.detectors.cusum import CusumBank
from monitoring.multivariate import MahalanobisScore

__all__ = ["MahalanobisChart"]


class MahalanobisChart(StreamDetector):
    """One-sided CUSUM on ``u - k``, ``u`` the standardised squared Mahalanobis distance
    (:class:`~monitoring.multivariate.MahalanobisScore`) of a row to the reference.

    Catches a change of the joint distribution that no marginal shows (a broken correlation).
    The threshold is calibrated on bootstrap refits of the reference. Rows with a missing value
    leave the chart unchanged. The score is ``statistic / threshold``.

    Parameters
    ----------
    scorer
        The reference's Mahalanobis score.
    k
        Reference value of the chart.
    threshold
        CUSUM threshold.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cov = [[1, 0.8], [0.8, 1]]
    >>> chart = MahalanobisChart.calibrate(rng.multivariate_normal([0, 0], cov, 2000),
    ...                                    Budget(1e-6, rng))
    >>> live = np.vstack([rng.multivariate_normal([0, 0], cov, 500),
    ...                   rng.standard_normal((300, 2))])
    >>> [a.row for a in chart.update_many(live)][:1]
    [521]
    """

    name = "mahalanobis_cusum"
    kind = "multivariate"

    def __init__(self, scorer: MahalanobisScore, k: float, threshold: float) -> None:
        self.scorer = scorer
        self.k = float(k)
        self.threshold_ = float(threshold)
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> MahalanobisChart:
        """``reference``: complete rows ``(n, p)``; ``budget.settings`` may set
        ``multivariate_k``, ``calibration_draws``, ``calibration_streams`` and
        ``calibration_steps``."""
        o = budget.settings
        ref = np.asarray(reference, dtype=float)
        scorer = MahalanobisScore(ref)
        k = float(o.get("multivariate_k", 0.5))
        inc = scorer.bootstrap_increments(ref, k, int(o.get("calibration_draws", 32)),
                                          budget.rng)
        h = calibrate_cusum(inc, float(budget.rate or 1e-6), budget.rng,
                            int(o.get("calibration_streams", 256)),
                            int(o.get("calibration_steps", 1024)))
        return cls(scorer, k, h)

    def _reset(self) -> None:
        self._bank = CusumBank(np.array([self.threshold_]))
        self._fired: Alarm | None = None

    def update_many(self, values: Any) -> list[Alarm]:
        x = np.atleast_2d(np.asarray(values, dtype=float))
        u = self.scorer.transform(x) - self.k
        if u.shape[0] == 1:  # one record, no alarm: plain float arithmetic, no numpy calls
            step = float(u[0])
            s1 = max(float(self._bank._s[0]) + (step if step == step else 0.0), 0.0)
            if not s1 > self.threshold_:
                self._bank._s[0] = s1
                self._fired = None
                return []
        alarms = self._bank.update_many(u[:, None], (self.name,))
        self._fired = alarms[-1] if alarms and alarms[-1].row == x.shape[0] - 1 else None
        return alarms

    @property
    def statistic(self) -> float:
        """The CUSUM statistic (at an alarm: the alarm's)."""
        return self._fired.statistic if self._fired else float(self._bank.statistics[0])

    @property
    def threshold(self) -> float:
        return self.threshold_

    @property
    def score(self) -> float:
        return self.statistic / self.threshold_
