"""Leases with fencing tokens: one active holder per name (one monitor per partition).

A lease is a row ``(name, holder, token, expires_at)``. :meth:`LeaseTables.lease_acquire`
takes a free or expired lease and increments its ``token`` (a new term), or renews a lease
the caller still holds. Expiry is judged by the database's clock, so holders on machines
whose clocks disagree never both believe they hold it.

Fencing: a write made on behalf of a lease (checkpoint, monitoring events, outbox rows)
passes its :class:`~service.store.entities.Lease`; the store checks, inside the write's own
transaction and with the lease row locked against a concurrent takeover, that the lease is
still held with that token and not expired, and raises :class:`LeaseLost` (writing nothing)
otherwise. A takeover therefore either sees every write of the previous holder or none of it.
"""

from __future__ import annotations

from typing import Any

from service.store.entities import Lease, LeaseLost, LeaseRow
from service.store.sqlhooks import SqlHooks

__all__ = ["LEASE_SCHEMA", "LeaseTables"]

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    expires_at double precision NOT NULL,
    acquired_at double precision NOT NULL
)
"""


class LeaseTables(SqlHooks):
    """The lease part of :class:`service.store.base.Store` (mixed into the SQL stores)."""

    def _now_sql(self) -> str:  # pragma: no cover - backend hook
        """SQL expression of the database's clock in unix seconds."""
        raise NotImplementedError

    def _share_rows(self) -> str:
        """Row lock that a takeover's UPDATE must wait for (PostgreSQL ``FOR SHARE``)."""
        return ""

    def lease_acquire(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        now = self._now_sql()
        with self._write() as cur:
            cur.execute(
                self._q("INSERT INTO leases (name, holder, token, expires_at, acquired_at)"
                        f" VALUES (?, ?, 0, 0, {now}) ON CONFLICT (name) DO NOTHING"),
                (name, holder),
            )  # fmt: skip
            rows = self._select(
                cur,
                f"SELECT holder, token, expires_at > {now} FROM leases WHERE name = ?"
                f"{self._lock_rows()}",
                (name,),
            )
            current_holder, token, live = rows[0][0], int(rows[0][1]), bool(rows[0][2])
            if live and current_holder != holder:
                return None
            if live:  # ours and live: renew, same term
                cur.execute(
                    self._q(f"UPDATE leases SET expires_at = {now} + ? WHERE name = ?"),
                    (ttl_seconds, name),
                )
                return Lease(name, holder, token)
            cur.execute(
                self._q(f"UPDATE leases SET holder = ?, token = token + 1, expires_at = {now} + ?,"
                        f" acquired_at = {now} WHERE name = ?"),
                (holder, ttl_seconds, name),
            )  # fmt: skip
            return Lease(name, holder, token + 1)

    def lease_renew(self, lease: Lease, ttl_seconds: float) -> bool:
        """Extend a lease still held with its token (also just after it expired, as long
        as nobody took it: no one else wrote meanwhile); False when it was taken."""
        with self._write() as cur:
            cur.execute(
                self._q(f"UPDATE leases SET expires_at = {self._now_sql()} + ? WHERE name = ?"
                        " AND holder = ? AND token = ?"),
                (ttl_seconds, lease.name, lease.holder, lease.token),
            )  # fmt: skip
            return int(cur.rowcount or 0) == 1

    def lease_release(self, lease: Lease) -> None:
        """Let a standby take the lease now (its token stays: the next holder increments)."""
        with self._write() as cur:
            cur.execute(
                self._q("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?"
                        " AND token = ?"),
                (lease.name, lease.holder, lease.token),
            )  # fmt: skip

    def lease_list(self, prefix: str = "") -> list[LeaseRow]:
        pattern = _like(prefix)
        with self._read() as cur:
            rows = self._select(
                cur,
                f"SELECT name, holder, token, expires_at - {self._now_sql()}, acquired_at"
                " FROM leases WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
                (pattern,),
            )
        return [LeaseRow(r[0], r[1], int(r[2]), float(r[3]), float(r[4])) for r in rows]

    def lease_prune(self, prefix: str, expired_for_seconds: float) -> int:
        pattern = _like(prefix)
        with self._write() as cur:
            cur.execute(
                self._q("DELETE FROM leases WHERE name LIKE ? ESCAPE '\\'"
                        f" AND expires_at < {self._now_sql()} - ?"),
                (pattern, expired_for_seconds),
            )  # fmt: skip
            return int(cur.rowcount or 0)

    def _check_fence(self, cur: Any, fence: Lease | None) -> None:
        """Raise :class:`LeaseLost` unless ``fence`` is held now (inside a write tx)."""
        if fence is None:
            return
        rows = self._select(
            cur,
            f"SELECT 1 FROM leases WHERE name = ? AND holder = ? AND token = ?"
            f" AND expires_at > {self._now_sql()}{self._share_rows()}",
            (fence.name, fence.holder, fence.token),
        )
        if not rows:
            raise LeaseLost(fence)


def _like(prefix: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching names that start with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
