"""HTTP routes of automated rollouts (mounted by :mod:`service.api`).

``POST /models/{name}/rollouts`` starts one (its first canary weight is routed at once),
``GET /models/{name}/rollouts[/{id}]`` shows them with their gates and decision,
``DELETE /models/{name}/rollouts/{id}`` aborts a running one (its canary ends at once).
The monitor evaluates running rollouts (:mod:`service.rollout`).
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api_context import Context, GatewayContext, require_store
from service.http import (
    GuardedRoute,
    client_actor,
    parse_as,
    read_json,
    read_optional_json,
)
from service.openapi_docs import errors, inline_schema, json_body
from service.rollout import RolloutPlan, Rollouts
from service.routing_state import RoutingAdmin
from service.store.entities import RolloutRow

router = APIRouter(tags=["rollouts"], route_class=GuardedRoute)
# ge/le only: OpenAPI 3.0 (the document's version) has no numeric exclusive bounds
Percent = Annotated[float, Field(ge=0.01, le=100)]


class RolloutRequest(BaseModel):
    """A rollout of ``version``: canary weights in percent; 100 (or the end) promotes."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="A version, an alias or 'latest'.")
    steps: list[Percent] = Field([5, 25, 50, 100], min_length=1, max_length=20,
                                 description="Canary weights in percent, increasing.")
    step_seconds: float = Field(600.0, ge=0, le=86_400 * 30,
                                description="Least time each step is held.")
    min_requests: int = Field(500, ge=1, le=10**9,
                              description="Least canary answers each step needs.")
    alpha: float = Field(0.05, ge=1e-6, le=0.5,
                         description="Chance of rolling back an equally good version.")
    latency_ratio: float = Field(1.5, ge=1, le=100,
                                 description="Canary p99 at most this times the default's...")
    latency_slack_ms: float = Field(5.0, ge=0, le=60_000, description="...plus this.")
    reason: str | None = Field(None, max_length=1000)
    shadow_first: bool = Field(False, description="Begin with a shadow step gated on "
                               "row-by-row agreement with the default.")
    max_disagreement: float = Field(0.1, ge=0, le=1, description="Shadow step: the largest "
                                    "share of rows allowed to disagree with the default.")
    error_margin: float = Field(0.01, ge=0, le=1, description="Share gate: how much more "
                                "of its requests the canary may fail than the default.")
    agreement_tolerance: float = Field(0.25, ge=0, le=100, description="Shadow step, "
                                       "regressors: a value agrees within this many "
                                       "standard deviations of the default's answers.")


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1000)


def _rollouts(ctx: GatewayContext) -> Rollouts:
    return Rollouts(require_store(ctx))


def describe(row: RolloutRow) -> dict[str, Any]:
    """A rollout for people and clients: status, step, weights, last gates, decision."""
    return {"id": row.id, "model": row.model, "status": row.status,
            "created_at": row.created_at, "updated_at": row.updated_at, **row.doc}


@router.post("/models/{name}/rollouts", status_code=201,
             responses=errors(400, 404, 409, 413, 415, 422, 503),
             openapi_extra=json_body(RolloutRequest), summary="Start an automated rollout")
async def start_rollout(name: str, request: Request, ctx: Context) -> JSONResponse:
    body = parse_as(RolloutRequest, await read_json(request, ctx.settings.max_body_bytes))
    rollouts, actor = _rollouts(ctx), client_actor(request)
    plan = RolloutPlan(body.version, [w / 100.0 for w in body.steps], body.step_seconds,
                       body.min_requests, body.alpha, body.latency_ratio,
                       body.latency_slack_ms, body.reason, body.shadow_first,
                       body.max_disagreement, body.agreement_tolerance, body.error_margin)

    def start() -> JSONResponse:
        row = rollouts.start(name, plan, actor)
        return JSONResponse(describe(rollouts.get(name, row.id)), status_code=201)

    return await to_thread.run_sync(start)


@router.get("/models/{name}/rollouts", responses=errors(404, 409, 422, 503),
            summary="A model's rollouts, oldest first")
async def list_rollouts(
    name: str, request: Request, ctx: Context, limit: int = Query(100, ge=1, le=1000)
) -> JSONResponse:
    store = require_store(ctx)

    def read() -> JSONResponse:
        RoutingAdmin(store, client_actor(request)).versions(name)  # 404 for an unknown model
        rows = store.rollout_list(name, limit=limit)
        return JSONResponse({"name": name, "rollouts": [describe(r) for r in rows]})

    return await to_thread.run_sync(read)


@router.get("/models/{name}/rollouts/{rollout_id}", responses=errors(404, 409, 503),
            summary="One rollout: step, gates, decision")
async def get_rollout(name: str, rollout_id: str, ctx: Context) -> JSONResponse:
    rollouts = _rollouts(ctx)
    return JSONResponse(describe(await to_thread.run_sync(rollouts.get, name, rollout_id)))


@router.delete("/models/{name}/rollouts/{rollout_id}",
               responses=errors(400, 404, 409, 413, 415, 422, 503),
               openapi_extra={"requestBody": {"required": False, "content": {
                   "application/json": {"schema": inline_schema(AbortRequest)}}}},
               summary="Abort a running rollout (its canary ends at once)")
async def abort_rollout(
    name: str, rollout_id: str, request: Request, ctx: Context
) -> JSONResponse:
    raw = await read_optional_json(request, ctx.settings.max_body_bytes)
    body = parse_as(AbortRequest, raw)
    rollouts, actor = _rollouts(ctx), client_actor(request)

    def abort() -> JSONResponse:
        return JSONResponse(describe(rollouts.abort(name, rollout_id, actor, body.reason)))

    return await to_thread.run_sync(abort)
