"""Per-model cooldown: one drift episode is one retrain request, across processes."""

from __future__ import annotations

from service.config import Settings
from service.store import Store, open_store
from service.webhooks.outbox import RetrainRequests, cooldown_key
from tests.webhooks.webhook_helpers import endpoint

EVIDENCE = {"features": [{"feature": "x", "detector": "cusum", "statistic": 9.0, "threshold": 5.0}]}


def _requests(store: Store, settings: Settings, *urls: str, models=None) -> RetrainRequests:  # type: ignore[no-untyped-def]
    return RetrainRequests(store, [endpoint(u, models) for u in urls], settings)


def test_one_request_per_episode_and_endpoint(wh_store: Store, settings: Settings) -> None:
    rr = _requests(wh_store, settings, "http://a.test/h", "http://b.test/h")
    ids = rr.request("iris", "v1", "drift", EVIDENCE, "sha256:ref", now=1000.0)
    assert len(ids) == 1 and ids[0].startswith("evt_")
    items = wh_store.outbox_list("pending")
    assert {i.endpoint for i in items} == {"http://a.test/h", "http://b.test/h"}
    assert {i.event_id for i in items} == set(ids)
    assert items[0].payload["event_id"] == ids[0]
    assert items[0].payload["reference_fingerprint"] == "sha256:ref"

    # a second request for the same model inside the cooldown: suppressed and counted
    assert rr.request("iris", "v1", "performance", EVIDENCE, "sha256:ref", now=2000.0) == []
    assert rr.request("iris", "v1", "drift", EVIDENCE, "sha256:ref", now=3000.0) == []
    assert rr.cooldown("iris")["suppressed"] == 2
    assert len(wh_store.outbox_list()) == 2
    # another model has its own cooldown
    assert len(rr.request("wine", "v1", "drift", EVIDENCE, None, now=2000.0)) == 1

    # after the cooldown: a new episode, a new event id
    later = rr.request("iris", "v2", "drift", EVIDENCE, "sha256:ref", now=1000.0 + 3600.0)
    assert len(later) == 1 and later != ids
    assert rr.cooldown("iris")["episode"] == 2


def test_cooldown_survives_restart(store_url: str, settings: Settings) -> None:
    first = open_store(store_url)
    try:
        suppressed: list[str] = []
        rr = _requests(first, settings, "http://a.test/h")
        assert rr.request("iris", "v1", "drift", EVIDENCE, None, now=1000.0)
    finally:
        first.close()
    second = open_store(store_url)  # "another process" / after a restart
    try:
        rr = RetrainRequests(
            second, [endpoint("http://a.test/h")], settings, on_suppressed=suppressed.append
        )
        assert rr.request("iris", "v1", "alertmanager", EVIDENCE, None, now=1500.0) == []
        assert suppressed == ["iris"]
        assert len(second.outbox_list()) == 1
    finally:
        second.close()


def test_concurrent_requests_collapse_to_one(wh_store: Store, settings: Settings) -> None:
    """Two processes that both read the expired cooldown compute the same event id."""
    a = _requests(wh_store, settings, "http://a.test/h")
    b = _requests(wh_store, settings, "http://a.test/h")
    before = wh_store.kv_get(cooldown_key("iris"))
    ids_a = a.request("iris", "v1", "drift", EVIDENCE, None, now=1000.0)
    wh_store.kv_set(cooldown_key("iris"), before)  # b read the state before a wrote it
    out_b = b.submit("iris", "v1", "alertmanager", EVIDENCE, None, now=1000.5)
    assert out_b.event_id == ids_a[0]
    assert len(wh_store.outbox_list()) == 1


def test_endpoint_model_filter(wh_store: Store, settings: Settings) -> None:
    rr = _requests(wh_store, settings, "http://a.test/h", models=["wine"])
    out = rr.submit("iris", "v1", "drift", EVIDENCE, None, now=1.0)
    assert out.status == "no_endpoint"
    assert wh_store.outbox_list() == [] and rr.cooldown("iris") is None
    assert rr.request("wine", "v1", "drift", EVIDENCE, None, now=1.0)
