"""Attribution drift: does the model still lean on the features it leaned on?

Per model version, the attributions of sampled live records (one row of per-feature
contributions each, computed outside this module) are kept over a sliding window; their
global importance (mean |attribution| per feature) is ranked and compared with the
ranking of one or more baselines (the version's own reference attributions, and the
previous version's) by nDCG, the baseline importances being the relevances (as SageMaker
Clarify does). nDCG is 1 when the live ranking puts the features in the baseline's order and
falls most when the features the baseline weighs most drop down the ranking.

Calibration, instead of Clarify's fixed 0.9: windows of the live size are drawn (with
replacement) from the baseline rows themselves, their nDCG against the full baseline is
the "no change" distribution, and the threshold is its quantile at the per-check false-alarm
probability ``check_every / expected_run_time``, reached by extrapolating the upper 5% tail of
``1 - nDCG`` as exponential (peaks over threshold: a few thousand draws cannot reach a 1e-4
quantile directly); each draw's mean is shifted by the baseline mean's own sampling error
(live windows differ from the baseline by both), and the gap to 1 is widened by ``safety``
(2: the tail is heavier than exponential where features have nearly equal weights; with it,
seeded stationary streams of 100,000 sampled records on 4, 10 and 30 features gave no false
alarm, with 1.5 one of 21 gave two), capped at ``1 - min_gap``. An alarm needs
``alarm_after`` consecutive checks below the threshold; hysteresis as the other detectors
(:class:`~monitoring.state.DriftState`): active until no alarm for ``resolve_after`` sampled
records and the window's nDCG is back above the threshold.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> weights = np.array([3.0, 2.0, 1.0, 0.5])
>>> baseline = rng.standard_normal((500, 4)) * weights
>>> mon = AttributionMonitor(["a", "b", "c", "d"], {"baseline": baseline}, window=100)
>>> round(mon.thresholds["baseline"], 3) < 1.0
True
>>> live = rng.standard_normal((400, 4)) * weights
>>> live[200:, 0] *= 0.05                       # feature a stops mattering at record 200
>>> events = mon.update_many([f"r{i}" for i in range(400)], live, np.arange(400.0))
>>> [(e.kind, e.detector, e.details["moved"][0]["feature"]) for e in events]
[('attribution_drift', 'ndcg', 'a')]
>>> mon.importance()["a"] < 0.2 < mon.importance()["b"]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitoring.events import MonitorEvent
from monitoring.state import DriftState

__all__ = ["AttributionMonitor", "ATTRIBUTION", "calibrate_ndcg", "global_importance", "ndcg"]

ATTRIBUTION = "__attribution__"
"""The stream name of attribution drift (the ``feature`` of its resolution events)."""


def global_importance(attributions: np.ndarray) -> np.ndarray:
    """Mean absolute attribution per feature (columns), ignoring missing rows.

    >>> global_importance(np.array([[1.0, -2.0], [-3.0, 0.0]])).tolist()
    [2.0, 1.0]
    """
    a = np.abs(np.asarray(attributions, dtype=float))
    if a.size == 0:
        return np.zeros(a.shape[1] if a.ndim == 2 else 0)
    return np.nanmean(a, axis=0)


def ndcg(live: np.ndarray, baseline: np.ndarray) -> float:
    """nDCG of the ranking by ``live`` importance, the ``baseline`` importances being the
    relevances: 1 for the baseline's own order.

    >>> ndcg(np.array([3.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0]))
    1.0
    >>> round(ndcg(np.array([0.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0])), 3)
    0.868
    """
    rel = np.asarray(baseline, dtype=float)
    discount = 1.0 / np.log2(np.arange(2, rel.size + 2))
    ideal = float((np.sort(rel)[::-1] * discount).sum())
    if ideal <= 0:
        return 1.0
    order = np.argsort(-np.asarray(live, dtype=float), kind="stable")
    return float((rel[order] * discount).sum() / ideal)


def calibrate_ndcg(
    baseline: np.ndarray, window: int, alpha: float, rng: np.random.Generator,
    draws: int = 2000, min_gap: float = 0.005, safety: float = 2.0,
) -> float:
    """The nDCG threshold below which a window of ``window`` rows is unusual at probability
    ``alpha`` when its rows come from ``baseline`` (see the module docstring).

    >>> rows = np.random.default_rng(1).standard_normal((300, 3)) * [3.0, 2.0, 1.0]
    >>> t = calibrate_ndcg(rows, 100, 1e-4, np.random.default_rng(0))
    >>> round(t, 3)
    0.747
    """
    rows = np.abs(np.asarray(baseline, dtype=float))
    rows = rows[np.isfinite(rows).all(axis=1)]
    if rows.shape[0] < 2:
        return 1.0 - min_gap
    reference = rows.mean(axis=0)
    picks = rng.integers(0, rows.shape[0], size=(draws, window))
    # the baseline mean is itself an estimate: add its sampling error to each window's mean
    error = rows.std(axis=0, ddof=1) / math.sqrt(rows.shape[0])
    shifts = rng.standard_normal((draws, rows.shape[1])) * error
    sims = np.array([ndcg(rows[p].mean(axis=0) + e, reference)
                     for p, e in zip(picks, shifts, strict=True)])
    gaps = 1.0 - sims
    # exponential tail above the 95th percentile (peaks over threshold), extrapolated to alpha
    tail = 0.05
    u = float(np.quantile(gaps, 1.0 - tail))
    excess = gaps[gaps > u] - u
    share = excess.size / draws  # the tail's probability (below 5% when most gaps are 0)
    scale = float(excess.mean()) if excess.size else 0.0
    gap = safety * (u + scale * math.log(share / alpha) if alpha < share else u)
    return float(max(0.0, min(1.0 - min_gap, 1.0 - gap)))


class AttributionMonitor:
    """Sliding-window global importance of one model version, compared with baselines.

    Parameters
    ----------
    features
        Feature names, in the column order of every attribution row.
    baselines
        Name -> per-row attributions (rows x features) of a baseline: ``"baseline"`` (the
        version's reference) and, for instance, ``"previous"`` (the previous version's).
    window
        Sampled records the live importance is computed over.
    check_every
        Sampled records between two nDCG checks (once the window is full).
    alarm_after
        Consecutive checks below the threshold that make an alarm.
    expected_run_time
        Sampled records between false alarms the thresholds are calibrated for.
    resolve_after
        Sampled records without an alarm before an episode can end.
    """

    def __init__(
        self, features: Sequence[str], baselines: Mapping[str, np.ndarray], *,
        window: int = 200, check_every: int = 25, alarm_after: int = 2,
        expected_run_time: float = 1_000_000.0, resolve_after: int = 1000,
        details: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
    ) -> None:
        self.features = list(features)
        self.window = window
        self.check_every = check_every
        self.alarm_after = alarm_after
        self.expected_run_time = expected_run_time
        self.resolve_after = resolve_after
        self.details = {k: dict(v) for k, v in (details or {}).items()}
        rng = np.random.default_rng(seed)
        alpha = min(0.5, check_every / expected_run_time)
        self.baseline_importance = {name: global_importance(rows)
                                    for name, rows in baselines.items()}
        self.thresholds = {name: calibrate_ndcg(rows, window, alpha, rng)
                           for name, rows in baselines.items()}
        self.drift = {name: DriftState() for name in baselines}
        self._reset()

    def _reset(self) -> None:
        p = len(self.features)
        self._ring = np.zeros((self.window, p))
        self._sum = np.zeros(p)
        self._pos = 0
        self._n = 0
        self.seen = 0
        self._below = dict.fromkeys(self.drift, 0)
        self.scores: dict[str, float] = {}

    # -- reading -----------------------------------------------------------------------
    def importance(self) -> dict[str, float]:
        """Live global importance (mean |attribution|) per feature over the window."""
        values = self._sum / self._n if self._n else np.full(len(self.features), math.nan)
        return {f: float(v) for f, v in zip(self.features, values, strict=True)}

    def status(self) -> dict[str, Any]:
        """JSON-able state: window, live importance, per baseline its nDCG, threshold and
        drift state."""
        return {
            "sampled": self.seen, "window": self._n, "importance": self.importance(),
            "baselines": {
                name: {"ndcg": self.scores.get(name), "threshold": self.thresholds[name],
                       "importance": _named(self.features, self.baseline_importance[name]),
                       **self.drift[name].to_dict(), **self.details.get(name, {})}
                for name in self.drift},
        }

    def moved(self, name: str, top: int = 3) -> list[dict[str, Any]]:
        """The features whose share of the importance moved most against baseline ``name``:
        baseline and live share, rank in each."""
        live = self._sum / max(self._n, 1)
        base = self.baseline_importance[name]
        live_share = live / live.sum() if live.sum() > 0 else live
        base_share = base / base.sum() if base.sum() > 0 else base
        live_rank = _ranks(live)
        base_rank = _ranks(base)
        order = np.argsort(-np.abs(live_share - base_share), kind="stable")[:top]
        return [{"feature": self.features[j], "baseline_share": float(base_share[j]),
                 "live_share": float(live_share[j]), "baseline_rank": int(base_rank[j]),
                 "live_rank": int(live_rank[j])} for j in order]

    # -- updating ----------------------------------------------------------------------
    def update_many(
        self, ids: Sequence[str], attributions: np.ndarray, ts: Sequence[float]
    ) -> list[MonitorEvent]:
        """Add sampled records' attributions (rows x features, in record order); return
        the attribution-drift events (and resolutions) they trigger."""
        rows = np.abs(np.asarray(attributions, dtype=float))
        out: list[MonitorEvent] = []
        for i in range(rows.shape[0]):
            row = rows[i]
            if not np.isfinite(row).all():
                continue
            if self._n == self.window:
                self._sum -= self._ring[self._pos]
            else:
                self._n += 1
            self._ring[self._pos] = row
            self._sum += row
            self._pos = (self._pos + 1) % self.window
            self.seen += 1
            if self._n == self.window and self.seen % self.check_every == 0:
                out.extend(self._check(ids[i], float(ts[i])))
        return out

    def _check(self, record_id: str, ts: float) -> list[MonitorEvent]:
        out = []
        live = self._sum / self._n
        for name, state in self.drift.items():
            score = ndcg(live, self.baseline_importance[name])
            self.scores[name] = score
            threshold = self.thresholds[name]
            self._below[name] = self._below[name] + 1 if score < threshold else 0
            details: dict[str, Any] = {"baseline": name, "sampled_index": self.seen - 1,
                                       **self.details.get(name, {})}
            if self._below[name] >= self.alarm_after:
                if state.alarm(self.seen - 1):
                    out.append(MonitorEvent(
                        "attribution_drift", None, _detector(name), score, threshold,
                        record_id, ts, {**details, "moved": self.moved(name),
                                        "importance": self.importance()}))
            elif state.try_resolve(self.seen - 1, score, self.resolve_after, threshold):
                out.append(MonitorEvent(
                    "drift_resolved", ATTRIBUTION, _detector(name), score, threshold,
                    record_id, ts, {**details, "alarms": state.alarms,
                                    "active_since": state.active_since}))
        return out


def _detector(name: str) -> str:
    return "ndcg" if name == "baseline" else f"ndcg_vs_{name}"


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 for the largest value."""
    ranks = np.empty(values.size, dtype=int)
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, values.size + 1)
    return ranks


def _named(features: list[str], values: np.ndarray) -> dict[str, float]:
    return {f: float(v) for f, v in zip(features, values, strict=True)}
