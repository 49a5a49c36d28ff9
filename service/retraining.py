"""Wiring of retrain requests: monitor events -> outbox (with cooldown) -> signed webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from service.config import Settings
from service.metrics import MonitorMetrics
from service.monitor_runner import ModelEvent
from service.store.base import DeliveryStore
from service.webhooks.dispatcher import WebhookDispatcher
from service.webhooks.outbox import RetrainRequests
from service.webhooks.payload import drift_evidence

log = logging.getLogger(__name__)


class Retraining:
    """Owns the retrain-request outbox writer and the webhook dispatcher of the monitor."""

    def __init__(
        self, store: DeliveryStore, settings: Settings, metrics: MonitorMetrics | None
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
        reference_fingerprint: str | None,
    ) -> list[str]:
        evidence = drift_evidence(e.event for e in events)
        return self.requests.request(
            model, version, trigger, evidence, reference_fingerprint, time.time()
        )

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.5) -> None:
        """Deliver due webhooks until ``stop`` is set; keep the pending gauge current."""
        try:
            while not stop.is_set():
                busy = False
                try:
                    outcomes = await self.dispatcher.run_once(time.time())
                    busy = sum(outcomes.values()) >= self.dispatcher.batch_size
                    if self.metrics is not None:
                        pending = await asyncio.to_thread(self.store.outbox_pending_count)
                        self.metrics.webhook_pending.set(pending)
                except Exception:  # the outbox is durable: the next round retries
                    log.exception("webhook dispatch failed")
                if busy:
                    continue  # a full batch: more may be due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)
        finally:
            await self.dispatcher.aclose()
