"""Both backends hold the same tables with the same columns (each schema is written per
backend; this keeps them from drifting apart)."""

from __future__ import annotations

import sqlite3

import psycopg

from service.store import open_store


def _sqlite_columns(path: str) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables}


def _postgres_columns(dsn: str) -> dict[str, list[str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def test_sqlite_and_postgres_have_the_same_tables_and_columns(tmp_path, pg_url):
    path = str(tmp_path / "log.db")
    for url in (path, pg_url):
        open_store(url).close()  # creates the schema
    lite, pg = _sqlite_columns(path), _postgres_columns(pg_url)
    assert set(pg) - set(lite) == set()
    assert set(lite) - set(pg) == set()
    for table in lite:
        assert sorted(lite[table]) == sorted(pg[table]), table


def test_postgres_log_blocks_are_compressed_with_lz4(pg_url) -> None:
    """A new PostgreSQL log stores block data with lz4 (this server has it: Debian's 15)."""
    store = open_store(pg_url)
    try:
        with psycopg.connect(pg_url) as conn:
            method = conn.execute(
                "SELECT a.attcompression FROM pg_attribute a WHERE a.attrelid ="
                " 'prediction_blocks'::regclass AND a.attname = 'data'").fetchone()
        assert method == ("l",)
    finally:
        store.close()
