"""Retrain request episodes (issue 16, item 5): at most one retrain in flight per model; its
end lets a new episode request again; the cooldown only limits the rate and is reported."""

from __future__ import annotations

import time

from monitoring.events import MonitorEvent
from service.config import Settings
from service.monitor_runner import ModelEvent
from service.retraining import SUPPRESSED_EVENT, Retraining
from service.store import Store
from service.webhooks.outbox import RetrainRequests, cooldown_key, end_episode
from tests.webhooks.webhook_helpers import endpoint

EVIDENCE = {"features": [{"feature": "x", "kind": "feature_drift", "detector": "cusum"}],
            "window": {"first_prediction_id": "p-7", "first_ts": 1.0, "last_ts": 2.0}}


def _settings(**changes: float) -> Settings:
    return Settings(retrain_cooldown_seconds=300.0, retrain_timeout_seconds=3600.0,
                    **changes)  # type: ignore[arg-type]


def test_in_flight_blocks_until_its_retrain_ends(wh_store: Store) -> None:
    rr = RetrainRequests(wh_store, [endpoint("http://a.test/h")], _settings())
    early = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=1000.0)
    assert early.status == "queued"
    # long after the cooldown, the early episode's retrain still runs: suppressed
    busy = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=2000.0)
    assert (busy.status, busy.reason, busy.event_id) == ("suppressed", "in_flight", early.event_id)
    # the retrain was rejected (a false episode): the next real episode may request at once
    assert end_episode(wh_store, "iris", early.event_id, "rejected", 2100.0)
    real = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=2200.0)
    assert real.status == "queued" and real.event_id != early.event_id
    assert len(wh_store.outbox_list()) == 2
    # the end of an older request does not end the current one
    assert not end_episode(wh_store, "iris", early.event_id, "failed", 2300.0)
    assert rr.submit("iris", "v1", "drift", EVIDENCE, None, now=2400.0).reason == "in_flight"


def test_an_unreported_retrain_times_out(wh_store: Store) -> None:
    rr = RetrainRequests(wh_store, [endpoint("http://a.test/h")], _settings())
    first = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=0.0)
    assert rr.submit("iris", "v1", "drift", EVIDENCE, None, now=3599.0).reason == "in_flight"
    later = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=3600.0)
    assert later.status == "queued" and later.event_id != first.event_id


def _drift(record_id: str) -> list[ModelEvent]:
    event = MonitorEvent("feature_drift", "x", "cusum_mean_up", 9.0, 5.0, record_id,
                         time.time())
    return [ModelEvent("iris", "v1", event)]


def test_cooldown_limits_the_rate_and_is_reported(wh_store: Store) -> None:
    retraining = Retraining(wh_store, _settings(), None)
    retraining.requests.endpoints = [endpoint("http://a.test/h")]
    [first] = retraining.request("iris", "v1", "drift", _drift("p-1"), None)
    # in flight: suppressed without a report (the open retrain will act on it)
    assert retraining.request("iris", "v1", "drift", _drift("p-2"), None) == []
    assert [e for e in wh_store.read_events("iris") if e["kind"] == SUPPRESSED_EVENT] == []
    # its retrain ended, but the previous request is within the cooldown: reported
    assert end_episode(wh_store, "iris", first, "failed", time.time())
    assert retraining.request("iris", "v1", "drift", _drift("p-3"), None) == []
    [event] = [e for e in wh_store.read_events("iris") if e["kind"] == SUPPRESSED_EVENT]
    assert event["details"]["reason"] == "cooldown" and event["record_id"] == "p-3"
    assert event["details"]["previous_request"] == first and event["threshold"] == 300.0
    assert wh_store.kv_get(cooldown_key("iris"))["last_reason"] == "cooldown"
    assert len(wh_store.outbox_list()) == 1
