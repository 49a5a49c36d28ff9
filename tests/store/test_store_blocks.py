"""The log's columnar blocks, on both backends: one stored row per request, one offset per
record; consumers resume inside a block; lookups, labels, lag and retention by record."""

from __future__ import annotations

import sqlite3
import time

import pytest

from service.store import Store, open_store
from service.store.blocks import RecordBlock
from service.store.records import new_prediction_ids


def block(n: int, model: str = "m", version: str = "1", ts: float | None = None,
          request_id: str = "req") -> RecordBlock:
    return RecordBlock(
        model, version, "default", time.time() if ts is None else ts, new_prediction_ids(n),
        {"x": [float(i) for i in range(n)], "c": ["a" if i % 2 else "b" for i in range(n)]},
        [i * 10 for i in range(n)], (["no", "yes"], [[0.25, 0.75]] * n), 2.5, request_id,
    )


def drain(store: Store, offset: int, limit: int) -> list[int]:
    seen: list[int] = []
    while True:
        records = store.read_after(offset, limit)
        if not records:
            return seen
        seen.extend(r.offset or 0 for r in records)
        offset = records[-1].offset or offset


def test_a_block_takes_one_offset_per_record_and_reads_back_as_records(store: Store) -> None:
    first, second = block(5), block(3, request_id="other")
    store.append([first, second])
    assert first.offset is not None and second.offset == first.offset + 5
    records = store.read_after(0, 100)
    assert [r.offset for r in records] == list(range(first.offset or 0, (first.offset or 0) + 8))
    assert [r.id for r in records] == first.ids + second.ids
    r = records[2]
    assert (r.features, r.prediction, r.probabilities) == (
        {"x": 2.0, "c": "b"}, 20, {"no": 0.25, "yes": 0.75})
    assert (r.model, r.version, r.arm, r.request_id, r.latency_ms) == (
        "m", "1", "default", "req", 2.5)
    assert store.high_water_offset() == records[-1].offset


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 64])
def test_a_consumer_resumes_inside_a_block_without_skipping_or_repeating(
    store: Store, limit: int
) -> None:
    blocks = [block(n, request_id=str(n)) for n in (4, 1, 6, 2)]
    store.append(blocks)
    start = blocks[0].offset or 0
    assert drain(store, 0, limit) == list(range(start, start + 13))
    parts = store.read_blocks_after(start + 1, 4)  # from the middle of the first block
    assert [len(b) for b in parts] == [2, 1, 1]
    assert [b.offset for b in parts] == [start + 2, start + 4, start + 5]
    assert parts[0].ids == blocks[0].ids[2:]
    assert parts[0].features["x"] == [2.0, 3.0]


def test_lag_counts_records_after_an_offset_inside_a_block(store: Store) -> None:
    b = block(10, ts=time.time() - 30)
    store.append([b])
    start = b.offset or 0
    n, age = store.lag(start + 3)
    assert n == 6 and age >= 29
    assert store.lag(start + 9) == (0, 0.0)
    assert store.lag(start + 3, models={"other"}) == (0, 0.0)


def test_records_of_a_block_are_found_by_id_and_labelled_one_by_one(store: Store) -> None:
    noise = [block(3, request_id=f"n{i}") for i in range(3)]
    b = block(8)
    store.append([*noise[:2], b, noise[2]])
    wanted = [b.ids[6], b.ids[1]]
    found = store.get([*wanted, "0" * 32])
    assert [r.id for r in found] == [b.ids[1], b.ids[6]]  # in log order, unknown left out
    assert [r.prediction for r in found] == [10, 60]
    result = store.add_labels([(b.ids[1], "yes"), (b.ids[1], "no"), ("f" * 32, "x")])
    assert result.accepted == [b.ids[1], b.ids[1]] and result.unknown == ["f" * 32]
    assert result.relabeled == [b.ids[1]]
    events = store.read_labels_after(0, 10)
    assert [(e.record.id, e.record.label, e.relabel) for e in events] == [
        (b.ids[1], "yes", False), (b.ids[1], "no", True)]
    assert events[1].record.prediction == 10 and events[1].previous_label == "yes"
    by_id = {r.id: r for r in store.read_after(0, 100)}
    assert by_id[b.ids[1]].label == "no" and by_id[b.ids[2]].label is None
    frame = store.export("m", with_labels=True)
    assert list(frame["id"]) == [b.ids[1]] and list(frame["label"]) == ["no"]
    assert len(store.export("m")) == 17


