"""Helpers to build gateway clients on fresh settings (imported by tests and conftest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from service.api_context import GatewayContext


def configure(tmp_path: Path, serving: dict | None = None, **env: str) -> None:
    """Point the settings at a fresh data dir and serving file (plus DRIFTGATE_* extras)."""
    from service.config import get_settings

    config = tmp_path / "driftgate.yaml"
    config.write_text(yaml.safe_dump(serving or {}))
    os.environ["DRIFTGATE_CONFIG_FILE"] = str(config)
    os.environ["DRIFTGATE_DATA_DIR"] = str(tmp_path / "data")
    for key, value in env.items():
        os.environ[f"DRIFTGATE_{key.upper()}"] = value
    get_settings.cache_clear()


@contextmanager
def make_client(tmp_path: Path, serving: dict | None = None, **env: str) -> Iterator[TestClient]:
    """A client on the gateway's routes bound to a fresh context (no BentoML middleware)."""
    from service.api import app
    from service.api_context import build_context, gateway_context
    from service.config import get_settings

    configure(tmp_path, serving, **env)
    context = build_context(get_settings())
    app.dependency_overrides[gateway_context] = lambda: context
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
            client.portal.call(context.close)
    finally:
        app.dependency_overrides.pop(gateway_context, None)


def bound_context() -> GatewayContext:
    """The context :func:`make_client` gave the routes (its dependency override)."""
    from service.api import app
    from service.api_context import gateway_context

    return app.dependency_overrides[gateway_context]()
