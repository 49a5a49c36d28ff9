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

The gap between a reference and live traffic is modelled as that of two samples of the
reference's size (:func:`gap_size`). The thresholds hold the false-alarm budget averaged over
that gap, which a large reference's charts absorb with a slightly higher threshold; a small
reference's charts would need thresholds of hundreds (and still alarm when their reference is
an unlucky one), so their mean charts get a :func:`reference_margin` on their reference value
instead and are tuned for a 1 sd shift (:func:`design_shift`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.calibration import log_arl, sampling_grid

__all__ = ["ReferenceSize", "Scale", "Tolerance", "numeric_scale", "winsorize",
           "reference_size", "distinct_reference", "detectable_shift", "reference_margin",
           "gap_size", "calibration_size", "design_shift", "MIN_EFFECTIVE_SIZE",
           "DISCRETE_VALUES"]

#: Below this many distinct rows registration warns: two samples of that size differ by
#: about ``2 / sqrt(n)`` standard deviations in a feature by chance (0.12 sd at 300).
MIN_EFFECTIVE_SIZE = 300

#: Charts of a reference with fewer distinct rows are tuned for a shift of this many standard
#: deviations, not ``2 * k``: such a reference cannot tell a half-sd shift from its own error.
SMALL_REFERENCE_SHIFT = 1.0

#: A numeric stream is standardised with its winsorized mean and standard deviation (values
#: beyond these quantiles on either side pulled in to them) when its standard deviation is more
#: than :data:`HEAVY_TAIL_RATIO` times theirs: the most extreme 1% of its rows then hold over
#: three quarters of its variance (a Gaussian reference: a ratio of about 1.03).
WINSOR_QUANTILE = 0.005
HEAVY_TAIL_RATIO = 2.0

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
    reference_margin
        The part of ``mean_shift`` that is there for the reference's own uncertainty
        (:func:`reference_margin`), not asked for by the user; 0 unless :meth:`widened`.

    Examples
    --------
    >>> Tolerance().widened(2000).mean_shift, Tolerance().widened(100, 0.46).mean_shift
    (0.03, 0.49)
    >>> Tolerance.from_mapping({"mean_shift": 0.1}, Tolerance())
    Tolerance(mean_shift=0.1, spread_ratio=1.05, psi=0.01, reference_margin=0.0)
    """

    mean_shift: float = 0.03
    spread_ratio: float = 1.05
    psi: float = 0.01
    reference_margin: float = 0.0

    def __post_init__(self) -> None:
        if (self.mean_shift < 0 or self.psi < 0 or self.spread_ratio < 1
                or not 0 <= self.reference_margin <= self.mean_shift):
            raise ValueError("tolerances must be mean_shift >= 0, spread_ratio >= 1, psi >= 0 "
                             "and 0 <= reference_margin <= mean_shift")

    def widened(self, effective_size: int, margin: float = 0.0) -> Tolerance:
        """This tolerance plus the reference's uncertainty at ``effective_size`` distinct rows:
        the mean shift grows by ``margin`` (see :func:`reference_margin`), the spread ratio and
        the PSI to at least the standard errors of the gap between the reference and live
        traffic (:func:`gap_size` rows ``g``): ``exp(1 / sqrt(2 g))`` and ``1 / g``."""
        g = gap_size(effective_size)
        return Tolerance(round(self.mean_shift + margin, 4),
                         round(max(self.spread_ratio, math.exp(1.0 / math.sqrt(2 * g))), 4),
                         round(max(self.psi, 1.0 / g), 4), round(margin, 4))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, default: Tolerance) -> Tolerance:
        """``default`` with the keys of ``values`` replaced."""
        return cls(**{**asdict(default), **{k: float(v) for k, v in (values or {}).items()}})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def detectable_shift(
    effective_size: int, rate: float, tolerance: float, k: float = 0.25, records: int = 1000,
    margin: float = 0.0,
) -> float:
    """Smallest mean shift (reference sd) a mean chart detects within ``records`` records on
    average, for Gaussian data: the chart's threshold for ``rate`` false alarms per record,
    calibrated at the reference value ``k + margin`` over the sampling error of a reference of
    ``effective_size`` rows (:func:`calibration_size`; Siegmund's approximation), crossed at a
    drift of
    ``shift - k - tolerance`` per record (``tolerance`` includes ``margin``).

    Examples
    --------
    >>> round(detectable_shift(2000, 2e-6, 0.03), 2), round(detectable_shift(200, 2e-6, 0.36,
    ...                                                                      margin=0.33), 2)
    (0.3, 0.62)
    """
    n = calibration_size(effective_size)
    h = float(_mean_chart_thresholds(n, rate, np.array([k + margin]))[0])
    return float(k + tolerance + (h + 1.166) / records)


def gap_size(effective_size: int) -> int:
    """Rows of one sample whose sampling error equals the gap between a reference of
    ``effective_size`` rows and live traffic from its population: live traffic is never an
    exact draw from the population the reference came from, so the gap is modelled as that
    of two independent samples of the reference's size (variance ``1/n + 1/n``), ``n / 2``.

    Examples
    --------
    >>> gap_size(2000), gap_size(65)
    (1000, 32)
    """
    return max(int(effective_size) // 2, 2)


def calibration_size(effective_size: int) -> int:
    """Rows whose sampling error the thresholds average the false-alarm rate over: the
    reference's own (``effective_size``) from :data:`MIN_EFFECTIVE_SIZE` distinct rows up,
    the gap of two such samples (:func:`gap_size`) below, where that gap decides whether a
    chart stays quiet (two halves of 178 real rows differ by 0.3 sd in one of 30 features).

    Examples
    --------
    >>> calibration_size(2000), calibration_size(178)
    (2000, 89)
    """
    n = int(effective_size)
    return n if n >= MIN_EFFECTIVE_SIZE else gap_size(n)


def design_shift(effective_size: int, k: float = 0.25) -> float:
    """The mean shift (sd) a reference's mean charts are tuned for: ``2 * k`` (0.5 sd at the
    default ``k``) with at least :data:`MIN_EFFECTIVE_SIZE` distinct rows, else
    :data:`SMALL_REFERENCE_SHIFT`.

    Examples
    --------
    >>> design_shift(2000), design_shift(178)
    (0.5, 1.0)
    """
    return 2.0 * k if effective_size >= MIN_EFFECTIVE_SIZE else max(SMALL_REFERENCE_SHIFT, 2 * k)


def _mean_chart_thresholds(n_gap: int, rate: float, k: np.ndarray) -> np.ndarray:
    """Thresholds of Gaussian mean charts with reference values ``k`` whose false-alarm rate,
    averaged over the reference's gap to live traffic (a sample of ``n_gap`` rows' error in
    mean and spread), is ``rate`` (Siegmund's approximation; bisection, all ``k`` at once)."""
    m, sd, w = sampling_grid(0.0, 1.0 / math.sqrt(n_gap), 1.0, 1.0 / math.sqrt(2 * n_gap), 20, 6)
    k = np.asarray(k, dtype=float)[:, None]
    drift, sd_in = -m / sd - k, 1.0 / sd
    theta = -2.0 * drift / sd_in**2
    theta = np.where(theta > 0, theta, 1e-6)
    lo, hi = np.zeros(k.shape[0]), np.full(k.shape[0], 5000.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lr = -log_arl(theta, mid[:, None] + 1.166 * sd_in)
        top = lr.max(axis=1)
        over = np.log(np.exp(lr - top[:, None]) @ w) + top > math.log(rate)
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return hi


def reference_margin(
    effective_size: int, rate: float, k: float = 0.25, tolerance: float = 0.0,
    step: float = 0.01,
) -> float:
    """How much a mean chart's reference value grows for the reference's own uncertainty.

    A mean chart's threshold holds ``rate`` averaged over the gap between the reference and
    live traffic (:func:`gap_size`). When that gap is small next to ``k`` (a few thousand
    rows) this costs a slightly higher threshold. When it is not (a few hundred rows or
    fewer), the references whose gap exceeds ``k`` would climb with no change at all, and
    holding the average rate over them takes thresholds in the hundreds: charts that cannot
    fire, while the unlucky references still alarm. Raising the reference value by a margin
    ``m`` instead keeps the threshold sane. ``m`` is the multiple of ``step`` that minimises
    the delay ``(h(k + m) + 1.166) / (s - k - tolerance - m)`` of the
    :func:`design_shift` ``s`` (Gaussian data; ``h`` as :func:`detectable_shift` computes it).

    Examples
    --------
    >>> reference_margin(2000, 2e-7), reference_margin(178, 2e-7), reference_margin(65, 2e-7)
    (0.0, 0.35, 0.53)
    """
    shift = design_shift(effective_size, k)
    margins = np.arange(0.0, max(shift - k - tolerance, step), step)
    h = _mean_chart_thresholds(gap_size(effective_size), rate, k + margins)
    delay = (h + 1.166) / np.maximum(shift - k - tolerance - margins, 1e-9)
    return round(float(margins[int(np.argmin(delay))]), 4)


def winsorize(x: np.ndarray, quantile: float = WINSOR_QUANTILE) -> np.ndarray:
    """``x`` with the values beyond its ``quantile`` and ``1 - quantile`` quantiles pulled in
    to them.

    Examples
    --------
    >>> winsorize(np.array([0.0, 1.0, 2.0, 3.0, 1000.0]), 0.25).tolist()
    [1.0, 1.0, 2.0, 3.0, 3.0]
    """
    lo, hi = np.quantile(x, [quantile, 1.0 - quantile])
    return np.clip(x, lo, hi)


@dataclass(frozen=True)
class Scale:
    """How a numeric stream is standardised: ``z = (x - center) / spread``.

    ``method`` is ``"mean_sd"`` (the reference's mean and standard deviation) or
    ``"winsorized"`` (a heavy-tailed reference, see :func:`numeric_scale`); ``sd_ratio`` is the
    reference's standard deviation over its winsorized one, ``kurtosis`` its kurtosis.
    """

    center: float
    spread: float
    method: str = "mean_sd"
    sd_ratio: float = 1.0
    kurtosis: float = 3.0

    @property
    def robust(self) -> bool:
        return self.method == "winsorized"

    def sample(self, x: np.ndarray) -> np.ndarray:
        """The values whose mean and standard deviation are :attr:`center` and
        :attr:`spread` (``x`` winsorized for a robust scale): what the calibration measures
        the sampling error of the standardisation on."""
        return winsorize(x) if self.robust else x

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def note(self) -> str:
        """The diagnostic a robust scale adds to its stream's status."""
        return (f"heavy-tailed (kurtosis {self.kurtosis:.0f}, sd {self.sd_ratio:.1f}x its "
                f"winsorized sd): standardised with the winsorized mean and sd "
                f"({WINSOR_QUANTILE:.1%} each side), so a few wild readings neither squash "
                "every other value to 0 nor fire a chart alone")


def numeric_scale(x: np.ndarray, ratio: float = HEAVY_TAIL_RATIO) -> Scale:
    """The standardisation of a numeric stream with reference values ``x``.

    A few wild readings (sensor data: mostly small integers, now and then thousands) inflate a
    standard deviation many times: every usual value then standardises to about 0, the charts
    calibrate to thresholds a single clipped wild reading crosses, and the false-alarm rate
    becomes the rate of such readings, which a reference of a few thousand rows cannot
    estimate at one in a million. When the standard deviation is more than ``ratio`` times the
    winsorized one (:data:`WINSOR_QUANTILE` each side) and the latter is positive, the
    winsorized mean and standard deviation are the scale; otherwise the plain ones.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> numeric_scale(rng.standard_normal(2000)).method
    'mean_sd'
    >>> spiky = np.where(rng.random(2000) < 0.001, 4000.0, rng.integers(-3, 4, 2000))
    >>> s = numeric_scale(spiky)
    >>> s.method, round(s.spread, 2), s.sd_ratio > 10
    ('winsorized', 2.02, True)
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return Scale(float(x.mean()) if x.size else 0.0, 1.0)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if not sd > 0:
        return Scale(mean, 1.0)
    kurt = float(np.mean(((x - mean) / sd) ** 4))
    xw = winsorize(x)
    sd_w = float(xw.std(ddof=1))
    r = sd / sd_w if sd_w > 0 else math.inf
    if sd_w > 0 and r > ratio:
        return Scale(float(xw.mean()), sd_w, "winsorized", round(r, 4), round(kurt, 2))
    return Scale(mean, sd, "mean_sd", round(r, 4) if math.isfinite(r) else 0.0, round(kurt, 2))


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