def test_prune_deletes_whole_blocks_behind_the_slowest_consumer(store: Store) -> None:
    old = block(4, ts=time.time() - 3600, request_id="old")
    older = block(3, ts=time.time() - 3600, request_id="older")
    new = block(2, request_id="new")
    store.append([old, older, new])
    store.add_labels([(old.ids[0], "yes"), (new.ids[0], "no")])
    # the consumer stands inside the second block: it is kept
    assert store.prune(60, keep_after_offset=(older.offset or 0) + 1) == 4
    left = store.read_after(0, 100)
    assert [r.id for r in left] == older.ids + new.ids
    assert store.get([old.ids[0]]) == []
    assert store.get([new.ids[0]])[0].label == "no"


def test_a_replayed_block_is_rejected_whole(store: Store) -> None:
    b = block(3)
    store.append([b])
    with pytest.raises(Exception):  # noqa: B017 - backend-specific IntegrityError
        store.append([block(1, request_id="fresh"), b])
    assert len(store.read_after(0, 100)) == 3


LEGACY = """
CREATE TABLE predictions (
    log_offset INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, request_id TEXT,
    trace_id TEXT, ts REAL NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
    arm TEXT NOT NULL, features TEXT NOT NULL, prediction TEXT, probabilities TEXT,
    latency_ms REAL, label TEXT, label_ts REAL
);
INSERT INTO predictions VALUES (3, 'a', 'r1', NULL, 100.0, 'm', '1', 'default',
    '{"x": 1.5}', '0', '{"no": 0.4, "yes": 0.6}', 2.0, '"yes"', 150.0);
INSERT INTO predictions VALUES (7, 'b', 'r2', NULL, 101.0, 'm', '1', 'canary',
    '{"x": 2.5}', '1', NULL, 3.0, NULL, NULL);
"""


def test_a_log_written_row_by_row_moves_into_blocks_keeping_offsets_and_labels(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY)
    store = open_store(path)
    try:
        records = store.read_after(0, 10)
        assert [(r.offset, r.id, r.arm, r.features, r.prediction, r.label) for r in records] == [
            (3, "a", "default", {"x": 1.5}, 0, "yes"), (7, "b", "canary", {"x": 2.5}, 1, None)]
        assert records[0].probabilities == {"no": 0.4, "yes": 0.6}
        fresh = block(2)
        store.append([fresh])
        assert fresh.offset == 8
        assert store.add_labels([("b", "no")]).accepted == ["b"]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'predictions'"
                            ).fetchone() is None
    again = open_store(path)  # opening again changes nothing
    try:
        assert [r.offset for r in again.read_after(0, 10)] == [3, 7, 8, 9]
    finally:
        again.close()


def drain_blocks(store: Store, limit: int, **filters: set[str]) -> list[tuple[int, str]]:
    """(offset, id) of every record read page by page as blocks, each page within ``limit``."""
    seen: list[tuple[int, str]] = []
    offset = 0
    while True:
        blocks = store.read_blocks_after(offset, limit, **filters)
        if not blocks:
            return seen
        assert sum(len(b) for b in blocks) <= limit
        for b in blocks:
            seen.extend(zip(range(b.offset or 0, (b.offset or 0) + len(b)), b.ids, strict=True))
        offset = blocks[-1].last_offset or offset


@pytest.mark.parametrize("limit", [1, 3, 50, 999, 5000])
def test_paging_over_blocks_of_mixed_sizes_and_models_is_exact(store: Store, limit: int) -> None:
    # large blocks then runs of one-row blocks (the page size adapts to rows per block),
    # interleaving two models so filters cut pages in the middle of runs
    sizes = [1000, 1, 1, 1, 1, 1, 1, 1, 1, 300, *[1] * 40, 2, 700, *[1] * 12, 64]
    blocks = [block(n, model="a" if i % 3 else "b", request_id=str(i))
              for i, n in enumerate(sizes)]
    store.append(blocks)
    expected = {
        name: [(o, rid) for b in blocks if name in (None, b.model)
               for o, rid in zip(range(b.offset or 0, (b.offset or 0) + len(b)), b.ids,
                                 strict=True)]
        for name in (None, "a", "b")
    }
    assert drain_blocks(store, limit) == expected[None]
    assert drain_blocks(store, limit, models={"a"}) == expected["a"]
    assert drain_blocks(store, limit, exclude={"a"}) == expected["b"]
    assert [(r.offset, r.id) for r in store.read_after(0, limit)] == expected[None][:limit]


def test_records_of_chosen_rows_match_the_whole_blocks_records() -> None:
    b = block(6)
    b.offset = 100
    whole = b.records()
    chosen = b.records([4, 0, 5])
    assert [(r.id, r.offset, r.features, r.prediction, r.probabilities) for r in chosen] == [
        (w.id, w.offset, w.features, w.prediction, w.probabilities)
        for w in (whole[4], whole[0], whole[5])]
    assert b.records([]) == []
