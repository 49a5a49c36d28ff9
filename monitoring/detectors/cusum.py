"""CUSUM: driftgate's default numeric detector, four calibrated one-sided charts per stream.

:class:`CusumBank` is the engine: one-sided CUSUM charts ``S_t = max(0, S_{t-1} + y_t)``
that restart at zero when they fire, vectorised across charts and run over a batch's records
in one compiled loop (:mod:`monitoring.detectors.cusum_kernel`), so a batch costs the same
per record whether its charts fire or not. :class:`Cusum` runs four charts on a standardised
value ``z``: mean up (``z - k``), mean down (``-z - k``), variance up (``z**2 - 1 - k_v``) and
variance down (``1 - z**2 - k_vd``), with thresholds from :mod:`monitoring.calibration`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitoring.calibration import calibrate_cusum, quadrature_standardizers
from monitoring.detectors.base import Alarm, AlarmRun, Budget, DetectorGroup, StreamDetector
from monitoring.detectors.cusum_kernel import follow_groups
from monitoring.names import json_value
from monitoring.reference import Scale, Tolerance, calibration_size

__all__ = ["CHARTS", "Cusum", "CusumBank", "CusumGroup"]

CHARTS = ("cusum_mean_up", "cusum_mean_down", "cusum_var_up", "cusum_var_down")

#: A chart that needs more records than this at the largest possible signal cannot fire.
FIRE_WITHIN = 1000

_NO_CROSSINGS = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))


class CusumBank:
    """A bank of one-sided CUSUM charts with per-chart thresholds and group resets.

    Parameters
    ----------
    thresholds
        Threshold ``h`` of each chart (alarm when the statistic exceeds it).
    groups
        Group id of each chart; when a chart fires, all charts of its group restart at zero.
        Defaults to one group per chart.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> z = np.concatenate([rng.standard_normal(300), rng.standard_normal(100) + 1.0])
    >>> bank = CusumBank(np.array([8.0, 8.0]))
    >>> alarms = bank.update_many(np.column_stack([z - 0.5, -z - 0.5]))
    >>> [(a.row, a.chart) for a in alarms]
    [(311, '0'), (329, '0'), (342, '0'), (360, '0'), (384, '0')]
    """

    # derived from ``groups`` on first use (a class default, so pickles without it load)
    _layout: tuple[np.ndarray, np.ndarray] | None = None

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

    def update_many(self, y: np.ndarray, names: tuple[str, ...] | None = None) -> list[Alarm]:
        """Feed increments ``y`` of shape ``(records, charts)``; return alarms in order.

        NaN increments leave a chart unchanged (missing values). ``names`` name the charts in
        the alarms (default: their index).
        """
        rows, charts, stats = self.crossings(y)
        label = names.__getitem__ if names is not None else str
        return list(map(Alarm, rows.tolist(), map(label, charts.tolist()), stats.tolist(),
                        self.thresholds[charts].tolist()))

    def crossings(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`update_many`, as arrays of the alarms' rows, charts and statistics
        (ordered by row, then chart)."""
        y = np.asarray(y, dtype=float)
        if y.ndim == 1:
            y = y[None, :]
        y = np.where(np.isnan(y), 0.0, y)
        if y.shape[0] == 1:  # one record and (usually) no alarm: the fewest numpy calls
            s1 = np.maximum(self._s + y[0], 0.0)
            if not (s1 > self.thresholds).any():
                self._s = s1
                return _NO_CROSSINGS
        if self._layout is None:  # the charts in group order, and where each group starts
            _, inverse = np.unique(self.groups, return_inverse=True)
            charts = np.argsort(inverse, kind="stable")
            starts = np.flatnonzero(np.diff(inverse[charts])) + 1
            self._layout = (charts, np.r_[0, starts, charts.size])
        rows, fired, stats, self._s = follow_groups(y, self._s, self.thresholds, *self._layout)
        order = np.lexsort((fired, rows))
        return rows[order], fired[order], stats[order]


