"""Store fixtures shared by test packages: a throwaway PostgreSQL database per session, a
fresh schema per test, and ``store`` opened on each backend. Import the fixtures into a
conftest to use them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from loadtests.harness import PG_ADMIN, pg_schema_url  # noqa: F401 - re-exported
from service.store import Store, open_store


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """DSN of a ``driftgate_test_<random>`` database, dropped at the end of the session."""
    name = f"driftgate_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """URL of a fresh, not yet opened store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """URL of a fresh PostgreSQL schema (for PostgreSQL-only tests)."""
    return pg_schema_url(pg_database)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh, open store of each backend (closed afterwards)."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
