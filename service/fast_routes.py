"""A lean Starlette app for the hot path, ``POST /predict``, mounted ahead of FastAPI.

The FastAPI app in :mod:`service.api` declares ``/predict`` too (its OpenAPI entry, and the
route used when that app runs on its own); under BentoML this app answers first and skips
FastAPI's middleware stack and route matching, which cost about 15% of a gateway worker's
CPU at one row per request (py-spy under wrk load). The handler is the same function.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import api, api_context
from service.error_counting import count_prediction_error
from service.errors import APIError
from service.http import error_response, http_error, internal_error


async def predict(request: Request) -> Response:
    try:
        ctx = api_context.gateway_context()
    except APIError as error:  # starting
        return error_response(error)
    try:
        return await api.predict(request, ctx)
    except APIError as error:
        count_prediction_error(ctx, error, None)
        return error_response(error)
    except Exception as exc:  # a bug: still JSON, still counted
        bug = internal_error(exc)
        count_prediction_error(ctx, bug, None)
        return error_response(bug)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error(exc)


app = Starlette(
    routes=[Route("/predict", predict, methods=["POST"])],
    exception_handlers={HTTPException: _http_error},
)
