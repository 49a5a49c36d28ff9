"""Live routing in one gateway worker: the ASGI app on a real SQLite store, the real
routing watcher thread, real registrations in the BentoML model store."""

from __future__ import annotations

import time

import pytest

from service.config import ServingConfig
from service.errors import APIError
from service.routing_state import RoutingAdmin
from service.store.factory import open_store
from tests.service.gateway_helpers import bound_context, make_client
from tests.service.live_helpers import (
    LoadFails,
    WarmFails,
    fresh_name,
    register_broken,
    register_version,
    row,
)

FAST = {"routing_poll_seconds": "0.05"}


def served_version(client, name: str, version: str | None = None) -> str:
    body = {"model": name, "inputs": [ROWS[name]]}
    if version is not None:
        body["version"] = version
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()["version"]


ROWS: dict[str, dict] = {}


def until(condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Poll ``condition`` (which may send requests) until it holds; its time in seconds.

    Whether a change arrives is asserted here; how fast (2 s on every worker) is asserted
    by the end-to-end test on real processes and measured by loadtests.routing_changes, not
    by a timed unit test on a shared machine."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time limit"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def model(demo_models) -> tuple[str, str]:
    """A fresh model name with one version."""
    name = fresh_name()
    first = register_version(name, alpha=1.0)
    ROWS[name] = row(first)
    return name, first.version


def test_file_applied_once_to_a_store_without_routing(tmp_path, model):
    name, v1 = model
    v2 = register_version(name, alpha=2.0).version
    serving = {"models": {name: {"default": "stable", "aliases": {"stable": v1}}}}
    with make_client(tmp_path, serving, **FAST) as client:
        assert served_version(client, name) == v1
        store = bound_context().store
        (change,) = store.routing_history(name)
        assert (change.actor, change.action, change.revision) == ("file", "apply", 1)
        assert "initial routing" in change.reason
    # a changed file does not override the store at the next start
    with make_client(tmp_path, {"models": {name: {"default": v2}}}, **FAST) as client:
        assert served_version(client, name) == v1
        assert bound_context().store.routing_revision() == 1


def test_routing_change_reaches_the_worker_without_failing_a_request(tmp_path, model):
    name, v1 = model
    v2 = register_version(name, alpha=5.0).version
    with make_client(tmp_path, {"models": {name: {"default": v1}}}, **FAST) as client:
        admin = RoutingAdmin(bound_context().store, "test")
        assert served_version(client, name) == v1
        admin.promote(name, v2, reason="better")
        until(lambda: served_version(client, name) == v2)
        # canary: both versions answer, by arm; the log names version and arm
        admin.canary(name, v1, weight=0.5)
        until(lambda: bound_context().core.router.models[name].canary is not None)
        seen = {served_version(client, name) for _ in range(60)}
        assert seen == {v1, v2}
        admin.rollback(name, reason="bad canary")
        until(lambda: bound_context().core.router.models[name].canary is None)
        assert {served_version(client, name) for _ in range(20)} == {v1}
    store = open_store(str(tmp_path / "data" / "predictions.sqlite3"))
    try:
        records = [r for r in store.read_after(0, 10_000) if r.model == name]
        arms = {(r.version, r.arm) for r in records}
        assert {(v1, "default"), (v2, "default"), (v1, "canary")} <= arms
        assert [c.action for c in store.routing_history(name)] == [
            "apply", "promote", "canary", "rollback"]
    finally:
        store.close()


def test_new_registration_is_served_and_old_version_unloaded(tmp_path, model):
    name, v1 = model
    with make_client(tmp_path, **FAST) as client:  # no routing: default is "latest"
        router = bound_context().core.router
        assert served_version(client, name) == v1
        v2 = register_version(name, alpha=3.0).version
        until(lambda: served_version(client, name) == v2)
        until(lambda: router.loaded(name, v1) is None)  # unrouted, nothing in flight
        # a request may still pin the old version: it is loaded again on demand
        assert served_version(client, name, v1) == v1


@pytest.mark.parametrize(("kind", "stage"), [(LoadFails, "load"), (WarmFails, "warm")])
def test_version_that_fails_is_never_routed_and_an_event_says_why(tmp_path, model, kind,
                                                                  stage):
    name, v1 = model
    with make_client(tmp_path, **FAST) as client:
        store = bound_context().store
        broken = register_broken(name, kind).version
        # "latest" now names the broken version: the worker keeps serving v1
        until(lambda: any(e["kind"] == "version_unavailable"
                          for e in store.read_events(name)), timeout=5.0)
        (event,) = [e for e in store.read_events(name) if e["kind"] == "version_unavailable"]
        assert event["version"] == broken and event["details"]["stage"] == stage
        assert all(served_version(client, name) == v1 for _ in range(20))
        pinned = client.post("/predict", json={"model": name, "version": broken,
                                               "inputs": [ROWS[name]]})
        assert pinned.status_code == 503
        assert pinned.json()["error"]["type"] == "version_unavailable"


def test_rollback_finds_the_default_before_a_registration(tmp_path, model):
    name, v1 = model
    with make_client(tmp_path, **FAST):
        admin = RoutingAdmin(bound_context().store, "test")
        with pytest.raises(APIError) as nothing:
            admin.rollback(name)
        assert nothing.value.status == 409
        time.sleep(0.01)
        v2 = register_version(name, alpha=4.0).version  # "latest" moves v1 -> v2
        change = admin.rollback(name, reason="v2 answers nonsense")
        assert change.before is None and change.after["default"] == v1  # None: implicit latest
        assert admin.rollback(name).after["default"] == v2  # a second rollback toggles
        assert admin.promote(name, v2) is None  # already the default: no change, no revision


def test_admin_rejects_client_mistakes(tmp_path, model):
    name, v1 = model
    with make_client(tmp_path, **FAST):
        admin = RoutingAdmin(bound_context().store, "test")
        cases = [
            (lambda: admin.promote("no-such-model", v1), 404, "unknown_model"),
            (lambda: admin.promote(name, "nope"), 404, "unknown_version"),
            (lambda: admin.canary(name, v1, weight=1.5), 422, "invalid_weight"),
            (lambda: admin.canary(name, "latest", weight=0.2), 422, "invalid_routing"),
            (lambda: admin.alias(name, "latest", v1), 422, "invalid_routing"),
            (lambda: admin.apply(ServingConfig.model_validate(
                {"models": {name: {"default": "nope"}}})), 404, "unknown_version"),
        ]
        for call, status, kind in cases:
            with pytest.raises(APIError) as caught:
                call()
            assert (caught.value.status, caught.value.type) == (status, kind)
        assert bound_context().store.routing_revision() == 0  # nothing was written


def test_unrouted_version_is_unloaded_only_after_its_requests_drain(model):
    from service.config import ServedModelConfig
    from service.routing import Router
    from service.routing_watch import registry_by_name

    name, v1 = model
    v2 = register_version(name, alpha=6.0).version
    registry = {name: registry_by_name()[name]}
    router = Router(seed=0)
    router.refresh(1, {name: ServedModelConfig(default=v1)}, registry)
    old = router.route(name).model
    old.inflight += 1  # a request is predicting with v1 right now
    router.refresh(2, {name: ServedModelConfig(default=v2)}, registry)
    assert router.route(name).model.version == v2 and router.revision == 2
    assert router.loaded(name, v1) is None  # no longer routed: new requests never get it
    assert router.unload_drained() == []  # ... but it stays until its request finishes
    old.inflight -= 1
    assert router.unload_drained() == [old]
    assert router.unload_drained() == []
