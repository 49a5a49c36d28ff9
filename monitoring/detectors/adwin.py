"""ADWIN (river): an adaptive window cut where two sub-windows' means differ."""

from __future__ import annotations

import math
from typing import Any

from river import drift

from monitoring.detectors.base import Budget, RiverDetector, below_alarm

__all__ = ["ADWIN", "ErrorADWIN"]


class ADWIN(RiverDetector):
    """river's ``ADWIN`` with its confidence set from the false-alarm budget.

    ADWIN tests every ``clock`` values with a confidence ``delta`` that bounds the per-test
    false-alarm probability, so ``delta = clock * rate`` (capped at river's default 0.002).
    river decides. The score is ADWIN's own cut rule, ``|mean_0 - mean_1| / eps_cut``,
    maximised over the boundaries of an exponential histogram the adapter keeps of the window
    (river's buckets are private) with the window's variance from river's public
    ``variance``; as those boundaries are not exactly river's, the score stays below 1 until
    river fires and is at least 1 when it does.

    Parameters
    ----------
    delta
        Confidence of each test.
    clock
        Values between tests.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> det = ADWIN(delta=6e-5)
    >>> z = np.concatenate([rng.standard_normal(1000), rng.standard_normal(300) + 1.0])
    >>> alarms = det.update_many(z)
    >>> [a.row for a in alarms]
    [1087]
    """

    name = "adwin"
    kind = "numeric"
    max_buckets = 5
    min_window_length = 5

    def __init__(self, delta: float = 0.002, clock: int = 32) -> None:
        self.delta = float(delta)
        self.clock = int(clock)
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> ADWIN:
        clock = 32
        if budget.rate is None:
            return cls(0.002, clock)
        return cls(min(0.002, clock * budget.rate), clock)

    def _make(self) -> drift.ADWIN:
        return drift.ADWIN(delta=self.delta, clock=self.clock)

    def _clear(self) -> None:
        self._levels: list[list[float]] = []  # level i: sums of buckets of 2**i values
        self._n = 0
        self._total = 0.0

    def _follow(self, x: float) -> None:
        self._n += 1
        self._total += x
        carry, level = x, 0
        while True:
            if level == len(self._levels):
                self._levels.append([])
            buckets = self._levels[level]
            buckets.append(carry)
            if len(buckets) <= self.max_buckets:
                return
            carry = buckets.pop(0) + buckets.pop(0)
            level += 1

    def _ratio(self) -> float:
        width = self._n
        variance = float(self._det.variance)
        if width <= 2 * self.min_window_length:
            return 0.0
        dd = math.log(2.0 * math.log(width) / self.delta)
        best, n0, u0 = 0.0, 0, 0.0
        for level in range(len(self._levels) - 1, -1, -1):  # oldest buckets first
            size = 1 << level
            for s in self._levels[level]:
                n0 += size
                u0 += s
                n1 = width - n0
                if n0 < self.min_window_length or n1 < self.min_window_length:
                    continue
                m = 1.0 / (n0 - self.min_window_length + 1) + 1.0 / (
                    n1 - self.min_window_length + 1)
                eps = math.sqrt(2.0 * m * variance * dd) + 2.0 / 3.0 * dd * m
                best = max(best, abs(u0 / n0 - (self._total - u0) / n1) / eps)
        return best

    @property
    def statistic(self) -> float:
        """The cut rule's ratio ``|mean_0 - mean_1| / eps_cut`` at the best boundary."""
        return self._ratio()

    @property
    def threshold(self) -> float:
        """ADWIN's confidence ``delta`` (the cut rule's alarm point is a ratio of 1)."""
        return self.delta

    @property
    def score(self) -> float:
        return below_alarm(self._ratio(), self._det.drift_detected)


class ErrorADWIN(ADWIN):
    """ADWIN on a model's error stream (concept drift), at river's default setting.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ErrorADWIN.calibrate(None, Budget(None))
    >>> errors = (rng.random(2000) < np.where(np.arange(2000) < 1000, 0.1, 0.4)).astype(float)
    >>> [a.row for a in det.update_many(errors)]
    [1055]
    """

    kind = "errors"
