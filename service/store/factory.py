"""``open_store``: pick the backend from a URL or a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from service.store.base import Store

__all__ = ["open_store"]


def open_store(url_or_path: str | Path, **kwargs: Any) -> Store:
    """Open (and create the schema of) a store.

    ``postgresql://...`` / ``postgres://...`` -> PostgreSQL; ``sqlite:///relative/path``,
    ``sqlite:////absolute/path`` or a plain path -> SQLite (query option
    ``?synchronous=full|normal``). Extra keyword arguments go to the backend.
    """
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        from service.store.postgres import PostgresStore

        return PostgresStore(text, **kwargs)
    from service.store.sqlite import SQLiteStore

    if text.startswith("sqlite://"):
        parts = urlsplit(text)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        options = dict(parse_qsl(parts.query))
        kwargs = {**options, **kwargs}
        return SQLiteStore(path, **kwargs)
    return SQLiteStore(text, **kwargs)
