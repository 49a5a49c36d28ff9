from __future__ import annotations

import uuid

from service.store import PredictionRecord, new_prediction_id


def test_prediction_ids_are_uuid7_unique_and_time_ordered() -> None:
    ids = [new_prediction_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # strictly increasing within a process, also within one ms
    parsed = uuid.UUID(hex=ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids[:10])


def test_ids_made_in_batches_are_uuid7_and_continue_one_increasing_sequence() -> None:
    from service.store.records import new_prediction_ids

    ids = [*new_prediction_ids(5000), new_prediction_id(), *new_prediction_ids(1),
           *new_prediction_ids(64)]  # 5,000 ids overrun the 12-bit counter of one ms
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    for i in (ids[0], ids[4999], ids[5000], ids[-1]):
        parsed = uuid.UUID(hex=i)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    ms = [int(i[:12], 16) for i in ids]
    assert ms[-1] - ms[0] < 60_000  # borrowed milliseconds stay close to the clock
    assert new_prediction_ids(0) == []


def test_record_defaults() -> None:
    r = PredictionRecord(model="m", version="1", features={"a": 1}, prediction=0)
    assert r.arm == "default" and r.offset is None and r.label is None and r.ts > 0
    assert len(r.id) == 32
