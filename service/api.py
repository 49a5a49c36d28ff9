"""The gateway's HTTP routes (FastAPI, mounted into the BentoML entry service at ``/``).

The service binds a :class:`GatewayContext` per worker with :func:`bind`; routes read it
through :func:`context`. Errors are rendered by :mod:`service.http`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from models.registry import list_models
from service.api_context import Context, require_store
from service.auth.guard import check_model, principal_of
from service.calibration_view import calibration
from service.error_counting import CountedRoute
from service.errors import APIError, not_found
from service.feedback import FeedbackRequest, apply_feedback
from service.http import (
    FastJSONResponse,
    GuardedRoute,
    current_trace_id,
    install_error_handlers,
    parse_as,
    read_json,
    request_id,
)
from service.monitor_runner import KV_MODEL_STATUS
from service.monitor_status import read_monitor_status
from service.openapi_docs import AlertmanagerPayload, errors, json_body
from service.partitions import Partitioning
from service.request_metrics import BENTOML_PATHS
from service.store.base import Store
from service.times import since_parameter
from service.v2 import infer_router as v2_infer_router
from service.v2 import router as v2_router

log = logging.getLogger(__name__)


class PredictRequest(BaseModel):
    model: str = Field(description="Registered model name.", examples=["breast-cancer"])
    version: str | None = Field(None, description="Version or alias; default routing if unset.")
    inputs: list[dict[str, Any]] = Field(description="One object per row, feature -> value.")


class PredictResponse(BaseModel):
    model: str
    version: str = Field(description="The version that served the request.")
    ids: list[str] = Field(description="One prediction id per row, for /feedback.")
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(
        None, description="Class probabilities per row (classifiers)."
    )


app = FastAPI(title="driftgate", version="0.1.0", openapi_url=None, docs_url=None)
app.router.route_class = GuardedRoute
install_error_handlers(app)
prediction_router = APIRouter(route_class=CountedRoute)  # its errors are counted


@prediction_router.post(
    "/predict",
    response_model=PredictResponse,
    responses=errors(400, 404, 413, 415, 422, 500, 503),
    openapi_extra=json_body(PredictRequest),
    summary="Predict one or more rows",
)
async def predict(request: Request, ctx: Context) -> JSONResponse:
    body = await read_json(request, ctx.settings.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise APIError(422, "invalid_body", "expected {'model': str, 'inputs': [...]}")
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        raise APIError(422, "invalid_body", "'version' must be a string", model=body["model"])
    unexpected = body.keys() - {"model", "version", "inputs"}
    if unexpected:
        raise APIError(422, "invalid_body", f"unexpected fields {sorted(unexpected)}",
                       model=body["model"])
    check_model(request.scope, body["model"])
    result = await ctx.core.predict(
        body["model"], version, body.get("inputs"), request_id(request), current_trace_id()
    )
    return FastJSONResponse(result.as_json())


@prediction_router.post(
    "/feedback", responses=errors(400, 409, 413, 415, 422, 503),
    openapi_extra=json_body(FeedbackRequest), summary="Send ground-truth labels for predictions",
)
async def feedback(request: Request, ctx: Context) -> JSONResponse:
    store = require_store(ctx)
    payload = parse_as(FeedbackRequest, await read_json(request, ctx.settings.max_body_bytes))
    principal = principal_of(request.scope)
    allowed = principal.models if principal is not None else None
    result = await apply_feedback(payload, store, ctx.core, allowed)
    return JSONResponse(result)


app.include_router(prediction_router)


@app.get("/models", summary="Registered models, versions, aliases and routing")
async def models(ctx: Context) -> JSONResponse:
    entries = await to_thread.run_sync(list_models)
    out: dict[str, Any] = {}
    for entry in entries:
        item = out.setdefault(entry.name, {"name": entry.name, "versions": []})
        item["versions"].append(entry.summary())
    for name, item in out.items():
        served = ctx.core.router.models.get(name)
        item["serving"] = served.describe() if served else None
    return JSONResponse({"models": list(out.values())})


@app.get("/models/{name}", responses=errors(404),
         summary="One model: versions, cards and lineage")
async def model_detail(name: str, ctx: Context) -> JSONResponse:
    entries = await to_thread.run_sync(list_models, name)
    entries = [e for e in entries if e.name == name]
    if not entries:
        raise not_found("unknown_model", f"unknown model {name!r}")
    served = ctx.core.router.models.get(name)
    routed = {m.version for m in served.routed()} if served else set()
    promoted = await to_thread.run_sync(_promotions, ctx.store, name, [e.version for e in entries])
    versions = [
        {**e.summary(), "card": e.card.model_dump(),
         "lineage": {**e.card.lineage.model_dump(), "promotions": promoted.get(e.version, [])},
         "calibration": await _calibration(name, e.version) if e.version in routed else None}
        for e in entries
    ]
    return JSONResponse(
        {"name": name, "versions": versions, "serving": served.describe() if served else None}
    )


def _promotions(store: Store | None, name: str, versions: list[str]) -> dict[str, list[Any]]:
    """Each version's promotions by rollouts (kept in the store: the card is immutable);
    best effort, the model's description does not depend on the store answering."""
    from service.rollout import KV_PROMOTIONS

    if store is None:
        return {}
    try:
        return {v: store.kv_get(KV_PROMOTIONS.format(model=name, version=v)) or []
                for v in versions}
    except Exception as exc:
        log.warning("no promotion records of %s: %r", name, exc)
        return {}


