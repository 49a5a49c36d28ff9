"""The gateway's HTTP routes (FastAPI, mounted into the BentoML entry service at ``/``).

The service binds a :class:`GatewayContext` per worker with :func:`bind`; routes read it
through :func:`context`. Errors are rendered by :mod:`service.http`.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from models.registry import list_models
from service.api_context import context, require_store
from service.errors import APIError, not_found
from service.feedback import FeedbackRequest, apply_feedback
from service.http import (
    FastJSONResponse,
    current_trace_id,
    install_error_handlers,
    parse_as,
    read_json,
    request_id,
)
from service.store.base import Store
from service.v2 import router as v2_router


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


class ErrorBody(BaseModel):
    type: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 422)
}

app = FastAPI(title="driftgate", version="0.1.0", openapi_url=None, docs_url=None)
install_error_handlers(app)


@app.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
        }
    },
    summary="Predict one or more rows",
)
async def predict(request: Request) -> JSONResponse:
    ctx = context()
    try:
        body = await read_json(request, ctx.settings.max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise APIError(422, "invalid_body", "expected {'model': str, 'inputs': [...]}")
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise APIError(422, "invalid_body", "'version' must be a string")
        unexpected = body.keys() - {"model", "version", "inputs"}
        if unexpected:
            raise APIError(422, "invalid_body", f"unexpected fields {sorted(unexpected)}")
    except APIError as error:
        ctx.core.count_error(error)
        raise
    result = await ctx.core.predict(
        body["model"], version, body.get("inputs"), request_id(request), current_trace_id()
    )
    return FastJSONResponse(result.as_json())


@app.post("/feedback", responses=ERRORS, summary="Send ground-truth labels for predictions")
async def feedback(request: Request) -> JSONResponse:
    ctx = context()
    store = require_store(ctx)
    payload = parse_as(FeedbackRequest, await read_json(request, ctx.settings.max_body_bytes))
    result = await apply_feedback(payload, store, ctx.core)
    return JSONResponse(result)


@app.get("/models", summary="Registered models, versions, aliases and routing")
async def models() -> JSONResponse:
    ctx = context()
    entries = await to_thread.run_sync(list_models)
    out: dict[str, Any] = {}
    for entry in entries:
        item = out.setdefault(entry.name, {"name": entry.name, "versions": []})
        item["versions"].append(entry.summary())
    for name, item in out.items():
        served = ctx.core.router.models.get(name)
        item["serving"] = served.describe() if served else None
    return JSONResponse({"models": list(out.values())})


@app.get("/models/{name}", responses=ERRORS, summary="One model: versions, cards and lineage")
async def model_detail(name: str) -> JSONResponse:
    ctx = context()
    entries = await to_thread.run_sync(list_models, name)
    entries = [e for e in entries if e.name == name]
    if not entries:
        raise not_found("unknown_model", f"unknown model {name!r}")
    served = ctx.core.router.models.get(name)
    versions = [
        {**e.summary(), "card": e.card.model_dump(), "lineage": e.card.lineage.model_dump()}
        for e in entries
    ]
    return JSONResponse(
        {"name": name, "versions": versions, "serving": served.describe() if served else None}
    )


@app.get("/monitoring/status", summary="Drift state, scores, performance and monitor lag")
async def monitoring_status(model: str | None = Query(None)) -> JSONResponse:
    ctx = context()
    store = require_store(ctx)
    names = [model] if model else sorted(ctx.core.router.models)
    if model and model not in ctx.core.router.models:
        raise not_found("unknown_model", f"unknown model {model!r}")
    status = await to_thread.run_sync(_read_status, store, names)
    return JSONResponse(status)


def _read_status(store: Store, names: list[str]) -> dict[str, Any]:
    monitor = store.kv_get("monitor:status") or {}
    models = {name: store.kv_get(f"monitor:status:{name}") for name in names}
    return {"monitor": monitor, "models": models}


@app.get("/monitoring/events", summary="Drift, performance and data-quality events")
async def monitoring_events(
    model: str | None = Query(None),
    since: float | None = Query(None, description="Unix seconds; events at or after."),
    limit: int = Query(1000, ge=1, le=10_000),
) -> JSONResponse:
    store = require_store(context())
    events = await to_thread.run_sync(lambda: store.read_events(model, since, limit))
    return JSONResponse({"events": events})


@app.post(
    "/alerts/alertmanager", responses=ERRORS, summary="Alertmanager webhook receiver (v4)"
)
async def alertmanager(request: Request) -> JSONResponse:
    ctx = context()
    if ctx.alerts is None:
        raise APIError(409, "logging_disabled", "the prediction log is switched off")
    try:
        body = await read_json(request, ctx.settings.max_body_bytes)
    except APIError as error:
        raise APIError(error.status, "invalid_alert_payload", error.message) from None
    try:
        result = await to_thread.run_sync(ctx.alerts.receive, body)
    except APIError:
        raise
    except Exception as exc:  # transient (store) failure: 503 makes Alertmanager retry
        raise APIError(503, "unavailable", f"could not record the alerts: {exc}") from exc
    return JSONResponse(result)


app.include_router(v2_router)
from service.routing_api import router as routing_router  # noqa: E402 - kept with its include

app.include_router(routing_router)
