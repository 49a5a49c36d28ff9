"""PostgreSQL: transactions that commit out of order are still read in order, each once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from store_helpers import make_records

from service.store.postgres import PostgresStore


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


def test_out_of_order_commits_are_read_in_order_exactly_once(pg_url: str) -> None:
    store_a, store_b = PausingStore(pg_url), PostgresStore(pg_url)  # two real connections
    consumer = PostgresStore(pg_url)
    try:
        early = make_records(2)
        store_b.append(early)
        rec_a, rec_b = make_records(3), make_records(3)

        store_a.pause = True
        tx_a = threading.Thread(target=store_a.append, args=(rec_a,))
        tx_a.start()
        assert store_a.before_commit.wait(120)  # tx A has its offsets, not committed
        store_b.append(rec_b)  # tx B: later offsets, commits first
        with psycopg.connect(pg_url) as raw:  # B really is visible before A
            visible = {row[0] for row in raw.execute("SELECT id FROM predictions")}
        assert {r.id for r in rec_b} <= visible and not {r.id for r in rec_a} & visible

        seen = consumer.read_after(0, 100)  # must not jump past A's offsets
        assert [r.id for r in seen] == [r.id for r in early]
        offset = seen[-1].offset
        assert consumer.high_water_offset() == offset

        store_a.release.set()
        tx_a.join()
        assert min(r.offset for r in rec_b) > max(r.offset for r in rec_a)  # type: ignore[type-var]
        for _ in range(1000):  # wait out unrelated transactions elsewhere in the cluster
            page = consumer.read_after(offset, 100)
            if len(page) == 6:
                break
            threading.Event().wait(0.01)
        seen += page
        assert [r.id for r in seen] == [r.id for r in early + rec_a + rec_b]
        offsets = [r.offset for r in seen]
        assert offsets == sorted(set(offsets))
    finally:
        store_a.release.set()
        for s in (store_a, store_b, consumer):
            s.close()


def test_out_of_order_label_commits_are_read_in_order(pg_url: str) -> None:
    store_a, store_b = PausingStore(pg_url), PostgresStore(pg_url)
    try:
        records = make_records(2)
        store_b.append(records)
        store_a.pause = True
        tx_a = threading.Thread(target=store_a.add_labels, args=([(records[0].id, "yes")],))
        tx_a.start()
        assert store_a.before_commit.wait(120)
        store_b.add_labels([(records[1].id, "no")])
        assert store_b.read_labels_after(0, 10) == []
        store_a.release.set()
        tx_a.join()
        events: list[Any] = []
        for _ in range(1000):
            events = store_b.read_labels_after(0, 10)
            if len(events) == 2:
                break
            threading.Event().wait(0.01)
        assert [e.record.id for e in events] == [records[0].id, records[1].id]
    finally:
        store_a.release.set()
        store_a.close()
        store_b.close()
