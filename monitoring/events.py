"""The event type the monitor returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MonitorEvent", "EVENT_KINDS"]

EVENT_KINDS = (
    "feature_drift",
    "prediction_drift",
    "multivariate_drift",
    "concept_drift",
    "performance",
    "data_quality",
    "drift_resolved",
)


@dataclass(frozen=True)
class MonitorEvent:
    """Something the monitor decided at one record.

    Parameters
    ----------
    kind
        One of ``EVENT_KINDS``.
    feature
        The feature (``"__prediction__"`` for prediction drift, ``"__multivariate__"`` for the
        joint score, ``None`` for model-level events such as performance).
    detector
        The detector or method that decided (e.g. ``"cusum_mean_up"``, ``"gtest"``).
    statistic, threshold
        The detector's statistic at the decision and the threshold it crossed.
    record_id, ts
        The prediction id and time at which the decision was made.
    details
        Anything else (e.g. ``{"issue": "nan"}`` for data quality).

    Examples
    --------
    >>> e = MonitorEvent("feature_drift", "age", "cusum_mean_up", 25.3, 24.0, "r-17", 1.5)
    >>> e.to_dict()["record_id"]
    'r-17'
    """

    kind: str
    feature: str | None
    detector: str
    statistic: float
    threshold: float
    record_id: str
    ts: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the event."""
        return asdict(self)
