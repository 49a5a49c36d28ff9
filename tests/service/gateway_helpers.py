"""Helpers to build gateway clients on fresh settings (imported by tests and conftest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from starlette.testclient import TestClient


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
    from service.api_context import bind, build_context
    from service.config import get_settings

    configure(tmp_path, serving, **env)
    context = build_context(get_settings())
    previous = bind(context)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
            client.portal.call(context.close)
    finally:
        bind(previous)
