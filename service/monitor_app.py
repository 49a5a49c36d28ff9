"""The monitor on its own: ``driftgate monitor run [--host H] [--port 3001]``.

For stores shared by several gateway replicas (set ``DRIFTGATE_MONITOR_IN_GATEWAY=false`` on
them): runs one :class:`~service.monitor_node.MonitorNode` (active for the partitions whose
leases it holds, standby for the others) behind a small HTTP server for the orchestrator
and Prometheus: ``/livez``, ``/readyz`` (503 while the store does not answer), ``/metrics``
(the monitor's metrics of this process only) and ``/status`` (what it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.monitor_service import build_node

__all__ = ["create_app", "serve"]

log = logging.getLogger(__name__)


def create_app() -> Starlette:
    settings, store, node = build_node()
    stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(node.run(stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
            store.close()

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await asyncio.to_thread(store.ping)
        except Exception:
            return JSONResponse({"status": "store_unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "active": node.active})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> Response:
        body: dict[str, Any] = node.status()
        return JSONResponse(body)

    routes = [Route("/livez", livez), Route("/readyz", readyz), Route("/metrics", metrics),
              Route("/status", status)]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(host: str = "0.0.0.0", port: int = 3001) -> int:
    """Run the monitor until SIGTERM/SIGINT (its partitions are handed over on the way)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", lifespan="on")
    return 0
