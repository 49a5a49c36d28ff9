"""Which exceptions mean "the store cannot be reached right now" (answer 503, retry later)
rather than a bug. Their text names hosts, ports and databases: never send it to clients."""

from __future__ import annotations

import sqlite3

import psycopg

UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # refused, terminated, server gone, timeouts
    psycopg.InterfaceError,  # a connection closed under us
    sqlite3.OperationalError,  # locked past the busy timeout, disk I/O, file gone
    ConnectionError,
    TimeoutError,
)


def is_store_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` (or what it was raised from) says the store is unreachable."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
