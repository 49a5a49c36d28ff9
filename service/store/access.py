"""API keys and the audit trail in the store (mixed into both SQL stores).

Keys are stored as hashes only (the secret is shown once, at creation); a key is never
deleted, a revocation sets ``revoked_at``. The audit table is append-only: the store has no
method that changes or deletes a record, and a trigger refuses UPDATE and DELETE in SQL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from service.store import codec
from service.store.entities import ApiKeyRow, AuditRecord
from service.store.sqlhooks import SqlHooks

__all__ = ["POSTGRES_ACCESS_STATEMENTS", "SQLITE_ACCESS_STATEMENTS", "AccessTables", "insert_audit"]

_TABLES = """
CREATE TABLE IF NOT EXISTS api_keys (
    id text PRIMARY KEY,
    key_hash text NOT NULL,
    name text,
    scopes {json} NOT NULL,
    models {json},
    created_at double precision NOT NULL,
    created_by text NOT NULL,
    expires_at double precision,
    revoked_at double precision
);
CREATE TABLE IF NOT EXISTS audit (
    id {serial},
    ts double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    details {json}
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts)
"""
# triggers hold ';' in their bodies: kept out of the ';'-split table statements
SQLITE_ACCESS_STATEMENTS = [
    s for s in _TABLES.format(json="text", serial="integer PRIMARY KEY AUTOINCREMENT").split(";")
    if s.strip()
] + [
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT "
    "RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT "
    "RAISE(ABORT, 'the audit trail is append-only'); END",
]
POSTGRES_ACCESS_STATEMENTS = [
    s for s in _TABLES.format(json="jsonb", serial="bigserial PRIMARY KEY").split(";") if s.strip()
] + [
    "CREATE OR REPLACE FUNCTION driftgate_audit_append_only() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION driftgate_audit_append_only()",
]

_KEY_COLS = "id, key_hash, name, scopes, models, created_at, created_by, expires_at, revoked_at"
_AUDIT_COLS = "id, ts, actor, action, target, details"


def insert_audit(
    cur: Any, q: Any, actor: str, action: str, target: str | None,
    details: dict[str, Any] | None, ts: float | None = None,
) -> None:
    """Append one audit record inside the caller's write transaction (``q`` rewrites the
    placeholders for the backend)."""
    cur.execute(
        q("INSERT INTO audit (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)"),
        (time.time() if ts is None else ts, actor, action, target, codec.dumps(details or {})),
    )


class AccessTables(SqlHooks):
    """The key and audit part of :class:`service.store.base.Store`."""

    def _key(self, r: Sequence[Any]) -> ApiKeyRow:
        j = self._json
        return ApiKeyRow(
            id=r[0], key_hash=r[1], name=r[2], scopes=list(j(r[3]) or []),
            models=j(r[4]), created_at=float(r[5]), created_by=r[6],
            expires_at=None if r[7] is None else float(r[7]),
            revoked_at=None if r[8] is None else float(r[8]),
        )  # fmt: skip

    def key_insert(self, key: ApiKeyRow) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(f"INSERT INTO api_keys ({_KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (key.id, key.key_hash, key.name, codec.dumps(key.scopes),
                 codec.dumps(key.models), key.created_at, key.created_by, key.expires_at,
                 key.revoked_at),
            )  # fmt: skip
            insert_audit(cur, self._q, key.created_by, "key.create", key.id,
                         {"name": key.name, "scopes": key.scopes, "models": key.models,
                          "expires_at": key.expires_at}, key.created_at)  # fmt: skip

    def key_list(self) -> list[ApiKeyRow]:
        with self._read() as cur:
            rows = self._select(cur, f"SELECT {_KEY_COLS} FROM api_keys ORDER BY created_at, id")
        return [self._key(r) for r in rows]

    def key_revoke(self, key_id: str, actor: str, ts: float | None = None) -> bool:
        now = time.time() if ts is None else ts
        with self._write() as cur:
            cur.execute(
                self._q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
                (now, key_id),
            )
            if not cur.rowcount:
                return False
            insert_audit(cur, self._q, actor, "key.revoke", key_id, None, now)
        return True

    def audit_append(
        self, actor: str, action: str, target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self._write() as cur:
            insert_audit(cur, self._q, actor, action, target, details)

    def audit_read(
        self, since: float | None = None, action: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        where, params = ["1=1"], list[Any]()
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        cond = " AND ".join(where)
        sql = (f"SELECT {_AUDIT_COLS} FROM (SELECT {_AUDIT_COLS} FROM audit WHERE {cond}"
               " ORDER BY id DESC LIMIT ?) AS t ORDER BY id")
        with self._read() as cur:
            rows = self._select(cur, sql, [*params, limit])
        return [AuditRecord(int(r[0]), float(r[1]), r[2], r[3], r[4], self._json(r[5]) or {})
                for r in rows]
