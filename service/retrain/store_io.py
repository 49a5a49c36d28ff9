"""What the worker reads and writes: labelled records and events in the driftgate store,
versions in the model store, routing and rollouts through their admin classes (the same
code paths as ``driftgate models ...`` and ``driftgate rollout start``)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from models.registry import RegisteredModel, get_model, register_model
from service.retrain.contract import LABEL, TS, CurrentVersion
from service.rollout import RolloutPlan, Rollouts
from service.routing_state import LATEST, RoutingAdmin, resolve
from service.store.base import Store
from service.store.entities import RolloutRow
from service.webhooks.outbox import end_episode

__all__ = ["EVENT_DETECTOR", "LoopStore", "dedup_key"]

EVENT_DETECTOR = "retrain"
_DEDUP = "retrain:webhook:{id}"


def dedup_key(webhook_id: str) -> str:
    return _DEDUP.format(id=webhook_id)


class LoopStore:
    """The worker's view of one driftgate store, acting as ``actor``."""

    def __init__(self, store: Store, actor: str = "retrain-worker") -> None:
        self.store = store
        self.actor = actor

    # -- deduplication ---------------------------------------------------------------------
    def seen(self, webhook_id: str) -> dict[str, Any] | None:
        return self.store.kv_get(dedup_key(webhook_id))

    def remember(self, webhook_id: str, state: dict[str, Any]) -> None:
        self.store.kv_set(dedup_key(webhook_id), {**state, "updated_at": time.time()})

    # -- reading ---------------------------------------------------------------------------
    def current(self, model: str) -> CurrentVersion:
        """The version serving ``model`` by default now."""
        admin = RoutingAdmin(self.store, self.actor)
        spec, _ = admin.current(model)
        version = resolve(spec, spec.default, admin.versions(model))
        entry = get_model(model, version)
        return CurrentVersion(model, entry.version, entry.load_estimator(), entry.card)

    def reference(self, model: str, version: str) -> pd.DataFrame:
        return get_model(model, version).reference()

    def labelled(self, model: str, limit: int, since: float | None = None) -> pd.DataFrame:
        """The ``limit`` most recent labelled records of ``model`` since ``since`` (no shadow
        answers), oldest first, with the label in column ``label``."""
        frame = self.store.export(model, since=since, with_labels=True)
        frame = frame[frame["arm"] != "shadow"]
        return frame.sort_values(TS, kind="stable").tail(limit).reset_index(drop=True)

    def alarm_event_ids(self, model: str, features: list[dict[str, Any]]) -> list[int]:
        """The ids of the monitor events a retrain request's evidence lists (matched on kind,
        feature, detector and the prediction id where each fired)."""
        wanted = {(f.get("kind"), f.get("feature"), f.get("detector"), f.get("prediction_id"))
                  for f in features if f.get("prediction_id")}
        times = [float(f["ts"]) for f in features if isinstance(f.get("ts"), int | float)]
        if not wanted or not times:
            return []
        events = self.store.read_events(model, since=min(times) - 1.0, limit=10_000)
        return [e["id"] for e in events
                if (e["kind"], e.get("feature"), e.get("detector"), e.get("record_id")) in wanted]

    def count_labelled(self, model: str, since: float) -> int:
        frame = self.store.export(model, since=since, with_labels=True)
        return int((frame["arm"] != "shadow").sum()) if len(frame) else 0

    # -- writing ---------------------------------------------------------------------------
    def pin_default(self, model: str, version: str, reason: str) -> None:
        """When the default is ``latest``, make ``version`` the explicit default, so that
        registering a new version (which moves ``latest``) does not hand it the default
        traffic before its rollout. A default naming a version or an alias stays."""
        admin = RoutingAdmin(self.store, self.actor)
        spec, _ = admin.current(model)
        if spec.default == LATEST:
            admin.promote(model, version, reason)

    def register(self, model: str, estimator: Any, train: pd.DataFrame,
                 reference: pd.DataFrame, current: CurrentVersion,
                 **lineage: Any) -> RegisteredModel:
        card = current.card
        names = card.feature_names
        overrides = {f.name: {"kind": f.kind} for f in card.features}
        target = train[LABEL].rename(card.target or "target").reset_index(drop=True)
        return register_model(
            model, estimator, train[names].reset_index(drop=True), target, task=card.task,
            overrides=overrides, reference=reference[names].reset_index(drop=True),
            reference_target=reference[LABEL].reset_index(drop=True), **lineage,
        )

    def start_rollout(self, model: str, plan: RolloutPlan) -> RolloutRow:
        return Rollouts(self.store).start(model, plan, self.actor)

    def rollout(self, rollout_id: str) -> RolloutRow | None:
        return self.store.rollout_get(rollout_id)

    def event(self, model: str, version: str | None, kind: str, record_id: str,
              details: dict[str, Any]) -> None:
        self.store.append_events([{
            "model": model, "version": version, "kind": kind, "feature": None,
            "detector": EVENT_DETECTOR, "statistic": None, "threshold": None,
            "record_id": record_id, "ts": time.time(), "details": details,
        }])  # fmt: skip

    def end_episode(self, model: str, event_id: str | None, outcome: str) -> None:
        """The model's retrain request episode is over: a new episode may request again."""
        if event_id:
            end_episode(self.store, model, event_id, outcome, time.time())
