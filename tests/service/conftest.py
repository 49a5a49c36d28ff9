"""Fixtures for the gateway: demo models in the session's model store, ASGI clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient


def make_client(tmp_path: Path, serving: dict | None = None, **env: str) -> TestClient:
    """A client on the gateway's ASGI app with its own data dir and serving file."""
    from service.config import get_settings

    config = tmp_path / "driftgate.yaml"
    config.write_text(yaml.safe_dump(serving or {}))
    os.environ["DRIFTGATE_CONFIG_FILE"] = str(config)
    os.environ["DRIFTGATE_DATA_DIR"] = str(tmp_path / "data")
    for key, value in env.items():
        os.environ[f"DRIFTGATE_{key.upper()}"] = value
    get_settings.cache_clear()
    from service.gateway import Gateway

    return TestClient(Gateway.to_asgi(), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(demo_models, tmp_path_factory) -> Iterator[TestClient]:
    with make_client(tmp_path_factory.mktemp("gateway")) as c:
        yield c
