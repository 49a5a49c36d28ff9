"""HTTP admin routes of the live routing (mounted by :mod:`service.api`).

``GET|PUT /models/{name}/routing``, ``POST /models/{name}/rollback``,
``GET /models/{name}/routing/history``. A change is written to the store; every gateway
worker of every replica applies it within ``routing_poll_seconds`` plus the time to load.
"""

from __future__ import annotations

import os
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api_context import Context, GatewayContext, require_store
from service.config import CanaryConfig, ServedModelConfig
from service.http import (
    GuardedRoute,
    client_actor,
    parse_as,
    read_json,
    read_optional_json,
)
from service.openapi_docs import errors, json_body
from service.routing_state import RoutingAdmin, document_of
from service.store.entities import RoutingChange

router = APIRouter(tags=["routing"], route_class=GuardedRoute)


class RoutingUpdate(BaseModel):
    """The routing fields to set; a field left out keeps its value, ``null`` clears the
    canary or the shadow."""

    model_config = ConfigDict(extra="forbid")

    default: str | None = Field(None, description="A version, an alias or 'latest'.")
    aliases: dict[str, str] | None = Field(None, description="Replaces every alias.")
    canary: CanaryConfig | None = None
    shadow: str | None = None
    reason: str | None = Field(None, description="Why; kept in the routing history.")
    expected_revision: int | None = Field(
        None, description="Refuse (409) unless the model's routing is at this revision."
    )


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


def _admin(ctx: GatewayContext, request: Request) -> RoutingAdmin:
    return RoutingAdmin(require_store(ctx), client_actor(request))


def _state(ctx: GatewayContext, admin: RoutingAdmin, name: str) -> dict[str, Any]:
    admin.versions(name)  # 404 for an unknown model
    spec, revision = admin.current(name)
    served = ctx.core.router.models.get(name)
    return {
        "name": name,
        "revision": revision,
        "routing": document_of(spec),
        "serving": served.describe() if served else None,
        "worker": {"pid": os.getpid(), "revision": ctx.core.router.revision},
    }


def _answer(
    ctx: GatewayContext, admin: RoutingAdmin, name: str, change: RoutingChange | None
) -> JSONResponse:
    body = _state(ctx, admin, name)
    body["change"] = change.as_json() if change is not None else None
    return JSONResponse(body)


@router.get("/models/{name}/routing", responses=errors(404, 409, 503),
            summary="A model's routing: stored and served here")
async def get_routing(name: str, request: Request, ctx: Context) -> JSONResponse:
    admin = _admin(ctx, request)
    return JSONResponse(await to_thread.run_sync(_state, ctx, admin, name))


@router.put("/models/{name}/routing", responses=errors(400, 404, 409, 413, 415, 422, 503),
            openapi_extra=json_body(RoutingUpdate), summary="Change a model's routing")
async def put_routing(name: str, request: Request, ctx: Context) -> JSONResponse:
    admin = _admin(ctx, request)
    update = parse_as(RoutingUpdate, await read_json(request, ctx.settings.max_body_bytes))

    def change() -> JSONResponse:
        spec, _ = admin.current(name)
        fields = update.model_fields_set - {"reason", "expected_revision"}
        merged = {**spec.model_dump(), **update.model_dump(include=fields)}
        if merged["default"] is None:
            merged["default"] = spec.default
        new = parse_as(ServedModelConfig, merged)
        done = admin.put(name, new, update.reason, update.expected_revision)
        return _answer(ctx, admin, name, done)

    return await to_thread.run_sync(change)


@router.post("/models/{name}/rollback", responses=errors(400, 404, 409, 413, 415, 422, 503),
             summary="Back to the previous default, in one step")
async def rollback(name: str, request: Request, ctx: Context) -> JSONResponse:
    admin = _admin(ctx, request)
    raw = await read_optional_json(request, ctx.settings.max_body_bytes)
    body = parse_as(RollbackRequest, raw)

    def change() -> JSONResponse:
        return _answer(ctx, admin, name, admin.rollback(name, body.reason))

    return await to_thread.run_sync(change)


@router.get("/models/{name}/routing/history", responses=errors(404, 409, 422, 503),
            summary="Every routing change, oldest first")
async def history(
    name: str, request: Request, ctx: Context, limit: int = Query(100, ge=1, le=10_000)
) -> JSONResponse:
    admin = _admin(ctx, request)

    def read() -> JSONResponse:
        admin.versions(name)
        changes = admin.history(name, limit)
        return JSONResponse({"name": name, "history": [c.as_json() for c in changes]})

    return await to_thread.run_sync(read)
