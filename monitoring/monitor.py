"""The per-model monitor: records in, events out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from monitoring import state as _state
from monitoring.batch import Record, RecordBatch
from monitoring.calibration import share_rate, stream_rates
from monitoring.categorical import CategoryFrequencies, normalize_category
from monitoring.config import MonitorConfig
from monitoring.detectors import Alarm, AlarmRun, Budget, StreamDetector, detector_class
from monitoring.effect import RECENT, categorical_effect, numeric_effect
from monitoring.events import MonitorEvent
from monitoring.multivariate import MahalanobisScore
from monitoring.names import LABEL, MULTIVARIATE, PREDICTION, json_value
from monitoring.performance import PerformanceTracker
from monitoring.quality import ISSUES, FeatureSpec, Rules
from monitoring.reference import (
    ReferenceSize,
    Scale,
    Tolerance,
    distinct_reference,
    numeric_scale,
    reference_margin,
)
from monitoring.state import DriftState
from monitoring.status import MonitorStatus, StreamStatus
from monitoring.window_stats import NumericReference, categorical_window_stats

__all__ = ["ModelMonitor", "PREDICTION", "MULTIVARIATE"]




def _float_column(values: Sequence[Any]) -> np.ndarray:
    """Values as floats (``None`` and what is not a number become NaN)."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.array([_to_float(v) for v in values], dtype=float)


