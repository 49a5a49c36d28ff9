"""The retrain request payload sent to webhook endpoints.

Example (trimmed)::

    {"type": "driftgate.retrain_requested", "event_id": "evt_...",
     "created_at": "2026-11-26T17:40:00+00:00", "model": "iris", "version": "3nhl...",
     "trigger": "drift",
     "evidence": {"features": [{"feature": "petal_length", "kind": "feature_drift",
                                "detector": "cusum_mean_up", "statistic": 25.3, "threshold": 24.0,
                                "prediction_id": "r-40", "ts": 1764178805.2}],
                  "window": {"first_prediction_id": "r-17", "last_prediction_id": "r-40",
                             "first_ts": 1764178800.0, "last_ts": 1764178805.2}},
     "reference_fingerprint": "sha256:...",
     "data": {"since": "2026-11-26T17:40:00+00:00",
              "cli": "driftgate log export --model iris --since ... --with-labels --format parquet",
              "http": "http://localhost:3000/monitoring/events?model=iris"}}

Times inside ``evidence`` are unix seconds (as in the store and ``/monitoring/events``);
``created_at`` and ``data.since`` are ISO 8601 UTC.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from monitoring.events import MonitorEvent
from monitoring.names import json_value

__all__ = [
    "EVENT_TYPE",
    "TRIGGERS",
    "Trigger",
    "alert_evidence",
    "build_payload",
    "drift_evidence",
    "evidence_since",
    "iso",
    "parse_iso",
]

EVENT_TYPE = "driftgate.retrain_requested"
TRIGGERS = ("drift", "performance", "alertmanager")
Trigger = Literal["drift", "performance", "alertmanager"]


def iso(ts: float) -> str:
    """ISO 8601 UTC with whole seconds (rounded down)."""
    return datetime.fromtimestamp(math.floor(ts), tz=UTC).isoformat()


def parse_iso(text: Any) -> float | None:
    """Unix seconds of an RFC 3339 time (Alertmanager's ``startsAt``), None if unparsable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def drift_evidence(events: Iterable[MonitorEvent]) -> dict[str, Any]:
    """Evidence from the monitor's events, as the monitor returned them.

    >>> ev = drift_evidence([MonitorEvent("feature_drift", "x", "cusum", 25.0, 24.0, "r-1", 5.0)])
    >>> ev["features"][0]["detector"], ev["window"]["first_prediction_id"]
    ('cusum', 'r-1')
    >>> weighted = drift_evidence([MonitorEvent("feature_drift", "x", "cusum", 25.0, 24.0,
    ...                                         "r-1", 5.0, {"attribution_weight": 0.4})])
    >>> weighted["features"][0]["attribution_weight"]
    0.4
    """
    ordered = sorted(events, key=lambda e: e.ts)
    features = [
        {
            "feature": e.feature,
            "kind": e.kind,
            "detector": e.detector,
            "statistic": json_value(e.statistic),
            "threshold": json_value(e.threshold),
            "prediction_id": e.record_id,
            "ts": e.ts,
            # the feature's share of the model's importance when it drifted (if explained)
            **_weight(e.details.get("attribution_weight") if e.details else None),
        }
        for e in ordered
    ]
    evidence: dict[str, Any] = {"features": features}
    if ordered:
        evidence["window"] = {
            "first_prediction_id": ordered[0].record_id,
            "last_prediction_id": ordered[-1].record_id,
            "first_ts": ordered[0].ts,
            "last_ts": ordered[-1].ts,
        }
    return evidence


def _weight(value: Any) -> dict[str, Any]:
    return {} if value is None else {"attribution_weight": json_value(value)}


def alert_evidence(
    alerts: Sequence[Mapping[str, Any]], receiver: str | None = None, group_key: str | None = None
) -> dict[str, Any]:
    """Evidence from firing Alertmanager alerts (already validated)."""
    items = [
        {
            "alertname": a["labels"].get("alertname"),
            "labels": dict(a["labels"]),
            "annotations": dict(a.get("annotations") or {}),
            "startsAt": a.get("startsAt"),
            "fingerprint": a["fingerprint"],
        }
        for a in alerts
    ]
    features = sorted({a["labels"]["feature"] for a in alerts if a["labels"].get("feature")})
    starts = [t for t in (parse_iso(a.get("startsAt")) for a in alerts) if t is not None]
    evidence: dict[str, Any] = {"alerts": items, "receiver": receiver, "groupKey": group_key}
    if features:
        evidence["features"] = [{"feature": f} for f in features]
    if starts:
        evidence["window"] = {"first_ts": min(starts), "last_ts": max(starts)}
    return evidence


def evidence_since(evidence: Mapping[str, Any], default: float) -> float:
    """Start of the data worth fetching: the evidence window's first time, else ``default``."""
    window = evidence.get("window") or {}
    first = window.get("first_ts")
    return float(first) if isinstance(first, int | float) and math.isfinite(first) else default


def build_payload(
    *,
    event_id: str,
    model: str,
    version: str | None,
    trigger: str,
    evidence: Mapping[str, Any],
    reference_fingerprint: str | None,
    created_at: float,
    public_url: str,
    since: float | None = None,
) -> dict[str, Any]:
    """The JSON body of one retrain request (``since`` defaults to the evidence window)."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, got {trigger!r}")
    start = iso(evidence_since(evidence, created_at) if since is None else since)
    base = public_url.rstrip("/")
    return {
        "type": EVENT_TYPE,
        "event_id": event_id,
        "created_at": iso(created_at),
        "model": model,
        "version": version,
        "trigger": trigger,
        "evidence": dict(evidence),
        "reference_fingerprint": reference_fingerprint,
        "data": {
            "since": start,
            "cli": (
                f"driftgate log export --model {shlex.quote(model)} --since {start}"
                " --with-labels --format parquet"
            ),
            "http": f"{base}/monitoring/events?model={quote(model, safe='')}",
        },
    }
