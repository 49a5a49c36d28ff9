"""The one place where the prediction path's errors are counted.

Every error answered by a prediction route (``POST /predict``, ``POST /feedback``, the Open
Inference Protocol's ``infer``) is counted once, here, in
``driftgate_prediction_errors_total{model, reason}``, when it leaves the route: the routes
themselves only raise. The model label is the error's own (``APIError.model``, set by the
part that knew it), else the route's ``{name}``, else ``unknown``. Authentication and
authorisation failures (401, 403) are counted by the auth guard in
``driftgate_auth_failures_total`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.api_context import GatewayContext, gateway_context
from service.errors import APIError
from service.http import GuardedRoute

NOT_COUNTED = frozenset({401, 403})


def count_prediction_error(ctx: GatewayContext, error: APIError, model: str | None) -> None:
    """Count ``error`` once (``model`` when the error names none)."""
    if error.status not in NOT_COUNTED:
        ctx.core.count_error(error, error.model or model)


class CountedRoute(GuardedRoute):
    """A prediction route: the errors it answers are counted by
    :func:`count_prediction_error` (a bug too, as the 500 it becomes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except APIError as error:
                ctx = _context(request)
                if ctx is not None:
                    count_prediction_error(ctx, error, request.path_params.get("name"))
                raise

        return counted


def _context(request: Request) -> GatewayContext | None:
    """The context the route's ``Context`` dependency received (a test of the routes alone
    overrides that dependency); None while the gateway is starting."""
    overrides = getattr(request.app, "dependency_overrides", {})
    try:
        return overrides.get(gateway_context, gateway_context)()
    except APIError:
        return None
