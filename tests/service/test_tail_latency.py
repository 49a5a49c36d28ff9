"""The timer fix: a completed request leaves no live 60 s timer behind (stock BentoML does)."""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from service.tail_latency import cancel_request_timers


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _live_timers_after_requests(n: int) -> int:
    async def run() -> int:
        middleware = TimeoutMiddleware(_app, timeout=60)

        async def send(message):
            return None

        for _ in range(n):
            await middleware({"type": "http"}, None, send)
        loop = asyncio.get_running_loop()
        return sum(1 for h in loop._scheduled if not h.cancelled())  # noqa: SLF001

    return asyncio.run(run())


def test_stock_middleware_leaks_timers_and_fix_cancels_them():
    try:
        cancel_request_timers(False)
        assert _live_timers_after_requests(50) == 50
        cancel_request_timers(True)
        assert _live_timers_after_requests(50) == 0
    finally:
        cancel_request_timers(True)
