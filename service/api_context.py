"""The per-worker objects the HTTP routes use, bound once by the BentoML service."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Annotated, cast

import bentoml
from bentoml.exceptions import BentoMLException
from fastapi import Depends

from service.alerts import AlertReceiver
from service.auth.keyring import KeyRing
from service.config import Settings
from service.core import GatewayCore, NullSink, RecordSink
from service.errors import APIError
from service.metrics import (
    RoutingMetrics,
    gateway_metrics,
    routing_metrics,
    start_gateway_series,
)
from service.routing import FailureHook, Router
from service.routing_state import FILE_ACTOR, RoutingAdmin
from service.routing_watch import FileRouting, RoutingSource, RoutingWatcher, StoreRouting
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
    watcher: RoutingWatcher | None = None
    auth: KeyRing | None = None
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
        if self.watcher is not None:
            self.watcher.stop()
        if self.auth is not None:
            self.auth.stop()
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
    live = routing_metrics()
    router = Router(on_failure=_record_failure(store, live))
    source: RoutingSource = FileRouting(serving)
    if store is not None:  # the file is applied once, to a store whose routing was never set
        if store.routing_revision() == 0:
            RoutingAdmin(store, FILE_ACTOR).apply(
                serving, only_if_unset=True, reason=f"initial routing from {settings.config_file}"
            )
        source = StoreRouting(store)
    watcher = RoutingWatcher(router, source, settings.routing_poll_seconds, live)
    watcher.check()  # serve nothing before the first routing is loaded
    watcher.start()
    core = GatewayCore(router, sink, metrics, settings.max_rows)
    start_gateway_series(metrics, {
        name: (sorted({m.version for m in (s.default, s.canary, s.shadow) if m is not None}),
               s.default.card.feature_names)
        for name, s in core.router.models.items()})
    alerts = None
    if store is not None:
        retrain = RetrainRequests(store, serving.webhooks, settings)
        alerts = AlertReceiver(store, retrain, router.reference_fingerprint, ServedNames(router))
    return GatewayContext(core=core, settings=settings, store=store, writer=writer,
                          alerts=alerts, watcher=watcher, auth=key_ring(store, settings))


OPEN_WARNING = (
    "THE GATEWAY IS OPEN: the store holds no API key, so anyone who can reach this port can "
    "predict, send labels, read every model and change routing. Create a key "
    "(driftgate keys create --scope admin) and set DRIFTGATE_REQUIRE_AUTH=true in production."
)


def require_keys(settings: Settings) -> None:
    """Refuse to start (``DRIFTGATE_REQUIRE_AUTH``) while the store holds no API key; run
    where ``bentoml serve`` imports the service, so the server exits instead of restarting
    workers that cannot start."""
    if not settings.require_auth:
        return
    store = open_store(settings.resolved_store_url) if settings.logging_enabled else None
    try:
        key_ring(store, settings, start=False)
    finally:
        if store is not None:
            store.close()


def key_ring(store: Store | None, settings: Settings, start: bool = True) -> KeyRing:
    """This worker's API keys, loaded now and refreshed in the background; an open gateway
    says so loudly, and ``require_auth`` refuses to start one."""
    ring = KeyRing(store, settings.auth_refresh_seconds)
    if store is not None:
        ring.load(store.key_list())  # a store that does not answer fails the start
    if not ring.enabled:
        if settings.require_auth:
            raise RuntimeError("DRIFTGATE_REQUIRE_AUTH is set but the store holds no API key"
                               + ("" if store is not None else " (the prediction log, which "
                                  "holds the keys, is switched off)")
                               + ": create one with driftgate keys create --scope admin")
        log.warning(OPEN_WARNING)
    if start:
        ring.start()
    return ring


class ServedNames(Collection[str]):
    """The model names the router serves now (a live view, not a copy)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def __contains__(self, name: object) -> bool:
        return name in self.router.models

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.router.models))

    def __len__(self) -> int:
        return len(self.router.models)


def _record_failure(store: Store | None, metrics: RoutingMetrics) -> FailureHook:
    """The router's hook for a version given up: a metric, a log line and an event."""

    def record(model: str, version: str, stage: str, error: str) -> None:
        metrics.load_failures.labels(model).inc()
        log.error("%s:%s is not routed: it failed to %s: %s", model, version, stage, error)
        if store is None:
            return
        try:
            store.append_events([{
                "model": model, "version": version, "kind": "version_unavailable",
                "ts": time.time(),
                "details": {"stage": stage, "error": error, "worker_pid": os.getpid()},
            }])  # fmt: skip
        except Exception:  # the event is best effort; the version stays unrouted anyway
            log.exception("could not record the failure of %s:%s", model, version)

    return record


def gateway_context() -> GatewayContext:
    """This worker's context, held by the BentoML service instance that built it (FastAPI
    dependency; a test of the routes alone overrides it with ``app.dependency_overrides``)."""
    try:
        service = bentoml.get_current_service()
    except BentoMLException:
        raise APIError(503, "not_ready", "the gateway is starting") from None
    return cast(GatewayContext, service.context)


Context = Annotated[GatewayContext, Depends(gateway_context)]
"""A route parameter of this type receives the worker's :class:`GatewayContext`."""


def require_store(ctx: GatewayContext) -> Store:
    if ctx.store is None:
        raise APIError(409, "logging_disabled", "the prediction log is switched off")
    return ctx.store
