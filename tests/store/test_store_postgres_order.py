"""PostgreSQL: concurrent writers whose transactions would commit out of order.

Tx A takes its offsets and stays open; tx B (a second real connection) then tries to
append. With the commit-serialized sequence B cannot take offsets while A is open, so
"offset 11 visible before offset 10" cannot happen: B waits, A commits, B gets the later
offsets, and a consumer reading at every step sees each record exactly once, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from service.store.postgres import PostgresStore
from tests.store.store_helpers import make_records


class PausingStore(PostgresStore):
    """Holds its write transaction open before COMMIT until ``release`` is set."""

    def __init__(self, dsn: str) -> None:
        self.before_commit = threading.Event()
        self.release = threading.Event()
        self.pause = False
        super().__init__(dsn)

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with super()._write() as cur:
            yield cur
            if self.pause:
                self.before_commit.set()
                assert self.release.wait(120)


def _wait_until_blocked_on_lock(dsn: str) -> None:
    """Block until some backend of this database waits on a lock (tx B on A's counter)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(12_000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            threading.Event().wait(0.01)
    raise AssertionError("tx B never waited for tx A")


def _run_out_of_order(dsn: str, first: Callable[[PostgresStore], Any],
                      second: Callable[[PostgresStore], Any]) -> Iterator[None]:  # fmt: skip
    store_a, store_b = PausingStore(dsn), PostgresStore(dsn)
    store_a.pause = True
    tx_a = threading.Thread(target=first, args=(store_a,))
    tx_b = threading.Thread(target=second, args=(store_b,))
    try:
        tx_a.start()
        assert store_a.before_commit.wait(120)  # A holds its offsets, not committed
        tx_b.start()  # B wants later offsets and would commit first
        _wait_until_blocked_on_lock(dsn)
        assert tx_b.is_alive()
        yield  # the caller inspects the consumer's view here
    finally:
        store_a.release.set()
        tx_a.join()
        tx_b.join()
        store_a.close()
        store_b.close()


def test_out_of_order_commits_are_read_in_order_exactly_once(pg_url: str) -> None:
    consumer = PostgresStore(pg_url)
    early, rec_a, rec_b = make_records(2), make_records(3), make_records(3)
    consumer.append(early)
    steps = _run_out_of_order(pg_url, lambda s: s.append(rec_a), lambda s: s.append(rec_b))
    try:
        next(steps)  # A open with its offsets, B waiting behind it
        seen = consumer.read_after(0, 100)
        assert [r.id for r in seen] == [r.id for r in early]
        assert consumer.high_water_offset() == seen[-1].offset
        next(steps, None)  # A commits, then B
        seen += consumer.read_after(seen[-1].offset, 100)
        assert [r.id for r in seen] == [r.id for r in early + rec_a + rec_b]
        offsets = [r.offset for r in seen]
        assert offsets == sorted(set(offsets)) == list(range(1, 9))  # dense, no gaps
        assert [r.offset for r in rec_a + rec_b] == offsets[2:]
    finally:
        consumer.close()


def test_out_of_order_label_commits_are_read_in_order(pg_url: str) -> None:
    consumer = PostgresStore(pg_url)
    records = make_records(2)
    consumer.append(records)
    steps = _run_out_of_order(
        pg_url,
        lambda s: s.add_labels([(records[0].id, "yes")]),
        lambda s: s.add_labels([(records[1].id, "no")]),
    )
    try:
        next(steps)
        assert consumer.read_labels_after(0, 10) == []
        next(steps, None)
        events = consumer.read_labels_after(0, 10)
        assert [(e.record.id, e.record.label) for e in events] == [
            (records[0].id, "yes"), (records[1].id, "no"),
        ]  # fmt: skip
    finally:
        consumer.close()


def test_rolled_back_writer_leaves_no_gap_and_unblocks(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        records = make_records(2)
        store.append(records[:1])
        with pytest.raises(psycopg.errors.UniqueViolation):
            store.append(records[:1])  # duplicate id: the transaction rolls back
        store.append(records[1:])
        assert [r.offset for r in store.read_after(0, 10)] == [1, 2]
    finally:
        store.close()
