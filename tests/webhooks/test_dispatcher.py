"""Delivery against a real local receiver: signatures, retries, 410, dead letters, restarts.

Every test runs on SQLite and PostgreSQL (``wh_store``); a fake clock skips backoff delays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.store import Store, open_store
from service.webhooks.dispatcher import (
    WebhookDispatcher,
    backoff_delay,
    disabled_key,
    list_deliveries,
    retry_dead,
)
from service.webhooks.outbox import RetrainRequests
from tests.webhooks.webhook_helpers import FakeClock, Receiver, endpoint

pytestmark = pytest.mark.anyio
EVIDENCE = {"features": [{"feature": "x", "detector": "cusum", "statistic": 9.0, "threshold": 5.0}]}


def _enqueue(store: Store, settings: Settings, url: str, *models: str) -> list[str]:
    rr = RetrainRequests(store, [endpoint(url)], settings)
    return [i for m in models for i in rr.request(m, "v1", "drift", EVIDENCE, "sha256:r", 1.0)]


def _dispatcher(
    store: Store, settings: Settings, url: str, clock: FakeClock, **kw: Any
) -> tuple[WebhookDispatcher, list[str]]:
    outcomes: list[str] = []
    d = WebhookDispatcher(
        store, [endpoint(url)], settings, on_outcome=outcomes.append, clock=clock, **kw
    )
    return d, outcomes


async def _drain(d: WebhookDispatcher, clock: FakeClock, rounds: int, step: float = 10.0) -> None:
    for _ in range(rounds):
        await d.run_once()
        clock.advance(step)


async def test_delivery_is_signed_and_marked(
    wh_store: Store, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    [event_id] = _enqueue(wh_store, settings, receiver.url, "iris")
    async with _dispatcher(wh_store, settings, receiver.url, clock)[0] as d:
        done = await d.run_once()
    assert done == {"delivered": 1}
    assert receiver.bad_signatures == 0
    [got] = receiver.delivered
    assert got["id"] == event_id == got["payload"]["event_id"]
    assert got["payload"]["type"] == "driftgate.retrain_requested"
    assert int(got["headers"]["webhook-timestamp"]) == int(clock())
    assert got["headers"]["webhook-signature"].startswith("v1,")
    [item] = list_deliveries(wh_store, "delivered")
    assert item.event_id == event_id and item.attempts == 1
    assert wh_store.outbox_pending_count() == 0


async def test_receiver_down_then_up_exactly_once(
    wh_store: Store, settings: Settings, down_receiver: Receiver, clock: FakeClock
) -> None:
    ids = _enqueue(wh_store, settings, down_receiver.url, "iris", "wine", "digits")
    d, outcomes = _dispatcher(wh_store, settings, down_receiver.url, clock, rand=lambda: 1.0)
    async with d:
        t0 = clock()
        assert await d.run_once() == {"failed": 3}
        # full-jitter cap after the first failure is the base delay (rand=1.0 -> the cap)
        assert {i.next_attempt_at for i in wh_store.outbox_list()} == {t0 + 1.0}
        assert await d.run_once() == {}  # not due yet
        clock.advance(1.0)
        assert await d.run_once() == {"failed": 3}
        assert {i.next_attempt_at for i in wh_store.outbox_list()} == {clock() + 2.0}
        assert all("ConnectError" in (i.last_error or "") for i in wh_store.outbox_list())
        down_receiver.start()
        clock.advance(2.0)
        assert await d.run_once() == {"delivered": 3}
        await _drain(d, clock, 3)
    assert down_receiver.ids() == dict.fromkeys(ids, 1)
    assert outcomes == ["failed"] * 6 + ["delivered"] * 3


async def test_5xx_then_success_keeps_webhook_id(
    wh_store: Store, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    [event_id] = _enqueue(wh_store, settings, receiver.url, "iris")
    receiver.script.extend([500, 503])
    d, outcomes = _dispatcher(wh_store, settings, receiver.url, clock)
    async with d:
        await _drain(d, clock, 4)
    assert [a["status"] for a in receiver.attempts] == [500, 503, 200]
    assert {a["id"] for a in receiver.attempts} == {event_id}
    assert outcomes == ["failed", "failed", "delivered"]
    [item] = list_deliveries(wh_store, "delivered")
    assert item.attempts == 3


async def test_410_disables_endpoint_and_dead_letters(
    wh_store: Store, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    _enqueue(wh_store, settings, receiver.url, "iris", "digits")
    receiver.script.append(410)
    d, outcomes = _dispatcher(wh_store, settings, receiver.url, clock, batch_size=1)
    async with d:
        # the 410 dead-letters the item sent AND the endpoint's other pending item
        assert await d.run_once() == {"dead_letter": 1}
        assert outcomes == ["dead_letter", "dead_letter"]
        assert wh_store.kv_get(disabled_key(receiver.url))
        assert wh_store.outbox_pending_count() == 0
        # later requests for a disabled endpoint are dead-lettered without a request
        _enqueue(wh_store, settings, receiver.url, "wine")
        assert await d.run_once() == {"dead_letter": 1}
        assert len(receiver.attempts) == 1
        dead = list_deliveries(wh_store, "dead")
        assert len(dead) == 3 and "410" in (dead[0].last_error or "")
        # the operator retries: the endpoint is re-enabled and all arrive
        assert retry_dead(wh_store) == 3
        await _drain(d, clock, 4)
    assert outcomes == ["dead_letter"] * 3 + ["delivered"] * 3
    assert len(receiver.ids()) == 3


async def test_max_attempts_dead_letter_then_retry(
    wh_store: Store, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    [event_id] = _enqueue(wh_store, settings, receiver.url, "iris")
    receiver.default = 500
    d, outcomes = _dispatcher(wh_store, settings, receiver.url, clock)
    async with d:
        await _drain(d, clock, settings.webhook_max_attempts + 2)
        assert outcomes == ["failed"] * (settings.webhook_max_attempts - 1) + ["dead_letter"]
        [dead] = list_deliveries(wh_store, "dead")
        assert dead.attempts == settings.webhook_max_attempts
        assert dead.last_error.startswith("HTTP 500")
        receiver.default = 200
        assert retry_dead(wh_store, [dead.id]) == 1
        assert retry_dead(wh_store, [dead.id]) == 0  # no longer dead
        assert await d.run_once() == {"delivered": 1}
    assert receiver.ids() == {event_id: 1}
    with pytest.raises(ValueError):
        list_deliveries(wh_store, "lost")


async def test_timeout_is_a_retryable_failure(
    wh_store: Store, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    _enqueue(wh_store, settings, receiver.url, "iris")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        d, _ = _dispatcher(wh_store, settings, receiver.url, clock, client=client)
        assert await d.run_once() == {"failed": 1}
    [item] = list_deliveries(wh_store, "pending")
    assert "ReadTimeout" in (item.last_error or "")


class _CrashAfterSend:
    """A store whose ``outbox_mark_delivered`` fails: the process 'dies' after the send."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def outbox_mark_delivered(self, item_id: int) -> None:
        raise RuntimeError("killed between send and mark")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return getattr(self._store, name)


