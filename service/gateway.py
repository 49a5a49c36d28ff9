"""The BentoML entry service: ``bentoml serve service.gateway:Gateway``.

Each worker loads the served models once, opens the prediction log and binds the HTTP
routes of :mod:`service.api` (mounted at ``/``) to its objects.
"""

from __future__ import annotations

import bentoml
from threadpoolctl import threadpool_limits

from service.api import app
from service.api_context import build_context, require_keys
from service.auth.guard import AuthGuard
from service.config import get_settings
from service.connection_limits import limit_connections
from service.fast_routes import app as fast_app
from service.http import NewlinePathGuard
from service.lifecycle import exit_with_parent
from service.monitor_service import Monitor
from service.request_metrics import EndpointTemplates, bound_endpoint_labels
from service.tail_latency import cancel_request_timers, freeze_startup_objects
from service.tracing import bentoml_tracing_config

SETTINGS = get_settings()
require_keys(SETTINGS)
cancel_request_timers(SETTINGS.tail_latency_fix)
limit_connections(SETTINGS.header_timeout_seconds, SETTINGS.keepalive_timeout_seconds,
                  SETTINGS.max_connections)
bound_endpoint_labels(EndpointTemplates(app.openapi()["paths"]))


def _fast_predict_route(cls: type) -> type:
    """Mount the lean ``POST /predict`` ahead of FastAPI unless switched off."""
    if SETTINGS.fast_predict_route:
        return bentoml.asgi_app(fast_app, path="/")(cls)
    return cls


@bentoml.service(
    name="driftgate",
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
    metrics={"enabled": True},
    tracing=bentoml_tracing_config(),
)
@bentoml.asgi_app(app, path="/")
@_fast_predict_route
class Gateway:
    """Serves the registered models over HTTP and logs every prediction."""

    # the monitor also delivers webhooks, monitoring on or off; replicas whose monitor runs
    # on its own (`driftgate monitor run`) set DRIFTGATE_MONITOR_IN_GATEWAY=false
    if SETTINGS.logging_enabled and SETTINGS.monitor_in_gateway:
        monitor = bentoml.depends(Monitor)

    def __init__(self) -> None:
        # One-row predictions gain nothing from BLAS threads; N workers x N threads thrash.
        threadpool_limits(1)
        exit_with_parent()
        self.context = build_context(get_settings())
        self.core = self.context.core
        if self.context.settings.tail_latency_fix:
            freeze_startup_objects()

    def __is_ready__(self) -> bool:
        """``/readyz``: not ready while the store does not answer (BentoML runs this in a
        thread)."""
        return self.context.ready()

    @bentoml.on_shutdown
    async def close(self) -> None:
        await self.context.close()


Gateway.add_asgi_middleware(AuthGuard)  # type: ignore[attr-defined]  # bentoml's stubs
Gateway.add_asgi_middleware(NewlinePathGuard)  # type: ignore[attr-defined]
