"""Sliding-window G-test on category frequencies, with an overflow bin for unseen categories."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from monitoring.calibration import calibrate_window_gtest
from monitoring.categorical import CategoryFrequencies
from monitoring.detectors.base import Alarm, Budget, StreamDetector

__all__ = ["GTest"]


class GTest(StreamDetector):
    """G-test of the last ``window`` categories against the reference frequencies.

    The statistic ``G = 2 * sum(O * log(O / E))`` is updated in O(1) per record. Categories
    absent from the reference go to one extra bin with a small smoothed expectation, so a
    burst of unseen categories raises ``G``. The threshold is calibrated by simulation
    (:func:`monitoring.calibration.calibrate_window_gtest`). After an alarm the window empties
    and must refill before the next test. The score is ``G / threshold`` (0 until the window
    is full). ``None`` values (missing) are skipped.

    Parameters
    ----------
    frequencies
        Known categories and their reference frequencies.
    window
        Window length.
    threshold
        Alarm when ``G`` exceeds it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = list(rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]))
    >>> test = GTest.calibrate(ref, Budget(2e-6, rng, categories=["a", "b", "c"],
    ...                                    settings={"category_window": 200}))
    >>> live = list(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    >>> live += list(rng.choice(["a", "b", "c"], size=1000, p=[0.3, 0.3, 0.4]))
    >>> [a.row for a in test.update_many(live)]
    [1163, 1363, 1563, 1763, 1963]
    """

    name = "gtest"
    kind = "categorical"

    def __init__(self, frequencies: CategoryFrequencies, window: int, threshold: float) -> None:
        self.frequencies = frequencies
        self.window = int(window)
        self.threshold_ = float(threshold)
        probs = frequencies.probs
        self._log_expected = [math.log(e) for e in probs * self.window]
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> GTest:
        """``budget.categories``: the known categories; ``budget.settings``:
        ``category_window`` (the window, default 300), ``effective_size`` (rows the
        reference really holds, default its length) and ``tolerance`` (a
        :class:`~monitoring.reference.Tolerance`: frequencies within its PSI of the reference
        raise ``G`` by about ``window * psi``, which the threshold allows for)."""
        freq = CategoryFrequencies(list(reference), budget.categories)
        o = budget.settings
        window = int(o.get("category_window", 300))
        n_ref = min(int(o.get("effective_size") or freq.n_reference), freq.n_reference)
        h = calibrate_window_gtest(freq.probs, max(n_ref, 1), window,
                                   float(budget.rate or 1e-6), budget.rng)
        tolerance = o.get("tolerance")
        return cls(freq, window, h + (window * tolerance.psi if tolerance else 0.0))

    def _reset(self) -> None:
        k = len(self._log_expected)
        self._buf = [0] * self.window
        self._pos = 0
        self._filled = 0
        self._counts = [0] * k
        self._terms = [0.0] * k
        self._g = 0.0
        self._fired = math.nan

    def _term(self, c: int) -> float:
        o = self._counts[c]
        return 2.0 * o * (math.log(o) - self._log_expected[c]) if o > 0 else 0.0

    @property
    def statistic(self) -> float:
        """Current G statistic (0 until the window is full; at an alarm, the alarm's)."""
        if self._fired == self._fired:
            return self._fired
        return self._g if self._filled >= self.window else 0.0

    @property
    def threshold(self) -> float:
        return self.threshold_

    @property
    def score(self) -> float:
        return self.statistic / self.threshold_

    def update_many(self, values: Sequence[Any]) -> list[Alarm]:
        alarms = []
        code = self.frequencies.code
        self._fired = math.nan
        for i, value in enumerate(values):
            if value is None:
                continue
            self._fired = math.nan
            if self._add(code(value)):
                self._fired = self._g
                alarms.append(Alarm(i, self.name, self._g, self.threshold_))
                self._g_reset()
        return alarms

    def _g_reset(self) -> None:
        fired = self._fired
        self._reset()
        self._fired = fired

    def _add(self, c: int) -> bool:
        if self._filled >= self.window:
            old = self._buf[self._pos]
            self._counts[old] -= 1
            t = self._term(old)
            self._g += t - self._terms[old]
            self._terms[old] = t
        else:
            self._filled += 1
        self._buf[self._pos] = c
        self._pos = (self._pos + 1) % self.window
        self._counts[c] += 1
        t = self._term(c)
        self._g += t - self._terms[c]
        self._terms[c] = t
        return self._filled >= self.window and self._g > self.threshold_
