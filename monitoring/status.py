"""Typed status of a monitor, handed to the service as is (``to_dict()`` for JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitoring.names import MULTIVARIATE, PREDICTION, json_value
from monitoring.state import DriftState

__all__ = ["MonitorStatus", "StreamStatus"]


@dataclass(frozen=True)
class StreamStatus:
    """One monitored stream (a feature, the prediction or the joint features).

    ``score`` is the detector's normalised score (1.0 = its calibrated alarm point);
    ``statistic`` and ``threshold`` are in the detector's own units. ``alarmed``: the detector
    fired during the monitor's last ``update_many`` (most detectors restart after an alarm,
    so their score may already be back below 1); :attr:`peak_score` accounts for it.

    Examples
    --------
    >>> s = StreamStatus("age", "numeric", "cusum", 0.4, 4.0, 10.0, DriftState())
    >>> s.to_dict()["drift_active"], s.to_dict()["score"]
    (False, 0.4)
    """

    name: str
    kind: str
    method: str
    score: float
    statistic: float
    threshold: float
    drift: DriftState
    window: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    alarmed: bool = False

    @property
    def peak_score(self) -> float:
        """The score, at least 1 if the detector fired during the last update.

        Examples
        --------
        >>> StreamStatus("x", "numeric", "cusum", 0.1, 1.0, 10.0, DriftState(), alarmed=True
        ...              ).peak_score
        1.0
        """
        return max(self.score, 1.0) if self.alarmed else self.score

    @property
    def drift_active(self) -> bool:
        """Whether the stream is in a drift episode."""
        return self.drift.active

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (non-finite numbers as ``None``)."""
        return {"kind": self.kind, "method": self.method, "score": json_value(self.score),
                "statistic": json_value(self.statistic),
                "threshold": json_value(self.threshold), **self.details,
                **self.drift.to_dict(),
                "window": None if self.window is None else {
                    k: json_value(v) for k, v in self.window.items()}}


@dataclass(frozen=True)
class MonitorStatus:
    """A model version's monitor: every stream, performance, data quality, progress.

    Examples
    --------
    >>> st = MonitorStatus(3, 0, "r2", 2.0, 1e5, 2e-6, {}, {"mae": None}, False, {})
    >>> st.to_dict()["records_seen"], st.prediction
    (3, None)
    """

    records_seen: int
    labels_seen: int
    last_record_id: str | None
    last_ts: float | None
    expected_run_time: float
    false_alarm_rate_per_stream: float
    streams: dict[str, StreamStatus]
    performance: dict[str, float | None]
    degraded: bool
    data_quality: dict[str, dict[str, int]]
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> dict[str, StreamStatus]:
        """Streams of the input features."""
        return {k: v for k, v in self.streams.items() if k not in (PREDICTION, MULTIVARIATE)}

    @property
    def prediction(self) -> StreamStatus | None:
        return self.streams.get(PREDICTION)

    @property
    def multivariate(self) -> StreamStatus | None:
        return self.streams.get(MULTIVARIATE)

    @property
    def drift_active(self) -> list[str]:
        """Names of the streams in a drift episode."""
        return sorted(n for n, s in self.streams.items() if s.drift_active)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (the body of ``/monitoring/status`` per version)."""
        pred, mv = self.prediction, self.multivariate
        return {
            "records_seen": self.records_seen,
            "labels_seen": self.labels_seen,
            "last_record_id": self.last_record_id,
            "last_ts": self.last_ts,
            "expected_run_time": self.expected_run_time,
            "false_alarm_rate_per_stream": self.false_alarm_rate_per_stream,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "prediction": pred.to_dict() if pred else None,
            "multivariate": mv.to_dict() if mv else None,
            "performance": {**{k: json_value(v) for k, v in self.performance.items()},
                            "degraded": self.degraded},
            "data_quality": {k: dict(v) for k, v in self.data_quality.items()},
            "reference": dict(self.reference),
            "drift_active": self.drift_active,
        }
