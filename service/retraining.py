"""Wiring of retrain requests: monitor events -> outbox (with cooldown) -> signed webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from service.config import Settings
from service.metrics import MonitorMetrics
from service.monitor_runner import ModelEvent
from service.store.base import DeliveryStore, MonitorStateStore
from service.store.entities import Lease
from service.webhooks.dispatcher import WebhookDispatcher
from service.webhooks.outbox import RetrainRequests
from service.webhooks.payload import drift_evidence

log = logging.getLogger(__name__)

SUPPRESSED_EVENT = "retrain_suppressed"


class RetrainStore(DeliveryStore, MonitorStateStore, Protocol):
    """The outbox, the key-value table (episodes) and the event table."""


class Retraining:
    """Owns the retrain-request outbox writer and the webhook dispatcher of the monitor."""

    def __init__(
        self, store: RetrainStore, settings: Settings, metrics: MonitorMetrics | None
    ) -> None:
        endpoints = settings.serving().webhooks
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.requests = RetrainRequests(store, endpoints, settings)
        self.dispatcher = WebhookDispatcher(
            store, endpoints, settings, on_outcome=self._count
        )

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(outcome).inc()

    def request(
        self, model: str, version: str, trigger: str, events: list[ModelEvent],
        reference_fingerprint: str | None, fence: Lease | None = None,
    ) -> list[str]:
        """Queue a retrain request (with ``fence``: only while the monitor holds it)."""
        evidence = drift_evidence(e.event for e in events)
        now = time.time()
        out = self.requests.submit(model, version, trigger, evidence, reference_fingerprint, now,
                                   fence=fence)
        if out.status == "suppressed" and out.reason == "cooldown":
            self._report_cooldown(model, version, out.event_id, evidence, now, fence)
        return [out.event_id] if out.status == "queued" and out.event_id else []

    def _report_cooldown(self, model: str, version: str, previous: str | None,
                         evidence: dict[str, object], now: float,
                         fence: Lease | None = None) -> None:
        """An episode's request that the rate limit (not an open retrain) suppressed."""
        window = evidence.get("window") or {}
        first = window.get("first_prediction_id") if isinstance(window, dict) else None
        self.store.append_events([{
            "model": model, "version": version, "kind": SUPPRESSED_EVENT, "feature": None,
            "detector": "cooldown", "statistic": None,
            "threshold": self.settings.retrain_cooldown_seconds,
            "record_id": first or f"{previous}:{now}", "ts": now,
            "details": {"reason": "cooldown", "previous_request": previous,
                        "cooldown_seconds": self.settings.retrain_cooldown_seconds,
                        "evidence": evidence},
        }], fence=fence)  # fmt: skip

    async def _deliver_due(self) -> bool:
        """One delivery round; True when the batch was full (more may be due)."""
        try:
            outcomes = await self.dispatcher.run_once(time.time())
            if self.metrics is not None:
                pending = await asyncio.to_thread(self.store.outbox_pending_count)
                self.metrics.webhook_pending.set(pending)
            return sum(outcomes.values()) >= self.dispatcher.batch_size
        except Exception:  # the outbox is durable: the next round retries
            log.exception("webhook dispatch failed")
            return False

    async def run(
        self, stop: asyncio.Event, poll_seconds: float = 0.5,
        active: Callable[[], bool] | None = None,
    ) -> None:
        """Deliver due webhooks until ``stop`` is set; keep the pending gauge current.
        While ``active()`` is false (a standby monitor) nothing is polled."""
        try:
            while not stop.is_set():
                busy = False
                if active is None or active():
                    busy = await self._deliver_due()
                if busy:
                    continue  # a full batch: more may be due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)
        finally:
            await self.dispatcher.aclose()
