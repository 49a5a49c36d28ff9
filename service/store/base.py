"""The store contract shared by the SQLite and PostgreSQL backends.

The log is stored as columnar blocks (:mod:`service.store.blocks`), one per request, each
record with its own offset. Ordering guarantee of both streams (predictions by ``offset``,
labels by ``label_offset``):
a consumer that repeatedly calls ``read_after(last_seen_offset, n)`` sees every committed
record exactly once, in increasing offset order, also when concurrent writers commit out of
order. Offsets are strictly increasing but not dense (gaps are normal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from service.store.blocks import RecordBlock
from service.store.entities import (
    ApiKeyRow,
    AuditRecord,
    Checkpoint,
    LabelEvent,
    LabelResult,
    Lease,
    LeaseRow,
    OutboxItem,
    RolloutRow,
    RoutingChange,
    RoutingSnapshot,
    WindowRow,
)
from service.store.records import PredictionRecord

__all__ = ["Store", "AccessStore", "LogStore", "MonitorStateStore", "OutboxStore",
           "KeyValueStore", "RoutingStore", "RolloutStore", "DeliveryStore", "LeaseStore",
           "OUTBOX_STATUSES"]

OUTBOX_STATUSES = ("pending", "delivered", "dead")


# The store by role: a component is annotated with the protocol of what it uses (the gateway's
# log writer a LogStore, the webhook dispatcher a DeliveryStore, ...), so its dependency is
# visible in its signature and mypy holds it to it. Both backends implement all of them
# (Store); the contract suite (tests/store) runs every role on each backend.


@runtime_checkable
class LogStore(Protocol):
    """The prediction log and the labels joined to it (gateway writes, monitor reads)."""

    # -- predictions -------------------------------------------------------------------
    def append(self, records: Sequence[PredictionRecord | RecordBlock]) -> None:
        """Commit ``records`` (records and/or blocks) in one transaction; sets each
        ``offset`` (a block's is its first record's). A replayed block is rejected."""

    def read_after(
        self, offset: int, limit: int, models: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[PredictionRecord]:
        """Records with offset > ``offset`` in offset order (at most ``limit``), of
        ``models`` only and none of ``exclude`` when given."""

    def read_blocks_after(
        self, offset: int, limit: int, models: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[RecordBlock]:
        """The records of :meth:`read_after` as columnar blocks, without labels (the
        monitor's path: no object per record)."""

    def get(self, ids: Sequence[str]) -> list[PredictionRecord]:
        """Records by prediction id (unknown ids are left out)."""

    def high_water_offset(self) -> int:
        """Highest offset a consumer can read now (0 when the log is empty)."""

    def lag(
        self, offset: int, models: set[str] | None = None, exclude: set[str] | None = None
    ) -> tuple[int, float]:
        """(readable records after ``offset`` (filtered as :meth:`read_after`), age in
        seconds of the oldest of them)."""

    # -- labels ------------------------------------------------------------------------
    def add_labels(self, items: Sequence[tuple[str, Any]], ts: float | None = None) -> LabelResult:
        """Join ground-truth labels to predictions by id; last label wins."""

    def read_labels_after(self, label_offset: int, limit: int) -> list[LabelEvent]:
        """Label events after ``label_offset`` in order, each with its prediction."""

    def high_water_label_offset(self) -> int:
        """Highest readable label offset (0 when there is none)."""

    # -- export and retention ----------------------------------------------------------
    def export(
        self,
        model: str,
        since: float | None = None,
        until: float | None = None,
        with_labels: bool = False,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Predictions of ``model`` with ``since <= ts < until`` as a DataFrame (with the
        ``attributions`` of the records the monitor explained, None for the others)."""

    def attributions_put(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store attributions of sampled records (``id``, ``model``, ``version``, ``ts``,
        ``doc``); idempotent per id. ``export`` returns them in its ``attributions``
        column."""

    def attributions_get(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored attributions by prediction id (ids without one are left out)."""

    def prune(
        self,
        older_than_seconds: float,
        keep_after_offset: int,
        keep_after_label_offset: int | None = None,
    ) -> int:
        """Delete records older than the age whose offset is <= ``keep_after_offset``
        (label events of deleted records too, up to ``keep_after_label_offset``)."""


@runtime_checkable
class MonitorStateStore(Protocol):
    """The monitor's checkpoints and the monitoring events it stores."""

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(
        self, consumer: str, offset: int, label_offset: int, state: bytes,
        fence: Lease | None = None,
    ) -> None:
        """Atomically store the consumer's offsets together with its state (with ``fence``:
        only while that lease is held, else :class:`LeaseLost` and nothing is written)."""

    def load_checkpoint(self, consumer: str) -> Checkpoint | None:
        """The last saved checkpoint of ``consumer``, or None."""

    def min_checkpoint_offset(self) -> int | None:
        """Offset of the slowest consumer (None when no consumer has saved one)."""

    def min_checkpoint_label_offset(self) -> int | None:
        """Label offset of the slowest consumer (None when no consumer has saved one)."""

    # -- monitoring events ---------------------------------------------------------------
    def append_events(
        self, events: Sequence[dict[str, Any]], fence: Lease | None = None
    ) -> list[bool]:
        """Store monitoring events (keys: model, version, kind, feature, detector,
        statistic, threshold, record_id, ts, details). Idempotent: an event with the same
        (model, version, kind, feature, detector, record_id) is stored once. Returns, per
        event, whether it was new. ``fence`` as in :meth:`save_checkpoint`."""

    def read_events(
        self, model: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Events with ``ts >= since`` oldest first; without ``since`` the latest
        ``limit`` events (still oldest first). Each dict also carries ``id``."""


@runtime_checkable
class OutboxStore(Protocol):
    """The webhook outbox: retrain requests waiting for delivery, delivered, or dead."""

    # -- webhook outbox ----------------------------------------------------------------
    def outbox_enqueue(
        self, event_id: str, endpoint: str, payload: dict[str, Any], model: str,
        fence: Lease | None = None,
    ) -> bool:
        """Queue a delivery; False if (event_id, endpoint) was already queued. ``fence`` as
        in :meth:`MonitorStateStore.save_checkpoint`."""

    def outbox_claim_due(self, now: float, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Lease up to ``limit`` pending items due at ``now``; counts an attempt."""

    def outbox_mark_delivered(self, item_id: int) -> None:
        """Mark an item delivered."""

    def outbox_mark_failed(self, item_id: int, error: str, next_attempt_at: float | None) -> None:
        """Reschedule an item, or dead-letter it when ``next_attempt_at`` is None."""

    def outbox_list(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        """Items (optionally of one status), oldest first."""

    def outbox_retry(self, ids: Sequence[int] | None = None) -> int:
        """Requeue the given items, or all dead ones; returns how many."""

    def outbox_pending_count(self) -> int:
        """Number of pending items."""


@runtime_checkable
class KeyValueStore(Protocol):
    """Small JSON values by key (monitor status, cooldowns, disabled endpoints)."""

    def kv_get(self, key: str) -> Any:
        """A JSON value from the key-value table, or None."""

    def kv_set(self, key: str, value: Any) -> None:
        """Set (upsert) a JSON value in the key-value table."""

    def kv_prune(self, prefix: str, updated_before: float) -> int:
        """Delete keys starting with ``prefix`` last set before ``updated_before`` (unix s)."""


@runtime_checkable
class RoutingStore(Protocol):
    """Revisioned routing of every model, with its history."""

    # -- routing -----------------------------------------------------------------------
    def routing_revision(self) -> int:
        """The revision of the last routing change (0: routing was never set)."""

    def routing_read(self) -> RoutingSnapshot:
        """Every model's routing document with the revision it was read at."""

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
        """Set (None: delete) the routing of models in one transaction; every model whose
        document changes takes the next revision and a history entry, an unchanged one is
        skipped (idempotent). ``expected`` maps a model to the revision its caller read
        (0: no routing): a mismatch raises :class:`RoutingConflict` and writes nothing.
        ``only_if_unset`` writes only into a store whose routing was never set."""

    def routing_history(self, model: str | None = None, limit: int = 100) -> list[RoutingChange]:
        """The latest ``limit`` routing changes (of one model), oldest first."""


@runtime_checkable
class RolloutStore(Protocol):
    """Automated rollouts (the monitor runs them; the admin API starts and aborts them)."""

    def rollout_create(self, rollout_id: str, model: str, doc: dict[str, Any]) -> RolloutRow:
        """Store a new ``running`` rollout; :class:`RolloutConflict` if ``model`` has one."""

    def rollout_update(
        self, rollout_id: str, status: str, doc: dict[str, Any], expected_status: str = "running"
    ) -> bool:
        """Set status and document if the rollout is still ``expected_status``; False if not."""

    def rollout_get(self, rollout_id: str) -> RolloutRow | None:
        """One rollout, or None."""

    def rollout_list(
        self, model: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[RolloutRow]:
        """The latest ``limit`` rollouts (of a model, of a status), oldest first."""

    def rollout_window(
        self, model: str, since: float, arms: Mapping[str, str]
    ) -> list[WindowRow]:
        """The answers of ``model`` logged with ``ts >= since`` by one of ``arms``
        (arm -> version), in log order."""

@runtime_checkable
class LeaseStore(Protocol):
    """Leases with fencing tokens (one active monitor per partition; see
    :mod:`service.store.leases`)."""

    def lease_acquire(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        """Take ``name`` if free or expired (a new, higher token), renew it if ``holder``
        holds it (same token); None while another holder's lease is live."""

    def lease_renew(self, lease: Lease, ttl_seconds: float) -> bool:
        """Extend a lease still held with its token; False once another holder took it."""

    def lease_release(self, lease: Lease) -> None:
        """Expire a held lease now (a standby may take it at once)."""

    def lease_list(self, prefix: str = "") -> list[LeaseRow]:
        """Leases whose name starts with ``prefix``."""

    def lease_prune(self, prefix: str, expired_for_seconds: float) -> int:
        """Delete leases whose name starts with ``prefix`` expired for longer than that
        (departed monitors' heartbeats); how many."""


@runtime_checkable
class AccessStore(Protocol):
    """API keys (hashes only) and the append-only audit trail of admin actions."""

    def key_insert(self, key: ApiKeyRow) -> None:
        """Store a new key and its ``key.create`` audit record in one transaction."""

    def key_list(self) -> list[ApiKeyRow]:
        """Every key ever created (revoked and expired ones too), oldest first."""

    def key_revoke(self, key_id: str, actor: str, ts: float | None = None) -> bool:
        """Revoke a key (and audit it); False if unknown or already revoked."""

    def audit_append(
        self, actor: str, action: str, target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit record."""

    def audit_read(
        self, since: float | None = None, action: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        """The latest ``limit`` audit records (at or after ``since``, of ``action``),
        oldest first."""


@runtime_checkable
class DeliveryStore(OutboxStore, KeyValueStore, Protocol):
    """What webhook delivery uses: the outbox and the key-value table (cooldowns, endpoints)."""


@runtime_checkable
class Store(
    LogStore, MonitorStateStore, OutboxStore, KeyValueStore, RoutingStore, RolloutStore,
    LeaseStore, AccessStore, Protocol,
):
    """A prediction log plus the monitor's side tables (labels, checkpoints, events,
    webhook outbox, key-value, routing, rollouts, API keys, audit). All methods are
    blocking and thread-safe; call them from a worker thread (or via
    :class:`~service.store.writer.GroupCommitWriter`) in async code."""

    url: str

    def ping(self) -> None:
        """Raise unless the store answers a trivial query now."""

    def close(self) -> None:
        """Close all connections."""
