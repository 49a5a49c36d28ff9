"""The retrain payload: fields, evidence from stored monitor events, the data hints."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import fields

import pytest

from monitoring.events import MonitorEvent
from service.times import parse_time
from service.webhooks.payload import (
    EVENT_TYPE,
    alert_evidence,
    build_payload,
    drift_evidence,
)

EVENTS = [
    {
        "model": "iris",
        "version": "v1",
        "kind": "feature_drift",
        "feature": "petal_length",
        "detector": "cusum_mean_up",
        "statistic": 25.3,
        "threshold": 24.0,
        "record_id": "r-40",
        "ts": 1_764_178_805.2,
        "details": {},
    },
    {
        "model": "iris",
        "version": "v1",
        "kind": "feature_drift",
        "feature": "sepal_width",
        "detector": "gtest",
        "statistic": 31.0,
        "threshold": 20.5,
        "record_id": "r-17",
        "ts": 1_764_178_800.9,
        "details": {},
    },
]


def monitor_events(rows: list[dict]) -> list[MonitorEvent]:
    names = {f.name for f in fields(MonitorEvent)}
    return [MonitorEvent(**{k: v for k, v in row.items() if k in names}) for row in rows]


def test_drift_payload_from_monitor_events() -> None:
    evidence = drift_evidence(monitor_events(EVENTS))
    assert [f["feature"] for f in evidence["features"]] == ["sepal_width", "petal_length"]
    assert evidence["features"][1] == {
        "feature": "petal_length",
        "kind": "feature_drift",
        "detector": "cusum_mean_up",
        "statistic": 25.3,
        "threshold": 24.0,
    }
    assert evidence["window"] == {
        "first_prediction_id": "r-17",
        "last_prediction_id": "r-40",
        "first_ts": 1_764_178_800.9,
        "last_ts": 1_764_178_805.2,
    }

    p = build_payload(
        event_id="evt_1",
        model="iris",
        version="v1",
        trigger="drift",
        evidence=evidence,
        reference_fingerprint="sha256:ab",
        created_at=1_764_178_900.0,
        public_url="http://gw:3000/",
    )
    assert p["type"] == EVENT_TYPE == "driftgate.retrain_requested"
    assert (p["event_id"], p["model"], p["version"], p["trigger"]) == (
        "evt_1",
        "iris",
        "v1",
        "drift",
    )
    assert p["reference_fingerprint"] == "sha256:ab"
    assert p["created_at"] == "2025-11-26T17:41:40+00:00"
    argv = shlex.split(p["data"]["cli"])
    assert argv[:5] == ["driftgate", "log", "export", "--model", "iris"]
    assert argv[7:] == ["--with-labels", "--format", "parquet"]
    # --since is the start of the evidence window (rounded down), in a form the CLI parses
    assert parse_time(argv[6]) == math.floor(1_764_178_800.9)
    assert p["data"]["http"] == "http://gw:3000/monitoring/events?model=iris"
    json.dumps(p, allow_nan=False)


def test_non_finite_statistics_become_null_and_names_are_quoted() -> None:
    ev = drift_evidence([MonitorEvent("data_quality", "x", "card", math.nan, math.inf, "r", 1.0)])
    p = build_payload(
        event_id="e",
        model="a b&c",
        version=None,
        trigger="performance",
        evidence=ev,
        reference_fingerprint=None,
        created_at=2.0,
        public_url="http://gw",
    )
    json.dumps(p, allow_nan=False)
    assert shlex.split(p["data"]["cli"])[4] == "a b&c"
    assert p["data"]["http"].endswith("?model=a%20b%26c")


def test_alertmanager_evidence() -> None:
    alerts = [
        {
            "status": "firing",
            "fingerprint": "f1",
            "startsAt": "2026-01-02T03:04:05.123456789Z",
            "labels": {
                "alertname": "DriftgateFeatureDriftActive",
                "model": "iris",
                "feature": "petal_length",
                "retrain": "true",
            },
            "annotations": {"summary": "drift"},
        }
    ]
    ev = alert_evidence(alerts, "driftgate-gateway", '{}:{model="iris"}')
    assert ev["alerts"][0]["alertname"] == "DriftgateFeatureDriftActive"
    assert ev["alerts"][0]["fingerprint"] == "f1"
    assert ev["alerts"][0]["annotations"] == {"summary": "drift"}
    assert ev["features"] == [{"feature": "petal_length"}]
    p = build_payload(
        event_id="e",
        model="iris",
        version=None,
        trigger="alertmanager",
        evidence=ev,
        reference_fingerprint="sha256:x",
        created_at=1.8e9,
        public_url="http://gw",
    )
    assert p["data"]["since"] == "2026-01-02T03:04:05+00:00"


def test_unknown_trigger_rejected() -> None:
    with pytest.raises(ValueError):
        build_payload(
            event_id="e",
            model="m",
            version=None,
            trigger="manual",
            evidence={},
            reference_fingerprint=None,
            created_at=0.0,
            public_url="http://gw",
        )
