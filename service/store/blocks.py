"""Columnar blocks of the prediction log: one stored row per request, not per prediction.

A :class:`RecordBlock` holds the records of one request for one model version (or of one
group of :class:`~service.store.records.PredictionRecord` sharing everything but the
per-row values): the shared fields once, the per-row values as columns. Stored, a block
takes the offsets ``offset .. offset + len(block) - 1``, one per record, so consumers still
see a dense-enough, strictly increasing offset per record and resume inside a block.

>>> block = RecordBlock("m", "v1", "default", 1.0, ["a", "b"], {"x": [1.0, 2.5]}, [0, 1])
>>> again = RecordBlock.decode(block.encode(), "m", "v1", "default", 1.0)
>>> [(r.id, r.features, r.prediction) for r in again.records()]
[('a', {'x': 1.0}, 0), ('b', {'x': 2.5}, 1)]
>>> again.offset = 10; [r.offset for r in again.slice(1, 2).records()]
[11]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.store.codec import dumps_bytes
from service.store.records import PredictionRecord

__all__ = ["RecordBlock", "as_blocks", "row_count", "id_ms", "BLOCK_COLS", "MAX_ID_SPAN_MS"]

#: The columns of a stored block, in the order :meth:`RecordBlock.from_row` takes them.
BLOCK_COLS = "log_offset, model, version, arm, ts, latency_ms, request_id, trace_id, data"

#: The ids of one block are made within this many milliseconds of each other (a block
#: breaks apart otherwise), so a lookup by id searches blocks starting this long before it.
MAX_ID_SPAN_MS = 60_000


@dataclass(slots=True)
class RecordBlock:
    """The records of one request (see the module docstring). ``features`` maps each stored
    feature to its column; ``probabilities`` is ``(class labels, one list per row)``.
    ``labels`` (id -> (label, label_ts)) is filled when read from a store."""

    model: str
    version: str
    arm: str
    ts: float
    ids: list[str]
    features: dict[str, Sequence[Any]]
    predictions: Sequence[Any]
    probabilities: tuple[list[str], list[list[float]]] | None = None
    latency_ms: float = 0.0
    request_id: str | None = None
    trace_id: str | None = None
    offset: int | None = None  # of the first record, set by the store
    labels: dict[str, tuple[Any, float | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def last_offset(self) -> int | None:
        return None if self.offset is None else self.offset + len(self.ids) - 1

    def encode(self) -> bytes:
        """The per-row part as compact JSON (NaN and infinities become null)."""
        doc: dict[str, Any] = {"i": self.ids, "f": self.features, "p": self.predictions}
        if self.probabilities is not None:
            doc["q"] = self.probabilities
        return dumps_bytes(doc)

    @classmethod
    def decode(
        cls, data: bytes | memoryview, model: str, version: str, arm: str, ts: float,
        latency_ms: float | None = None, request_id: str | None = None,
        trace_id: str | None = None, offset: int | None = None,
    ) -> RecordBlock:
        doc = orjson.loads(bytes(data) if isinstance(data, memoryview) else data)
        q = doc.get("q")
        return cls(model, version, arm, ts, doc["i"], doc["f"], doc["p"],
                   (q[0], q[1]) if q is not None else None, latency_ms or 0.0, request_id,
                   trace_id, offset)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RecordBlock:
        """A block from a stored row of :data:`BLOCK_COLS`."""
        return cls.decode(row[8], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                          int(row[0]))

    def slice(self, start: int, stop: int) -> RecordBlock:
        """Records ``start:stop`` as a block of their own (offsets follow)."""
        if start == 0 and stop >= len(self.ids):
            return self
        q = self.probabilities
        return RecordBlock(
            self.model, self.version, self.arm, self.ts, self.ids[start:stop],
            {k: v[start:stop] for k, v in self.features.items()},
            self.predictions[start:stop], (q[0], q[1][start:stop]) if q is not None else None,
            self.latency_ms, self.request_id, self.trace_id,
            None if self.offset is None else self.offset + start, self.labels,
        )  # fmt: skip

    def records(self, rows: Iterable[int] | None = None) -> list[PredictionRecord]:
        """One :class:`PredictionRecord` per row, or per row of ``rows`` (with labels and
        offsets when read)."""
        items = self.features.items()
        q = self.probabilities
        labels = self.labels
        out = []
        for i in range(len(self.ids)) if rows is None else rows:
            rid = self.ids[i]
            label, label_ts = labels.get(rid, (None, None))
            out.append(PredictionRecord(
                model=self.model, version=self.version,
                features={n: _plain(c[i]) for n, c in items},
                prediction=self.predictions[i], id=rid, ts=self.ts, arm=self.arm,
                probabilities=dict(zip(q[0], q[1][i], strict=True)) if q is not None else None,
                latency_ms=self.latency_ms, request_id=self.request_id,
                trace_id=self.trace_id, label=label, label_ts=label_ts,
                offset=None if self.offset is None else self.offset + i,
            ))  # fmt: skip
        return out

    @classmethod
    def from_records(cls, records: Sequence[PredictionRecord]) -> RecordBlock:
        """One block of records that share model, version, arm, ts, latency, request and
        trace ids and feature names (see :func:`as_blocks`)."""
        first = records[0]
        names = list(first.features)
        probabilities = None
        if first.probabilities is not None:
            labels = list(first.probabilities)
            probabilities = (labels, [[r.probabilities[k] for k in labels]  # type: ignore[index]
                                      for r in records])
        return cls(
            first.model, first.version, first.arm, first.ts, [r.id for r in records],
            {n: [r.features[n] for r in records] for n in names},
            [r.prediction for r in records], probabilities, first.latency_ms,
            first.request_id, first.trace_id,
            labels={r.id: (r.label, r.label_ts) for r in records if r.label is not None},
        )  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _key(r: PredictionRecord) -> tuple[Any, ...]:
    return (r.model, r.version, r.arm, r.ts, r.latency_ms, r.request_id, r.trace_id,
            tuple(r.features), None if r.probabilities is None else tuple(r.probabilities))


def id_ms(rid: str) -> int | None:
    """The unix milliseconds of a UUIDv7 id (32 hex digits), None for any other id."""
    if len(rid) != 32 or rid[12] != "7":
        return None
    try:
        return int(rid[:12], 16)
    except ValueError:
        return None


def as_blocks(items: Sequence[PredictionRecord | RecordBlock]) -> list[RecordBlock]:
    """Blocks of ``items`` in order: blocks as they are, runs of records that can share a
    block (see :meth:`RecordBlock.from_records`) as one block each."""
    out: list[RecordBlock] = []
    run: list[PredictionRecord] = []
    for item in items:
        if isinstance(item, RecordBlock):
            out.extend(_runs(run))
            run = []
            out.append(item)
        else:
            if run and _key(run[-1]) != _key(item):
                out.extend(_runs(run))
                run = []
            run.append(item)
    out.extend(_runs(run))
    return out


def _runs(run: list[PredictionRecord]) -> Iterator[RecordBlock]:
    """Blocks of one run; records whose ids span more than :data:`MAX_ID_SPAN_MS` (or are
    not UUIDv7) are split so the lookup by id always finds them."""
    start = 0
    while start < len(run):
        ms0 = id_ms(run[start].id)
        stop = start + 1
        while stop < len(run) and ms0 is not None:
            ms = id_ms(run[stop].id)
            if ms is None or abs(ms - ms0) >= MAX_ID_SPAN_MS:
                break
            stop += 1
        yield RecordBlock.from_records(run[start:stop])
        start = stop


def row_count(items: Sequence[PredictionRecord | RecordBlock]) -> int:
    """Records in ``items`` (a block counts its rows)."""
    return sum(len(i) if isinstance(i, RecordBlock) else 1 for i in items)
