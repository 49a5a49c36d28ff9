"""The Prometheus path end to end: real gateway, Prometheus with the shipped rules,
Alertmanager with the shipped routing, and a retraining receiver verifying signatures."""

from __future__ import annotations

from tests.e2e.traffic import reference_rows, send, shifted, wait_for

MODEL, FEATURE = "diabetes", "bmi"
DRIFT_ALERT = 'ALERTS{alertname="DriftgateFeatureDriftActive",alertstate="firing"}'


def test_drift_alert_fires_in_prometheus_and_becomes_signed_retrain_request(
    alerting_gateway, observability, alerting_receiver
):
    receiver = alerting_receiver
    url = alerting_gateway.url
    user = alerting_gateway.headers("user")  # the gateway requires keys; so does its receiver
    send(url, MODEL, reference_rows(MODEL, 1200, seed=21), per_request=20, headers=user)
    # the gateway is scraped and the drift gauge exists, but stays 0 for stationary traffic
    wait_for(lambda: observability.query(
        f'driftgate_drift_active{{model="{MODEL}",feature="{FEATURE}"}}'), timeout=30)
    wait_for(lambda: observability.query(
        'driftgate_monitor_lag_records == 0'), timeout=30)
    assert not observability.query(f'driftgate_drift_active{{model="{MODEL}"}} == 1')
    assert not observability.query(
        f'ALERTS{{alertname="DriftgateFeatureDriftActive",model="{MODEL}"}}')

    send(url, MODEL, shifted(reference_rows(MODEL, 200, seed=22), MODEL, FEATURE, 2.0),
         headers=user)
    firing = wait_for(lambda: observability.query(DRIFT_ALERT), timeout=60)
    assert {(a["metric"]["model"], a["metric"]["feature"]) for a in firing} >= {(MODEL, FEATURE)}

    def alertmanager_request():
        return [d for d in receiver.delivered
                if d["payload"]["model"] == MODEL and d["payload"]["trigger"] == "alertmanager"]

    delivered = wait_for(alertmanager_request, timeout=60)
    assert receiver.bad_signatures == 0
    payload = delivered[0]["payload"]
    alerts = payload["evidence"]["alerts"]
    assert {a["alertname"] for a in alerts} == {"DriftgateFeatureDriftActive"}
    assert FEATURE in {a["labels"].get("feature") for a in alerts}
    # the direct path is off here: no drift-triggered request from this gateway's monitor
    assert not [d for d in receiver.delivered if d["payload"]["model"] == MODEL
                and d["payload"]["trigger"] == "drift"]