def _to_float(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class ModelMonitor:
    """Online drift, quality and performance monitor of one model.

    Built from the model card (a plain dict, see ``docs/contracts.md``) and the reference
    sample. Every numeric feature (and a regressor's prediction) is standardised with the
    reference mean and standard deviation and fed to a calibrated detector (default: a bank
    of four CUSUM charts, mean up/down and variance up/down, see
    :mod:`monitoring.detectors`); categorical and boolean features (and a classifier's
    predicted class) to a calibrated sliding-window G-test; the numeric features jointly to a
    CUSUM on the Mahalanobis distance. All thresholds are calibrated at construction so that
    the model's expected run time to a false alarm, across all these streams, is
    ``config.expected_run_time``.

    Parameters
    ----------
    card
        Model card dict (``features``, ``task``, ``class_labels``, ``metrics``).
    reference
        Reference sample: one column per feature, plus ``__prediction__`` and ``__label__``.
    config
        :class:`~monitoring.config.MonitorConfig`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> card = {"task": "regression", "class_labels": None, "metrics": {"mae": 0.1},
    ...         "features": [{"name": n, "kind": "numeric", "min": -9, "max": 9}
    ...                      for n in ("a", "b")]}
    >>> ref = pd.DataFrame(rng.standard_normal((1000, 2)), columns=["a", "b"])
    >>> ref["__prediction__"] = ref["a"] + ref["b"]
    >>> mon = ModelMonitor(card, ref)
    >>> stream = rng.standard_normal((600, 2)) + [0.0, 0.0]
    >>> stream[300:, 1] += 1.5        # feature b shifts by 1.5 sd at record 300
    >>> events = mon.update_many([(f"r{i}", {"a": a, "b": b}, a + b, float(i))
    ...                           for i, (a, b) in enumerate(stream)])
    >>> [(e.kind, e.feature, e.record_id) for e in events]
    [('feature_drift', 'b', 'r318'), ('prediction_drift', '__prediction__', 'r328'), \
('multivariate_drift', '__multivariate__', 'r357')]
    >>> restored = ModelMonitor.restore(mon.snapshot())
    >>> restored.status().records_seen
    600
    """

    def __init__(
        self, card: Mapping[str, Any], reference: pd.DataFrame, config: MonitorConfig | None = None
    ) -> None:
        config = config or MonitorConfig()
        self.card = dict(card)
        # a reference's copies are not draws: calibrate on what it really holds
        reference, self.reference_size = distinct_reference(
            reference, [f["name"] if isinstance(f, Mapping) else f.name
                        for f in card["features"]])
        n_eff = self.reference_size.effective_size
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.task = str(card.get("task", "classification"))
        self.specs = [f if isinstance(f, FeatureSpec) else FeatureSpec.from_mapping(f)
                      for f in card["features"]]
        numeric = [s for s in self.specs if s.kind == "numeric"]
        categorical = [s for s in self.specs if s.kind != "numeric"]
        self._num_specs = numeric
        has_pred = PREDICTION in reference.columns
        self._pred_numeric = self.task == "regression" and has_pred
        pred_categorical = self.task != "regression" and (
            has_pred or bool(card.get("class_labels")))
        num_names = [s.name for s in numeric] + ([PREDICTION] if self._pred_numeric else [])
        cat_names = [s.name for s in categorical] + ([PREDICTION] if pred_categorical else [])
        ref_num = np.column_stack(
            [pd.to_numeric(reference[n], errors="coerce").to_numpy(dtype=float)
             if n in reference.columns else np.full(len(reference), np.nan)
             for n in num_names]
        ) if num_names else np.empty((len(reference), 0))
        # the joint score covers the features with a scale that is not one spike (a feature
        # that is mostly one value makes the covariance near singular and the score wild)
        self._mv_cols = np.array([j for j in range(len(numeric))
                                  if _spread_out(ref_num[:, j])], dtype=int)
        complete = ref_num[:, self._mv_cols]
        complete = complete[np.isfinite(complete).all(axis=1)]
        use_mv = (config.multivariate and self._mv_cols.size >= 2
                  and complete.shape[0] > self._mv_cols.size + 10)

        # False-alarm budget: one share per feature (and per classifier prediction), smaller
        # shares for a regressor's prediction and the multivariate score (see MonitorConfig).
        weights = {n: 1.0 for n in num_names + cat_names}
        if self._pred_numeric:
            weights[PREDICTION] = config.prediction_weight
        if use_mv:
            weights[MULTIVARIATE] = config.multivariate_weight
        self.stream_rates = stream_rates(
            config.expected_run_time, weights, config.false_alarm_safety)
        # the rate of a full (weight 1) share, reported by status()
        self.rate = share_rate(config.expected_run_time, 1.0, sum(weights.values()),
                               config.false_alarm_safety)
        settings = config.detector_settings()
        # a numeric stream's mean charts hold chart_weights[0] of its share each
        self.tolerances = stream_tolerances(
            card.get("drift_tolerance"), config.tolerance, num_names + cat_names, n_eff,
            {n: self.stream_rates[n] * config.chart_weights[0] for n in num_names},
            config.cusum_k)

        def budget(name: str, categories: Sequence[Any] = (), scale: Scale | None = None
                   ) -> Budget:
            extra = {"effective_size": n_eff, "tolerance": self.tolerances.get(name),
                     **({"scale": scale} if scale is not None else {})}
            return Budget(self.stream_rates[name], rng, config.seed, {**settings, **extra},
                          categories)

        # --- numeric streams: standardised, one detector each ------------------------------
        self.numeric: list[_Stream] = []
        self.mu = np.zeros(len(num_names))
        self.sd = np.ones(len(num_names))
        self._num_refs: list[NumericReference] = []
        #: each numeric stream's standardisation (robust for a heavy-tailed reference)
        self.scales: list[Scale] = []
        for j, name in enumerate(num_names):
            x = ref_num[:, j]
            x = x[np.isfinite(x)]
            if x.size < 2:
                x = np.zeros(2)
            scale = numeric_scale(x)
            self.scales.append(scale)
            self.mu[j] = scale.center
            self.sd[j] = scale.spread
            self._num_refs.append(NumericReference(x))
            method = config.detector_for(name)
            det = detector_class("numeric", method).calibrate(x, budget(name, scale=scale))
            self.numeric.append(_Stream(name, "numeric", method, det, scale))

        # streams of one detector class are fed together (a class may vectorise across them);
        # the groups are kept, so whatever a class stacks is stacked once, not per update
        by_class: dict[type[StreamDetector], list[int]] = {}
        for j, stream in enumerate(self.numeric):
            by_class.setdefault(type(stream.detector), []).append(j)
        self._numeric_groups = [
            (cols, cls.group([self.numeric[j].detector for j in cols]))
            for cls, cols in by_class.items()]

        # --- the joint numeric features ------------------------------------------------------
        self.multivariate: _Stream | None = None
        if use_mv:
            method = config.multivariate_detector
            # live values reach the joint chart clipped at clip_z of their scale; a robust
            # scale clips a heavy-tailed feature's wild readings, so its reference is too
            for i, j in enumerate(self._mv_cols.tolist()):
                if self.scales[j].robust:
                    c = config.clip_z * self.sd[j]
                    complete[:, i] = np.clip(complete[:, i], self.mu[j] - c, self.mu[j] + c)
            det = detector_class("multivariate", method).calibrate(complete, budget(MULTIVARIATE))
            self.multivariate = _Stream(MULTIVARIATE, "multivariate", method, det)
            # reference distribution of the joint score, for window statistics and hysteresis
            self._mv_score = MahalanobisScore(complete)
            self._mv_ref = NumericReference(self._mv_score.reference_scores)

        # --- categorical streams -----------------------------------------------------------
        self.categorical: list[_Stream] = []
        self._cat_bool = [s.kind == "boolean" for s in categorical] + (
            [False] if pred_categorical else [])
        self._cat_specs: list[FeatureSpec | None] = [*categorical, None][: len(cat_names)]
        self._frequencies: list[CategoryFrequencies] = []
        for j, name in enumerate(cat_names):
            spec = self._cat_specs[j]
            known: list[Any]
            if spec is None:
                known = list(card.get("class_labels") or [])
            else:
                booleans: list[Any] = [False, True] if spec.kind == "boolean" else []
                known = list(spec.categories or booleans)
            ref_vals = (
                [normalize_category(v, self._cat_bool[j]) for v in reference[name].tolist()]
                if name in reference.columns else []
            )
            self._frequencies.append(CategoryFrequencies(ref_vals, known))
            method = config.categorical_detector
            det = detector_class("categorical", method).calibrate(ref_vals, budget(name, known))
            self.categorical.append(_Stream(name, "categorical", method, det))
        # data quality: the rules the gateway validates with (monitoring.quality)
        self._checks = Rules(self.specs)

        # --- performance -----------------------------------------------------------------
        err_scale = 1.0
        if self.task == "regression" and {PREDICTION, LABEL} <= set(reference.columns):
            p = pd.to_numeric(reference[PREDICTION], errors="coerce")
            y = pd.to_numeric(reference[LABEL], errors="coerce")
            err_scale = float(np.nanmean(np.abs(p - y))) or 1.0
        self.performance = PerformanceTracker(
            self.task, card.get("class_labels"), config.performance_window,
            card.get("metrics") or {}, config.performance_tolerance, config.concept_detector,
            err_scale)

        # --- state -----------------------------------------------------------------------
        self.streams = [*self.numeric, *([self.multivariate] if self.multivariate else []),
                        *self.categorical]
        self.drift = {s.name: DriftState() for s in self.streams}
        w = config.stats_window
        self._ring_num = np.full((w, len(num_names)), np.nan)
        self._ring_cat = np.full((w, len(cat_names)), -1, dtype=np.int64)
        self._ring_pos = 0
        self._ring_n = 0
        self.window_stats: dict[str, dict[str, float]] = {}
        self.quality: dict[str, dict[str, int]] = {
            s.name: dict.fromkeys(ISSUES, 0) for s in self.specs}
        self.seen = 0
        self._alarmed: set[str] = set()  # streams that fired during the last update_many
        self._last_id: str | None = None
        self._last_ts: float | None = None
        lo = [s.min if s.min is not None else -np.inf for s in numeric]
        hi = [s.max if s.max is not None else np.inf for s in numeric]
        self._lo = np.array(lo, dtype=float)
        self._hi = np.array(hi, dtype=float)

    @property
    def stream_names(self) -> list[str]:
        """Every monitored stream: numeric, joint, categorical."""
        return [s.name for s in self.streams]

    # ----------------------------------------------------------------------------------------
    # public API
    def update(
        self, record_id: str, features: Mapping[str, Any], prediction: Any, ts: float
    ) -> list[MonitorEvent]:
        """Process one prediction record; return the events it triggers."""
        return self.update_many([(record_id, features, prediction, ts)])

    def update_many(self, records: Sequence[Record]) -> list[MonitorEvent]:
        """Process records in order (vectorised); return their events in record order.

        Decisions are the same as calling :meth:`update` on each record in turn (the CUSUM
        sums are the same recursion, added in the same order).
        """
        return self.update_batch(RecordBatch.from_records(records))

    def update_batch(self, batch: RecordBatch) -> list[MonitorEvent]:
        """:meth:`update_many` for records held column by column (no object per record)."""
        out: list[MonitorEvent] = []
        i, n = 0, len(batch)
        every = self.config.stats_every
        self._alarmed = set()
        while i < n:
            room = every - (self.seen % every)
            seg = batch.slice(i, i + room)
            out.extend(self._process(seg))
            i += len(seg)
            if self.seen % every == 0:
                out.extend(self._window_check())
        return out

    def update_label(
        self, record_id: str, prediction: Any, label: Any, ts: float
    ) -> list[MonitorEvent]:
        """Process a ground-truth label for an earlier prediction; return concept drift and
        performance events."""
        out = []
        for kind, det, stat, thr, details in self.performance.update(prediction, label):
            out.append(MonitorEvent(kind, None, det, stat, thr, record_id, ts, details))
        return out

    def snapshot(self) -> bytes:
        """The monitor's complete state as bytes (see :func:`monitoring.state.dumps`)."""
        return _state.dumps(self)

    @classmethod
    def restore(cls, blob: bytes) -> ModelMonitor:
        """A monitor from :meth:`snapshot` bytes; it makes the same future decisions."""
        obj = _state.loads(blob)
        if not isinstance(obj, cls):
            raise TypeError("snapshot does not hold a ModelMonitor")
        return obj

    def status(self) -> MonitorStatus:
        """Current state: per stream score, threshold, drift state and window statistics;
        performance; data-quality counters; records and labels seen."""
        tolerances: dict[str, Tolerance] = getattr(self, "tolerances", {})
        size: ReferenceSize | None = getattr(self, "reference_size", None)
        window = self.current_window_stats()
        return MonitorStatus(
            records_seen=self.seen,
            labels_seen=self.performance.labels_seen,
            last_record_id=self._last_id,
            last_ts=self._last_ts,
            expected_run_time=self.config.expected_run_time,
            false_alarm_rate_per_stream=self.rate,
            streams={s.name: s.status(self.drift[s.name], window.get(s.name),
                                      s.name in self._alarmed, tolerances.get(s.name))
                     for s in self.streams},
            performance=self.performance.metrics(),
            degraded=self.performance.degraded,
            data_quality={k: dict(v) for k, v in self.quality.items()},
            reference=size.as_dict() if size else {},
        )

    # ----------------------------------------------------------------------------------------
    # internals
    def _numeric_matrix(self, batch: RecordBatch) -> np.ndarray:
        names = [s.name for s in self._num_specs]
        x = np.empty((len(batch), len(names)))
        for j, name in enumerate(names):
            x[:, j] = _float_column(batch.column(name))
        return x

    def _process(self, batch: RecordBatch) -> list[MonitorEvent]:
        n = len(batch)
        if n == 0:
            return []
        base = self.seen
        ids = batch.ids
        tss = batch.ts
        events: list[tuple[int, int, MonitorEvent]] = []

        def emit(row: int, ev: MonitorEvent) -> None:
            events.append((row, len(events), ev))

        def alarms(stream: _Stream, run: AlarmRun | None, kind: str,
                   effect: Callable[[Alarm], dict[str, Any]] | None = None) -> None:
            if run is None:
                return
            self._alarmed.add(stream.name)
            state = self.drift[stream.name]
            a = run.first
            if state.alarm(base + a.row):  # a new episode: an event
                details: dict[str, Any] = {"record_index": base + a.row}
                if effect is not None:  # what moved and by how much, with an interval
                    details["effect"] = effect(a)
                emit(a.row, MonitorEvent(
                    kind, stream.name, a.chart, float(a.statistic), float(a.threshold),
                    ids[a.row], tss[a.row], details))
            # the stream is active now: its later alarms are counted, raise no event
            state.alarms += run.alarms - 1
            state.last_alarm = base + run.last_row

        x = self._numeric_matrix(batch)
        # data quality (numeric, vectorised)
        if x.shape[1]:
            bad_nan = np.isnan(x)
            bad_inf = np.isinf(x)
            with np.errstate(invalid="ignore"):
                oor = ((x < self._lo) | (x > self._hi)) & ~bad_inf
            flagged = bad_nan | bad_inf | oor  # candidates; the rules decide
            if flagged.any():
                for i, j in zip(*np.nonzero(flagged), strict=True):
                    spec = self._num_specs[j]
                    found = self._checks[spec.name](batch.column(spec.name)[i])
                    if found is None:
                        continue
                    issue = found.issue
                    self.quality[spec.name][issue] += 1
                    if self.config.quality_events:
                        emit(int(i), MonitorEvent(
                            "data_quality", spec.name, "card", float(x[i, j]), math.nan,
                            ids[i], tss[i], {"issue": issue}))
        if self._pred_numeric:
            p = _float_column(batch.predictions)
            xs = np.column_stack([x, p])
        else:
            xs = x
        z = (xs - self.mu) / self.sd
        z[~np.isfinite(z)] = np.nan
        np.clip(z, -self.config.clip_z, self.config.clip_z, out=z)

        for cols, group in self._numeric_groups:
            for j, run in group.update_runs(z[:, cols] if len(cols) < z.shape[1] else z):
                stream = self.numeric[cols[j]]
                alarms(stream, run, _drift_kind(stream.name),
                       partial(self._numeric_effect, cols[j], z))
        if self.multivariate is not None:
            # clipped values: one wild value is a quality issue, not drift
            q = getattr(self, "_mv_cols", np.arange(len(self._num_specs)))
            xm = self.mu[q] + self.sd[q] * z[:, q]
            alarms(self.multivariate, AlarmRun.of(self.multivariate.detector.update_many(xm)),
                   "multivariate_drift")
        codes = np.full((n, len(self.categorical)), -1, dtype=np.int64)
        for j, stream in enumerate(self.categorical):
            name = stream.name
            is_bool = self._cat_bool[j]
            spec = self._cat_specs[j]
            check = None if spec is None else self._checks[name]
            code = self._frequencies[j].code
            values: list[Any] = []
            column = batch.predictions if spec is None else batch.column(name)
            for i in range(n):
                raw = column[i]
                missing = raw is None or (isinstance(raw, float) and raw != raw)
                v = None if missing else normalize_category(raw, is_bool)
                if check is not None and (found := check(raw)) is not None:
                    issue = found.issue
                    self.quality[name][issue] += 1
                    if self.config.quality_events:
                        emit(i, MonitorEvent("data_quality", name, "card", math.nan,
                                             math.nan, ids[i], tss[i],
                                             {"issue": issue, "value": _jsonable(raw)}))
                values.append(v)  # a missing value is not a category: the detector skips it
                if not missing:
                    codes[i, j] = code(v)
            alarms(stream, AlarmRun.of(stream.detector.update_many(values)), _drift_kind(name),
                   partial(self._categorical_effect, j, codes))
        # rings for window statistics
        self._ring_write(xs, codes)
        self.seen += n
        self._last_id = ids[-1]
        self._last_ts = tss[-1]
        events.sort(key=lambda t: (t[0], t[1]))
        return [e for _, _, e in events]

    def _recent(self, ring: np.ndarray, batch: np.ndarray, row: int) -> np.ndarray:
        """The last :data:`~monitoring.effect.RECENT` values of a stream up to ``row`` of the
        current batch (older ones from the ring of earlier batches)."""
        part = batch[max(0, row + 1 - RECENT) : row + 1]
        need = min(RECENT - part.shape[0], self._ring_n)
        if need <= 0:
            return part
        idx = (self._ring_pos - need + np.arange(need)) % ring.shape[0]
        return np.concatenate([ring[idx], part])

    def _numeric_effect(self, j: int, z: np.ndarray, alarm: Alarm) -> dict[str, Any]:
        row, spread = alarm.row, "var" in alarm.chart
        ring = (self._ring_num[:, j] - self.mu[j]) / self.sd[j]
        c = self.config.clip_z
        return numeric_effect(np.clip(self._recent(ring, z[:, j], row), -c, c), spread)

    def _categorical_effect(self, j: int, codes: np.ndarray, alarm: Alarm) -> dict[str, Any]:
        row = alarm.row
        probs = self._frequencies[j].probs
        recent = self._recent(self._ring_cat[:, j], codes[:, j], row)
        window = getattr(self.categorical[j].detector, "window", RECENT)
        return categorical_effect(recent[-window:], probs / probs.sum())

    def _ring_write(self, xs: np.ndarray, codes: np.ndarray) -> None:
        w = self._ring_num.shape[0]
        n = xs.shape[0]
        if n >= w:
            xs, codes, n = xs[-w:], codes[-w:], w
        idx = (self._ring_pos + np.arange(n)) % w
        self._ring_num[idx] = xs
        self._ring_cat[idx] = codes
        self._ring_pos = int((self._ring_pos + n) % w)
        self._ring_n = min(self._ring_n + n, w)

    def _window_check(self) -> list[MonitorEvent]:
        """Drift resolution (hysteresis): a drift-active stream quiet for ``resolve_after``
        records ends its episode once its window matches the reference again. Only such
        streams need their window statistics here; the others' are computed when read
        (:meth:`current_window_stats`)."""
        out: list[MonitorEvent] = []
        index: dict[str, tuple[str, int]] | None = None
        for name, st in self.drift.items():
            if not st.active or self.seen - 1 - st.last_alarm < self.config.resolve_after:
                continue
            index = index or self._stream_index()
            ws = self._stream_window_stats(*index[name])
            self.window_stats[name] = ws
            p = ws.get("ks_p", ws.get("chi2_p", 1.0))
            if st.try_resolve(self.seen - 1, p, self.config.resolve_after,
                              self.config.resolve_p):
                out.append(MonitorEvent(
                    "drift_resolved", name, "hysteresis", float(p), self.config.resolve_p,
                    self._last_id or "", self._last_ts or 0.0,
                    {"alarms": st.alarms, "active_since": st.active_since}))
        return out

    def current_window_stats(self) -> dict[str, dict[str, float]]:
        """Every stream's window statistics (KS, PSI, JS, Wasserstein; chi-square for
        categoricals) over its last ``stats_window`` values, recomputed at most once per
        ``stats_every`` records (none before the first ``stats_every`` records): reading
        them after every batch costs what one window check did."""
        due = self.seen // self.config.stats_every
        if due and due != getattr(self, "_stats_due", 0):
            index = self._stream_index()
            self.window_stats = {s.name: self._stream_window_stats(*index[s.name])
                                 for s in self.streams}
            self._stats_due = due
        return self.window_stats

    def _stream_index(self) -> dict[str, tuple[str, int]]:
        """Stream name -> (kind, index in its kind's arrays)."""
        return {**{s.name: ("numeric", j) for j, s in enumerate(self.numeric)},
                **{s.name: ("categorical", j) for j, s in enumerate(self.categorical)},
                **({MULTIVARIATE: ("multivariate", 0)} if self.multivariate else {})}

    def _stream_window_stats(self, kind: str, j: int) -> dict[str, float]:
        m = self._ring_n
        if kind == "numeric":
            return self._num_refs[j].compare(self._ring_num[:m, j])
        if kind == "categorical":
            c = self._ring_cat[:m, j]
            return categorical_window_stats(self._frequencies[j].probs, c[c >= 0])
        q = getattr(self, "_mv_cols", np.arange(self._mv_score.p))
        return self._mv_ref.compare(self._mv_score.transform(self._ring_num[:m, q]))


def stream_tolerances(
    spec: Mapping[str, Any] | None, default: Tolerance, names: Sequence[str], n_eff: int,
    rates: Mapping[str, float] | None = None, k: float = 0.25,
) -> dict[str, Tolerance]:
    """Each stream's tolerance: the card's ``drift_tolerance`` (``{"default": {...},
    "features": {name: {...}}}``, any of ``mean_shift``, ``spread_ratio``, ``psi``) over the
    configuration's default, widened for a reference of ``n_eff`` distinct rows
    (:meth:`~monitoring.reference.Tolerance.widened`); a stream with a mean chart's false-alarm
    rate in ``rates`` also gets its :func:`~monitoring.reference.reference_margin`.

    Examples
    --------
    >>> t = stream_tolerances({"features": {"a": {"mean_shift": 0.2}}}, Tolerance(), ["a", "b"],
    ...                       2000)
    >>> t["a"].mean_shift, t["b"].mean_shift
    (0.2, 0.03)
    >>> stream_tolerances(None, Tolerance(), ["a"], 178, {"a": 1e-7})["a"].mean_shift
    0.38
    """
    spec = spec or {}
    base = Tolerance.from_mapping(spec.get("default"), default)
    per = spec.get("features") or {}
    margins: dict[tuple[float, float], float] = {}
    out = {}
    for n in names:
        tol = Tolerance.from_mapping(per.get(n), base)
        margin = 0.0
        if rates and n in rates:
            key = (float(rates[n]), tol.mean_shift)
            if key not in margins:
                margins[key] = reference_margin(n_eff, key[0], k, key[1])
            margin = margins[key]
        out[n] = tol.widened(n_eff, margin)
    return out


def _spread_out(x: np.ndarray) -> bool:
    """A reference column with a scale whose most common value holds under half the rows."""
    x = x[np.isfinite(x)]
    if x.size < 2 or not x.std() > 0:
        return False
    _, counts = np.unique(x, return_counts=True)
    return bool(counts.max() < 0.5 * x.size)


def _drift_kind(name: str) -> str:
    return "prediction_drift" if name == PREDICTION else "feature_drift"


@dataclass
class _Stream:
    """A monitored stream and its detector."""

    name: str
    kind: str
    method: str
    detector: StreamDetector
    scale: Scale | None = None

    def status(self, drift: DriftState, window: dict[str, float] | None,
               alarmed: bool, tolerance: Tolerance | None = None) -> StreamStatus:
        det = self.detector
        details = det.details()
        if tolerance is not None:
            details = {**details, "tolerance": tolerance.as_dict()}
        scale = getattr(self, "scale", None)  # streams pickled before scales: none
        if scale is not None:
            details = {**details, "scale": scale.as_dict()}
        return StreamStatus(self.name, self.kind, self.method, float(det.score),
                            float(det.statistic), float(det.threshold), replace(drift),
                            window, details, alarmed)


def _jsonable(v: Any) -> Any:
    return json_value(v) if isinstance(v, str | int | float | bool) or v is None else repr(v)
