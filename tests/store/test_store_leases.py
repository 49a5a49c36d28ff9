"""Leases and fenced writes, on both backends (see conftest ``store_url``)."""

from __future__ import annotations

import threading
import time

import pytest

from service.store import LeaseLost, Store, open_store


def _event(record_id: str) -> dict:
    return {"model": "m", "version": "v1", "kind": "feature_drift", "feature": "x",
            "detector": "cusum", "statistic": 2.0, "threshold": 1.0, "record_id": record_id,
            "ts": time.time(), "details": {}}


def test_one_holder_at_a_time_and_every_takeover_raises_the_token(store: Store) -> None:
    first = store.lease_acquire("monitor", "a", 30)
    assert first is not None and first.token == 1
    assert store.lease_acquire("monitor", "b", 30) is None  # live and not b's
    again = store.lease_acquire("monitor", "a", 30)
    assert again == first  # a renewal keeps the term
    store.lease_release(first)
    second = store.lease_acquire("monitor", "b", 30)
    assert second is not None and second.holder == "b" and second.token == 2
    assert not store.lease_renew(first, 30)  # a's term is over
    assert store.lease_renew(second, 30)
    (row,) = store.lease_list("monitor")
    assert (row.holder, row.token) == ("b", 2) and 25 < row.expires_in <= 30


def test_an_expired_lease_is_taken_with_a_new_token(store: Store) -> None:
    old = store.lease_acquire("p0", "a", 0.3)
    assert old is not None
    assert store.lease_acquire("p0", "b", 5) is None
    time.sleep(0.4)
    new = store.lease_acquire("p0", "b", 5)
    assert new is not None and new.token == old.token + 1
    assert store.lease_list("p1") == []  # other names are independent
    assert store.lease_acquire("p1", "a", 5) is not None


def test_fenced_writes_are_rejected_after_the_lease_is_lost(store: Store) -> None:
    old = store.lease_acquire("monitor", "a", 0.3)
    assert old is not None
    store.save_checkpoint("monitor", 5, 1, b"a-state", fence=old)
    assert store.append_events([_event("r1")], fence=old) == [True]
    assert store.outbox_enqueue("evt_1", "http://hook", {"n": 1}, "m", fence=old)
    time.sleep(0.4)  # expired, not yet taken: still no writes (the holder must renew first)
    with pytest.raises(LeaseLost):
        store.save_checkpoint("monitor", 9, 1, b"late", fence=old)
    new = store.lease_acquire("monitor", "b", 30)
    assert new is not None
    for write in (
        lambda: store.save_checkpoint("monitor", 9, 2, b"late", fence=old),
        lambda: store.append_events([_event("r2")], fence=old),
        lambda: store.outbox_enqueue("evt_2", "http://hook", {"n": 2}, "m", fence=old),
    ):
        with pytest.raises(LeaseLost):
            write()
    checkpoint = store.load_checkpoint("monitor")
    assert checkpoint is not None and (checkpoint.offset, checkpoint.state) == (5, b"a-state")
    assert [e["record_id"] for e in store.read_events("m")] == ["r1"]
    assert [i.event_id for i in store.outbox_list()] == ["evt_1"]
    store.save_checkpoint("monitor", 9, 2, b"b-state", fence=new)  # the new holder writes
    assert store.append_events([_event("r1"), _event("r2")], fence=new) == [False, True]


def test_a_takeover_waits_for_a_fenced_write_in_flight(store_url: str) -> None:
    """The write either commits before the takeover (and the new holder sees it) or is
    rejected: never both holders' writes interleaved after the takeover."""
    a, b = open_store(store_url), open_store(store_url)
    try:
        lease = a.lease_acquire("monitor", "a", 0.5)
        assert lease is not None
        results: list[object] = []

        def write_many() -> None:
            deadline = time.monotonic() + 20
            i = 0
            while time.monotonic() < deadline:
                i += 1
                try:
                    a.save_checkpoint("monitor", i, 0, b"a", fence=lease)
                    results.append(i)
                except LeaseLost:
                    results.append("lost")
                    return

        writer = threading.Thread(target=write_many)
        writer.start()
        taken = None
        while taken is None:
            taken = b.lease_acquire("monitor", "b", 30)
            time.sleep(0.01)
        seen = b.load_checkpoint("monitor")
        writer.join()
        assert results[-1] == "lost"
        written = [r for r in results if r != "lost"]
        final = b.load_checkpoint("monitor")
        # nothing a wrote after b took over: b's first read is a's last write
        assert final is not None and (seen is None or final.offset == seen.offset)
        if written:
            assert final.offset == written[-1]
    finally:
        a.close()
        b.close()


def test_departed_holders_heartbeats_are_pruned(store: Store) -> None:
    assert store.lease_acquire("monitor-member:gone", "gone", 0.1) is not None
    assert store.lease_acquire("monitor-member:here", "here", 30) is not None
    assert store.lease_acquire("monitor", "here", 0.1) is not None
    time.sleep(0.3)
    assert store.lease_prune("monitor-member:", 60) == 0  # expired, but not for long
    assert store.lease_prune("monitor-member:", 0.1) == 1
    assert [r.name for r in store.lease_list()] == ["monitor", "monitor-member:here"]
