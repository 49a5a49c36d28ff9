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
from service.store.entities import Checkpoint, LabelEvent, LabelResult, Lease, OutboxItem
from service.store.export import records_to_frame
from service.store.leases import LeaseTables
from service.store.records import PredictionRecord
from service.store.rollouts import RolloutTables
from service.store.routing import RoutingTables

__all__ = ["SqlStoreBase", "PRED_COLS"]

PRED_COLS = (
    "log_offset, id, request_id, trace_id, ts, model, version, arm, features, prediction, "
    "probabilities, latency_ms, label, label_ts"
)
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

    # -- helpers -----------------------------------------------------------------------
    def _record(self, row: Sequence[Any]) -> PredictionRecord:
        j = self._json
        return PredictionRecord(
            offset=row[0], id=row[1], request_id=row[2], trace_id=row[3], ts=row[4],
            model=row[5], version=row[6], arm=row[7], features=j(row[8]),
            prediction=j(row[9]), probabilities=j(row[10]), latency_ms=row[11],
            label=j(row[12]), label_ts=row[13],
        )  # fmt: skip

    def _select(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur.execute(self._q(sql), tuple(params))
        return list(cur.fetchall())

    @staticmethod
    def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
        for i in range(0, len(seq), size):
            yield seq[i : i + size]

    # -- predictions -------------------------------------------------------------------
    def read_after(
        self, offset: int, limit: int, models: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[PredictionRecord]:
        sql = f"SELECT {PRED_COLS} FROM predictions WHERE log_offset > ?"
        params: list[Any] = [offset]
        where = _model_filter(models, exclude, params)
        if where is None:
            return []
        sql += f"{where}{self._horizon('log_offset')} ORDER BY log_offset LIMIT ?"
        params.append(limit)
        with self._read() as cur:
            return [self._record(r) for r in self._select(cur, sql, params)]

    def get(self, ids: Sequence[str]) -> list[PredictionRecord]:
        out: list[PredictionRecord] = []
        with self._read() as cur:
            for chunk in self._chunks(list(ids), _IN_CHUNK):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {PRED_COLS} FROM predictions WHERE id IN ({marks})"
                out.extend(self._record(r) for r in self._select(cur, sql, chunk))
        return sorted(out, key=lambda r: r.offset or 0)

    def high_water_offset(self) -> int:
        sql = f"SELECT max(log_offset) FROM predictions WHERE 1=1{self._horizon('log_offset')}"
        with self._read() as cur:
            value = self._select(cur, sql)[0][0]
        return int(value or 0)

    def lag(
        self, offset: int, models: set[str] | None = None, exclude: set[str] | None = None
    ) -> tuple[int, float]:
        params: list[Any] = [offset]
        models_sql = _model_filter(models, exclude, params)
        if models_sql is None:
            return 0, 0.0
        where = f"log_offset > ?{models_sql}{self._horizon('log_offset')}"
        with self._read() as cur:
            count = self._select(cur, f"SELECT count(*) FROM predictions WHERE {where}", params)[
                0
            ][0]
            if not count:
                return 0, 0.0
            first = self._select(
                cur,
                f"SELECT ts FROM predictions WHERE {where} ORDER BY log_offset LIMIT 1",
                params,
            )
        age = max(0.0, time.time() - first[0][0]) if first else 0.0
        return int(count), age

    # -- labels ------------------------------------------------------------------------
    def add_labels(self, items: Sequence[tuple[str, Any]], ts: float | None = None) -> LabelResult:
        ts = time.time() if ts is None else ts
        result = LabelResult()
        if not items:
            return result
        with self._write() as cur:
            base = self._tx_base(cur, "labels", len(items))
            for idx, (pred_id, label) in enumerate(items):
                found = self._select(
                    cur, f"SELECT label FROM predictions WHERE id = ?{self._lock_rows()}",
                    [pred_id],
                )  # fmt: skip
                if not found:
                    result.unknown.append(pred_id)
                    continue
                previous = found[0][0]
                relabel = previous is not None
                text = codec.dumps(label)
                cur.execute(
                    self._q("UPDATE predictions SET label = ?, label_ts = ? WHERE id = ?"),
                    (text, ts, pred_id),
                )
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
        cols = ", ".join(f"p.{c.strip()}" for c in PRED_COLS.split(","))
        sql = (
            f"SELECT le.label_offset, le.label, le.ts, le.previous_label, le.relabel, {cols} "
            "FROM label_events le JOIN predictions p ON p.id = le.prediction_id "
            f"WHERE le.label_offset > ?{self._horizon(self._label_col)} "
            "ORDER BY le.label_offset LIMIT ?"
        )
        out: list[LabelEvent] = []
        with self._read() as cur:
            for row in self._select(cur, sql, [label_offset, limit]):
                record = self._record(row[5:])
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
        if with_labels:
            where.append("label IS NOT NULL")
        sql = (
            f"SELECT {PRED_COLS} FROM predictions WHERE {' AND '.join(where)}"
            f"{self._horizon('log_offset')} ORDER BY log_offset"
        )
        with self._read() as cur:
            records = [self._record(r) for r in self._select(cur, sql, params)]
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
        :meth:`min_checkpoint_offset`), in chunks so writers are never blocked long.
        Label events of deleted predictions are deleted too when
        ``keep_after_label_offset`` is given (only those at or below it)."""
        cutoff = time.time() - older_than_seconds
        deleted = 0
        while True:
            with self._write() as cur:
                cur.execute(
                    self._q(
                        "DELETE FROM predictions WHERE log_offset IN (SELECT log_offset FROM"
                        " predictions WHERE log_offset <= ? AND ts < ? ORDER BY log_offset"
                        " LIMIT ?)"
                    ),
                    (keep_after_offset, cutoff, _PRUNE_CHUNK),
                )
                n = cur.rowcount
            deleted += n
            if n < _PRUNE_CHUNK:
                break
        self._prune_attributions(cutoff)
        if keep_after_label_offset is not None:
            with self._write() as cur:
                cur.execute(
                    self._q(
                        "DELETE FROM label_events WHERE label_offset <= ? AND ts < ? AND NOT"
                        " EXISTS (SELECT 1 FROM predictions p WHERE p.id ="
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
