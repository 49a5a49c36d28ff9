"""The per-worker objects the HTTP routes use, bound once by the BentoML service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.config import Settings
from service.core import GatewayCore
from service.errors import APIError
from service.store.base import Store


@dataclass
class GatewayContext:
    core: GatewayCore
    settings: Settings
    store: Store | None
    alerts: Any = None  # service.alerts.AlertReceiver when the log is on


_context: GatewayContext | None = None


def bind(ctx: GatewayContext | None) -> None:
    global _context
    _context = ctx


def context() -> GatewayContext:
    if _context is None:
        raise APIError(503, "not_ready", "the gateway is starting")
    return _context


def require_store(ctx: GatewayContext) -> Store:
    if ctx.store is None:
        raise APIError(409, "logging_disabled", "the prediction log is switched off")
    return ctx.store
