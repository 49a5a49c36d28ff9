"""The per-model monitor: records in, events out."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from monitoring import state as _state
from monitoring.calibration import (
    calibrate_cusum,
    quadrature_standardizers,
    share_rate,
    stream_rates,
)
from monitoring.categorical import CategoricalWindowTest, normalize_category
from monitoring.config import MonitorConfig
from monitoring.detectors import CusumBank, RiverDetector
from monitoring.events import MonitorEvent
from monitoring.multivariate import MahalanobisScore
from monitoring.performance import PerformanceTracker
from monitoring.quality import ISSUES, FeatureSpec, check_value
from monitoring.state import DriftState
from monitoring.window_stats import NumericReference, categorical_window_stats

__all__ = ["ModelMonitor", "PREDICTION", "MULTIVARIATE"]

PREDICTION = "__prediction__"
MULTIVARIATE = "__multivariate__"
CHARTS = ("cusum_mean_up", "cusum_mean_down", "cusum_var_up", "cusum_var_down")

Record = tuple[str, Mapping[str, Any], Any, float]


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
    [('feature_drift', 'b', 'r318'), ('multivariate_drift', '__multivariate__', 'r318'), \
('prediction_drift', '__prediction__', 'r326')]
    >>> restored = ModelMonitor.restore(mon.snapshot())
    >>> restored.status()["records_seen"]
    600
    """

    def __init__(
        self, card: Mapping[str, Any], reference: pd.DataFrame, config: MonitorConfig | None = None
    ) -> None:
        config = config or MonitorConfig()
        self.card = dict(card)
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.task = str(card.get("task", "classification"))
        self.specs = [FeatureSpec(f) for f in card["features"]]
        numeric = [s for s in self.specs if s.kind == "numeric"]
        categorical = [s for s in self.specs if s.kind != "numeric"]
        self._num_specs = numeric
        self._cat_specs = categorical
        has_pred = PREDICTION in reference.columns
        pred_numeric = self.task == "regression" and has_pred
        pred_categorical = self.task != "regression" and (
            has_pred or bool(card.get("class_labels"))
        )
        self._pred_numeric = pred_numeric
        self._pred_categorical = pred_categorical

        # --- numeric streams -------------------------------------------------------------
        self.num_names = [s.name for s in numeric] + ([PREDICTION] if pred_numeric else [])
        ref_num = np.column_stack(
            [pd.to_numeric(reference[n], errors="coerce").to_numpy(dtype=float)
             if n in reference.columns else np.full(len(reference), np.nan)
             for n in self.num_names]
        ) if self.num_names else np.empty((len(reference), 0))
        use_mv = config.multivariate and len(numeric) >= 2
        complete = ref_num[:, : len(numeric)]
        complete = complete[np.isfinite(complete).all(axis=1)] if use_mv else complete
        use_mv = use_mv and complete.shape[0] > len(numeric) + 10
        n_streams = len(self.num_names) + len(categorical) + int(pred_categorical) + int(use_mv)
        # False-alarm budget: one share per feature (and per classifier prediction), smaller
        # shares for a regressor's prediction and the multivariate score (see MonitorConfig).
        weights = {n: 1.0 for n in self.num_names + [s.name for s in categorical]}
        if pred_numeric:
            weights[PREDICTION] = config.prediction_weight
        if pred_categorical:
            weights[PREDICTION] = 1.0
        if use_mv:
            weights[MULTIVARIATE] = config.multivariate_weight
        self.stream_rates = stream_rates(
            config.expected_run_time, weights, config.false_alarm_safety)
        # the rate of a full (weight 1) share, reported by status()
        self.rate = share_rate(config.expected_run_time, 1.0, sum(weights.values()),
                               config.false_alarm_safety)
        self.n_streams = n_streams

        self.mu = np.zeros(len(self.num_names))
        self.sd = np.ones(len(self.num_names))
        self.methods = [config.detector_for(n) for n in self.num_names]
        self._cusum_idx = [j for j, m in enumerate(self.methods) if m == "cusum"]
        self._river_idx = [j for j, m in enumerate(self.methods) if m != "cusum"]
        thresholds: list[float] = []
        groups: list[int] = []
        self._river: dict[int, RiverDetector] = {}
        self._num_refs: list[NumericReference] = []
        kv = (config.cusum_k, config.cusum_k, config.variance_k, config.variance_down_k)
        self._var_clip2 = float(min(config.variance_clip_z, config.clip_z)) ** 2
        for j in range(len(self.num_names)):
            x = ref_num[:, j]
            x = x[np.isfinite(x)]
            if x.size < 2:
                x = np.zeros(2)
            self.mu[j] = x.mean()
            sd = x.std(ddof=1)
            self.sd[j] = sd if sd > 0 else 1.0
            self._num_refs.append(NumericReference(x))
            rate_j = self.stream_rates[self.num_names[j]]
            if self.methods[j] == "cusum" or self.methods[j] == "page_hinkley":
                m, s, w = quadrature_standardizers(x)
                z = np.clip((x[None, :] - m[:, None]) / s[:, None], -config.clip_z, config.clip_z)
                z2 = np.minimum(z * z, self._var_clip2)
                incs = (z - kv[0], -z - kv[1], z2 - 1 - kv[2], 1 - z2 - kv[3])
                hs = []
                n_charts = 4 if self.methods[j] == "cusum" else 2
                for c in range(n_charts):
                    if c >= 2 and not sd > 0:
                        hs.append(math.inf)
                        continue
                    hs.append(calibrate_cusum(
                        incs[c], config.chart_weights[c] * rate_j
                        if self.methods[j] == "cusum" else 0.5 * rate_j, rng,
                        config.calibration_streams, config.calibration_steps, weights=w))
                if self.methods[j] == "cusum":
                    thresholds.extend(hs)
                    groups.extend([j] * 4)
                else:
                    self._river[j] = RiverDetector(
                        "page_hinkley", rate_j, cusum_threshold=max(hs),
                        delta=config.cusum_k, seed=config.seed)
            else:
                self._river[j] = RiverDetector(
                    self.methods[j], rate_j, seed=config.seed,
                    reference=(x - self.mu[j]) / self.sd[j])
        self._cusum_k = kv
        self.mv: MahalanobisScore | None = None
        if use_mv:
            self.mv = MahalanobisScore(complete)
            # reference distribution of the score, for window statistics and hysteresis
            self._mv_ref = NumericReference(self.mv.transform(complete))
            inc = self.mv.bootstrap_increments(
                complete, config.multivariate_k, config.calibration_draws, rng)
            thresholds.append(calibrate_cusum(
                inc, self.stream_rates[MULTIVARIATE], rng, config.calibration_streams,
                config.calibration_steps))
            groups.append(len(self.num_names))
        self.bank = CusumBank(np.array(thresholds, dtype=float), np.array(groups, dtype=int))

        # --- categorical streams ---------------------------------------------------------
        self.cat_names = [s.name for s in categorical] + ([PREDICTION] if pred_categorical else [])
        self._cat_bool = [s.kind == "boolean" for s in categorical] + (
            [False] if pred_categorical else [])
        self.cat_tests: list[CategoricalWindowTest] = []
        for j, name in enumerate(self.cat_names):
            if name == PREDICTION:
                known = list(card.get("class_labels") or [])
            else:
                spec = categorical[j]
                known = list(spec.categories or ([False, True] if spec.kind == "boolean" else []))
            ref_vals = (
                [normalize_category(v, self._cat_bool[j]) for v in reference[name].tolist()]
                if name in reference.columns else []
            )
            self.cat_tests.append(CategoricalWindowTest(
                ref_vals, known, config.category_window, self.stream_rates[name], rng))
        self._known = {
            s.name: set(self.cat_tests[j].categories) for j, s in enumerate(categorical)
        }

        # --- performance -----------------------------------------------------------------
        err_scale = 1.0
        if self.task == "regression" and {PREDICTION, "__label__"} <= set(reference.columns):
            p = pd.to_numeric(reference[PREDICTION], errors="coerce")
            y = pd.to_numeric(reference["__label__"], errors="coerce")
            err_scale = float(np.nanmean(np.abs(p - y))) or 1.0
        self.performance = PerformanceTracker(
            self.task, card.get("class_labels"), config.performance_window,
            card.get("metrics") or {}, config.performance_tolerance, config.concept_detector,
            err_scale)

        # --- state -----------------------------------------------------------------------
        self.stream_names = (
            [n for n in self.num_names] + self.cat_names + ([MULTIVARIATE] if self.mv else []))
        self.drift = {n: DriftState() for n in self.stream_names}
        w = config.stats_window
        self._ring_num = np.full((w, len(self.num_names)), np.nan)
        self._ring_cat = np.full((w, len(self.cat_names)), -1, dtype=np.int64)
        self._ring_pos = 0
        self._ring_n = 0
        self.window_stats: dict[str, dict[str, float]] = {}
        self.quality: dict[str, dict[str, int]] = {
            s.name: dict.fromkeys(ISSUES, 0) for s in self.specs}
        self.seen = 0
        self._last_score: dict[str, float] = {}
        self._last_id: str | None = None
        self._last_ts: float | None = None
        lo = [s.min if s.min is not None else -np.inf for s in numeric]
        hi = [s.max if s.max is not None else np.inf for s in numeric]
        self._lo = np.array(lo, dtype=float)
        self._hi = np.array(hi, dtype=float)
        self._nullable = np.array([s.nullable for s in numeric], dtype=bool)
        names = [s.name for s in numeric]
        self._getter = operator.itemgetter(*names) if len(names) > 1 else None

    # ----------------------------------------------------------------------------------------
    # public API
    def update(
        self, record_id: str, features: Mapping[str, Any], prediction: Any, ts: float
    ) -> list[MonitorEvent]:
        """Process one prediction record; return the events it triggers."""
        return self.update_many([(record_id, features, prediction, ts)])

    def update_many(self, records: Sequence[Record]) -> list[MonitorEvent]:
        """Process records in order (vectorised); return their events in record order.

        Decisions are the same as calling :meth:`update` on each record in turn (up to
        floating-point rounding of the CUSUM sums, far below any threshold's resolution).
        """
        out: list[MonitorEvent] = []
        i, n = 0, len(records)
        every = self.config.stats_every
        while i < n:
            room = every - (self.seen % every)
            seg = records[i : i + room]
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

    def status(self) -> dict[str, Any]:
        """JSON-able current state: per stream scores, thresholds, drift state, window stats;
        performance; data-quality counters; records and labels seen."""
        s = self.bank.statistics
        h = self.bank.thresholds
        streams: dict[str, Any] = {}
        pos = 0
        cusum_pos = {j: 4 * k for k, j in enumerate(self._cusum_idx)}
        for j, name in enumerate(self.num_names):
            entry: dict[str, Any] = {"kind": "numeric", "method": self.methods[j]}
            if j in cusum_pos:
                pos = cusum_pos[j]
                ratios = s[pos : pos + 4] / h[pos : pos + 4]
                entry["score"] = float(np.max(ratios))
                entry["threshold"] = 1.0
                entry["charts"] = {
                    CHARTS[c]: {"statistic": float(s[pos + c]), "threshold": _num(h[pos + c])}
                    for c in range(4)}
            else:
                det = self._river[j]
                entry["score"] = det.score
                entry["threshold"] = det.threshold
            self._stream_common(name, entry)
            streams[name] = entry
        for j, name in enumerate(self.cat_names):
            t = self.cat_tests[j]
            entry = {"kind": "categorical", "method": "gtest", "score": float(t.statistic),
                     "threshold": float(t.threshold)}
            self._stream_common(name, entry)
            streams[name] = entry
        multivariate = None
        if self.mv is not None:
            multivariate = {"kind": "multivariate", "method": "mahalanobis_cusum",
                            "score": float(s[-1]), "threshold": float(h[-1])}
            self._stream_common(MULTIVARIATE, multivariate)
        features = {k: v for k, v in streams.items() if k != PREDICTION}
        return {
            "records_seen": self.seen,
            "labels_seen": self.performance.labels_seen,
            "last_record_id": self._last_id,
            "last_ts": self._last_ts,
            "expected_run_time": self.config.expected_run_time,
            "false_alarm_rate_per_stream": self.rate,
            "features": features,
            "prediction": streams.get(PREDICTION),
            "multivariate": multivariate,
            "performance": {**self.performance.metrics(),
                            "degraded": self.performance.degraded},
            "data_quality": {k: dict(v) for k, v in self.quality.items()},
            "drift_active": sorted(n for n, d in self.drift.items() if d.active),
        }

    # ----------------------------------------------------------------------------------------
    # internals
    def _stream_common(self, name: str, entry: dict[str, Any]) -> None:
        entry.update(self.drift[name].to_dict())
        entry["window"] = self.window_stats.get(name)

    def _numeric_matrix(self, feats: list[Mapping[str, Any]]) -> np.ndarray:
        names = [s.name for s in self._num_specs]
        if not names:
            return np.empty((len(feats), 0))
        try:
            if self._getter is not None:
                rows = [self._getter(f) for f in feats]
            else:
                rows = [(f[names[0]],) for f in feats]
            return np.array(rows, dtype=float)
        except (KeyError, TypeError, ValueError):
            return np.array([[_to_float(f.get(n)) for n in names] for f in feats], dtype=float)

    def _process(self, recs: Sequence[Record]) -> list[MonitorEvent]:
        n = len(recs)
        if n == 0:
            return []
        base = self.seen
        ids = [r[0] for r in recs]
        tss = [float(r[3]) for r in recs]
        feats = [r[1] for r in recs]
        events: list[tuple[int, int, MonitorEvent]] = []
        order = 0

        def emit(row: int, ev: MonitorEvent) -> None:
            nonlocal order
            events.append((row, order, ev))
            order += 1

        x = self._numeric_matrix(feats)
        # data quality (numeric, vectorised)
        if x.shape[1]:
            bad_nan = np.isnan(x)
            bad_inf = np.isinf(x)
            with np.errstate(invalid="ignore"):
                oor = ((x < self._lo) | (x > self._hi)) & ~bad_inf
            flagged = (bad_nan & ~self._nullable) | bad_inf | oor
            if flagged.any():
                for i, j in zip(*np.nonzero(flagged), strict=True):
                    spec = self._num_specs[j]
                    issue = check_value(spec, feats[i].get(spec.name))
                    if issue is None:
                        continue
                    self.quality[spec.name][issue] += 1
                    if self.config.quality_events:
                        emit(int(i), MonitorEvent(
                            "data_quality", spec.name, "card", float(x[i, j]), math.nan,
                            ids[i], tss[i], {"issue": issue}))
        if self._pred_numeric:
            p = np.array([_to_float(r[2]) for r in recs])
            xs = np.column_stack([x, p])
        else:
            xs = x
        z = (xs - self.mu) / self.sd
        z[~np.isfinite(z)] = np.nan
        np.clip(z, -self.config.clip_z, self.config.clip_z, out=z)

        # CUSUM bank (numeric cusum streams + multivariate)
        cols = []
        if self._cusum_idx:
            zc = z[:, self._cusum_idx]
            z2 = np.minimum(zc * zc, getattr(self, "_var_clip2", self.config.clip_z**2))
            k = self._cusum_k
            y = np.empty((n, len(self._cusum_idx), 4))
            y[:, :, 0] = zc - k[0]
            y[:, :, 1] = -zc - k[1]
            y[:, :, 2] = z2 - 1.0 - k[2]
            y[:, :, 3] = 1.0 - z2 - k[3]
            cols.append(y.reshape(n, -1))
        if self.mv is not None:
            q = self.mv.p  # clipped values: one wild value is a quality issue, not drift
            xm = self.mu[:q] + self.sd[:q] * z[:, :q]
            u = self.mv.transform(xm) - self.config.multivariate_k
            cols.append(u[:, None])
        if cols:
            for a in self.bank.update_many(np.concatenate(cols, axis=1) if len(cols) > 1
                                           else cols[0]):
                if self.mv is not None and a.chart == self.bank.thresholds.size - 1:
                    name, kind, det = MULTIVARIATE, "multivariate_drift", "mahalanobis_cusum"
                else:
                    j = self._cusum_idx[a.chart // 4]
                    name = self.num_names[j]
                    kind = "prediction_drift" if name == PREDICTION else "feature_drift"
                    det = CHARTS[a.chart % 4]
                self._alarm(emit, a.row, base, name, kind, det, a.statistic, a.threshold,
                            ids, tss)
        # river numeric streams
        for j in self._river_idx:
            det_r = self._river[j]
            name = self.num_names[j]
            kind = "prediction_drift" if name == PREDICTION else "feature_drift"
            col = z[:, j].tolist()
            for i in range(n):
                if det_r.update(col[i]):
                    self._alarm(emit, i, base, name, kind, det_r.method, det_r.score,
                                det_r.threshold, ids, tss)
        # categorical streams
        codes = np.full((n, len(self.cat_names)), -1, dtype=np.int64)
        for j, name in enumerate(self.cat_names):
            test = self.cat_tests[j]
            is_bool = self._cat_bool[j]
            spec = self._cat_specs[j] if name != PREDICTION else None
            known = self._known.get(name)
            for i in range(n):
                raw = recs[i][2] if spec is None else feats[i].get(name)
                missing = raw is None or (isinstance(raw, float) and raw != raw)
                v = None if missing else normalize_category(raw, is_bool)
                if spec is not None:
                    issue = check_value(spec, raw if missing else v, known)
                    if issue is not None:
                        self.quality[name][issue] += 1
                        if self.config.quality_events:
                            emit(i, MonitorEvent("data_quality", name, "card", math.nan,
                                                 math.nan, ids[i], tss[i],
                                                 {"issue": issue, "value": _jsonable(raw)}))
                if missing:  # counted above (unless nullable); not a category
                    continue
                codes[i, j] = test.code(v)
                if test.update(v):
                    kind = "prediction_drift" if name == PREDICTION else "feature_drift"
                    self._alarm(emit, i, base, name, kind, "gtest", test._last_alarm_stat,
                                test.threshold, ids, tss)
        # rings for window statistics
        self._ring_write(xs, codes)
        self.seen += n
        self._last_id = ids[-1]
        self._last_ts = tss[-1]
        events.sort(key=lambda t: (t[0], t[1]))
        return [e for _, _, e in events]

    def _alarm(self, emit: Any, row: int, base: int, name: str, kind: str, det: str,
               stat: float, thr: float, ids: list[str], tss: list[float]) -> None:
        if self.drift[name].alarm(base + row):
            emit(row, MonitorEvent(kind, name, det, float(stat), float(thr), ids[row], tss[row],
                                   {"record_index": base + row}))

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
        """Window statistics for every stream, then drift resolution (hysteresis)."""
        m = self._ring_n
        out: list[MonitorEvent] = []
        for j, name in enumerate(self.num_names):
            self.window_stats[name] = self._num_refs[j].compare(self._ring_num[:m, j])
        mv_ref = getattr(self, "_mv_ref", None)
        if self.mv is not None and mv_ref is not None:
            rows = self._ring_num[:m, : self.mv.p]
            self.window_stats[MULTIVARIATE] = mv_ref.compare(self.mv.transform(rows))
        for j, name in enumerate(self.cat_names):
            c = self._ring_cat[:m, j]
            self.window_stats[name] = categorical_window_stats(
                self.cat_tests[j].probs, c[c >= 0])
        for name, st in self.drift.items():
            ws = self.window_stats.get(name, {})
            p = ws.get("ks_p", ws.get("chi2_p", 1.0))
            if st.try_resolve(self.seen - 1, p, self.config.resolve_after,
                              self.config.resolve_p):
                out.append(MonitorEvent(
                    "drift_resolved", name, "hysteresis", float(p), self.config.resolve_p,
                    self._last_id or "", self._last_ts or 0.0,
                    {"alarms": st.alarms, "active_since": st.active_since}))
        return out


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _jsonable(v: Any) -> Any:
    return v if isinstance(v, str | int | float | bool) or v is None else repr(v)
