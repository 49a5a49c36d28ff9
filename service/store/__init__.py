"""Durable, ordered prediction log with SQLite and PostgreSQL backends.

Entry points: :func:`open_store` (backend chosen by URL), :class:`GroupCommitWriter`
(async group commit for the gateway), :func:`export_to_file` (retraining export).
"""

from __future__ import annotations

from service.store.base import (
    DeliveryStore,
    KeyValueStore,
    LeaseStore,
    LogStore,
    MonitorStateStore,
    OutboxStore,
    RolloutStore,
    RoutingStore,
    Store,
)
from service.store.entities import (
    Checkpoint,
    LabelEvent,
    LabelResult,
    Lease,
    LeaseLost,
    LeaseRow,
    OutboxItem,
    RolloutConflict,
    RolloutRow,
    RoutingChange,
    RoutingConflict,
    RoutingSnapshot,
)
from service.store.export import export_to_file
from service.store.factory import open_store
from service.store.records import PredictionRecord, new_prediction_id
from service.store.writer import GroupCommitWriter

__all__ = [
    "Checkpoint",
    "DeliveryStore",
    "GroupCommitWriter",
    "KeyValueStore",
    "LabelEvent",
    "LabelResult",
    "Lease",
    "LeaseLost",
    "LeaseRow",
    "LeaseStore",
    "LogStore",
    "MonitorStateStore",
    "OutboxItem",
    "OutboxStore",
    "PredictionRecord",
    "RolloutConflict",
    "RolloutRow",
    "RolloutStore",
    "RoutingChange",
    "RoutingConflict",
    "RoutingSnapshot",
    "RoutingStore",
    "Store",
    "export_to_file",
    "new_prediction_id",
    "open_store",
]
