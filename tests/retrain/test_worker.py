"""The retrain worker in-process on a real SQLite store and the real model store: signature,
durable deduplication, one retrain per model, the holdout check, registration with lineage,
the rollout start, and an event for every outcome."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.dummy import DummyRegressor
from standardwebhooks import Webhook

from loadtests.harness import fresh_name
from loadtests.loop import World, register_world_model
from models.demo import retrain
from models.registry import get_model, list_models
from service.retrain.settings import RetrainSettings
from service.retrain.worker import RetrainWorker
from service.store import Store, open_store
from service.store.records import PredictionRecord
from service.webhooks.dispatcher import sign_headers
from service.webhooks.outbox import cooldown_key
from service.webhooks.payload import build_payload
from tests.pg_fixtures import pg_database, store_url  # noqa: F401
from tests.webhooks.webhook_helpers import SECRET

T0 = 1_700_000_000.0
CHANGE = T0 + 400.0


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    s = open_store(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def both(store_url: str) -> Iterator[Store]:  # noqa: F811
    """A fresh store on SQLite and on PostgreSQL."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def _log_world(store: Store, model: str, version: str) -> None:
    """400 labelled records before the change, 300 after (one a second)."""
    world, records, labels = World(seed=5), [], []
    for changed, start, n in ((False, T0, 400), (True, CHANGE, 300)):
        frame, y = world.frame(n, changed)
        for i, row in enumerate(frame.to_dict("records")):
            record = PredictionRecord(model, version, row, 0.0, ts=start + i)
            records.append(record)
            labels.append((record.id, float(y.iloc[i])))
    store.append(records)
    store.add_labels(labels)


def _settings(**changes: Any) -> RetrainSettings:
    base = {"secret": SECRET, "min_labels": 100, "label_wait_seconds": 0.0,
            "rollout_wait_seconds": 0.0, "steps": [20.0, 100.0]}
    return RetrainSettings(**{**base, **changes})


