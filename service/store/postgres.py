"""PostgreSQL backend (psycopg 3) for several gateway replicas on several machines.

Ordering under out-of-order commits. Offsets are derived from the writing transaction's
id: ``offset = (xid8 << 20) + row_index``. A consumer reads only offsets below the
*horizon* ``pg_snapshot_xmin(pg_current_snapshot()) << 20``, computed in the same
statement (same snapshot) as the rows it returns. Every transaction with an xid below
the snapshot's xmin has finished, and every transaction still running or yet to start has
an xid >= xmin, so the rows below the horizon are final: no later commit can insert an
offset below a horizon a consumer has already read up to. A consumer therefore never skips
a record, and offsets are strictly increasing in the order consumers see them.

Costs: a transaction stays invisible to consumers until every older transaction in the
cluster with an xid has finished (a long-running writing transaction elsewhere delays
the monitor, it never loses data); offsets are sparse; at most 2**20 - 1 rows per
transaction. The label stream uses the same scheme.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from service.store import codec
from service.store.pool import ConnectionPool
from service.store.records import PredictionRecord
from service.store.sqlbase import SqlStoreBase, _check_batch

__all__ = ["PostgresStore"]

_SCHEMA_LOCK = 0x64726966  # advisory lock key serializing concurrent schema creation

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    log_offset bigint PRIMARY KEY,
    id text NOT NULL UNIQUE,
    request_id text,
    trace_id text,
    ts double precision NOT NULL,
    model text NOT NULL,
    version text NOT NULL,
    arm text NOT NULL,
    features jsonb NOT NULL,
    prediction jsonb,
    probabilities jsonb,
    latency_ms double precision,
    label jsonb,
    label_ts double precision
);
CREATE INDEX IF NOT EXISTS predictions_model_ts ON predictions (model, ts);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE TABLE IF NOT EXISTS label_events (
    label_offset bigint PRIMARY KEY,
    prediction_id text NOT NULL,
    label jsonb,
    ts double precision NOT NULL,
    previous_label jsonb,
    relabel boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS label_events_prediction ON label_events (prediction_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer text PRIMARY KEY,
    log_offset bigint NOT NULL,
    label_offset bigint NOT NULL,
    state bytea NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id bigserial PRIMARY KEY,
    model text NOT NULL,
    version text,
    kind text NOT NULL,
    feature text,
    detector text,
    statistic double precision,
    threshold double precision,
    record_id text,
    ts double precision NOT NULL,
    details jsonb
);
CREATE INDEX IF NOT EXISTS events_model_ts ON events (model, ts);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL,
    endpoint text NOT NULL,
    model text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision NOT NULL,
    lease_until double precision,
    last_error text,
    created_at double precision NOT NULL,
    delivered_at double precision,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS kv (
    key text PRIMARY KEY,
    value jsonb,
    updated_at double precision NOT NULL
)
"""

_COPY = (
    "COPY predictions (log_offset, id, request_id, trace_id, ts, model, version, arm,"
    " features, prediction, probabilities, latency_ms, label, label_ts) FROM STDIN"
)
_HORIZON = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)"


class PostgresStore(SqlStoreBase):
    """Prediction log in PostgreSQL, selected by a ``postgresql://`` DSN."""

    def __init__(self, dsn: str, max_idle: int = 4) -> None:
        self.url = dsn
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            lambda: psycopg.connect(dsn, autocommit=True), max_idle=max_idle
        )
        self._init_schema()

    def _init_schema(self) -> None:
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _json(self, value: Any) -> Any:
        return value  # jsonb arrives decoded

    def _lock_rows(self, skip_locked: bool = False) -> str:
        return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"

    def _tx_base(self, cur: Any) -> int:
        """Assign this transaction's xid now; its rows get offsets (xid << 20) + i."""
        cur.execute("SELECT pg_current_xact_id()::text::bigint")
        return int(cur.fetchone()[0]) << 20

    def _horizon(self, column: str) -> str:
        return f" AND {column} < {_HORIZON}"

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Insert ``records`` in one transaction with COPY."""
        if not records:
            return
        _check_batch(len(records))
        dumps = codec.dumps
        with self._write() as cur:
            base = self._tx_base(cur)
            with cur.copy(_COPY) as copy:
                for i, r in enumerate(records):
                    copy.write_row((
                        base + i, r.id, r.request_id, r.trace_id, r.ts, r.model, r.version,
                        r.arm, dumps(r.features), dumps(r.prediction), dumps(r.probabilities),
                        r.latency_ms, dumps(r.label), r.label_ts,
                    ))  # fmt: skip
        for i, r in enumerate(records):
            r.offset = base + i

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return "PostgresStore(...)"
