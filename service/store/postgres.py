"""PostgreSQL backend (psycopg 3) for several gateway replicas on several machines.

Ordering under concurrent writers (the "offset 11 visible before offset 10" problem) is
solved with a commit-serialized sequence: a writing transaction takes its offsets by
``UPDATE log_counters SET next_offset = next_offset + n ... RETURNING``, immediately before
its COPY and COMMIT. The updated counter row stays locked until that transaction ends, so
a second writer waits there and takes the following offsets only after the first has
committed (PostgreSQL makes a commit visible before it releases the transaction's locks)
or rolled back (then the counter rolls back too). Hence offsets become visible strictly in
order, a consumer reading ``offset > last`` can never skip one, and offsets are dense.

Why not the xid8 horizon (``pg_snapshot_xmin(pg_current_snapshot())``): it lets writers
commit in parallel, but the horizon is cluster-wide, so any unrelated transaction holding
an xid (another application, an idle-in-transaction session) delays or stalls the monitor;
on a shared server that happened within seconds. The serialized sequence costs one
lock hand-off per group commit (lock held for COPY + COMMIT, a few ms), which group commit
amortizes over the batch. The label stream uses its own counter the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from service.secrets import redact_dsn
from service.store.access import POSTGRES_ACCESS_STATEMENTS
from service.store.attributions import POSTGRES_ATTRIBUTION_SCHEMA
from service.store.leases import LEASE_SCHEMA
from service.store.pool import ConnectionPool
from service.store.rollouts import POSTGRES_ROLLOUT_SCHEMA
from service.store.routing import POSTGRES_ROUTING_SCHEMA
from service.store.sqlbase import SqlStoreBase

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

_SCHEMA_LOCK = 0x64726966  # advisory lock key serializing concurrent schema creation

SCHEMA = """
CREATE TABLE IF NOT EXISTS prediction_blocks (
    log_offset bigint PRIMARY KEY,
    n integer NOT NULL,
    first_id text NOT NULL,
    last_id text NOT NULL,
    ts double precision NOT NULL,
    model text NOT NULL,
    version text NOT NULL,
    arm text NOT NULL,
    request_id text,
    trace_id text,
    latency_ms double precision,
    data bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS prediction_blocks_first_id ON prediction_blocks (first_id);
CREATE INDEX IF NOT EXISTS prediction_blocks_model_ts ON prediction_blocks (model, ts);
CREATE TABLE IF NOT EXISTS labels (
    prediction_id text PRIMARY KEY,
    log_offset bigint NOT NULL,
    label jsonb,
    label_ts double precision
);
CREATE INDEX IF NOT EXISTS labels_log_offset ON labels (log_offset);
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
CREATE UNIQUE INDEX IF NOT EXISTS events_identity ON events (
    model, COALESCE(version, ''), kind, COALESCE(feature, ''), COALESCE(detector, ''),
    COALESCE(record_id, '')
);
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
);
CREATE TABLE IF NOT EXISTS log_counters (
    stream text PRIMARY KEY,
    next_offset bigint NOT NULL
);
INSERT INTO log_counters (stream, next_offset) VALUES ('predictions', 1), ('labels', 1)
    ON CONFLICT (stream) DO NOTHING
"""

_COPY = (
    "COPY prediction_blocks (log_offset, n, first_id, last_id, ts, model, version, arm,"
    " request_id, trace_id, latency_ms, data) FROM STDIN"
)
_TAKE = (
    "UPDATE log_counters SET next_offset = next_offset + %s WHERE stream = %s"
    " RETURNING next_offset - %s"
)


# A store that does not answer must fail fast (503 and readiness), not hang a request;
# a DSN's own connect_timeout wins.
def _connect_defaults(dsn: str) -> dict[str, Any]:
    return {} if "connect_timeout" in dsn else {"connect_timeout": 5}


class PostgresStore(SqlStoreBase):
    """Prediction log in PostgreSQL, selected by a ``postgresql://`` DSN."""

    def __init__(self, dsn: str, max_idle: int = 4) -> None:
        self.url = dsn
        defaults = _connect_defaults(dsn)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            lambda: psycopg.connect(dsn, autocommit=True, **defaults), max_idle=max_idle
        )
        try:
            self._init_schema()
            self._migrate_row_log()
        except psycopg.Error as exc:  # libpq may quote the DSN: never its password
            self._pool.close()
            raise psycopg.OperationalError(redact_dsn(str(exc))) from None

    def _init_schema(self) -> None:
        """Create the schema once; concurrent openers serialize on an advisory lock and
        skip the DDL when it exists (``CREATE INDEX IF NOT EXISTS`` would still lock the
        tables and could deadlock with a writer holding the counter row)."""
        parts = ((SCHEMA.split(";"), "labels", _prefer_lz4),
                 (POSTGRES_ROUTING_SCHEMA.split(";"), "routing_history", None),
                 (POSTGRES_ROLLOUT_SCHEMA.split(";"), "rollouts", None),
                 (LEASE_SCHEMA.split(";"), "leases", None),
                 (POSTGRES_ACCESS_STATEMENTS, "audit", None),
                 (POSTGRES_ATTRIBUTION_SCHEMA.split(";"), "attributions", None))
        for statements, last_table, then in parts:
            with self._read() as cur:
                if _schema_exists(cur, last_table):
                    continue
            with self._write() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if _schema_exists(cur, last_table):
                    continue
                for stmt in statements:
                    if stmt.strip():
                        cur.execute(stmt)
                if then is not None:  # a step a plain statement cannot take
                    then(cur)

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

    def _share_rows(self) -> str:
        return " FOR SHARE"

    def _now_sql(self) -> str:
        return "extract(epoch from clock_timestamp())::float8"

    def _tx_base(self, cur: Any, stream: str, n: int) -> int:
        """Reserve ``n`` offsets of ``stream``; locks the counter until this tx ends."""
        cur.execute(_TAKE, (n, stream, n))
        return int(cur.fetchone()[0])

    def _has_table(self, cur: Any, name: str) -> bool:
        return _schema_exists(cur, name)

    def _lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))

    def _insert_blocks(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        with cur.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return "PostgresStore(...)"


def _prefer_lz4(cur: Any) -> None:
    """Compress the log's block data with lz4 where the server has it (PostgreSQL 14+ built
    with lz4): blocks are read back about a quarter faster than with the default pglz
    (100,000 records of 64-row blocks: 50 against 65 ms)."""
    try:
        with cur.connection.transaction():  # a savepoint: an old server's error is harmless
            cur.execute("ALTER TABLE prediction_blocks ALTER COLUMN data SET COMPRESSION lz4")
    except psycopg.Error:
        log.info("PostgreSQL without lz4 column compression: blocks use its default")


def _schema_exists(cur: Any, table: str) -> bool:
    """Whether ``table`` exists: the table a schema part creates last, in the same
    transaction as everything else (log_counters for the log, the routing part added later).

    Queries pg_class with the statement's MVCC snapshot: ``to_regclass`` would use the
    cached catalog snapshot and miss a schema another process just committed."""
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname = current_schema())",
        (table,),
    )
    return bool(cur.fetchone()[0])
