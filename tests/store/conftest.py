"""Fixtures: every contract test runs against SQLite (a temp file) and PostgreSQL (a
throwaway database per test session, a fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.store import Store, open_store
from tests.pg_fixtures import pg_database, pg_url, store_url  # noqa: F401


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
