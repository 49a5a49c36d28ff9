"""Fixtures: a real signature-checking HTTP receiver, a fake clock, settings, stores.

The store fixtures of tests/store are reused: ``store_url`` runs a test on SQLite and on a
fresh PostgreSQL schema (in a throwaway database).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.config import Settings
from service.store import Store, open_store
from tests.pg_fixtures import pg_database, pg_url, store, store_url  # noqa: F401
from tests.webhooks.webhook_helpers import FakeClock, Receiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that is up."""
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def down_receiver() -> Iterator[Receiver]:
    """A receiver whose port is reserved but not listening (call ``start()``)."""
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        webhook_max_attempts=4,
        webhook_backoff_seconds=1.0,
        webhook_max_backoff_seconds=8.0,
        webhook_timeout_seconds=2.0,
        retrain_cooldown_seconds=3600.0,
        public_url="http://gateway.test:3000",
    )


@pytest.fixture
def wh_store(store: Store) -> Store:  # noqa: F811
    """A fresh store on SQLite and on PostgreSQL."""
    return store


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    s = open_store(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()