class Cusum(StreamDetector):
    """Four one-sided CUSUM charts (mean up/down, variance up/down) on a standardised stream.

    When a chart fires, all four restart at zero. :attr:`score` is the highest
    ``statistic / threshold`` of the four charts (at an alarm: the firing chart's).

    Parameters
    ----------
    thresholds
        Threshold of each chart (``inf`` switches a chart off).
    k
        Reference values of the four charts (mean up, mean down, variance up, variance down).
    variance_clip
        The variance charts use ``min(z**2, variance_clip**2)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = Cusum.calibrate(rng.standard_normal(2000), Budget(2e-6, rng))
    >>> z = np.concatenate([rng.standard_normal(500), rng.standard_normal(200) + 1.0])
    >>> [(a.row, a.chart) for a in det.update_many(z)][:2]
    [(540, 'cusum_mean_up'), (566, 'cusum_mean_up')]
    >>> det.score < 1.0
    True
    """

    name = "cusum"
    kind = "numeric"
    _bank: CusumBank  # this stream's charts: its own bank, or its group's (see CusumGroup)
    _charts: slice

    def __init__(
        self,
        thresholds: tuple[float, float, float, float],
        k: tuple[float, float, float, float] = (0.25, 0.25, 0.85, 0.54),
        variance_clip: float = 3.0,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.thresholds = tuple(float(h) for h in thresholds)
        self.notes = tuple(notes)
        self.k = tuple(float(v) for v in k)
        self.variance_clip = float(variance_clip)
        self._h = np.array(self.thresholds)
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> Cusum:
        """Thresholds for ``budget.rate`` split over the charts by ``chart_weights``.

        ``budget.settings`` may set ``cusum_k``, ``variance_k``, ``variance_down_k``,
        ``clip_z``, ``variance_clip_z``, ``chart_weights``, ``calibration_streams``,
        ``calibration_steps`` (defaults: :class:`~monitoring.config.MonitorConfig`'s) and
        ``scale`` (the stream's :class:`~monitoring.reference.Scale`; default: the reference's
        mean and standard deviation).
        """
        o = {**_DEFAULTS, **budget.settings}
        k = (o["cusum_k"], o["cusum_k"], o["variance_k"], o["variance_down_k"])
        clip2 = float(min(o["variance_clip_z"], o["clip_z"])) ** 2
        weights = o["chart_weights"]
        tolerance = o.get("tolerance")
        # the mean charts are calibrated at k plus the margin for the reference's uncertainty
        # (the tolerance's part that is not the user's), then shifted by the user's part
        margin = tolerance.reference_margin if tolerance is not None else 0.0
        k_cal = (k[0] + margin, k[1] + margin, k[2], k[3])
        hs = calibrate_charts(np.asarray(reference, dtype=float), k_cal, o["clip_z"], clip2,
                              [w * float(budget.rate or 1e-6) for w in weights], budget.rng,
                              o["calibration_streams"], o["calibration_steps"],
                              o.get("effective_size"), o.get("scale"))
        kt = tolerant_k(k, tolerance)
        scale = o.get("scale")
        notes = chart_notes(np.asarray(reference, dtype=float), hs, kt, o["clip_z"], clip2,
                            scale)
        if scale is not None and scale.robust:
            notes = (scale.note(), *notes)
        return cls((hs[0], hs[1], hs[2], hs[3]), kt, clip2**0.5, notes)

    def _reset(self) -> None:
        if "_bank" in vars(self):  # possibly a group's bank: zero this stream's charts only
            self._bank._s[self._charts] = 0.0
        else:
            self._bank = CusumBank(self._h, np.zeros(4, dtype=int))
            self._charts = slice(0, 4)  # this stream's charts in ``_bank``
        self._fired: Alarm | None = None

    def _increments(self, z: np.ndarray) -> np.ndarray:
        z2 = np.minimum(z * z, self.variance_clip**2)
        k = self.k
        return np.column_stack([z - k[0], -z - k[1], z2 - 1.0 - k[2], 1.0 - z2 - k[3]])

    def update_many(self, values: Any) -> list[Alarm]:
        z = np.asarray(values, dtype=float).reshape(-1)
        bank = CusumBank(self._h, np.zeros(4, dtype=int))
        bank._s = self._bank._s[self._charts].copy()
        alarms = bank.update_many(self._increments(z), CHARTS)
        self._bank._s[self._charts] = bank._s
        self._fired = alarms[-1] if alarms and alarms[-1].row == z.size - 1 else None
        return alarms

    @classmethod
    def group(cls, detectors: Sequence[StreamDetector]) -> CusumGroup:
        return CusumGroup(detectors)

    def snapshot(self) -> dict[str, Any]:
        return {"statistics": self._bank._s[self._charts].copy(), "fired": self._fired}

    def restore(self, state: dict[str, Any]) -> None:
        self._bank._s[self._charts] = state["statistics"]
        self._fired = state["fired"]

    @property
    def _statistics(self) -> np.ndarray:
        return self._bank._s[self._charts]

    def _ratios(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self._statistics / self._h
        return np.where(np.isfinite(self._h), r, 0.0)

    def _chart(self) -> tuple[float, float]:
        if self._fired is not None:
            return self._fired.statistic, self._fired.threshold
        c = int(np.argmax(self._ratios()))
        return float(self._statistics[c]), self.thresholds[c]

    @property
    def statistic(self) -> float:
        """Statistic of the chart closest to its threshold (at an alarm: the firing one)."""
        return self._chart()[0]

    @property
    def threshold(self) -> float:
        """Threshold of the chart reported by :attr:`statistic`."""
        return self._chart()[1]

    @property
    def score(self) -> float:
        if self._fired is not None:
            return self._fired.statistic / self._fired.threshold
        return float(self._ratios().max())

    def detectable_shift(self, records: int = FIRE_WITHIN) -> float:
        """Smallest upward mean shift (reference sd) the mean-up chart catches within
        ``records`` records on average: its drift ``shift - k`` climbs its threshold (plus
        the usual overshoot of 1.166) in that many records (``inf`` if the chart is off)."""
        return float(self.k[0] + (self.thresholds[0] + 1.166) / records)

    def details(self) -> dict[str, Any]:
        """Every chart's statistic and threshold (``None`` for a chart switched off) and the
        calibration's diagnostics (charts switched off or unable to fire, and why)."""
        s = self._statistics
        h = [json_value(float(v)) for v in self._h]
        out: dict[str, Any] = {"charts": {name: {"statistic": float(s[c]), "threshold": h[c]}
                                          for c, name in enumerate(CHARTS)}}
        notes = getattr(self, "notes", ())
        if notes:
            out["diagnostics"] = list(notes)
        return out


class CusumGroup(DetectorGroup):
    """Many :class:`Cusum` streams as one :class:`CusumBank`: a batch of many features costs a
    few numpy calls, not a few per feature, with the same decisions as one stream at a time.

    The group's bank holds every member's chart statistics (the members read theirs from it),
    and the stacked parameters are built once here, so a one-record update costs no stacking.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dets = [Cusum.calibrate(rng.standard_normal(2000), Budget(2e-6, rng)) for _ in range(3)]
    >>> z = rng.standard_normal((700, 3))
    >>> z[500:, 2] += 1.0
    >>> import copy
    >>> alone = copy.deepcopy(dets)
    >>> together = [(j, a.row, a.chart) for j, a in Cusum.group(dets).update(z)]
    >>> together[:1]
    [(2, 539, 'cusum_mean_up')]
    >>> sorted(together) == [(j, a.row, a.chart) for j, d in enumerate(alone)
    ...                      for a in d.update_many(z[:, j])]
    True
    >>> bool(np.allclose([d.score for d in dets], [d.score for d in alone]))  # up to rounding
    True
    """

    def __init__(self, detectors: Sequence[StreamDetector]) -> None:
        dets = [d for d in detectors if isinstance(d, Cusum)]
        if len(dets) != len(detectors):
            raise TypeError("a CusumGroup holds Cusum detectors only")
        super().__init__(dets)
        self._members = dets
        m = len(dets)
        self.k = np.array([d.k for d in dets]).reshape(m, 4)
        self.variance_clip2 = np.array([d.variance_clip**2 for d in dets])
        bank = CusumBank(np.concatenate([d._h for d in dets]) if dets else np.empty(0),
                         np.repeat(np.arange(m), 4))
        bank._s = np.concatenate([d._statistics for d in dets]) if dets else np.empty(0)
        for j, d in enumerate(dets):  # members now keep their state in the group's bank
            d._bank, d._charts = bank, slice(4 * j, 4 * j + 4)
        self.bank = bank
        self._fired: list[int] = [j for j, d in enumerate(dets) if d._fired is not None]

    def _crossings(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bank's crossings of a batch (rows, charts, statistics); members' last-row
        alarms (their scores) are set from them."""
        z = np.asarray(values, dtype=float)
        n, m = z.shape
        k = self.k
        z2 = np.minimum(z * z, self.variance_clip2)
        y = np.empty((n, m, 4))
        y[:, :, 0] = z - k[:, 0]
        y[:, :, 1] = -z - k[:, 1]
        y[:, :, 2] = z2 - 1.0 - k[:, 2]
        y[:, :, 3] = 1.0 - z2 - k[:, 3]
        dets = self._members
        for j in self._fired:  # only the streams that fired on the last row of the last call
            dets[j]._fired = None
        self._fired = []
        rows, charts, stats = self.bank.crossings(y.reshape(n, 4 * m))
        if not rows.size:  # the usual case: spare the numpy calls below
            return rows, charts, stats
        for i in np.flatnonzero(rows == n - 1).tolist():
            j = int(charts[i]) // 4
            dets[j]._fired = self._alarm(rows, charts, stats, i)
            self._fired.append(j)
        return rows, charts, stats

    def _alarm(self, rows: np.ndarray, charts: np.ndarray, stats: np.ndarray,
               i: int) -> Alarm:
        c = int(charts[i])
        return Alarm(int(rows[i]), CHARTS[c % 4], float(stats[i]),
                     float(self.bank.thresholds[c]))

    def update(self, values: np.ndarray) -> list[tuple[int, Alarm]]:
        """As :meth:`DetectorGroup.update`, ordered by row, then stream."""
        rows, charts, stats = self._crossings(values)
        if not rows.size:
            return []
        alarms = map(Alarm, rows.tolist(), map(CHARTS.__getitem__, (charts % 4).tolist()),
                     stats.tolist(), self.bank.thresholds[charts].tolist())
        return list(zip((charts // 4).tolist(), alarms, strict=True))

    def update_runs(self, values: np.ndarray) -> list[tuple[int, AlarmRun]]:
        """As :meth:`DetectorGroup.update_runs`, from the crossings' arrays: one
        :class:`Alarm` per stream that fired, however often it fired."""
        rows, charts, stats = self._crossings(values)
        if not rows.size:
            return []
        streams = charts // 4
        fired, first, counts = np.unique(streams, return_index=True, return_counts=True)
        last = streams.size - 1 - np.unique(streams[::-1], return_index=True)[1]
        order = np.lexsort((fired, rows[first]))
        return [(int(fired[o]), AlarmRun(self._alarm(rows, charts, stats, int(first[o])),
                                         int(counts[o]), int(rows[last[o]])))
                for o in order.tolist()]


_DEFAULTS: dict[str, Any] = {
    "cusum_k": 0.25, "variance_k": 0.85, "variance_down_k": 0.54, "clip_z": 5.0,
    "variance_clip_z": 3.0, "chart_weights": (0.47, 0.47, 0.05, 0.01),
    "calibration_streams": 256, "calibration_steps": 1024,
}


def tolerant_k(
    k: tuple[float, float, float, float], tolerance: Tolerance | None
) -> tuple[float, float, float, float]:
    """Reference values that ignore changes within ``tolerance``: a mean shift of
    ``mean_shift`` sd and a spread ratio of ``spread_ratio`` leave each chart's drift as it
    is at the reference, so the thresholds calibrated there hold the budget at the edge of
    the tolerance (and below it inside).

    Examples
    --------
    >>> tolerant_k((0.25, 0.25, 0.85, 0.54), Tolerance(0.05, 1.1, 0.0))
    (0.3, 0.3, 1.06, 0.713554)
    """
    if tolerance is None:
        return k
    up = tolerance.spread_ratio**2 - 1.0
    down = 1.0 - tolerance.spread_ratio**-2
    return (round(k[0] + tolerance.mean_shift, 6), round(k[1] + tolerance.mean_shift, 6),
            round(k[2] + up, 6), round(k[3] + down, 6))


def chart_notes(
    x: np.ndarray, h: list[float], k: tuple[float, float, float, float], clip_z: float,
    variance_clip2: float, scale: Scale | None = None,
) -> tuple[str, ...]:
    """Diagnostics of a stream's charts: off because the reference is constant or too
    skewed, with a threshold no signal can reach within :data:`FIRE_WITHIN` records, or with
    one that a single record of the reference crosses (standardised with ``scale``, default
    the mean and sd): its false alarms are then the rate of such records, which a reference
    cannot estimate at one in a million.

    Examples
    --------
    >>> chart_notes(np.ones(50), [5.0, 5.0, float("inf"), float("inf")], (0.25,) * 4, 5.0, 9.0)[0]
    'constant in the reference: no scale, every chart is off'
    >>> chart_notes(np.arange(50.0), [5.0, 5e4, 9.0, 9.0], (0.25,) * 4, 5.0, 9.0)
    ('cusum_mean_down: threshold 50000 cannot be reached within 1000 records',)
    >>> wild = np.append(np.zeros(1000), 3000.0)
    >>> chart_notes(wild, [3.9, 25.0, 9.0, 9.0], (0.25,) * 4, 5.0, 9.0)[0]
    'cusum_mean_up: one record of the reference crosses threshold 3.9 (its step 4.75)'
    """
    x = x[np.isfinite(x)]
    if x.size < 2 or not x.std() > 0:
        return ("constant in the reference: no scale, every chart is off",)
    top = (clip_z - k[0], clip_z - k[1], variance_clip2 - 1.0 - k[2], 1.0 - k[3])
    center, spread = ((scale.center, scale.spread) if scale is not None
                      else (float(x.mean()), float(x.std(ddof=1))))
    z = np.clip((x - center) / spread, -clip_z, clip_z)
    z2 = np.minimum(z * z, variance_clip2)
    step = (float(z.max()) - k[0], float(-z.min()) - k[1], float(z2.max()) - 1.0 - k[2],
            1.0 - float(z2.min()) - k[3])
    out = []
    for c, name in enumerate(CHARTS):
        if not math.isfinite(h[c]):
            out.append(f"{name}: off, the reference is too skewed for it (under no change its "
                       "sum would climb)")
        elif h[c] > FIRE_WITHIN * max(top[c], 1e-9):
            out.append(f"{name}: threshold {h[c]:.0f} cannot be reached within "
                       f"{FIRE_WITHIN} records")
        elif h[c] < step[c]:
            out.append(f"{name}: one record of the reference crosses threshold {h[c]:.2g} "
                       f"(its step {step[c]:.3g})")
    return tuple(out)


def calibrate_charts(
    x: np.ndarray, k: tuple[float, ...], clip_z: float, variance_clip2: float,
    rates: list[float], rng: np.random.Generator, n_streams: int, n_steps: int,
    effective_size: int | None = None, scale: Scale | None = None,
) -> list[float]:
    """Thresholds of the first ``len(rates)`` of the four charts on raw reference values ``x``
    (standardised over the sampling uncertainty of a reference of ``effective_size`` rows,
    default ``len(x)``: :func:`monitoring.reference.calibration_size`,
    :func:`monitoring.calibration.quadrature_standardizers`, of the statistics ``scale``
    standardises with, default the mean and standard deviation); ``inf`` for the variance
    charts of a constant reference."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        x = np.zeros(2)
    sd = x.std(ddof=1)
    xs = x if scale is None else scale.sample(x)
    m, s, w = quadrature_standardizers(xs, n=calibration_size(effective_size or x.size))
    z = np.clip((x[None, :] - m[:, None]) / s[:, None], -clip_z, clip_z)
    z2 = np.minimum(z * z, variance_clip2)
    incs = (z - k[0], -z - k[1], z2 - 1 - k[2], 1 - z2 - k[3])
    out = []
    for c, rate in enumerate(rates):
        if not sd > 0:  # a constant reference: no scale to measure a change in
            out.append(float("inf"))
            continue
        if float(w @ incs[c].mean(axis=1)) > -UPWARD:  # climbs (or nearly) with no change
            out.append(float("inf"))
            continue
        out.append(calibrate_cusum(incs[c], rate, rng, n_streams, n_steps, weights=w))
    return out


#: A chart whose increments average above ``-UPWARD`` under the reference is switched off:
#: only a threshold of thousands would keep it quiet (variance-down charts of spiky features).
UPWARD = 0.02
