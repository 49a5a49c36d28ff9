"""Delivers the webhook outbox: Standard Webhooks signatures, backoff, dead letters.

Delivery is AT LEAST ONCE. An item is marked delivered only after a 2xx response; if the
process dies between the response and the mark, the item's lease expires and it is sent
again with the SAME ``webhook-id`` (the event id), so receivers must deduplicate by
``webhook-id``. Every item ends up ``delivered`` or ``dead`` (never dropped); dead letters
are listed and requeued with :func:`list_deliveries` / :func:`retry_dead`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import httpx
from standardwebhooks import Webhook

from service.config import Settings, WebhookEndpoint
from service.store.base import OUTBOX_STATUSES, DeliveryStore, KeyValueStore, OutboxStore
from service.store.entities import OutboxItem

__all__ = [
    "Outcome",
    "WebhookDispatcher",
    "backoff_delay",
    "disabled_key",
    "enable_endpoint",
    "list_deliveries",
    "retry_dead",
    "sign_headers",
]

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "failed", "dead_letter"]
USER_AGENT = "driftgate-webhooks/1"


def disabled_key(url: str) -> str:
    return f"webhook:disabled:{url}"


def backoff_delay(
    attempts: int, base: float, max_backoff: float, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(max_backoff, base * 2**(attempts - 1))).

    ``attempts`` counts the attempts made so far (1 after the first failure).
    """
    return min(max_backoff, base * 2 ** max(attempts - 1, 0)) * rand()


def sign_headers(secret: Webhook, event_id: str, body: str, timestamp: float) -> dict[str, str]:
    """Standard Webhooks headers for one send of ``body``."""
    moment = datetime.fromtimestamp(int(timestamp), tz=UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": secret.sign(event_id, moment, body),
    }


class WebhookDispatcher:
    """Claims due outbox items (with a lease) and POSTs them to their endpoints.

    ``on_outcome`` is called once per attempt with ``delivered``, ``failed`` (will retry) or
    ``dead_letter``. ``clock`` gives the time for scheduling and the ``webhook-timestamp``
    (wall time in production: the store stamps enqueued and retried items with ``time.time()``).
    Several dispatchers (processes) may share one store: the lease keeps them apart.
    """

    def __init__(
        self,
        store: DeliveryStore,
        endpoints: Sequence[WebhookEndpoint],
        settings: Settings,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
        batch_size: int = 32,
        lease_seconds: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.endpoints = {e.url: e for e in endpoints}
        self.settings = settings
        self.on_outcome = on_outcome
        self.clock = clock
        self.batch_size = batch_size
        if lease_seconds is None:
            lease_seconds = settings.webhook_timeout_seconds * 3 + 10
        self.lease_seconds = lease_seconds
        self._signers = {e.url: Webhook(e.secret) for e in endpoints}
        self._rand = rand
        self._in_flight: set[int] = set()
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> WebhookDispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run_once(self, now: float | None = None) -> Counter[str]:
        """Deliver the items due at ``now``; returns the count of each outcome."""
        now = self.clock() if now is None else now
        items = await asyncio.to_thread(
            self.store.outbox_claim_due, now, self.batch_size, self.lease_seconds
        )
        if not items:
            return Counter()
        urls = {i.endpoint for i in items}
        disabled = await asyncio.to_thread(
            lambda: {u for u in urls if self.store.kv_get(disabled_key(u))}
        )
        self._in_flight = {i.id for i in items}
        outcomes = await asyncio.gather(*(self._deliver(i, now, disabled) for i in items))
        return Counter(outcomes)

    async def run_forever(self, stop_event: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """Poll until ``stop_event`` is set; a full batch is followed by another at once."""
        while not stop_event.is_set():
            try:
                done = await self.run_once()
                busy = sum(done.values()) >= self.batch_size
            except Exception:  # store outage etc.: leased items come back after the lease
                log.exception("webhook dispatch failed")
                busy = False
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=poll_seconds)

    async def _deliver(self, item: OutboxItem, now: float, disabled: set[str]) -> Outcome:
        endpoint = self.endpoints.get(item.endpoint)
        if endpoint is None:
            return await self._fail(item, now, "endpoint no longer configured", final=True)
        if item.endpoint in disabled:
            return await self._fail(item, now, "endpoint disabled (HTTP 410 Gone)", final=True)
        body = json.dumps(item.payload, separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **sign_headers(self._signers[item.endpoint], item.event_id, body, self.clock()),
        }
        try:
            response = await self._client.post(
                item.endpoint,
                content=body.encode(),
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
            )
        except Exception as exc:  # timeouts, refused connections, bad URLs: retry, then dead
            return await self._fail(item, now, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            await asyncio.to_thread(self.store.outbox_mark_delivered, item.id)
            return self._emit("delivered")
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code == 410:
            await asyncio.to_thread(self._disable, item.endpoint, now, error)
            return await self._fail(item, now, error, final=True)
        return await self._fail(item, now, error)

    def _disable(self, url: str, now: float, error: str) -> None:
        """Mark the endpoint gone and dead-letter its other pending items now."""
        self.store.kv_set(disabled_key(url), {"at": now, "error": error})
        log.warning("webhook endpoint %s answered 410 Gone; disabled", url)
        for other in self.store.outbox_list("pending", limit=1_000_000):
            if other.endpoint == url and other.id not in self._in_flight:
                self.store.outbox_mark_failed(other.id, "endpoint disabled (HTTP 410 Gone)", None)
                self._emit("dead_letter")

    async def _fail(self, item: OutboxItem, now: float, error: str, final: bool = False) -> Outcome:
        s = self.settings
        if final or item.attempts >= s.webhook_max_attempts:
            await asyncio.to_thread(self.store.outbox_mark_failed, item.id, error, None)
            log.warning("webhook %s to %s dead-lettered: %s", item.event_id, item.endpoint, error)
            return self._emit("dead_letter")
        delay = backoff_delay(
            item.attempts, s.webhook_backoff_seconds, s.webhook_max_backoff_seconds, self._rand
        )
        await asyncio.to_thread(self.store.outbox_mark_failed, item.id, error, now + delay)
        return self._emit("failed")

    def _emit(self, outcome: Outcome) -> Outcome:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:  # a metrics callback must not break delivery
                log.exception("on_outcome callback failed")
        return outcome


# -- sync helpers for the CLI (``driftgate webhooks list|retry``) ---------------------------


def list_deliveries(
    store: OutboxStore, status: str | None = None, limit: int = 1000
) -> list[OutboxItem]:
    """Outbox items, oldest first; ``status`` is ``pending``, ``delivered``, ``dead`` or None."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise ValueError(f"status must be one of {OUTBOX_STATUSES}, got {status!r}")
    return store.outbox_list(status, limit)


def retry_dead(store: DeliveryStore, ids: Sequence[int] | None = None, enable: bool = True) -> int:
    """Requeue dead letters (those in ``ids``, or all); returns how many.

    With ``enable`` the endpoints of the requeued items are re-enabled if a 410 disabled them
    (retrying is the operator saying the endpoint is back).
    """
    if enable:
        dead = store.outbox_list("dead", limit=1_000_000)
        wanted = None if ids is None else {int(i) for i in ids}
        for url in {i.endpoint for i in dead if wanted is None or i.id in wanted}:
            enable_endpoint(store, url)
    return store.outbox_retry(ids)


def enable_endpoint(store: KeyValueStore, url: str) -> bool:
    """Clear the 410 mark of an endpoint; True if it was disabled."""
    if store.kv_get(disabled_key(url)) is None:
        return False
    store.kv_set(disabled_key(url), None)
    return True
