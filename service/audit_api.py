"""``GET /audit``: the append-only trail of admin actions (admin scope)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from service.api_context import Context, require_store
from service.http import GuardedRoute
from service.openapi_docs import errors
from service.times import since_parameter

router = APIRouter(tags=["access"], route_class=GuardedRoute)


@router.get("/audit", responses=errors(409, 422, 503),
            summary="Admin actions: keys, routing, rollouts, registrations (oldest first)")
async def audit(
    ctx: Context,
    since: str | None = Query(None, description="At or after: unix seconds or ISO 8601."),
    action: str | None = Query(None, description="Only this action, e.g. key.create."),
    limit: int = Query(1000, ge=1, le=10_000),
) -> JSONResponse:
    store = require_store(ctx)
    start = since_parameter(since)
    records = await to_thread.run_sync(lambda: store.audit_read(start, action, limit))
    return JSONResponse({"audit": [r.as_json() for r in records]})