def _signed(model: str, version: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    payload = build_payload(
        event_id=event_id, model=model, version=version, trigger="drift",
        evidence={"features": [], "window": {"first_prediction_id": "p-1",
                                             "first_ts": CHANGE, "last_ts": CHANGE + 5}},
        reference_fingerprint=None, created_at=CHANGE + 10, public_url="http://gw.test")
    body = json.dumps(payload)
    return body.encode(), sign_headers(Webhook(SECRET), event_id, body, time.time())


def _kinds(store: Store, model: str) -> list[str]:
    return [e["kind"] for e in store.read_events(model)]


@pytest.fixture
def model(store: Store) -> tuple[str, str]:
    name = fresh_name("rt")
    first = register_world_model(name).version
    _log_world(store, name, first)
    return name, first


def test_registers_with_lineage_and_starts_a_rollout(store: Store, model: tuple[str, str]) -> None:
    name, first = model
    store.kv_set(cooldown_key(name), {"event_id": "evt_1", "ended_at": None, "until": 1e12})
    worker = RetrainWorker(retrain, settings=_settings(), store=store)
    status, body = worker.handle(*_signed(name, first, "evt_1"))
    assert (status, body["status"]) == (202, "accepted")
    [result] = worker.wait_idle(60)
    assert result.outcome == "registered", result.details
    assert _kinds(store, name) == ["retrain_started", "rollout_step", "retrain_registered"]
    entry = get_model(name, result.version)
    lineage = entry.card.lineage
    assert lineage.parent_version == first
    assert lineage.trigger["event_id"] == "evt_1" and lineage.trigger["webhook_id"] == "evt_1"
    assert lineage.trigger["trainer"] == "models.demo:retrain"
    assert lineage.trigger["evidence_window"]["from"] == CHANGE
    check = lineage.trigger["holdout"]
    # 300 post-change records: the 75 most recent are the holdout, never trained on
    assert check["holdout_rows"] == 75 and lineage.row_count == 700 - 75
    assert check["holdout_from"] == CHANGE + 225 and check["candidate"] < 0.5 * check["current"]
    assert lineage.code_version.startswith("sha256:")
    # the reference sample is post-change data (the new world), labels included
    reference = entry.reference()
    assert len(reference) == 300 and reference["a"].mean() > 1.0
    # the current version was pinned first, then the rollout routes its first step
    routing = store.routing_read().states[name]
    assert routing["default"] == first
    assert routing["canary"] == {"version": result.version, "weight": 0.2}
    assert store.rollout_get(result.rollout).status == "running"
    assert store.kv_get(cooldown_key(name))["ended_at"] is not None  # the worker stopped following
    worker.close()


def test_redelivery_is_a_duplicate_across_restarts(both: Store) -> None:
    store, name = both, fresh_name("rt")
    first = register_world_model(name).version
    _log_world(store, name, first)
    rejecting = RetrainWorker(lambda ctx: DummyRegressor(strategy="constant", constant=99.0)
                              .fit(ctx.features(ctx.records), ctx.records["label"]),
                              settings=_settings(), store=store)
    assert rejecting.handle(*_signed(name, first, "evt_2"))[0] == 202
    rejecting.wait_idle(60)
    rejecting.close()
    restarted = RetrainWorker(retrain, settings=_settings(), store=store)
    status, body = restarted.handle(*_signed(name, first, "evt_2"))
    assert (status, body["status"], body["outcome"]) == (200, "duplicate", "rejected")
    assert restarted.wait_idle(5) == []
    assert _kinds(store, name).count("retrain_started") == 1
    restarted.close()


def test_one_retrain_per_model_at_a_time(store: Store, model: tuple[str, str]) -> None:
    name, first = model
    release, entered = threading.Event(), threading.Event()

    def slow(context: Any) -> Any:
        entered.set()
        release.wait(30)
        raise RuntimeError("stopped")

    worker = RetrainWorker(slow, settings=_settings(), store=store)
    assert worker.handle(*_signed(name, first, "evt_a"))[0] == 202
    assert entered.wait(30)
    status, body = worker.handle(*_signed(name, first, "evt_b"))
    assert (status, body) == (200, {"status": "busy", "running": "evt_a"})
    assert store.kv_get("retrain:webhook:evt_b")["status"] == "busy"  # recorded
    release.set()
    [result] = worker.wait_idle(30)
    assert result.outcome == "failed"
    assert _kinds(store, name).count("retrain_started") == 1
    worker.close()


@pytest.mark.parametrize(("trainer", "outcome", "kind"), [
    ("raise", "failed", "retrain_failed"), ("worse", "rejected", "retrain_rejected"),
    ("no_labels", "failed", "retrain_failed")])
def test_bad_retrains_end_in_an_event(store: Store, model: tuple[str, str], trainer: str,
                                      outcome: str, kind: str) -> None:
    name, first = model
    store.kv_set(cooldown_key(name), {"event_id": "evt_3", "ended_at": None, "until": 1e12})

    def worse(ctx: Any) -> Any:
        return DummyRegressor(strategy="constant", constant=99.0).fit(
            ctx.features(ctx.records), ctx.records["label"])

    def broken(ctx: Any) -> Any:
        raise ValueError("no convergence")

    function = {"raise": broken, "worse": worse, "no_labels": retrain}[trainer]
    settings = _settings(min_labels=10_000) if trainer == "no_labels" else _settings()
    worker = RetrainWorker(function, settings=settings, store=store)
    worker.handle(*_signed(name, first, "evt_3"))
    [result] = worker.wait_idle(60)
    assert result.outcome == outcome
    event = next(e for e in store.read_events(name) if e["kind"] == kind)
    details = event["details"]
    if trainer == "raise":
        assert details["stage"] == "trainer" and "ValueError: no convergence" in details["error"]
        assert "no convergence" in details["traceback"]
    elif trainer == "worse":
        assert details["check"]["candidate"] > details["check"]["limit"]
    else:
        assert details["stage"] == "data" and "fewer than 10000" in details["error"]
    assert [v.version for v in list_models(name)] == [first]
    assert name not in store.routing_read().states  # routing untouched
    state = store.kv_get(cooldown_key(name))
    assert state["ended_at"] is not None and state["outcome"] == outcome
    worker.close()


def test_signature_and_other_events(store: Store) -> None:
    worker = RetrainWorker("models.demo:retrain", settings=_settings(), store=store)
    body, headers = _signed("m", "v", "evt_9")
    status, doc = worker.handle(body.replace(b'"m"', b'"n"'), headers)
    assert status == 401 and doc["error"]["type"] == "invalid_signature"
    other = json.dumps({"type": "driftgate.rollout_finished", "model": "m"})
    signed = sign_headers(Webhook(SECRET), "evt_10", other, time.time())
    assert worker.handle(other.encode(), signed) == (
        200, {"status": "ignored", "type": "driftgate.rollout_finished"})
    assert store.kv_get("retrain:webhook:evt_9") is None
    with pytest.raises(ValueError, match="secret"):
        RetrainWorker(retrain, settings=RetrainSettings(secret=None), store=store)
    worker.close()
