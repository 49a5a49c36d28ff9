"""Bounded connections for each gateway worker: a header-read timeout, a keep-alive idle
timeout and a connection limit, on uvicorn's httptools protocol (what BentoML serves with
when httptools is installed, as driftgate requires).

uvicorn has a keep-alive timeout but none for a connection that never completes a request's
headers, so one client could hold hundreds of sockets (slowloris); nor a connection limit
short of ``limit_concurrency``, which BentoML does not expose. Installed once per process,
before the worker's server starts, like :mod:`service.tail_latency`.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = "_driftgate_connection_limits"


def limit_connections(
    header_timeout: float, keepalive_timeout: float, max_connections: int
) -> bool:
    """Patch uvicorn's httptools protocol; False if uvicorn or httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return False
    if getattr(HttpToolsProtocol, _INSTALLED, False):
        return True
    made = HttpToolsProtocol.connection_made
    headers_complete = HttpToolsProtocol.on_headers_complete
    response_complete = HttpToolsProtocol.on_response_complete
    lost = HttpToolsProtocol.connection_lost

    def arm(protocol: Any) -> None:
        disarm(protocol)
        protocol._driftgate_header_timer = protocol.loop.call_later(
            header_timeout, expire, protocol
        )

    def disarm(protocol: Any) -> None:
        timer = getattr(protocol, "_driftgate_header_timer", None)
        if timer is not None:
            timer.cancel()
            protocol._driftgate_header_timer = None

    def expire(protocol: Any) -> None:
        protocol._driftgate_header_timer = None
        if not protocol.transport.is_closing():
            protocol.transport.close()

    def connection_made(self: Any, transport: Any) -> None:
        made(self, transport)
        self.timeout_keep_alive = keepalive_timeout
        if len(self.connections) > max_connections:
            transport.close()  # over the limit: refuse at once, before reading anything
            return
        arm(self)  # the request's headers must arrive within header_timeout

    def on_headers_complete(self: Any) -> None:
        disarm(self)
        headers_complete(self)

    def on_response_complete(self: Any) -> None:
        response_complete(self)
        if not self.transport.is_closing():
            arm(self)  # and so must the next request's on this connection

    def connection_lost(self: Any, exc: Exception | None) -> None:
        disarm(self)
        lost(self, exc)

    HttpToolsProtocol.connection_made = connection_made  # type: ignore[method-assign]
    HttpToolsProtocol.on_headers_complete = on_headers_complete  # type: ignore[method-assign]
    HttpToolsProtocol.on_response_complete = on_response_complete  # type: ignore[method-assign]
    HttpToolsProtocol.connection_lost = connection_lost  # type: ignore[method-assign]
    setattr(HttpToolsProtocol, _INSTALLED, True)
    return True
