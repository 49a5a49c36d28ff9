"""Sliding-window G-test on category frequencies, with an overflow bin for unseen categories."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from monitoring.calibration import calibrate_window_gtest

__all__ = ["CategoricalWindowTest", "normalize_category"]

UNSEEN = "__unseen__"


def normalize_category(value: Any, boolean: bool = False) -> Any:
    """Map a raw value to the form used as a category key (booleans to ``True``/``False``).

    Examples
    --------
    >>> normalize_category("true", boolean=True), normalize_category(0, boolean=True)
    (True, False)
    """
    if boolean:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            return value
        if isinstance(value, bool | int | float | np.bool_) and value in (0, 1):
            return bool(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class CategoricalWindowTest:
    """G-test of the last ``window`` categories against the reference frequencies.

    The statistic ``G = 2 * sum(O * log(O / E))`` is updated in O(1) per record. Categories
    absent from the reference go to one extra bin with a small smoothed expectation, so a burst
    of unseen categories raises ``G``. The threshold is calibrated by simulation
    (:func:`monitoring.calibration.calibrate_window_gtest`). After an alarm the window empties
    and must refill before the next test.

    Parameters
    ----------
    reference
        Reference categories (one per reference row).
    categories
        Known categories (from the card); reference values outside them are still counted.
    window
        Window length.
    rate
        False-alarm probability per record.
    rng
        Random generator for the calibration.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = list(rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]))
    >>> test = CategoricalWindowTest(ref, ["a", "b", "c"], window=200, rate=2e-6, rng=rng)
    >>> live = list(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    >>> live += list(rng.choice(["a", "b", "c"], size=1000, p=[0.3, 0.3, 0.4]))
    >>> [i for i, v in enumerate(live) if test.update(v)]
    [1163, 1363, 1563, 1763, 1963]
    """

    def __init__(
        self,
        reference: Sequence[Any],
        categories: Sequence[Any] | None,
        window: int,
        rate: float,
        rng: np.random.Generator,
    ) -> None:
        cats: list[Any] = list(categories or [])
        for v in reference:
            if v is not None and v == v and v not in cats:
                cats.append(v)
        self.categories = cats
        self.window = int(window)
        self.rate = rate
        self.codes = {c: i for i, c in enumerate(cats)}
        k = len(cats) + 1
        counts = np.zeros(k)
        for v in reference:
            if v is not None and v == v:
                counts[self.codes[v]] += 1
        self.n_reference = int(counts.sum())
        self.probs = (counts + 0.5) / (counts.sum() + 0.5 * k)
        self.threshold = calibrate_window_gtest(
            self.probs, self.n_reference, self.window, rate, rng
        )
        self._scale = 1.0 + self.window / max(self.n_reference, 1)
        self._expected = self.probs * self.window
        self._log_expected = [math.log(e) for e in self._expected]
        self._reset()

    def _reset(self) -> None:
        self._buf = [0] * self.window
        self._pos = 0
        self._filled = 0
        self._counts = [0] * len(self._expected)
        self._terms = [0.0] * len(self._expected)
        self._g = 0.0

    def code(self, value: Any) -> int:
        """Bin of ``value`` (the last bin holds unseen categories)."""
        return self.codes.get(value, len(self.categories))

    def _term(self, c: int) -> float:
        o = self._counts[c]
        return 2.0 * o * (math.log(o) - self._log_expected[c]) if o > 0 else 0.0

    @property
    def statistic(self) -> float:
        """Current G statistic (0 until the window is full)."""
        return self._g if self._filled >= self.window else 0.0

    @property
    def p_value(self) -> float:
        """Approximate p-value of the current window (chi-square, scaled)."""
        if self._filled < self.window:
            return 1.0
        return float(stats.chi2.sf(self._g / self._scale, len(self._expected) - 1))

    def update(self, value: Any) -> bool:
        """Add one category; return whether the test fired."""
        c = self.code(value)
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
        if self._filled >= self.window and self._g > self.threshold:
            self._last_alarm_stat = self._g
            self._reset()
            return True
        return False
