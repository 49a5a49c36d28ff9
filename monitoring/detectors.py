"""Streaming detectors for numeric streams.

:class:`CusumBank` is driftgate's default numeric detector: a bank of one-sided CUSUM charts,
vectorised across charts and, in :meth:`CusumBank.update_many`, across records too (the
reflected sum ``S_t = max(0, S_{t-1} + y_t)`` equals ``V_t - min(0, min_{s<=t} V_s)`` for the
running sum ``V``, so a batch costs a few numpy calls). Per numeric feature the monitor runs four
charts on the standardised value ``z``: mean up (``z - k``), mean down (``-z - k``), variance up
(``z**2 - 1 - k_v``) and variance down (``1 - z**2 - k_vd``), with thresholds from
:mod:`monitoring.calibration`.

:class:`RiverDetector` wraps river's ``PageHinkley``, ``ADWIN`` and ``KSWIN`` with thresholds
derived from the same false-alarm budget, for users who prefer them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from river import drift

__all__ = ["Alarm", "CusumBank", "RiverDetector"]

KSWIN_WINDOW, KSWIN_STAT = 450, 150  # KSWIN's window and the size of each compared sample


@dataclass(frozen=True)
class Alarm:
    """One chart crossing its threshold at ``row`` of a batch.

    Examples
    --------
    >>> bank = CusumBank(np.array([2.0]))
    >>> bank.update_many(np.array([[1.0], [1.5], [0.5]]))
    [Alarm(row=1, chart=0, statistic=2.5, threshold=2.0)]
    """

    row: int
    chart: int
    statistic: float
    threshold: float


class CusumBank:
    """A bank of one-sided CUSUM charts with per-chart thresholds and group resets.

    Parameters
    ----------
    thresholds
        Threshold ``h`` of each chart (alarm when the statistic exceeds it).
    groups
        Group id of each chart; when a chart fires, all charts of its group restart at zero
        (one group per monitored feature). Defaults to one group per chart.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> z = np.concatenate([rng.standard_normal(300), rng.standard_normal(100) + 1.0])
    >>> bank = CusumBank(np.array([8.0, 8.0]))
    >>> alarms = bank.update_many(np.column_stack([z - 0.5, -z - 0.5]))
    >>> [(a.row, a.chart) for a in alarms]
    [(311, 0), (329, 0), (342, 0), (360, 0), (384, 0)]
    """

    def __init__(self, thresholds: np.ndarray, groups: np.ndarray | None = None) -> None:
        self.thresholds = np.asarray(thresholds, dtype=float).copy()
        n = self.thresholds.size
        self.groups = np.arange(n) if groups is None else np.asarray(groups).copy()
        self._reset()

    def _reset(self) -> None:
        self._s = np.zeros(self.thresholds.size)

    @property
    def statistics(self) -> np.ndarray:
        """Current statistic of every chart (read-only copy)."""
        return self._s.copy()

    def reset_group(self, group: int) -> None:
        """Restart every chart of ``group`` at zero."""
        self._s[self.groups == group] = 0.0

    def update_many(self, y: np.ndarray) -> list[Alarm]:
        """Feed increments ``y`` of shape ``(records, charts)``; return alarms in order.

        NaN increments leave a chart unchanged (missing values).
        """
        y = np.asarray(y, dtype=float)
        if y.ndim == 1:
            y = y[None, :]
        y = np.where(np.isnan(y), 0.0, y)
        alarms: list[Alarm] = []
        start, n = 0, y.shape[0]
        s0 = self._s
        h = self.thresholds
        while start < n:
            v = s0 + np.cumsum(y[start:], axis=0)
            s = v - np.minimum(np.minimum.accumulate(v, axis=0), 0.0)
            over = s > h
            hit_rows = over.any(axis=1)
            if not hit_rows.any():
                s0 = s[-1]
                break
            r = int(np.argmax(hit_rows))
            row = s[r].copy()
            fired = np.flatnonzero(over[r])
            for c in fired:
                alarms.append(Alarm(start + r, int(c), float(row[c]), float(h[c])))
            for g in np.unique(self.groups[fired]):
                row[self.groups == g] = 0.0
            s0 = row
            start += r + 1
        self._s = np.array(s0, dtype=float)
        return alarms


class RiverDetector:
    """A river drift detector on a standardised stream, with a budget-derived setting.

    Parameters
    ----------
    method
        ``"page_hinkley"``, ``"adwin"`` or ``"kswin"``.
    rate
        False-alarm probability per record for this stream.
    cusum_threshold
        For ``page_hinkley``: the calibrated CUSUM threshold for the same reference value
        ``delta`` (Page-Hinkley is a CUSUM on the deviation from its running mean).
    delta
        Page-Hinkley's reference value in standard deviations.
    seed
        KSWIN's seed.
    raw
        Use river's default parameters (uncalibrated; for benchmarks).
    reference
        Standardised reference values; KSWIN starts with its window's older part filled from
        them, so it compares live data with the reference from the first records on.

    Notes
    -----
    ADWIN and KSWIN are set from their bounds, not by simulation: ADWIN tests every ``clock``
    records with a confidence ``delta`` that bounds the per-test false-alarm probability, so
    ``delta = clock * rate`` (capped at river's default 0.002); KSWIN gets ``alpha = rate``
    and compares the last 150 values with 150 of the 300 before them (river's default 30 of
    100 cannot reach a p-value of ~1e-7 unless the two samples barely overlap: it missed 1 sd
    shifts). KSWIN is a window test: at these budgets it caught a 1 sd
    shift within about 100 records, a 0.5 sd one after 110-140 records in 3 of 4 seeded runs
    (missed in the fourth), and costs about 0.6 ms per record (a KS test on every update);
    the CUSUM bank is the default.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> det = RiverDetector("page_hinkley", rate=2e-6, cusum_threshold=25.0)
    >>> z = np.concatenate([rng.standard_normal(500), rng.standard_normal(300) + 1.0])
    >>> [i for i, v in enumerate(z) if det.update(float(v))]
    [522]
    """

    def __init__(
        self,
        method: str,
        rate: float,
        cusum_threshold: float = 25.0,
        delta: float = 0.25,
        seed: int = 0,
        raw: bool = False,
        reference: np.ndarray | None = None,
    ) -> None:
        self.method = method
        self.rate = rate
        self.cusum_threshold = cusum_threshold
        self.delta = delta
        self.seed = seed
        self.raw = raw
        self._prefill: list[float] = []
        if method == "kswin" and not raw and reference is not None:
            ref = np.asarray(reference, dtype=float)
            ref = ref[np.isfinite(ref)]
            if ref.size:
                pick = np.random.default_rng(seed).choice(ref, KSWIN_WINDOW - KSWIN_STAT)
                self._prefill = pick.tolist()
        self._det = self._make()

    def _make(self) -> drift.base.DriftDetector:  # type: ignore[name-defined]
        if self.method == "page_hinkley":
            if self.raw:
                return drift.PageHinkley()
            return drift.PageHinkley(
                min_instances=30, delta=self.delta, threshold=self.cusum_threshold, alpha=1.0
            )
        if self.method == "adwin":
            if self.raw:
                return drift.ADWIN()
            return drift.ADWIN(delta=min(0.002, 32 * self.rate), clock=32)
        if self.method == "kswin":
            if self.raw:
                return drift.KSWIN(seed=self.seed)
            return drift.KSWIN(alpha=self.rate, window_size=KSWIN_WINDOW, stat_size=KSWIN_STAT,
                               seed=self.seed, window=self._prefill or None)
        raise ValueError(f"unknown numeric detector {self.method!r}")

    @property
    def threshold(self) -> float:
        """The detector's operating threshold (PH threshold, ADWIN delta or KSWIN alpha)."""
        d = self._det
        if self.method == "page_hinkley":
            return float(d.threshold)
        if self.method == "adwin":
            return float(d.delta)
        return float(d.alpha)

    @property
    def score(self) -> float:
        """A current score (PH: the larger cumulative deviation; ADWIN: width; KSWIN: p)."""
        d = self._det
        if self.method == "page_hinkley":
            inc = getattr(d, "_sum_increase", 0.0) - getattr(d, "_min_increase", 0.0)
            dec = getattr(d, "_max_decrease", 0.0) - getattr(d, "_sum_decrease", 0.0)
            return float(max(inc, dec))
        if self.method == "adwin":
            return float(d.width)
        return float(getattr(d, "p_value", 1.0))

    def update(self, z: float) -> bool:
        """Feed one standardised value; return whether the detector fired."""
        if z != z:  # NaN: missing value, skip
            return False
        self._det.update(z)
        return bool(self._det.drift_detected)
