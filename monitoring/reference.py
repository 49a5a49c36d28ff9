"""What a reference sample really holds, and the smallest change that is worth an alarm.

Two facts decide whether drift alarms can be trusted on real data:

* **Effective size.** A reference resampled or oversampled from a few hundred rows holds those
  few hundred rows, however many copies it carries; calibrating as if every copy were an
  independent draw makes the thresholds far too tight. :func:`reference_size` counts distinct
  rows when a feature holds fractional numbers or the features could form far more distinct
  rows than the sample has (then a repeated row is a copy, not a draw); data whose features
  take few values together repeat rows naturally and keep their row count.
* **Practical significance.** Live traffic is never an exact draw from the reference's
  population. A :class:`Tolerance` says how much change nobody cares about (a mean shift in
  reference standard deviations, a ratio of spreads, a PSI for categories); detectors alarm
  only beyond it, and :meth:`Tolerance.widened` widens it further for a small reference whose
  own statistics are that uncertain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.calibration import log_arl, sampling_grid

__all__ = ["ReferenceSize", "Tolerance", "reference_size", "distinct_reference", "detectable_shift",
           "MIN_EFFECTIVE_SIZE", "DISCRETE_VALUES"]

#: Below this many distinct rows registration warns: two samples of that size differ by
#: about ``2 / sqrt(n)`` standard deviations in a feature by chance (0.12 sd at 300).
MIN_EFFECTIVE_SIZE = 300

#: Repeated rows are copies when the features' distinct values could form this many times
#: more distinct rows than the reference has (a random row then repeats with a chance of
#: about 1%).
DISCRETE_VALUES = 100


@dataclass(frozen=True)
class ReferenceSize:
    """Rows, distinct rows and the effective size of a reference sample.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.1, 0.1], "k": [1, 2, 3, 1, 1]})
    >>> reference_size(frame, ["x"])   # fractional values repeated: copies
    ReferenceSize(rows=5, distinct_rows=3, duplicate_share=0.4, effective_size=3)
    >>> reference_size(frame, ["k"])   # 3 integers cannot make 5 distinct rows: draws
    ReferenceSize(rows=5, distinct_rows=3, duplicate_share=0.4, effective_size=5)
    """

    rows: int
    distinct_rows: int
    duplicate_share: float
    effective_size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _continuous(column: pd.Series) -> bool:
    """A numeric column with fractional values: a repeated value is a copy, not a draw."""
    if not pd.api.types.is_float_dtype(column):
        return False
    x = column.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return bool(x.size) and not np.array_equal(x, np.round(x))


def reference_size(
    frame: pd.DataFrame, columns: list[str], discrete_values: float = DISCRETE_VALUES
) -> ReferenceSize:
    """Effective size of ``frame`` over ``columns``: its distinct rows if a column holds
    fractional numbers or the columns' distinct values could form more than
    ``discrete_values`` times as many rows as it has (repeats are then copies), else all its
    rows (repeats of discrete data are draws)."""
    rows = len(frame)
    cols = [c for c in columns if c in frame.columns]
    distinct = int(len(frame.drop_duplicates(subset=cols))) if cols and rows else rows
    share = round(1.0 - distinct / rows, 4) if rows else 0.0
    copies = any(_continuous(frame[c]) for c in cols) or sum(
        math.log(max(frame[c].nunique(dropna=False), 1)) for c in cols
    ) > math.log(max(rows, 1) * discrete_values)
    return ReferenceSize(rows, distinct, share, distinct if copies else rows)


@dataclass(frozen=True)
class Tolerance:
    """The change a stream may show without an alarm.

    Parameters
    ----------
    mean_shift
        Shift of a numeric stream's mean, in reference standard deviations.
    spread_ratio
        Ratio of a numeric stream's standard deviation to the reference's (either way).
    psi
        Population stability index of a categorical stream's frequencies.

    Examples
    --------
    >>> Tolerance().widened(2000).mean_shift, Tolerance().widened(100).mean_shift
    (0.03, 0.1)
    >>> Tolerance.from_mapping({"mean_shift": 0.1}, Tolerance())
    Tolerance(mean_shift=0.1, spread_ratio=1.05, psi=0.01)
    """

    mean_shift: float = 0.03
    spread_ratio: float = 1.05
    psi: float = 0.01

    def __post_init__(self) -> None:
        if self.mean_shift < 0 or self.psi < 0 or self.spread_ratio < 1:
            raise ValueError("tolerances must be mean_shift >= 0, spread_ratio >= 1, psi >= 0")

    def widened(self, effective_size: int) -> Tolerance:
        """At least the reference's own standard errors: ``1 / sqrt(n)`` sd for the mean,
        ``exp(1 / sqrt(2 n))`` for the spread, ``1 / n`` for the PSI of a category."""
        n = max(int(effective_size), 2)
        return Tolerance(round(max(self.mean_shift, 1.0 / math.sqrt(n)), 4),
                         round(max(self.spread_ratio, math.exp(1.0 / math.sqrt(2 * n))), 4),
                         round(max(self.psi, 1.0 / n), 4))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, default: Tolerance) -> Tolerance:
        """``default`` with the keys of ``values`` replaced."""
        return cls(**{**asdict(default), **{k: float(v) for k, v in (values or {}).items()}})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def detectable_shift(
    effective_size: int, rate: float, tolerance: float, k: float = 0.25, records: int = 1000
) -> float:
    """Smallest mean shift (reference sd) a mean chart detects within ``records`` records on
    average, for Gaussian data: the chart's threshold for ``rate`` false alarms per record with
    a reference of ``effective_size`` rows (Siegmund's approximation averaged over the
    reference's sampling error), crossed at a drift of ``shift - k - tolerance`` per record.

    Examples
    --------
    >>> round(detectable_shift(2000, 2e-6, 0.03), 2), round(detectable_shift(200, 2e-6, 0.07), 2)
    (0.3, 0.36)
    """
    n = max(int(effective_size), 2)
    m, sd, w = sampling_grid(0.0, 1.0 / math.sqrt(n), 1.0, 1.0 / math.sqrt(2 * n), 20, 6)
    drift, sd_in = -m / sd - k, 1.0 / sd
    theta = -2.0 * drift / sd_in**2
    ok = theta > 0

    def log_rate(h: float) -> float:
        lr = -log_arl(np.where(ok, theta, 1e-6), h + 1.166 * sd_in)
        top = float(lr.max())
        return float(np.log(np.sum(w * np.exp(lr - top))) + top)

    lo, hi = 0.0, 500.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if log_rate(mid) > math.log(rate) else (lo, mid)
    return float(k + tolerance + (hi + 1.166) / records)


def distinct_reference(
    frame: pd.DataFrame, columns: list[str], discrete_values: float = DISCRETE_VALUES
) -> tuple[pd.DataFrame, ReferenceSize]:
    """``frame`` without its copies (see :func:`reference_size`) and its size.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0.5, 0.7, 0.5, 0.9], "c": ["a", "b", "a", "b"]})
    >>> kept, size = distinct_reference(frame, ["x", "c"], discrete_values=0.5)
    >>> len(kept), size.effective_size
    (3, 3)
    """
    size = reference_size(frame, columns, discrete_values)
    if size.effective_size == size.rows:
        return frame, size
    key = [c for c in columns if c in frame.columns]
    return frame.drop_duplicates(subset=key).reset_index(drop=True), size
