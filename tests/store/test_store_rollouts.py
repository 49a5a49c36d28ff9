"""Contract tests of the rollout table (both backends): one running rollout per model,
compare-and-set on the status, listing."""

from __future__ import annotations

import pytest

from service.store import RolloutConflict, Store


def test_create_get_list(store: Store) -> None:
    assert store.rollout_list() == [] and store.rollout_get("r1") is None
    row = store.rollout_create("r1", "m", {"version": "v2", "steps": [0.1, 1.0]})
    assert (row.id, row.model, row.status) == ("r1", "m", "running")
    got = store.rollout_get("r1")
    assert got is not None and got.doc == {"version": "v2", "steps": [0.1, 1.0]}
    store.rollout_create("r2", "other", {"version": "v1"})
    assert [r.id for r in store.rollout_list()] == ["r1", "r2"]
    assert [r.id for r in store.rollout_list("other")] == ["r2"]
    assert [r.id for r in store.rollout_list(status="running", limit=1)] == ["r2"]


def test_one_running_rollout_per_model(store: Store) -> None:
    store.rollout_create("r1", "m", {})
    with pytest.raises(RolloutConflict) as caught:
        store.rollout_create("r2", "m", {})
    assert caught.value.running == "r1"
    assert store.rollout_update("r1", "promoted", {"done": True})
    store.rollout_create("r2", "m", {})  # the first one finished
    assert [r.status for r in store.rollout_list("m")] == ["promoted", "running"]


def test_update_is_compare_and_set_on_status(store: Store) -> None:
    store.rollout_create("r1", "m", {"step": 0})
    assert store.rollout_update("r1", "running", {"step": 1})
    assert store.rollout_update("r1", "aborted", {"step": 1, "why": "ops"})
    assert not store.rollout_update("r1", "promoted", {"step": 2})  # abort won
    row = store.rollout_get("r1")
    assert row is not None and row.status == "aborted" and row.doc == {"step": 1, "why": "ops"}
    assert row.updated_at >= row.created_at
    assert not store.rollout_update("missing", "aborted", {})


def test_window_reads_the_arms_since_a_time(store: Store) -> None:
    from service.store.records import PredictionRecord

    def record(version: str, arm: str, ts: float, prediction: object) -> PredictionRecord:
        return PredictionRecord(model="m", version=version, features={"x": 1.0}, arm=arm,
                                prediction=prediction, ts=ts, latency_ms=2.5, request_id="q")

    store.append([record("v1", "default", 10.0, "a"), record("v2", "canary", 11.0, "b"),
                  record("v1", "default", 12.0, "c"), record("v2", "shadow", 12.0, "d"),
                  record("v3", "canary", 12.0, "e"), record("v2", "canary", 13.0, 1.5)])
    ids = [r.id for r in store.read_after(0, 10)]
    store.add_labels([(ids[2], "a")])
    window = store.rollout_window("m", 11.0, {"default": "v1", "canary": "v2"})
    assert window == [("canary", "b", 2.5, None, "q"), ("default", "c", 2.5, "a", "q"),
                      ("canary", 1.5, 2.5, None, "q")]
    assert window[1].label == "a" and window[1].request_id == "q"
    assert store.rollout_window("other", 0.0, {"default": "v1"}) == []
    assert store.rollout_window("m", 0.0, {}) == []
