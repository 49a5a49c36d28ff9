"""Contract tests: every test runs on both backends (see conftest ``store_url``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from service.store import (
    DeliveryStore,
    Store,
    export_to_file,
    open_store,
)
from tests.store.store_helpers import make_records
from tests.store.store_workers import append_worker

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


ROLES = (*Store.__bases__[:-1], DeliveryStore)  # every role Store is made of (not Protocol)


def test_each_backend_plays_every_role(store: Store) -> None:
    """Components depend on a role (a narrow protocol); each backend implements all of them
    (mypy checks the signatures, this that the store actually opened has every method)."""
    for role in ROLES:
        assert isinstance(store, role), role.__name__


def drain(store: Store, after: int = 0, limit: int = 7, models: set[str] | None = None):
    """Read the whole stream in pages the way the monitor does."""
    out = []
    while True:
        page = store.read_after(after, limit, models)
        if not page:
            return out
        out.extend(page)
        after = page[-1].offset


# -- appending and reading -------------------------------------------------------------
def test_append_then_read_in_order_roundtrips_fields(store: Store) -> None:
    first, second = make_records(10), make_records(5, model="other")
    store.append(first)
    store.append(second)
    offsets = [r.offset for r in first + second]
    assert all(o is not None for o in offsets) and offsets == sorted(set(offsets))

    got = drain(store)
    assert [r.id for r in got] == [r.id for r in first + second]
    assert [r.offset for r in got] == offsets
    for a, b in zip(first, got, strict=False):
        assert a == b  # every field round-trips (ts, JSON columns, ids, ...)
    assert [r.id for r in drain(store, models={"other"})] == [r.id for r in second]
    assert drain(store, models=set()) == []
    assert store.read_after(offsets[-1], 10) == []
    assert [r.id for r in store.read_after(offsets[3], 2)] == [r.id for r in first[4:6]]


def test_append_empty_and_get(store: Store) -> None:
    store.append([])
    records = make_records(3)
    store.append(records)
    got = store.get([records[2].id, "missing", records[0].id])
    assert [r.id for r in got] == [records[0].id, records[2].id]


def test_json_columns_accept_numpy_and_nan(store: Store) -> None:
    import numpy as np

    (record,) = make_records(1)
    record.features = {"a": np.float64(1.5), "b": np.int64(3), "c": float("nan"), "d": None}
    record.prediction = np.array([1, 2])
    store.append([record])
    (got,) = store.read_after(0, 1)
    assert got.features == {"a": 1.5, "b": 3, "c": None, "d": None}
    assert got.prediction == [1, 2]


def test_high_water_and_lag(store: Store) -> None:
    assert store.high_water_offset() == 0
    assert store.lag(0) == (0, 0.0)
    records = make_records(4, ts=time.time() - 30)
    store.append(records)
    assert store.high_water_offset() == records[-1].offset
    n, seconds = store.lag(records[1].offset)
    assert n == 2 and seconds >= 29
    assert store.lag(records[-1].offset) == (0, 0.0)


def test_duplicate_id_rejects_whole_batch(store: Store) -> None:
    records = make_records(3)
    store.append(records[:1])
    with pytest.raises(Exception):  # noqa: B017 - backend-specific IntegrityError
        store.append(records)
    assert [r.id for r in drain(store)] == [records[0].id]


def test_concurrent_processes_append_each_record_exactly_once(store_url: str) -> None:
    """Several processes open the (not yet created) store at once and append concurrently."""
    workers, batches, size = 4, 25, 8
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.starmap(
            append_worker, [(store_url, w, batches, size) for w in range(workers)]
        )
    store = open_store(store_url)
    try:
        got = drain(store, limit=97)
        ids = [r.id for r in got]
        assert len(ids) == len(set(ids)) == workers * batches * size
        assert set(ids) == {i for ids_ in results for i in ids_}
        offsets = [r.offset for r in got]
        assert offsets == sorted(offsets)
        for w, written in enumerate(results):  # each worker's records keep their order
            assert [r.id for r in got if r.model == f"w{w}"] == written
    finally:
        store.close()


def test_threads_writing_while_consumer_reads_see_everything_once(store: Store) -> None:
    """Concurrent writers and a concurrent consumer: nothing skipped, nothing twice."""
    written: list[str] = []
    lock = threading.Lock()

    def write() -> None:
        for _ in range(30):
            records = make_records(5)
            store.append(records)
            with lock:
                written.extend(r.id for r in records)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    seen: list[str] = []
    offset = 0
    while any(t.is_alive() for t in threads) or len(seen) < 600:
        page = store.read_after(offset, 50)
        if page:
            assert page[0].offset > offset
            seen.extend(r.id for r in page)
            offset = page[-1].offset
        elif not any(t.is_alive() for t in threads) and len(seen) >= len(written):
            break
        else:
            time.sleep(0.001)
    for t in threads:
        t.join()
    seen.extend(r.id for r in drain(store, offset))
    assert len(seen) == len(set(seen)) == 600
    assert set(seen) == set(written)


def test_sigkill_loses_no_acknowledged_record(store_url: str) -> None:
    """A durable writer is SIGKILLed mid-stream: every id it acknowledged is in the log
    (single records and 16-row blocks alike)."""
    open_store(store_url).close()  # create the schema first
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "store_workers.py"), store_url],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line.strip())
            if len(acked) >= 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(acked) >= 300
    store = open_store(store_url)
    try:
        logged = {r.id for r in drain(store, limit=1000)}
        assert set(acked) <= logged
    finally:
        store.close()


# -- labels ----------------------------------------------------------------------------
def test_labels_unknown_ids_relabels_and_label_stream(store: Store) -> None:
    records = make_records(4)
    store.append(records)
    a, b, c, _ = (r.id for r in records)
    result = store.add_labels([(a, "yes"), ("nope", "no"), (b, "no")], ts=100.0)
    assert result.accepted == [a, b] and result.unknown == ["nope"] and result.relabeled == []

    result = store.add_labels([(a, "no"), (c, {"value": 3})], ts=200.0)
    assert result.accepted == [a, c] and result.relabeled == [a] and result.unknown == []

    # last label wins on the prediction ...
    by_id = {r.id: r for r in store.get([a, b, c])}
    assert (by_id[a].label, by_id[a].label_ts) == ("no", 200.0)
    assert by_id[b].label == "no" and by_id[c].label == {"value": 3}

    # ... and the stream keeps the whole history, in order, each event with its record
    events = store.read_labels_after(0, 100)
    assert [(e.record.id, e.record.label, e.relabel) for e in events] == [
        (a, "yes", False), (b, "no", False), (a, "no", True), (c, {"value": 3}, False),
    ]  # fmt: skip
    assert events[2].previous_label == "yes" and events[2].record.label_ts == 200.0
    assert events[0].record.features == records[0].features
    offsets = [e.label_offset for e in events]
    assert offsets == sorted(set(offsets))
    label_offset, record = events[1]  # unpacks as (label_offset, record)
    assert label_offset == offsets[1] and record.id == b
    assert [e.record.id for e in store.read_labels_after(offsets[1], 1)] == [a]
    assert store.high_water_label_offset() == offsets[-1]
    assert store.add_labels([]).accepted == []


def test_export_with_labels_filters(store: Store) -> None:
    old = make_records(3, ts=1000.0)
    new = make_records(3, ts=2000.0, version="2")
    other = make_records(2, model="other", ts=1500.0)
    store.append(old + new + other)
    store.add_labels([(old[0].id, "yes"), (new[1].id, "no")])

    df = store.export("m")
    assert list(df["id"]) == [r.id for r in old + new]
    for col in ("id", "ts", "version", "arm", "prediction", "probabilities", "label", "x"):
        assert col in df.columns
    assert list(df["x"]) == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    assert df["probabilities"].iloc[0] == {"no": 0.25, "yes": 0.75}

    labelled = store.export("m", with_labels=True)
    assert list(labelled["id"]) == [old[0].id, new[1].id]
    assert list(labelled["label"]) == ["yes", "no"]
    assert list(store.export("m", since=2000.0)["id"]) == [r.id for r in new]
    assert list(store.export("m", until=2000.0)["id"]) == [r.id for r in old]
    assert list(store.export("m", version="2")["id"]) == [r.id for r in new]
    assert store.export("nobody").empty


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_to_file_roundtrip(store: Store, tmp_path: Path, fmt: str) -> None:
    records = make_records(4)
    store.append(records)
    store.add_labels([(records[1].id, "yes")])
    df = store.export("m")
    path = export_to_file(df, tmp_path / f"out.{fmt}", fmt)  # type: ignore[arg-type]
    back = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert list(back["id"]) == [r.id for r in records]
    assert list(back["x"]) == [0.0, 1.0, 2.0, 3.0]
    assert back["label"].iloc[1] == "yes"
    assert '"yes":0.75' in back["probabilities"].iloc[0]
    with pytest.raises(ValueError):
        export_to_file(df, tmp_path / "x", "xlsx")  # type: ignore[arg-type]


# -- checkpoints -------------------------------------------------------------------------
def test_checkpoint_roundtrip_and_overwrite(store: Store) -> None:
    assert store.load_checkpoint("monitor") is None
    assert store.min_checkpoint_offset() is None
    store.save_checkpoint("monitor", 10, 3, b"\x00state-a")
    store.save_checkpoint("monitor", 20, 4, b"\x00state-b\xff")
    store.save_checkpoint("slow", 5, 0, b"")
    cp = store.load_checkpoint("monitor")
    assert cp is not None
    assert (cp.offset, cp.label_offset, cp.state) == (20, 4, b"\x00state-b\xff")
    assert store.min_checkpoint_offset() == 5


def test_checkpoint_offset_and_state_always_match(store: Store) -> None:
    """Concurrent savers and loaders: a loaded checkpoint is never half of two saves."""
    stop = threading.Event()
    errors: list[str] = []

    def save() -> None:
        for i in range(150):
            store.save_checkpoint("c", i, i * 2, str(i).encode() * 100)
        stop.set()

    def load() -> None:
        while not stop.is_set():
            cp = store.load_checkpoint("c")
            if cp and (
                cp.state != str(cp.offset).encode() * 100 or cp.label_offset != 2 * cp.offset
            ):
                errors.append(repr(cp))

    threads = [threading.Thread(target=save), threading.Thread(target=load)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cp = store.load_checkpoint("c")
    assert cp is not None and cp.offset == 149


# -- monitoring events -------------------------------------------------------------------
def test_events_append_and_read(store: Store) -> None:
    store.append_events([
        {"model": "m", "version": "1", "kind": "drift", "feature": "x", "detector": "ks",
         "statistic": 0.4, "threshold": 0.2, "record_id": "abc", "ts": 100.0,
         "details": {"window": [1, 2]}},
        {"model": "n", "kind": "performance", "ts": 150.0},
        {"model": "m", "kind": "data_quality", "feature": "y", "ts": 200.0},
    ])  # fmt: skip
    events = store.read_events()
    assert [e["kind"] for e in events] == ["drift", "performance", "data_quality"]
    first = events[0]
    assert first["statistic"] == 0.4 and first["details"] == {"window": [1, 2]}
    assert first["record_id"] == "abc" and first["feature"] == "x" and first["version"] == "1"
    assert events[1]["details"] == {}
    assert [e["kind"] for e in store.read_events(model="m")] == ["drift", "data_quality"]
    assert [e["ts"] for e in store.read_events(since=150.0)] == [150.0, 200.0]
    assert [e["ts"] for e in store.read_events(limit=2)] == [150.0, 200.0]  # latest 2
    assert [e["ts"] for e in store.read_events(since=0, limit=1)] == [100.0]
    store.append_events([])


# -- retention ---------------------------------------------------------------------------
def test_prune_never_deletes_unconsumed_records(store: Store) -> None:
    old = make_records(6, ts=time.time() - 3600)
    fresh = make_records(2)
    store.append(old + fresh)
    store.add_labels([(old[0].id, "yes"), (old[5].id, "no")])
    consumed = old[2].offset
    store.save_checkpoint("monitor", consumed, 0, b"")
    assert store.min_checkpoint_offset() == consumed

    deleted = store.prune(600, store.min_checkpoint_offset())
    assert deleted == 3  # old[0..2]: old AND consumed
    remaining = [r.id for r in drain(store)]
    assert remaining == [r.id for r in old[3:] + fresh]  # unconsumed old ones survive
    assert store.prune(600, consumed) == 0

    # labels of pruned predictions go once the label consumer is past them
    store.prune(0, 0, keep_after_label_offset=store.high_water_label_offset())
    assert [e.record.id for e in store.read_labels_after(0, 10)] == [old[5].id]

    # everything consumed: all old ones go, fresh ones stay; offsets keep increasing
    assert store.prune(600, store.high_water_offset()) == 3
    more = make_records(1)
    store.append(more)
    assert more[0].offset > fresh[-1].offset
    assert [r.id for r in drain(store)] == [r.id for r in fresh + more]


# -- webhook outbox and key-value --------------------------------------------------------
def test_outbox_idempotent_enqueue_and_lease(store: Store) -> None:
    assert store.outbox_enqueue("ev1", "https://a", {"model": "m"}, "m") is True
    assert store.outbox_enqueue("ev1", "https://a", {"model": "m"}, "m") is False
    assert store.outbox_enqueue("ev1", "https://b", {"model": "m"}, "m") is True
    assert store.outbox_pending_count() == 2

    now = time.time() + 1
    first = store.outbox_claim_due(now, 10, lease_seconds=30)
    assert [(i.event_id, i.endpoint, i.attempts) for i in first] == [
        ("ev1", "https://a", 1), ("ev1", "https://b", 1),
    ]  # fmt: skip
    assert first[0].payload == {"model": "m"} and first[0].lease_until == now + 30
    assert store.outbox_claim_due(now, 10, 30) == []  # leased: a 2nd dispatcher gets none
    again = store.outbox_claim_due(now + 31, 10, 30)  # lease expired (dispatcher died)
    assert [i.attempts for i in again] == [2, 2]

    store.outbox_mark_delivered(first[0].id)
    assert store.outbox_claim_due(now + 1000, 10, 30)[0].id == first[1].id
    assert [i.status for i in store.outbox_list()] == ["delivered", "pending"]
    assert store.outbox_list("delivered")[0].delivered_at is not None


def test_outbox_claim_respects_limit_and_is_exclusive_across_threads(store: Store) -> None:
    for i in range(40):
        store.outbox_enqueue(f"ev{i}", "https://a", {"i": i}, "m")
    claimed: list[int] = []
    lock = threading.Lock()
    now = time.time() + 1

    def dispatcher() -> None:
        while True:
            items = store.outbox_claim_due(now, 3, 60)
            if not items:
                return
            assert len(items) <= 3
            with lock:
                claimed.extend(i.id for i in items)

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_outbox_backoff_dead_letter_and_retry(store: Store) -> None:
    store.outbox_enqueue("ev1", "https://a", {}, "m")
    store.outbox_enqueue("ev2", "https://a", {}, "m")
    now = time.time() + 1
    a, b = store.outbox_claim_due(now, 10, 30)
    store.outbox_mark_failed(a.id, "HTTP 503", next_attempt_at=now + 60)
    store.outbox_mark_failed(b.id, "HTTP 400", next_attempt_at=None)
    assert store.outbox_claim_due(now + 59, 10, 30) == []  # backing off; b is dead
    pending, dead = store.outbox_list("pending"), store.outbox_list("dead")
    assert [i.id for i in pending] == [a.id] and pending[0].last_error == "HTTP 503"
    assert [i.id for i in dead] == [b.id] and dead[0].last_error == "HTTP 400"
    assert store.outbox_pending_count() == 1
    assert [i.id for i in store.outbox_claim_due(now + 60, 10, 30)] == [a.id]

    assert store.outbox_retry([a.id]) == 0  # only dead items are retried
    assert store.outbox_retry() == 1
    retried = next(i for i in store.outbox_list("pending") if i.id == b.id)
    assert retried.id == b.id and retried.attempts == 0
    assert store.outbox_retry([]) == 0


def test_kv(store: Store) -> None:
    assert store.kv_get("endpoint_disabled:https://a") is None
    store.kv_set("endpoint_disabled:https://a", True)
    store.kv_set("cooldown:m", 1234.5)
    store.kv_set("cooldown:m", 2000.0)
    assert store.kv_get("endpoint_disabled:https://a") is True
    assert store.kv_get("cooldown:m") == 2000.0
