"""Rollouts in the store: one row per rollout (its JSON document plus the columns queries
need). At most one rollout per model is ``running`` (a partial unique index); changes are
compare-and-set on the status, so an abort and the monitor's decision never both win."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from service.store import codec
from service.store.access import insert_audit
from service.store.blocks import BLOCK_COLS
from service.store.entities import RolloutConflict, RolloutRow, WindowRow
from service.store.sqlhooks import SqlHooks

__all__ = ["POSTGRES_ROLLOUT_SCHEMA", "SQLITE_ROLLOUT_SCHEMA", "RolloutTables"]

RUNNING = "running"
_TABLES = """
CREATE TABLE IF NOT EXISTS rollouts (
    id text PRIMARY KEY,
    model text NOT NULL,
    status text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    doc {json} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rollouts_one_running ON rollouts (model)
    WHERE status = 'running';
CREATE INDEX IF NOT EXISTS rollouts_model ON rollouts (model, created_at)
"""
SQLITE_ROLLOUT_SCHEMA = _TABLES.format(json="text")
POSTGRES_ROLLOUT_SCHEMA = _TABLES.format(json="jsonb")
_COLS = "id, model, status, created_at, updated_at, doc"


class RolloutTables(SqlHooks):
    """The rollout part of :class:`service.store.base.Store` (mixed into the SQL stores)."""

    def _row(self, r: Any) -> RolloutRow:
        return RolloutRow(r[0], r[1], r[2], float(r[3]), float(r[4]), self._json(r[5]))

    def rollout_create(self, rollout_id: str, model: str, doc: dict[str, Any]) -> RolloutRow:
        now = time.time()
        with self._write() as cur:
            # serialize creators of the same model on the routing lock row
            self._select(cur, f"SELECT revision FROM routing_meta WHERE id = 1{self._lock_rows()}")
            running = self._select(
                cur, "SELECT id FROM rollouts WHERE model = ? AND status = ?", (model, RUNNING)
            )
            if running:
                raise RolloutConflict(model, running[0][0])
            cur.execute(
                self._q(f"INSERT INTO rollouts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)"),
                (rollout_id, model, RUNNING, now, now, codec.dumps(doc)),
            )
            insert_audit(cur, self._q, str(doc.get("actor") or "unknown"), "rollout.start",
                         model, {"rollout": rollout_id, "version": doc.get("version"),
                                 "steps": doc.get("steps"), "reason": doc.get("reason")}, now)
        return RolloutRow(rollout_id, model, RUNNING, now, now, doc)

    def rollout_update(
        self, rollout_id: str, status: str, doc: dict[str, Any], expected_status: str = RUNNING
    ) -> bool:
        with self._write() as cur:
            cur.execute(
                self._q("UPDATE rollouts SET status = ?, doc = ?, updated_at = ?"
                        " WHERE id = ? AND status = ?"),
                (status, codec.dumps(doc), time.time(), rollout_id, expected_status),
            )  # fmt: skip
            return bool(cur.rowcount)

    def rollout_get(self, rollout_id: str) -> RolloutRow | None:
        with self._read() as cur:
            rows = self._select(cur, f"SELECT {_COLS} FROM rollouts WHERE id = ?", (rollout_id,))
        return self._row(rows[0]) if rows else None

    def rollout_list(
        self, model: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[RolloutRow]:
        where, params = [], []
        if model is not None:
            where.append("model = ?")
            params.append(model)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = (f"SELECT {_COLS} FROM (SELECT {_COLS} FROM rollouts{clause}"
               " ORDER BY created_at DESC, id DESC LIMIT ?) AS t ORDER BY created_at, id")
        with self._read() as cur:
            rows = self._select(cur, sql, [*params, limit])
        return [self._row(r) for r in rows]

    def rollout_window(
        self, model: str, since: float, arms: Mapping[str, str]
    ) -> list[WindowRow]:
        """``model``'s answers with ``ts >= since`` by ``arms`` (arm -> version), in log
        order; no features are read."""
        if not arms:
            return []
        match = " OR ".join(["(arm = ? AND version = ?)"] * len(arms))
        params: list[Any] = [model, since]
        for arm, version in arms.items():
            params += [arm, version]
        sql = (f"SELECT {BLOCK_COLS} FROM prediction_blocks"
               f" WHERE model = ? AND ts >= ? AND ({match}) ORDER BY log_offset")
        with self._read() as cur:
            blocks = [self._block(r) for r in self._select(cur, sql, params)]
            self._attach_labels(cur, blocks)
        out = []
        for b in blocks:
            latency = float(b.latency_ms or 0.0)
            for rid, prediction in zip(b.ids, b.predictions, strict=True):
                label = b.labels.get(rid, (None, None))[0]
                out.append(WindowRow(b.arm, prediction, latency, label, b.request_id))
        return out
