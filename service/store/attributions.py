"""Attributions of the records the monitor sampled, stored beside the log (one row per
prediction id) and joined to it by ``export``. Writes are idempotent: a monitor replaying
from its checkpoint stores the same rows again, which are kept once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.store import codec
from service.store.sqlhooks import SqlHooks

__all__ = ["POSTGRES_ATTRIBUTION_SCHEMA", "SQLITE_ATTRIBUTION_SCHEMA", "AttributionTables"]

_TABLES = """
CREATE TABLE IF NOT EXISTS attributions (
    id text PRIMARY KEY,
    model text NOT NULL,
    version text NOT NULL,
    ts double precision NOT NULL,
    doc {json} NOT NULL
);
CREATE INDEX IF NOT EXISTS attributions_ts ON attributions (ts)
"""
SQLITE_ATTRIBUTION_SCHEMA = _TABLES.format(json="text")
POSTGRES_ATTRIBUTION_SCHEMA = _TABLES.format(json="jsonb")
_CHUNK = 500


class AttributionTables(SqlHooks):
    """The attribution part of :class:`service.store.base.Store` (mixed into the SQL stores)."""

    def attributions_put(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store sampled records' attributions: dicts with ``id``, ``model``, ``version``,
        ``ts`` and ``doc`` (explainer, base value, output, contributions); an id already
        stored is left as it is."""
        if not rows:
            return
        sql = self._q("INSERT INTO attributions (id, model, version, ts, doc)"
                      " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")
        with self._write() as cur:
            for start in range(0, len(rows), _CHUNK):
                cur.executemany(sql, [(r["id"], r["model"], r["version"], float(r["ts"]),
                                       codec.dumps(r["doc"]))
                                      for r in rows[start : start + _CHUNK]])

    def attributions_get(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored attributions by prediction id (ids without one are left out)."""
        out: dict[str, dict[str, Any]] = {}
        with self._read() as cur:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(ids[start : start + _CHUNK])
                marks = ", ".join("?" * len(chunk))
                for r in self._select(
                        cur, f"SELECT id, doc FROM attributions WHERE id IN ({marks})", chunk):
                    out[r[0]] = self._json(r[1])
        return out

    def _prune_attributions(self, cutoff: float) -> None:
        """Forget attributions older than ``cutoff`` and than the oldest record kept."""
        with self._write() as cur:
            cur.execute(self._q(
                "DELETE FROM attributions WHERE ts < ? AND ts < coalesce("
                "(SELECT ts FROM prediction_blocks ORDER BY log_offset LIMIT 1), ?)"),
                (cutoff, cutoff))
