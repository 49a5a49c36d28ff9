"""Live routing state in the store: one JSON document per model name, a global monotonic
revision, and an append-only history of every change (when, by whom or what, why).

Every change takes the next revision under one lock (SQLite's write lock, a locked
``routing_meta`` row in PostgreSQL), so revisions are dense, strictly increasing and become
visible in order. Gateways poll :meth:`RoutingTables.routing_revision` (one indexed row) and
re-read the whole state only when it moved.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from service.store import codec
from service.store.access import insert_audit
from service.store.entities import RoutingChange, RoutingConflict, RoutingSnapshot
from service.store.sqlhooks import SqlHooks

__all__ = ["POSTGRES_ROUTING_SCHEMA", "SQLITE_ROUTING_SCHEMA", "RoutingTables"]

_TABLES = """
CREATE TABLE IF NOT EXISTS routing_meta (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO routing_meta (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS routing (
    model text PRIMARY KEY,
    state {json} NOT NULL,
    revision bigint NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS routing_history (
    revision bigint PRIMARY KEY,
    model text NOT NULL,
    ts double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    reason text,
    state_before {json},
    state_after {json}
);
CREATE INDEX IF NOT EXISTS routing_history_model ON routing_history (model, revision)
"""
SQLITE_ROUTING_SCHEMA = _TABLES.format(json="text")
POSTGRES_ROUTING_SCHEMA = _TABLES.format(json="jsonb")

_HISTORY_COLS = "revision, model, ts, actor, action, reason, state_before, state_after"


class RoutingTables(SqlHooks):
    """The routing part of :class:`service.store.base.Store` (mixed into the SQL stores)."""

    def routing_revision(self) -> int:
        with self._read() as cur:
            rows = self._select(cur, "SELECT revision FROM routing_meta WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def routing_read(self) -> RoutingSnapshot:
        # The revision first: rows newer than it only make the next poll read again.
        with self._read() as cur:
            revision = self._select(cur, "SELECT revision FROM routing_meta WHERE id = 1")
            rows = self._select(cur, "SELECT model, state, revision FROM routing")
        return RoutingSnapshot(
            revision=int(revision[0][0]) if revision else 0,
            states={m: self._json(s) for m, s, _ in rows},
            revisions={m: int(r) for m, _, r in rows},
        )

    def routing_write(
        self,
        states: Mapping[str, dict[str, Any] | None],
        *,
        actor: str,
        action: str,
        reason: str | None = None,
        expected: Mapping[str, int] | None = None,
        only_if_unset: bool = False,
    ) -> list[RoutingChange]:
        now = time.time()
        changes: list[RoutingChange] = []
        with self._write() as cur:
            meta = f"SELECT revision FROM routing_meta WHERE id = 1{self._lock_rows()}"
            revision = int(self._select(cur, meta)[0][0])
            if only_if_unset and revision > 0:
                return []
            current = {
                m: (self._json(s), int(r))
                for m, s, r in self._select(cur, "SELECT model, state, revision FROM routing")
            }
            for model, state in states.items():
                before, model_revision = current.get(model, (None, 0))
                wanted = (expected or {}).get(model, model_revision)
                if wanted != model_revision:
                    raise RoutingConflict(model, wanted, model_revision)
                if before == state:
                    continue
                revision += 1
                self._put_state(cur, model, state, revision, now)
                cur.execute(
                    self._q(
                        f"INSERT INTO routing_history ({_HISTORY_COLS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (revision, model, now, actor, action, reason,
                     codec.dumps(before), codec.dumps(state)),
                )  # fmt: skip
                changes.append(
                    RoutingChange(revision, model, now, actor, action, reason, before, state)
                )
                insert_audit(cur, self._q, actor, f"routing.{action}", model,
                             {"revision": revision, "reason": reason, "before": before,
                              "after": state}, now)  # fmt: skip
            if changes:
                cur.execute(self._q("UPDATE routing_meta SET revision = ? WHERE id = 1"),
                            (revision,))  # fmt: skip
        return changes

    def _put_state(
        self, cur: Any, model: str, state: dict[str, Any] | None, revision: int, now: float
    ) -> None:
        if state is None:
            cur.execute(self._q("DELETE FROM routing WHERE model = ?"), (model,))
            return
        cur.execute(
            self._q(
                "INSERT INTO routing (model, state, revision, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (model) DO UPDATE SET state = excluded.state,"
                " revision = excluded.revision, updated_at = excluded.updated_at"
            ),
            (model, codec.dumps(state), revision, now),
        )

    def routing_history(self, model: str | None = None, limit: int = 100) -> list[RoutingChange]:
        where, params = ("WHERE model = ?", [model]) if model is not None else ("", [])
        sql = (
            f"SELECT {_HISTORY_COLS} FROM (SELECT {_HISTORY_COLS} FROM routing_history {where}"
            " ORDER BY revision DESC LIMIT ?) AS t ORDER BY revision"
        )
        with self._read() as cur:
            rows = self._select(cur, sql, [*params, limit])
        j = self._json
        return [
            RoutingChange(int(r[0]), r[1], float(r[2]), r[3], r[4], r[5], j(r[6]), j(r[7]))
            for r in rows
        ]
