"""Alertmanager receiver: parsing, validation, dedupe, resolved alerts, unknown models."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.alerts import AlertReceiver
from service.config import Settings
from service.errors import APIError
from service.store import Store
from service.webhooks.outbox import RetrainRequests
from tests.webhooks.webhook_helpers import FakeClock, endpoint

URL = "http://retrain.test/hook"


def _alert(model: str = "iris", status: str = "firing", fp: str = "a1", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "DriftgateFeatureDriftActive", "model": model,
                   "retrain": "true", "feature": "petal_length", **labels},
        "annotations": {"summary": f"{model} drifts"},
        "startsAt": "2026-01-02T03:04:05.5Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }  # fmt: skip


def _body(*alerts: dict, status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "driftgate-gateway",
        "groupKey": '{}/{retrain="true"}:{alertname="X", model="iris"}',
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


@pytest.fixture
def setup(sqlite_store: Store, settings: Settings, clock: FakeClock) -> tuple[AlertReceiver, Store]:
    rr = RetrainRequests(sqlite_store, [endpoint(URL)], settings, clock=clock)
    fingerprints = {"iris": "sha256:iris-ref", "wine": None}
    receiver = AlertReceiver(sqlite_store, rr, fingerprints.get, {"iris", "wine"}, clock=clock)
    return receiver, sqlite_store


def test_firing_alert_becomes_one_retrain_request(setup: tuple[AlertReceiver, Store]) -> None:
    receiver, store = setup
    out = receiver.receive(_body(_alert(fp="a1"), _alert(fp="a2", feature="sepal_width")))
    assert out["accepted"] == 2 and out["duplicates"] == 0 and out["ignored"] == 0
    [req] = out["retrain_requested"]
    assert req["model"] == "iris" and req["event_id"].startswith("evt_")
    [item] = store.outbox_list()
    p = item.payload
    assert (p["trigger"], p["model"], p["event_id"]) == ("alertmanager", "iris", req["event_id"])
    assert p["reference_fingerprint"] == "sha256:iris-ref"
    ev = p["evidence"]
    assert [a["fingerprint"] for a in ev["alerts"]] == ["a1", "a2"]
    assert ev["alerts"][0]["alertname"] == "DriftgateFeatureDriftActive"
    assert ev["alerts"][0]["annotations"] == {"summary": "iris drifts"}
    assert ev["alerts"][0]["startsAt"] == "2026-01-02T03:04:05.5Z"
    assert ev["alerts"][0]["labels"]["feature"] == "petal_length"
    assert ev["groupKey"].startswith("{}/")
    assert p["data"]["since"] == "2026-01-02T03:04:05+00:00"


def test_resend_and_repeat_are_duplicates(setup: tuple[AlertReceiver, Store]) -> None:
    receiver, store = setup
    body = _body(_alert(fp="a1"))
    receiver.receive(body)
    again = receiver.receive(copy.deepcopy(body))
    assert again == {"accepted": 0, "retrain_requested": [], "duplicates": 1, "ignored": 0,
                     "suppressed": [], "unknown_models": []}  # fmt: skip
    # the same alert twice in one payload counts once
    out = receiver.receive(_body(_alert(fp="b1", model="wine"), _alert(fp="b1", model="wine")))
    assert (out["accepted"], out["duplicates"]) == (1, 1)
    assert len(store.outbox_list()) == 2


def test_new_alert_in_the_same_episode_is_suppressed(
    setup: tuple[AlertReceiver, Store], clock: FakeClock
) -> None:
    receiver, store = setup
    receiver.receive(_body(_alert(fp="a1")))
    clock.advance(600)
    out = receiver.receive(_body(_alert(fp="a9", feature="sepal_width")))
    assert out["accepted"] == 1 and out["retrain_requested"] == [] and out["suppressed"] == ["iris"]
    assert len(store.outbox_list()) == 1


def test_resolved_unlabelled_and_unknown_are_ignored(setup: tuple[AlertReceiver, Store]) -> None:
    receiver, store = setup
    no_model = _alert(fp="n")
    del no_model["labels"]["model"]
    out = receiver.receive(
        _body(
            _alert(status="resolved", fp="r"),
            _alert(fp="ops", retrain="false"),
            no_model,
            _alert(model="churn", fp="u"),
        )
    )
    assert out == {"accepted": 0, "retrain_requested": [], "duplicates": 0, "ignored": 4,
                   "suppressed": [], "unknown_models": ["churn"]}  # fmt: skip
    assert store.outbox_list() == []


def _without(key: str) -> dict:
    alert = _alert()
    del alert[key]
    return _body(alert)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ([1, 2], 400),
        ("text", 400),
        (None, 400),
        ({**_body(_alert()), "version": "3"}, 422),
        ({k: v for k, v in _body(_alert()).items() if k != "version"}, 422),
        ({**_body(), "alerts": {"a": 1}}, 422),
        ({k: v for k, v in _body(_alert()).items() if k != "alerts"}, 422),
        (_body("not an alert"), 422),  # type: ignore[arg-type]
        (_without("labels"), 422),
        (_without("fingerprint"), 422),
        (_without("status"), 422),
        (_body({**_alert(), "status": "pending"}), 422),
        (_body({**_alert(), "labels": {"model": 3}}), 422),
        (_body({**_alert(), "annotations": ["x"]}), 422),
    ],
)
def test_malformed_payloads(setup: tuple[AlertReceiver, Store], body: Any, status: int) -> None:
    receiver, store = setup
    with pytest.raises(APIError) as info:
        receiver.receive(body)
    assert info.value.status == status
    assert info.value.type == "invalid_alert_payload"
    assert store.outbox_list() == []


def test_empty_alert_list_is_fine(setup: tuple[AlertReceiver, Store]) -> None:
    receiver, _ = setup
    assert receiver.receive(_body())["accepted"] == 0


class _Down:
    def __getattr__(self, name: str) -> Any:
        raise ConnectionError("store unavailable")


def test_store_failure_propagates(settings: Settings) -> None:
    """Not an APIError: the HTTP layer answers 503 and Alertmanager retries."""
    store: Any = _Down()
    rr = RetrainRequests(store, [endpoint(URL)], settings)
    receiver = AlertReceiver(store, rr, lambda m: None, {"iris"})
    with pytest.raises(ConnectionError):
        receiver.receive(_body(_alert()))


def test_retry_after_failure_is_not_lost(setup: tuple[AlertReceiver, Store]) -> None:
    """A failure after the enqueue: Alertmanager's retry finds the same request."""
    receiver, store = setup
    real_kv_set = store.kv_set
    calls = {"n": 0}

    def flaky(key: str, value: Any) -> None:
        if key.startswith("alert:"):
            calls["n"] += 1
            raise ConnectionError("lost the connection")
        real_kv_set(key, value)

    store.kv_set = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        receiver.receive(_body(_alert()))
    store.kv_set = real_kv_set  # type: ignore[method-assign]
    out = receiver.receive(_body(_alert()))
    assert out["accepted"] == 1
    assert len(store.outbox_list()) == 1
