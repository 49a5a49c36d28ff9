"""A gateway's FastAPI routes behind the auth guard, with one key of every kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from starlette.testclient import TestClient

from service.api_context import GatewayContext
from service.auth.keys import SCOPES, new_key
from service.store.base import AccessStore

ALLOWED_MODEL, OTHER_MODEL = "breast-cancer", "diabetes"


@dataclass
class Keys:
    """Tokens by case: one per scope, and the failure cases."""

    by_scope: dict[str, str] = field(default_factory=dict)
    wrong_model: dict[str, str] = field(default_factory=dict)  # scope -> key limited to ALLOWED
    expired: str = ""
    revoked: str = ""


def make_key(store: AccessStore, *scopes: str, models: list[str] | None = None,
             expires_at: float | None = None) -> str:
    token, row = new_key(list(scopes), models=models, expires_at=expires_at, name="test",
                         actor="test", now=time.time())
    store.key_insert(row)
    return token


def issue_keys(store: AccessStore) -> Keys:
    keys = Keys()
    for scope in SCOPES:
        keys.by_scope[scope] = make_key(store, scope)
        keys.wrong_model[scope] = make_key(store, scope, models=[ALLOWED_MODEL])
    keys.expired = make_key(store, *SCOPES, expires_at=time.time() - 1)
    keys.revoked = make_key(store, *SCOPES)
    store.key_revoke(keys.revoked.split("_")[1], "test")
    return keys


@contextmanager
def guarded_client(
    tmp_path: Path, serving: dict | None = None
) -> Iterator[tuple[TestClient, GatewayContext, Keys]]:
    """The gateway's routes (bound to a fresh context with keys) behind :class:`AuthGuard`."""
    from service.api import app
    from service.api_context import build_context, gateway_context
    from service.auth.guard import AuthGuard
    from service.config import get_settings
    from tests.service.gateway_helpers import configure

    configure(tmp_path, serving)
    context = build_context(get_settings())
    assert context.store is not None and context.auth is not None
    keys = issue_keys(context.store)
    context.auth.refresh()
    app.dependency_overrides[gateway_context] = lambda: context
    ring = context.auth
    try:
        with TestClient(AuthGuard(app, lambda: ring, metrics_open=True),
                        raise_server_exceptions=False) as client:
            yield client, context, keys
            client.portal.call(context.close)
    finally:
        app.dependency_overrides.pop(gateway_context, None)
