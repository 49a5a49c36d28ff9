"""HTTP helpers shared by the gateway's routes: body parsing, errors, request ids."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from service.errors import APIError

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw request body; 413 when larger than ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise APIError(413, "body_too_large", f"request body exceeds {max_bytes} bytes")
    raw = await request.body()
    if len(raw) > max_bytes:
        raise APIError(413, "body_too_large", f"request body exceeds {max_bytes} bytes")
    return raw


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body; 413 when larger than ``max_bytes``, 400 when malformed."""
    return parse_json(await read_body(request, max_bytes))


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body; 400 ``malformed_json`` if it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # maybe NaN/Infinity literals (Python's json writes them): validation decides
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise APIError(400, "malformed_json", message) from None


def parse_as(model: type[M], body: Any) -> M:
    """Validate a parsed JSON body against a pydantic model; 422 with the problems if not."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [
            {"loc": list(e["loc"]), "type": e["type"], "message": e["msg"]} for e in exc.errors()
        ]
        raise APIError(
            422, "invalid_body", "the request body does not match the schema",
            {"problems": problems},
        ) from None


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class FastJSONResponse(JSONResponse):
    """JSONResponse rendered by orjson (non-finite floats become null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def internal_error(exc: Exception) -> APIError:
    """A bug: logged with its traceback, answered as JSON (never as a plain-text 500)."""
    log.error("unexpected error", exc_info=exc)
    return APIError(500, "internal_error", f"unexpected error: {exc!r}")


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def install_error_handlers(app: FastAPI) -> None:
    """Render every client error, including FastAPI's own body validation, as DESIGN.md says."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(internal_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response(APIError(400, "malformed_json", "the body is not valid JSON"))
        problems = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
            for e in exc.errors()
        ]
        error = APIError(422, "invalid_request", "the request does not match the schema",
                         {"problems": problems})
        return error_response(error)
