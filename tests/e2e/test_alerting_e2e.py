"""The Prometheus path end to end: real gateway, Prometheus with the shipped rules,
Alertmanager with the shipped routing, and a retraining receiver verifying signatures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (
    FAST_MONITOR,
    Server,
    start_gateway_retrying,
    stop_gateway,
    write_serving,
)
from tests.e2e.observability import Observability, start_observability
from tests.e2e.traffic import reference_rows, send, shifted, wait_for

MODEL, FEATURE = "diabetes", "bmi"
DRIFT_ALERT = 'ALERTS{alertname="DriftgateFeatureDriftActive",alertstate="firing"}'


@pytest.fixture(scope="module")
def alerting_gateway(demo_models, receiver, tmp_path_factory) -> Iterator[Server]:
    """A gateway where only Alertmanager requests retraining (no direct path)."""
    data_dir = tmp_path_factory.mktemp("alerting")
    write_serving(data_dir, receiver)
    server = start_gateway_retrying(
        data_dir, {**FAST_MONITOR, "DRIFTGATE_RETRAIN_FROM_EVENTS": "false"}
    )
    yield server
    stop_gateway(server)


@pytest.fixture(scope="module")
def observability(alerting_gateway, tmp_path_factory) -> Iterator[Observability]:
    obs = start_observability(tmp_path_factory.mktemp("prom"), alerting_gateway.port)
    yield obs
    obs.stop()


def test_drift_alert_fires_in_prometheus_and_becomes_signed_retrain_request(
    alerting_gateway, observability, receiver
):
    url = alerting_gateway.url
    send(url, MODEL, reference_rows(MODEL, 1200, seed=21), per_request=20)
    # the gateway is scraped and the drift gauge exists, but stays 0 for stationary traffic
    wait_for(lambda: observability.query(
        f'driftgate_drift_active{{model="{MODEL}",feature="{FEATURE}"}}'), timeout=30)
    wait_for(lambda: observability.query(
        'driftgate_monitor_lag_records == 0'), timeout=30)
    assert not observability.query(f'driftgate_drift_active{{model="{MODEL}"}} == 1')
    assert not observability.query('ALERTS{alertname="DriftgateFeatureDriftActive"}')

    send(url, MODEL, shifted(reference_rows(MODEL, 200, seed=22), MODEL, FEATURE, 2.0))
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