async def _calibration(name: str, version: str) -> dict[str, Any] | None:
    """The drift thresholds a served version's reference gives (None if they cannot be
    computed: the model answers, the monitor reports why)."""
    try:
        return await to_thread.run_sync(calibration, name, version)
    except Exception as exc:
        log.warning("no calibration for %s:%s: %r", name, version, exc)
        return None


@app.get("/monitoring/status", responses=errors(404, 409, 422, 503),
         summary="Drift state, scores, performance and monitor lag")
async def monitoring_status(ctx: Context, model: str | None = Query(None)) -> JSONResponse:
    store = require_store(ctx)
    names = [model] if model else sorted(ctx.core.router.models)
    if model and model not in ctx.core.router.models:
        raise not_found("unknown_model", f"unknown model {model!r}")
    partitioning = Partitioning.from_settings(ctx.settings)
    status = await to_thread.run_sync(_read_status, store, names, partitioning)
    return JSONResponse(status)


def _read_status(store: Store, names: list[str], partitioning: Partitioning) -> dict[str, Any]:
    monitor = read_monitor_status(store, partitioning)
    models = {name: store.kv_get(KV_MODEL_STATUS.format(model=name)) for name in names}
    return {"monitor": monitor, "models": models}


@app.get("/monitoring/events", responses=errors(409, 422, 503),
         summary="Drift, performance and data-quality events")
async def monitoring_events(
    ctx: Context,
    model: str | None = Query(None),
    since: str | None = Query(
        None, description="Events at or after: unix seconds or ISO 8601 (UTC if no zone).",
        examples=["2026-11-01T00:00:00Z", "1761955200"],
    ),
    limit: int = Query(1000, ge=1, le=10_000),
) -> JSONResponse:
    store = require_store(ctx)
    start = since_parameter(since)
    events = await to_thread.run_sync(lambda: store.read_events(model, start, limit))
    return JSONResponse({"events": events})


@app.post(
    "/alerts/alertmanager", responses=errors(400, 409, 413, 415, 422, 503),
    openapi_extra=json_body(AlertmanagerPayload), summary="Alertmanager webhook receiver (v4)",
)
async def alertmanager(request: Request, ctx: Context) -> JSONResponse:
    if ctx.alerts is None:
        raise APIError(409, "logging_disabled", "the prediction log is switched off")
    try:
        body = await read_json(request, ctx.settings.max_body_bytes)
    except APIError as error:
        if error.status != 400:
            raise
        raise APIError(400, "invalid_alert_payload", error.message) from None
    # a store failure is a 503 (GuardedRoute), which Alertmanager retries; a bug stays a 500
    result = await to_thread.run_sync(ctx.alerts.receive, body)
    return JSONResponse(result)


app.include_router(v2_router)
app.include_router(v2_infer_router)
from service.routing_api import router as routing_router  # noqa: E402 - kept with its include

app.include_router(routing_router)
from service.rollout_api import router as rollout_router  # noqa: E402 - kept with its include

app.include_router(rollout_router)
from service.audit_api import router as audit_router  # noqa: E402 - kept with its include

app.include_router(audit_router)

from service.explain_api import router as explain_router  # noqa: E402 - kept with its include

app.include_router(explain_router)

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BENTOML_PREFIXES = ("/static_content/", "/assets/")


class NoRoute(APIRoute):
    """Matches every path BentoML does not serve itself (BentoML adds ``/docs.json``, ``/``
    and its static files after the mounted apps, so those must stay unmatched here)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in BENTOML_PATHS or path.startswith(BENTOML_PREFIXES):
            return Match.NONE, {}
        # any path at all, also one with a newline that a path template's regex would miss
        return Match.FULL, {"endpoint": self.endpoint, "path_params": {"path": path}}


def _flat_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, also those of included routers (FastAPI keeps an included router as one
    entry of ``app.routes``; ours are included without a prefix of their own)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat_routes(inner.routes)
        else:
            yield route


async def no_route(request: Request) -> JSONResponse:
    """Declared last: an unknown path is a JSON 404, a known one with another method 405."""
    allowed = sorted({
        method
        for route in _flat_routes(app.routes)
        if not isinstance(route, NoRoute) and route.matches(request.scope)[0] == Match.PARTIAL
        for method in getattr(route, "methods", ())
    })
    if allowed:
        raise StarletteHTTPException(405, headers={"Allow": ", ".join(allowed)})
    raise StarletteHTTPException(404, f"no endpoint at {request.url.path}")


app.router.add_api_route("/{path:path}", no_route, methods=ANY_METHOD, include_in_schema=False,
                         route_class_override=NoRoute)
