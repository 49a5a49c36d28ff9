"""Fixtures: every contract test runs against SQLite (a temp file) and PostgreSQL (a
throwaway database per test session, a fresh schema per test)."""

from __future__ import annotations

from tests.pg_fixtures import pg_database, pg_url, store, store_url  # noqa: F401
