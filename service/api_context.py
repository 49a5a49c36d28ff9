"""The per-worker objects the HTTP routes use, bound once by the BentoML service."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from service.alerts import AlertReceiver
from service.config import Settings
from service.core import GatewayCore, NullSink, RecordSink
from service.errors import APIError
from service.metrics import gateway_metrics, start_gateway_series
from service.routing import Router
from service.store.base import Store
from service.store.factory import open_store
from service.store.writer import GroupCommitWriter
from service.webhooks.outbox import RetrainRequests

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    core: GatewayCore
    settings: Settings
    store: Store | None
    writer: GroupCommitWriter | None = None
    alerts: AlertReceiver | None = None  # needs the store
    _ready: tuple[float, bool] = (-math.inf, False)  # (checked at, answer)

    def ready(self, max_age: float = 1.0) -> bool:
        """True while the store answers (checked at most once per ``max_age`` seconds):
        a gateway whose every prediction would fail with 503 is not ready. Blocking."""
        checked_at, answer = self._ready
        now = time.monotonic()
        if now - checked_at < max_age:
            return answer
        answer = True
        if self.store is not None:
            try:
                self.store.ping()
            except Exception as exc:
                log.warning("not ready: the store does not answer: %r", exc)
                answer = False
        self._ready = (now, answer)
        return answer

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            self.store.close()


def build_context(settings: Settings) -> GatewayContext:
    """Load the served models, open the log and its group-commit writer for one worker."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = gateway_metrics()
    store = open_store(settings.resolved_store_url) if settings.logging_enabled else None
    writer = None
    sink: RecordSink = NullSink()
    if store is not None:
        writer = GroupCommitWriter(
            store,
            settings.durability,
            max_pending=settings.log_max_pending,
            max_delay_ms=settings.async_max_delay_ms,
            on_commit=lambda seconds, _n: metrics.log_write.observe(seconds),
        )
        sink = writer
    serving = settings.serving()
    core = GatewayCore(Router(serving), sink, metrics, settings.max_rows)
    start_gateway_series(metrics, {
        name: (sorted({m.version for m in (s.default, s.canary, s.shadow) if m is not None}),
               s.default.card.feature_names)
        for name, s in core.router.models.items()})
    alerts = None
    if store is not None:
        retrain = RetrainRequests(store, serving.webhooks, settings)
        alerts = AlertReceiver(
            store, retrain, core.router.reference_fingerprint, set(core.router.models)
        )
    return GatewayContext(core=core, settings=settings, store=store, writer=writer, alerts=alerts)


_context: GatewayContext | None = None


def bind(ctx: GatewayContext | None) -> GatewayContext | None:
    """Make ``ctx`` the context of this process's routes; returns the previous one."""
    global _context
    previous, _context = _context, ctx
    return previous


def context() -> GatewayContext:
    if _context is None:
        raise APIError(503, "not_ready", "the gateway is starting")
    return _context


def require_store(ctx: GatewayContext) -> Store:
    if ctx.store is None:
        raise APIError(409, "logging_disabled", "the prediction log is switched off")
    return ctx.store
