"""The BentoML entry service: ``bentoml serve service.gateway:Gateway``.

Each worker loads the served models once, opens the prediction log and binds the HTTP
routes of :mod:`service.api` (mounted at ``/``) to its objects.
"""

from __future__ import annotations

import bentoml
from threadpoolctl import threadpool_limits

from service.api import app
from service.api_context import GatewayContext, bind
from service.config import get_settings
from service.core import GatewayCore, NullSink, RecordSink
from service.metrics import gateway_metrics
from service.routing import Router
from service.store.factory import open_store
from service.store.writer import GroupCommitWriter

SETTINGS = get_settings()


@bentoml.service(
    name="driftgate",
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
    metrics={"enabled": True},
)
@bentoml.asgi_app(app, path="/")
class Gateway:
    """Serves the registered models over HTTP and logs every prediction."""

    def __init__(self) -> None:
        # One-row predictions gain nothing from BLAS threads; N workers x N threads thrash.
        threadpool_limits(1)
        settings = get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        metrics = gateway_metrics()
        self.store = open_store(settings.resolved_store_url) if settings.logging_enabled else None
        self.writer: GroupCommitWriter | None = None
        sink: RecordSink = NullSink()
        if self.store is not None:
            self.writer = GroupCommitWriter(
                self.store,
                settings.durability,
                max_pending=settings.log_max_pending,
                max_delay_ms=settings.async_max_delay_ms,
                on_commit=lambda seconds, _n: metrics.log_write.observe(seconds),
            )
            sink = self.writer
        core = GatewayCore(Router(settings.serving()), sink, metrics, settings.max_rows)
        self.core = core
        bind(GatewayContext(core=core, settings=settings, store=self.store))

    @bentoml.on_shutdown
    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            self.store.close()