async def test_restart_delivers_what_the_old_dispatcher_left(
    store_url: str, settings: Settings, receiver: Receiver, clock: FakeClock
) -> None:
    old = open_store(store_url)
    try:
        crashed_id, pending_id = _enqueue(old, settings, receiver.url, "iris", "wine")
        # the old dispatcher leased one item, sent it, and died before marking it
        d_old, _ = _dispatcher(_CrashAfterSend(old), settings, receiver.url, clock, batch_size=1)  # type: ignore[arg-type]
        async with d_old:
            with pytest.raises(RuntimeError):
                await d_old.run_once()
        assert receiver.ids() == {crashed_id: 1}
    finally:
        old.close()

    new = open_store(store_url)
    try:
        async with _dispatcher(new, settings, receiver.url, clock)[0] as d:
            assert await d.run_once() == {"delivered": 1}  # the never-claimed one
            assert receiver.ids()[pending_id] == 1
            clock.advance(d.lease_seconds + 1)  # the crashed item's lease runs out
            assert await d.run_once() == {"delivered": 1}
            assert await d.run_once() == {}
    finally:
        new.close()
    # at least once: the crashed item was redelivered with the same webhook-id
    assert receiver.ids() == {crashed_id: 2, pending_id: 1}
    assert receiver.bad_signatures == 0


async def test_run_forever_delivers_and_stops(
    wh_store: Store, settings: Settings, receiver: Receiver
) -> None:
    outcomes: list[str] = []
    d = WebhookDispatcher(wh_store, [endpoint(receiver.url)], settings, on_outcome=outcomes.append)
    stop = asyncio.Event()
    async with d:
        task = asyncio.create_task(d.run_forever(stop, poll_seconds=0.05))
        await asyncio.sleep(0.1)
        ids = _enqueue(wh_store, settings, receiver.url, "iris", "wine")
        for _ in range(100):
            if len(receiver.delivered) == 2:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 2.0)
    assert receiver.ids() == dict.fromkeys(ids, 1)
    assert outcomes == ["delivered", "delivered"]


def test_backoff_delay_full_jitter() -> None:
    assert backoff_delay(1, 1.0, 300.0, lambda: 1.0) == 1.0
    assert backoff_delay(4, 1.0, 300.0, lambda: 1.0) == 8.0
    assert backoff_delay(20, 1.0, 300.0, lambda: 1.0) == 300.0
    assert backoff_delay(3, 1.0, 300.0, lambda: 0.5) == 2.0
    assert 0.0 <= backoff_delay(5, 1.0, 300.0) < 16.0
