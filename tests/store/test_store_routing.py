"""Contract tests of the routing state (both backends): revisions, history, idempotence,
compare-and-set, and concurrent writers taking dense, distinct revisions."""

from __future__ import annotations

import multiprocessing

import pytest

from service.store import RoutingConflict, Store, open_store
from tests.store.store_workers import routing_worker

A = {"default": "v1", "aliases": {}, "canary": None, "shadow": None}
B = {"default": "v2", "aliases": {"stable": "v1"}, "canary": {"version": "v3", "weight": 0.1},
     "shadow": None}


def test_fresh_store_has_no_routing(store: Store) -> None:
    assert store.routing_revision() == 0
    snapshot = store.routing_read()
    assert (snapshot.revision, snapshot.states, snapshot.revisions) == (0, {}, {})
    assert store.routing_history() == []


def test_changes_take_increasing_revisions_and_are_recorded(store: Store) -> None:
    (first,) = store.routing_write({"m": A}, actor="cli:alice", action="apply", reason="init")
    assert (first.revision, first.before, first.after) == (1, None, A)
    (second,) = store.routing_write({"m": B}, actor="http:ops", action="promote",
                                    reason="better AUC")
    assert second.revision == 2 and second.before == A and second.after == B
    store.routing_write({"other": A}, actor="cli:bob", action="apply")
    assert store.routing_revision() == 3
    snapshot = store.routing_read()
    assert snapshot.revision == 3
    assert snapshot.states == {"m": B, "other": A}
    assert snapshot.revisions == {"m": 2, "other": 3}
    history = store.routing_history("m")
    assert [(h.revision, h.actor, h.action, h.reason) for h in history] == [
        (1, "cli:alice", "apply", "init"), (2, "http:ops", "promote", "better AUC")]
    assert history[1].ts >= history[0].ts > 0
    assert [h.revision for h in store.routing_history()] == [1, 2, 3]
    assert [h.revision for h in store.routing_history(limit=2)] == [2, 3]  # the latest, in order
    assert history[1].as_json()["after"] == B


def test_unchanged_state_is_not_a_change(store: Store) -> None:
    store.routing_write({"m": A, "n": B}, actor="a", action="apply")
    assert store.routing_write({"m": dict(A), "n": B}, actor="a", action="apply") == []
    assert store.routing_revision() == 2
    changed = store.routing_write({"m": A, "n": A}, actor="a", action="apply")
    assert [(c.model, c.revision) for c in changed] == [("n", 3)]


def test_delete_is_recorded(store: Store) -> None:
    store.routing_write({"m": A}, actor="a", action="apply")
    (change,) = store.routing_write({"m": None}, actor="a", action="prune")
    assert (change.before, change.after, change.revision) == (A, None, 2)
    assert store.routing_read().states == {}
    assert store.routing_write({"m": None}, actor="a", action="prune") == []


def test_compare_and_set(store: Store) -> None:
    store.routing_write({"m": A}, actor="a", action="apply", expected={"m": 0})
    with pytest.raises(RoutingConflict) as caught:
        store.routing_write({"m": B, "n": A}, actor="b", action="promote", expected={"m": 0})
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert store.routing_read().states == {"m": A}  # nothing of the failed write landed
    store.routing_write({"m": B}, actor="b", action="promote", expected={"m": 1})
    assert store.routing_read().states["m"] == B


def test_only_if_unset_applies_once(store: Store) -> None:
    assert len(store.routing_write({"m": A}, actor="file", action="apply",
                                   only_if_unset=True)) == 1
    assert store.routing_write({"m": B}, actor="file", action="apply", only_if_unset=True) == []
    store.routing_write({"m": None}, actor="cli", action="prune")
    # emptied by an admin is not "never set": the file is not applied again at start
    assert store.routing_write({"m": B}, actor="file", action="apply", only_if_unset=True) == []


def test_reopened_store_keeps_routing(store_url: str) -> None:
    first = open_store(store_url)
    first.routing_write({"m": B}, actor="a", action="apply")
    first.close()
    again = open_store(store_url)
    try:
        assert again.routing_read().states == {"m": B} and again.routing_revision() == 1
    finally:
        again.close()


def test_concurrent_processes_take_distinct_dense_revisions(store_url: str) -> None:
    open_store(store_url).close()
    workers, changes = 4, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.starmap(routing_worker, [(store_url, w, changes) for w in range(workers)])
    store = open_store(store_url)
    try:
        history = store.routing_history(limit=1000)
        assert [h.revision for h in history] == list(range(1, workers * changes + 1))
        assert store.routing_revision() == workers * changes
        for w in range(workers):  # each writer's changes chain: before = its previous after
            mine = [h for h in history if h.model == f"w{w}"]
            assert [h.after["default"] for h in mine] == [str(i) for i in range(changes)]
            assert [h.before for h in mine[1:]] == [h.after for h in mine[:-1]]
    finally:
        store.close()
