"""The ASGI middleware that enforces API keys on every endpoint (BentoML's own, the fast
``/predict`` route, FastAPI's routes and the Open Inference Protocol ones alike).

With no key in the store the gateway is open (and says so at start). Once a key exists,
every request but health (and ``/metrics`` unless configured) needs one, sent as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``: 401 without a valid key, 403 with
the wrong scope or model, as the JSON error body, counted in
``driftgate_auth_failures_total{reason}``. The caller's :class:`Principal` is put into the
ASGI scope for handlers that check the model named in the body (:func:`check_model`).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.keyring import KeyRing, Principal, forbidden
from service.auth.metrics import auth_failures
from service.auth.scopes import METRICS_PATH, PUBLIC_PATHS, ScopeTable
from service.errors import APIError
from service.http import error_response

PRINCIPAL = "driftgate.principal"
"""The ASGI scope key holding the caller's :class:`Principal` (absent: open gateway)."""

_TABLE = ScopeTable()


def _key_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


def _query_model(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("model")
    return values[-1] if values else None


def authorize(ring: KeyRing, scope: Scope, metrics_open: bool = True) -> Principal | None:
    """The principal of an allowed request (None: no key needed); raises :class:`APIError`."""
    path = scope["path"]
    if not ring.enabled or path in PUBLIC_PATHS or (metrics_open and path == METRICS_PATH):
        return None
    principal = ring.authenticate(_key_of(scope["headers"]))
    rule, name = _TABLE.lookup(scope["method"], path)
    if not principal.may(rule.scope):
        raise forbidden("insufficient_scope", f"this endpoint needs the {rule.scope!r} scope; "
                        f"the key has {sorted(principal.scopes)}", {"needed": rule.scope})
    if principal.models is not None:
        model = name if rule.model_from == "path" else (
            _query_model(scope) if rule.model_from == "query" else None)
        if model is not None:
            _check(principal, model)
        elif rule.model_from in ("all", "query"):
            raise forbidden("model_not_allowed", "this key is limited to models "
                            f"{sorted(principal.models)}: name one of them",
                            {"models": sorted(principal.models)})
    return principal


def _check(principal: Principal, model: str) -> None:
    if not principal.may_use(model):
        raise forbidden("model_not_allowed", f"this key may not use the model {model!r}",
                        {"models": sorted(principal.models or ())})


def principal_of(scope: MutableMapping[str, Any]) -> Principal | None:
    return scope.get(PRINCIPAL)


def check_model(scope: MutableMapping[str, Any], model: str) -> None:
    """403 ``model_not_allowed`` (counted) if the caller's key may not use ``model``."""
    principal = principal_of(scope)
    if principal is not None and not principal.may_use(model):
        try:
            _check(principal, model)
        except APIError as error:
            auth_failures().labels(error.type).inc()
            raise


class AuthGuard:
    """ASGI middleware; ``ring_of`` returns this worker's key ring (None while starting)."""

    def __init__(self, app: ASGIApp, ring_of: Callable[[], KeyRing | None] | None = None,
                 metrics_open: bool | None = None) -> None:
        self.app = app
        self.ring_of = ring_of or _worker_ring
        self.metrics_open = _metrics_open() if metrics_open is None else metrics_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            ring = self.ring_of()
            if ring is None:
                raise APIError(503, "not_ready", "the gateway is starting")
            principal = authorize(ring, scope, self.metrics_open)
        except APIError as error:
            if error.status in (401, 403):
                auth_failures().labels(error.type).inc()
            v2 = scope["path"] == "/v2" or scope["path"].startswith("/v2/")
            headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            await error_response(error, headers, v2)(scope, receive, send)
            return
        if principal is not None:
            scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _worker_ring() -> KeyRing | None:
    from service import api_context

    try:
        return api_context.gateway_context().auth
    except APIError:
        return None


def _metrics_open() -> bool:
    from service.config import get_settings

    return not get_settings().metrics_require_key
