"""A minimal thread-safe, fork-aware connection pool (LIFO, grows on demand)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Generic, TypeVar

C = TypeVar("C")

__all__ = ["ConnectionPool"]


class ConnectionPool(Generic[C]):
    """Hands out one connection per concurrent user; keeps up to ``max_idle`` idle ones.

    A connection that raised is closed rather than reused. After ``fork`` the child never
    touches the parent's connections (it opens its own).
    """

    def __init__(self, factory: Callable[[], C], max_idle: int = 8) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._idle: list[C] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[C]:
        if self._closed:
            raise RuntimeError("store is closed")
        with self._lock:
            if self._pid != os.getpid():  # forked: the idle connections are the parent's
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._factory()
        try:
            yield conn
        except BaseException:
            _close(conn)
            raise
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle and self._pid == os.getpid():
                self._idle.append(conn)
                return
        _close(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                _close(conn)


def _close(conn: Any) -> None:
    with suppress(Exception):
        conn.close()
