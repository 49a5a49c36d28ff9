"""Drift end to end on a real ``bentoml serve``: the monitor, /metrics, events and the
direct webhook path (drift event -> signed retrain request, no Prometheus involved)."""

from __future__ import annotations

import time

import httpx

from tests.e2e.traffic import metric_value, reference_rows, send, shifted, wait_for

MODEL, FEATURE = "breast-cancer", "mean_texture"


def test_stationary_then_drifted_traffic_reaches_metrics_events_and_webhook(gateway, receiver):
    stationary = reference_rows(MODEL, 1500, seed=11)
    send(gateway.url, MODEL, stationary, per_request=25)

    def processed() -> bool:
        seen = metric_value(gateway.url, "driftgate_drift_active",
                            {"model": MODEL, "feature": FEATURE})
        lag = metric_value(gateway.url, "driftgate_monitor_lag_records", {})
        return seen is not None and lag == 0.0

    wait_for(processed, timeout=30)
    active = metric_value(gateway.url, "driftgate_drift_active",
                          {"model": MODEL, "feature": FEATURE})
    assert active == 0.0
    assert not [d for d in receiver.delivered if d["payload"]["model"] == MODEL]

    drifted = shifted(reference_rows(MODEL, 150, seed=12), MODEL, FEATURE, 2.0)
    ids = send(gateway.url, MODEL, drifted, per_request=1)
    sent_at = time.monotonic()
    wait_for(lambda: metric_value(gateway.url, "driftgate_drift_active",
                                  {"model": MODEL, "feature": FEATURE}) == 1.0, timeout=20)
    seen_after = time.monotonic() - sent_at
    print(f"drift visible in /metrics {seen_after:.2f}s after the last drifted request")
    assert seen_after < 10

    events = httpx.get(f"{gateway.url}/monitoring/events", params={"model": MODEL},
                       timeout=10).json()["events"]
    drift = [e for e in events if e["kind"] == "feature_drift" and e["feature"] == FEATURE]
    assert drift and drift[0]["record_id"] in ids

    def status_active():
        status = httpx.get(f"{gateway.url}/monitoring/status", params={"model": MODEL},
                           timeout=10).json()
        versions = (status["models"][MODEL] or {}).get("versions", {})
        return any(FEATURE in v["drift_active"] for v in versions.values())

    wait_for(status_active, timeout=10)

    def retrain_request():
        return [d for d in receiver.delivered if d["payload"]["model"] == MODEL]

    delivered = wait_for(retrain_request, timeout=20)
    assert receiver.bad_signatures == 0
    payload = delivered[0]["payload"]
    assert payload["type"] == "driftgate.retrain_requested"
    assert payload["trigger"] == "drift"
    assert FEATURE in {f["feature"] for f in payload["evidence"]["features"]}
    assert payload["reference_fingerprint"].startswith("sha256:")
    assert "driftgate log export --model" in payload["data"]["cli"]
    # one drift episode, one retrain request (cooldown), even with more drifted traffic
    send(gateway.url, MODEL, drifted[:50], per_request=10)
    time.sleep(3)
    assert len(retrain_request()) == 1
