"""Backend-independent SQL logic; the SQLite and PostgreSQL stores subclass it.

SQL is written with ``?`` placeholders; a backend rewrites them via :meth:`_q`. Hooks a
backend provides: ``_write`` / ``_read`` (transaction and autocommit cursors), ``_tx_base``
(reserves offsets in the current write transaction, or None for an autoincrement key),
``_horizon`` (optional SQL restricting a stream to offsets that can no longer be preceded
by a late commit), ``_json`` (decoding of JSON columns) and ``_lock_rows`` (row locking clause).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd

from service.store import codec
from service.store.access import AccessTables
from service.store.attributions import AttributionTables
from service.store.blocks import BLOCK_COLS, MAX_ID_SPAN_MS, RecordBlock, as_blocks, id_ms
from service.store.entities import Checkpoint, LabelEvent, LabelResult, Lease, OutboxItem
from service.store.export import records_to_frame
from service.store.leases import LeaseTables
from service.store.records import PredictionRecord
from service.store.rollouts import RolloutTables
from service.store.routing import RoutingTables

__all__ = ["SqlStoreBase"]

_INSERT_BLOCK = (
    "INSERT INTO prediction_blocks (log_offset, n, first_id, last_id, ts, model, version, arm,"
    " request_id, trace_id, latency_ms, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_LABEL = (
    "INSERT INTO labels (prediction_id, log_offset, label, label_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label,"
    " label_ts = excluded.label_ts"
)
# blocks holding records after the offset: the block the offset falls in, and later ones
_FROM_OFFSET = (
    "log_offset >= coalesce((SELECT max(log_offset) FROM prediction_blocks"
    " WHERE log_offset <= ?), 0) AND log_offset + n - 1 > ?"
)
_FIRST_PAGE = 4  # blocks
_MAX_PAGE = 8192
_OUTBOX_COLS = (
    "id, event_id, endpoint, model, payload, status, attempts, next_attempt_at, lease_until, "
    "last_error, created_at, delivered_at"
)
_EVENT_COLS = (
    "id, model, version, kind, feature, detector, statistic, threshold, record_id, ts, details"
)
_PRUNE_CHUNK = 5000
ATTRIBUTIONS_COLUMN = "attributions"  # of export(): the sampled records' attributions
_IN_CHUNK = 500


class SqlStoreBase(RoutingTables, RolloutTables, LeaseTables, AccessTables, AttributionTables):
    """Shared implementation of :class:`service.store.base.Store`."""

    url: str
    _label_col = "le.label_offset"

    # -- backend hooks -----------------------------------------------------------------
    def _write(self) -> AbstractContextManager[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tx_base(self, cur: Any, stream: str, n: int) -> int | None:
        return None

    def _horizon(self, column: str) -> str:
        return ""

    def _json(self, value: Any) -> Any:
        return codec.loads(value)

    def _lock_rows(self, skip_locked: bool = False) -> str:
        return ""

    def _q(self, sql: str) -> str:
        return sql

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take_log_offsets(self, cur: Any, n: int) -> int:
        """Reserve ``n`` offsets of the prediction log in the current write transaction
        (the counter row stays locked until it ends, so offsets commit in order)."""
        base = self._tx_base(cur, "predictions", n)
        assert base is not None
        return base

    def _insert_blocks(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(self._q(_INSERT_BLOCK), rows)

    def _has_table(self, cur: Any, name: str) -> bool:  # pragma: no cover - backend hook
        raise NotImplementedError

    def _lock_schema(self, cur: Any) -> None:
        """Serialize schema changes of concurrent openers (SQLite's writer lock does)."""

    def _migrate_row_log(self) -> None:
        """Move a log written one row per prediction (table ``predictions``, before blocks)
        into blocks of one record each, keeping offsets and labels, then drop that table.
        Runs once, in one transaction (concurrent openers find it gone)."""
        with self._read() as cur:
            if not self._has_table(cur, "predictions"):
                return
        with self._write() as cur:
            self._lock_schema(cur)
            if not self._has_table(cur, "predictions"):
                return
            cols = ("log_offset, id, request_id, trace_id, ts, model, version, arm, features,"
                    " prediction, probabilities, latency_ms, label, label_ts")
            last, top = 0, 0
            j = self._json
            while True:
                rows = self._select(cur, f"SELECT {cols} FROM predictions WHERE log_offset > ?"
                                    " ORDER BY log_offset LIMIT ?", [last, _PRUNE_CHUNK])
                if not rows:
                    break
                blocks, labels = [], []
                for r in rows:
                    record = PredictionRecord(
                        model=r[5], version=r[6], features=j(r[8]), prediction=j(r[9]),
                        id=r[1], ts=r[4], arm=r[7], probabilities=j(r[10]),
                        latency_ms=r[11] or 0.0, request_id=r[2], trace_id=r[3])
                    b = RecordBlock.from_records([record])
                    blocks.append((int(r[0]), 1, r[1], r[1], b.ts, b.model, b.version, b.arm,
                                   b.request_id, b.trace_id, b.latency_ms, b.encode()))
                    if r[12] is not None:
                        labels.append((r[1], int(r[0]), _as_json_text(r[12], j), r[13]))
                self._insert_blocks(cur, blocks)
                if labels:
                    cur.executemany(self._q(_UPSERT_LABEL), labels)
                last = top = int(rows[-1][0])
            cur.execute(self._q("UPDATE log_counters SET next_offset = ? WHERE stream ="
                                " 'predictions' AND next_offset <= ?"), (top + 1, top))
            cur.execute("DROP TABLE predictions")

    # -- helpers -----------------------------------------------------------------------
    def _block(self, row: Sequence[Any]) -> RecordBlock:
        return RecordBlock.from_row(row)

    def _select(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur.execute(self._q(sql), tuple(params))
        return list(cur.fetchall())

    @staticmethod
    def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
        for i in range(0, len(seq), size):
            yield seq[i : i + size]

    def _attach_labels(self, cur: Any, blocks: list[RecordBlock]) -> None:
        """Fill ``block.labels`` from the labels table (one range query)."""
        if not blocks:
            return
        lo = min(b.offset or 0 for b in blocks)
        hi = max(b.last_offset or 0 for b in blocks)
        by_offset = {b.offset: b for b in blocks}
        for pid, off, label, label_ts in self._select(
                cur, "SELECT prediction_id, log_offset, label, label_ts FROM labels"
                " WHERE log_offset >= ? AND log_offset <= ?", [lo, hi]):
            block = by_offset.get(off)
            if block is not None:
                block.labels[pid] = (self._json(label), label_ts)

    # -- predictions -------------------------------------------------------------------
    def append(self, records: Sequence[PredictionRecord | RecordBlock]) -> None:
        """Commit ``records`` (records and/or blocks) in one transaction as blocks; sets each
        record's and block's ``offset``."""
        blocks = as_blocks(records)
        if not blocks:
            return
        total = sum(len(b) for b in blocks)
        with self._write() as cur:
            base = self._take_log_offsets(cur, total)
            rows: list[tuple[Any, ...]] = []
            labels: list[tuple[Any, ...]] = []
            at = base
            for b in blocks:
                rows.append((at, len(b), min(b.ids), max(b.ids), b.ts, b.model, b.version,
                             b.arm, b.request_id, b.trace_id, b.latency_ms, b.encode()))
                labels.extend((pid, at, codec.dumps(lab), lts)
                              for pid, (lab, lts) in b.labels.items())
                at += len(b)
            self._insert_blocks(cur, rows)
            if labels:
                cur.executemany(self._q(_UPSERT_LABEL), labels)
        at = base
        for item in records:
            item.offset = at
            at += len(item) if isinstance(item, RecordBlock) else 1
        at = base
        for b in blocks:
            b.offset = at
            at += len(b)

    def read_blocks_after(
        self, offset: int, limit: int, models: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[RecordBlock]:
        """The records of :meth:`read_after` as blocks (the first may start inside a block,
        the last is cut at ``limit`` records); labels are not attached."""
        with self._read() as cur:
            return self._blocks_after(cur, offset, limit, models, exclude)

    def _blocks_after(
        self, cur: Any, offset: int, limit: int, models: set[str] | None,
        exclude: set[str] | None,
    ) -> list[RecordBlock]:
        params: list[Any] = [offset, offset]
        where = _model_filter(models, exclude, params)
        if where is None or limit <= 0:
            return []
        out: list[RecordBlock] = []
        count, after = 0, offset
        # pages are counted in blocks, limits in records: start small and size the next page
        # by the rows per block seen, so 1,000-row blocks are not read 256 at a time for a
        # limit of 5,000 records, nor one-row blocks a query per 256 records
        page = max(1, min(limit, _FIRST_PAGE))
        sql = (f"SELECT {BLOCK_COLS} FROM prediction_blocks WHERE {_FROM_OFFSET}{where}"
               " ORDER BY log_offset LIMIT ?")
        while count < limit:
            params[0] = params[1] = after
            rows = self._select(cur, sql, [*params, page])
            for row in rows:
                block = self._block(row)
                start = max(0, after - int(row[0]) + 1)
                part = block.slice(start, start + limit - count)
                out.append(part)
                count += len(part)
                if count >= limit:
                    break
            if len(rows) < page or count >= limit:
                break
            after = out[-1].last_offset or after
            page = min(_MAX_PAGE, -(-(limit - count) * len(out) // count) + 1)
        return out

    def read_after(
        self, offset: int, limit: int, models: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[PredictionRecord]:
        with self._read() as cur:
            blocks = self._blocks_after(cur, offset, limit, models, exclude)
            self._attach_labels(cur, blocks)
        return [r for b in blocks for r in b.records()]

    def _find_blocks(self, cur: Any, ids: Sequence[str]) -> dict[str, RecordBlock]:
        """The stored block of each known id (a block found once serves its other ids)."""
        found: dict[str, RecordBlock] = {}
        seen: dict[int, RecordBlock] = {}
        for pid in ids:
            if pid in found:
                continue
            ms = id_ms(pid)
            if ms is None:
                sql = f"SELECT {BLOCK_COLS} FROM prediction_blocks WHERE first_id = ?"
                params: list[Any] = [pid]
            else:
                low = f"{max(ms - MAX_ID_SPAN_MS, 0):012x}" + "0" * 20
                sql = (f"SELECT {BLOCK_COLS} FROM prediction_blocks WHERE first_id >= ?"
                       " AND first_id <= ? AND last_id >= ?")
                params = [low, pid, pid]
            for row in self._select(cur, sql, params):
                block = seen.get(int(row[0])) or self._block(row)
                seen[block.offset or 0] = block
                if pid in block.ids:
                    for other in block.ids:
                        found[other] = block
                    break
        return found

    def get(self, ids: Sequence[str]) -> list[PredictionRecord]:
        with self._read() as cur:
            blocks = self._find_blocks(cur, ids)
            unique = list({id(b): b for b in blocks.values()}.values())
            self._attach_labels(cur, unique)
        wanted = set(ids)
        out = [r for b in unique for r in b.records() if r.id in wanted]
        return sorted(out, key=lambda r: r.offset or 0)

    def high_water_offset(self) -> int:
        sql = "SELECT log_offset + n - 1 FROM prediction_blocks ORDER BY log_offset DESC LIMIT 1"
        with self._read() as cur:
            rows = self._select(cur, sql)
        return int(rows[0][0]) if rows else 0

    def lag(
        self, offset: int, models: set[str] | None = None, exclude: set[str] | None = None
    ) -> tuple[int, float]:
        params: list[Any] = [offset, offset, offset, offset]
        models_sql = _model_filter(models, exclude, params)
        if models_sql is None:
            return 0, 0.0
        sql = ("SELECT sum(CASE WHEN log_offset > ? THEN n ELSE log_offset + n - 1 - ? END),"
               f" min(ts) FROM prediction_blocks WHERE {_FROM_OFFSET}{models_sql}")
        with self._read() as cur:
            count, first = self._select(cur, sql, params)[0]
        if not count:
            return 0, 0.0
        return int(count), max(0.0, time.time() - float(first))

    # -- labels ------------------------------------------------------------------------
    def add_labels(self, items: Sequence[tuple[str, Any]], ts: float | None = None) -> LabelResult:
        ts = time.time() if ts is None else ts
        result = LabelResult()
        if not items:
            return result
        with self._write() as cur:
            blocks = self._find_blocks(cur, list(dict.fromkeys(pid for pid, _ in items)))
            base = self._tx_base(cur, "labels", len(items))
            for idx, (pred_id, label) in enumerate(items):
                block = blocks.get(pred_id)
                if block is None:
                    result.unknown.append(pred_id)
                    continue
                found = self._select(
                    cur, f"SELECT label FROM labels WHERE prediction_id = ?{self._lock_rows()}",
                    [pred_id],
                )  # fmt: skip
                relabel = bool(found) and found[0][0] is not None
                previous = found[0][0] if found else None
                text = codec.dumps(label)
                cur.execute(self._q(_UPSERT_LABEL), (pred_id, block.offset, text, ts))
                prev_text = _as_json_text(previous, self._json) if relabel else None
                if base is None:
                    cur.execute(
                        self._q(
                            "INSERT INTO label_events (prediction_id, label, ts, previous_label,"
                            " relabel) VALUES (?, ?, ?, ?, ?)"
                        ),
                        (pred_id, text, ts, prev_text, relabel),
                    )
                else:
                    cur.execute(
                        self._q(
                            "INSERT INTO label_events (label_offset, prediction_id, label, ts,"
                            " previous_label, relabel) VALUES (?, ?, ?, ?, ?, ?)"
                        ),
                        (base + idx, pred_id, text, ts, prev_text, relabel),
                    )
                result.accepted.append(pred_id)
                if relabel:
                    result.relabeled.append(pred_id)
        return result

    def read_labels_after(self, label_offset: int, limit: int) -> list[LabelEvent]:
        sql = (
            "SELECT le.label_offset, le.label, le.ts, le.previous_label, le.relabel,"
            " le.prediction_id, l.log_offset FROM label_events le JOIN labels l"
            " ON l.prediction_id = le.prediction_id"
            f" WHERE le.label_offset > ?{self._horizon(self._label_col)} "
            "ORDER BY le.label_offset LIMIT ?"
        )
        out: list[LabelEvent] = []
        with self._read() as cur:
            rows = self._select(cur, sql, [label_offset, limit])
            offsets = sorted({int(r[6]) for r in rows})
            blocks: dict[int, RecordBlock] = {}
            for chunk in self._chunks(offsets, _IN_CHUNK):
                marks = ",".join("?" * len(chunk))
                for row in self._select(cur, f"SELECT {BLOCK_COLS} FROM prediction_blocks"
                                        f" WHERE log_offset IN ({marks})", chunk):
                    blocks[int(row[0])] = self._block(row)
        for row in rows:
            block = blocks.get(int(row[6]))
            if block is None or row[5] not in block.ids:  # pruned meanwhile
                continue
            i = block.ids.index(row[5])
            record = block.records([i])[0]
            record.label, record.label_ts = self._json(row[1]), row[2]
            out.append(
                LabelEvent(
                    label_offset=int(row[0]),
                    record=record,
                    relabel=bool(row[4]),
                    previous_label=self._json(row[3]),
                )  # fmt: skip
            )
        return out

    def high_water_label_offset(self) -> int:
        sql = (
            "SELECT max(le.label_offset) FROM label_events le "
            f"WHERE 1=1{self._horizon(self._label_col)}"
        )
        with self._read() as cur:
            value = self._select(cur, sql)[0][0]
        return int(value or 0)

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(
        self, consumer: str, offset: int, label_offset: int, state: bytes,
        fence: Lease | None = None,
    ) -> None:
        with self._write() as cur:
            self._check_fence(cur, fence)
            cur.execute(
                self._q(
                    "INSERT INTO checkpoints (consumer, log_offset, label_offset, state,"
                    " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (consumer) DO UPDATE SET"
                    " log_offset = excluded.log_offset, label_offset = excluded.label_offset,"
                    " state = excluded.state, updated_at = excluded.updated_at"
                ),
                (consumer, offset, label_offset, bytes(state), time.time()),
            )

    def load_checkpoint(self, consumer: str) -> Checkpoint | None:
        with self._read() as cur:
            rows = self._select(
                cur,
                "SELECT consumer, log_offset, label_offset, state, updated_at FROM checkpoints"
                " WHERE consumer = ?",
                [consumer],
            )
        if not rows:
            return None
        c, off, loff, state, updated = rows[0]
        return Checkpoint(c, int(off), int(loff), bytes(state), float(updated))

    def min_checkpoint_offset(self) -> int | None:
        with self._read() as cur:
            value = self._select(cur, "SELECT min(log_offset) FROM checkpoints")[0][0]
        return None if value is None else int(value)

    def min_checkpoint_label_offset(self) -> int | None:
        """Label offset of the slowest consumer (None when there is no checkpoint)."""
        with self._read() as cur:
            value = self._select(cur, "SELECT min(label_offset) FROM checkpoints")[0][0]
        return None if value is None else int(value)

    # -- monitoring events -------------------------------------------------------------
    def append_events(
        self, events: Sequence[dict[str, Any]], fence: Lease | None = None
    ) -> list[bool]:
        if not events:
            return []
        rows = [
            (
                e["model"], e.get("version"), e["kind"], e.get("feature"), e.get("detector"),
                _opt_float(e.get("statistic")), _opt_float(e.get("threshold")),
                e.get("record_id"), float(e.get("ts") or time.time()),
                codec.dumps(e.get("details") or {}),
            )
            for e in events
        ]  # fmt: skip
        sql = self._q(
            "INSERT INTO events (model, version, kind, feature, detector, statistic,"
            " threshold, record_id, ts, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING"  # a replay after a crash re-emits the same event
        )
        with self._write() as cur:
            self._check_fence(cur, fence)
            inserted = []
            for row in rows:
                cur.execute(sql, row)
                inserted.append(cur.rowcount == 1)
            return inserted

    def read_events(
        self, model: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        where, params = ["1=1"], list[Any]()
        if model is not None:
            where.append("model = ?")
            params.append(model)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        cond = " AND ".join(where)
        if since is None:
            sql = (
                f"SELECT {_EVENT_COLS} FROM (SELECT {_EVENT_COLS} FROM events WHERE {cond}"
                " ORDER BY id DESC LIMIT ?) AS t ORDER BY id"
            )
        else:
            sql = f"SELECT {_EVENT_COLS} FROM events WHERE {cond} ORDER BY id LIMIT ?"
        with self._read() as cur:
            rows = self._select(cur, sql, [*params, limit])
        keys = [k.strip() for k in _EVENT_COLS.split(",")]
        out = []
        for row in rows:
            event = dict(zip(keys, row, strict=True))
            event["details"] = self._json(event["details"]) or {}
            out.append(event)
        return out

    # -- export and retention ----------------------------------------------------------
    def export(
        self,
        model: str,
        since: float | None = None,
        until: float | None = None,
        with_labels: bool = False,
        version: str | None = None,
    ) -> pd.DataFrame:
        where, params = ["model = ?"], list[Any]([model])
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        if version is not None:
            where.append("version = ?")
            params.append(version)
        sql = (
            f"SELECT {BLOCK_COLS} FROM prediction_blocks WHERE {' AND '.join(where)}"
            " ORDER BY log_offset"
        )
        with self._read() as cur:
            blocks = [self._block(r) for r in self._select(cur, sql, params)]
            self._attach_labels(cur, blocks)
        records = [r for b in blocks for r in b.records()]
        if with_labels:
            records = [r for r in records if r.label is not None]
        frame = records_to_frame(records)
        # the attributions of the records the monitor sampled (None for the others)
        found = self.attributions_get([r.id for r in records]) if records else {}
        frame.insert(frame.columns.get_loc("label_ts") + 1, ATTRIBUTIONS_COLUMN,
                     [found.get(r.id) for r in records])
        return frame

    def prune(
        self,
        older_than_seconds: float,
        keep_after_offset: int,
        keep_after_label_offset: int | None = None,
    ) -> int:
        """Delete predictions with ``ts < now - older_than_seconds`` and
        ``offset <= keep_after_offset`` (pass the slowest consumer's checkpoint, e.g.
        :meth:`min_checkpoint_offset`), whole blocks at a time, in chunks so writers are
        never blocked long. Label events of deleted predictions are deleted too when
        ``keep_after_label_offset`` is given (only those at or below it)."""
        cutoff = time.time() - older_than_seconds
        deleted = 0
        while True:
            with self._write() as cur:
                gone = self._select(
                    cur, "SELECT log_offset, n FROM prediction_blocks WHERE"
                    " log_offset + n - 1 <= ? AND ts < ? ORDER BY log_offset LIMIT ?",
                    [keep_after_offset, cutoff, _PRUNE_CHUNK])
                if gone:
                    first, last = int(gone[0][0]), int(gone[-1][0])
                    cur.execute(self._q(
                        "DELETE FROM prediction_blocks WHERE log_offset >= ? AND log_offset <= ?"
                        " AND log_offset + n - 1 <= ? AND ts < ?"),
                        (first, last, keep_after_offset, cutoff))
                    cur.execute(self._q(
                        "DELETE FROM labels WHERE log_offset >= ? AND log_offset <= ? AND NOT"
                        " EXISTS (SELECT 1 FROM prediction_blocks b WHERE b.log_offset ="
                        " labels.log_offset)"), (first, last))
            deleted += sum(int(n) for _, n in gone)
            if len(gone) < _PRUNE_CHUNK:
                break
        self._prune_attributions(cutoff)
        if keep_after_label_offset is not None:
            with self._write() as cur:
                cur.execute(
                    self._q(
                        "DELETE FROM label_events WHERE label_offset <= ? AND ts < ? AND NOT"
                        " EXISTS (SELECT 1 FROM labels l WHERE l.prediction_id ="
                        " label_events.prediction_id)"
                    ),
                    (keep_after_label_offset, cutoff),
                )
        return deleted

    # -- webhook outbox ----------------------------------------------------------------
    def _item(self, row: Sequence[Any]) -> OutboxItem:
        return OutboxItem(
            id=int(row[0]), event_id=row[1], endpoint=row[2], model=row[3],
            payload=self._json(row[4]), status=row[5], attempts=int(row[6]),
            next_attempt_at=float(row[7]), lease_until=row[8], last_error=row[9],
            created_at=float(row[10]), delivered_at=row[11],
        )  # fmt: skip

    def outbox_enqueue(
        self, event_id: str, endpoint: str, payload: dict[str, Any], model: str,
        fence: Lease | None = None,
    ) -> bool:
        now = time.time()
        with self._write() as cur:
            self._check_fence(cur, fence)
            cur.execute(
                self._q(
                    "INSERT INTO outbox (event_id, endpoint, model, payload, status, attempts,"
                    " next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)"
                    " ON CONFLICT (event_id, endpoint) DO NOTHING"
                ),
                (event_id, endpoint, model, codec.dumps(payload), now, now),
            )
            return cur.rowcount == 1

    def outbox_claim_due(self, now: float, limit: int, lease_seconds: float) -> list[OutboxItem]:
        with self._write() as cur:
            rows = self._select(
                cur,
                "UPDATE outbox SET lease_until = ?, attempts = attempts + 1 WHERE id IN"
                " (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at, id"
                f" LIMIT ?{self._lock_rows(skip_locked=True)}) RETURNING {_OUTBOX_COLS}",
                [now + lease_seconds, now, now, limit],
            )
        return sorted((self._item(r) for r in rows), key=lambda i: (i.next_attempt_at, i.id))

    def outbox_mark_delivered(self, item_id: int) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE outbox SET status = 'delivered', delivered_at = ?, lease_until ="
                    " NULL, last_error = NULL WHERE id = ?"
                ),
                (time.time(), item_id),
            )

    def outbox_mark_failed(self, item_id: int, error: str, next_attempt_at: float | None) -> None:
        with self._write() as cur:
            if next_attempt_at is None:
                cur.execute(
                    self._q(
                        "UPDATE outbox SET status = 'dead', lease_until = NULL, last_error = ?"
                        " WHERE id = ?"
                    ),
                    (error, item_id),
                )
            else:
                cur.execute(
                    self._q(
                        "UPDATE outbox SET status = 'pending', lease_until = NULL,"
                        " last_error = ?, next_attempt_at = ? WHERE id = ?"
                    ),
                    (error, next_attempt_at, item_id),
                )

    def outbox_list(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        sql = f"SELECT {_OUTBOX_COLS} FROM outbox"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY id LIMIT ?"
        with self._read() as cur:
            return [self._item(r) for r in self._select(cur, sql, [*params, limit])]

    def outbox_retry(self, ids: Sequence[int] | None = None) -> int:
        """Requeue dead items (all of them, or those in ``ids``) with attempts reset."""
        sql = (
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
            " lease_until = NULL WHERE status = 'dead'"
        )
        params: list[Any] = [time.time()]
        if ids is not None:
            if not ids:
                return 0
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params.extend(int(i) for i in ids)
        with self._write() as cur:
            cur.execute(self._q(sql), tuple(params))
            return int(cur.rowcount)

    def outbox_pending_count(self) -> int:
        with self._read() as cur:
            return int(
                self._select(cur, "SELECT count(*) FROM outbox WHERE status = 'pending'")[0][0]
            )

    def ping(self) -> None:
        with self._read() as cur:
            self._select(cur, "SELECT 1")

    def kv_get(self, key: str) -> Any:
        with self._read() as cur:
            rows = self._select(cur, "SELECT value FROM kv WHERE key = ?", [key])
        return self._json(rows[0][0]) if rows else None

    def kv_set(self, key: str, value: Any) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
                ),
                (key, codec.dumps(value), time.time()),
            )

    def kv_prune(self, prefix: str, updated_before: float) -> int:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._write() as cur:
            cur.execute(
                self._q("DELETE FROM kv WHERE key LIKE ? ESCAPE '\\' AND updated_at < ?"),
                (pattern, updated_before),
            )
            return int(cur.rowcount or 0)


def _model_filter(
    models: set[str] | None, exclude: set[str] | None, params: list[Any]
) -> str | None:
    """SQL restricting ``model`` to ``models`` and not ``exclude`` (parameters appended to
    ``params``); None when nothing can match."""
    sql = ""
    if models is not None:
        if not models:
            return None
        sql += f" AND model IN ({','.join('?' * len(models))})"
        params.extend(sorted(models))
    if exclude:
        sql += f" AND model NOT IN ({','.join('?' * len(exclude))})"
        params.extend(sorted(exclude))
    return sql


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_json_text(value: Any, decode: Any) -> str | None:
    """Re-encode a JSON column value read back from the database."""
    return codec.dumps(decode(value))
