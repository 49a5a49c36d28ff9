"""Fixtures for the gateway: the real BentoML ASGI app, once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.service.gateway_helpers import configure


@pytest.fixture(scope="session")
def client(demo_models, tmp_path_factory) -> Iterator[TestClient]:
    """The real BentoML ASGI app of the gateway (``Gateway.to_asgi()``), once per session."""
    configure(tmp_path_factory.mktemp("gateway"))
    from service.gateway import Gateway

    with TestClient(Gateway.to_asgi(), raise_server_exceptions=False) as c:
        yield c
