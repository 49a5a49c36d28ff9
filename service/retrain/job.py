"""One retrain, from a verified request to a rollout: wait for labels, split by time, train,
check on the holdout, register with lineage, start the rollout, follow it to its end.

Every outcome is an event in the store (``/monitoring/events``): ``retrain_started``, then
``retrain_registered`` (with the rollout it started), ``retrain_rejected`` (the holdout
check, with both losses) or ``retrain_failed`` (the stage and the error). The serving
version is only ever changed by the rollout.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from service.retrain.contract import (
    TS,
    Trainer,
    TrainerContext,
    as_result,
    trainer_code_version,
)
from service.retrain.holdout import compare, holdout_loss, loss_name, split_by_time
from service.retrain.settings import RetrainSettings
from service.retrain.store_io import LoopStore
from service.store.rollouts import RUNNING

log = logging.getLogger(__name__)

STARTED, REGISTERED, REJECTED, FAILED = (
    "retrain_started", "retrain_registered", "retrain_rejected", "retrain_failed"
)
OUTCOMES = ("registered", "rejected", "failed")
REFERENCE_ROWS = 2000
MIN_REFERENCE = 100


class RetrainFailed(Exception):
    """A retrain that cannot go on; ``stage`` says where."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class RetrainRequest:
    """A verified ``driftgate.retrain_requested`` webhook."""

    webhook_id: str
    payload: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.payload["model"])

    @property
    def event_id(self) -> str | None:
        return self.payload.get("event_id")

    @property
    def window(self) -> dict[str, Any]:
        return dict((self.payload.get("evidence") or {}).get("window") or {})

    @property
    def window_start(self) -> float:
        first = self.window.get("first_ts")
        if isinstance(first, int | float) and math.isfinite(first):
            return float(first)
        created = self.payload.get("created_at")
        from service.webhooks.payload import parse_iso

        return parse_iso(created) or time.time()

    def alarm(self) -> dict[str, Any]:
        """What raised the alarm: the monitor events (ids), features and the window."""
        evidence = self.payload.get("evidence") or {}
        return {"trigger": self.payload.get("trigger"),
                "monitor_event_ids": [],  # found in the store by the job: the evidence
                # names the alarm's prediction ids and features, not event ids
                "features": evidence.get("features", []), "window": self.window,
                "alerts": [a.get("fingerprint") for a in evidence.get("alerts", [])]}


@dataclass
class JobResult:
    """How one retrain ended."""

    outcome: str
    seconds: float
    version: str | None = None
    rollout: str | None = None
    rollout_status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class RetrainJob:
    """Runs retrains of one worker against one store with one trainer."""

    def __init__(self, io: LoopStore, trainer: Trainer, trainer_name: str,
                 settings: RetrainSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.io = io
        self.trainer = trainer
        self.trainer_name = trainer_name
        self.settings = settings
        self.sleep = sleep
        self.clock = clock

    def run(self, request: RetrainRequest) -> JobResult:
        began = time.monotonic()
        model, wid = request.model, request.webhook_id
        base = {"webhook_id": wid, "event_id": request.event_id, "trainer": self.trainer_name}
        alarm = request.alarm()
        try:
            alarm["monitor_event_ids"] = self.io.alarm_event_ids(model, alarm["features"])
        except Exception:  # the lineage then names the alarm by its evidence only
            log.exception("could not find the alarm's events of %s", model)
        self.io.event(model, request.payload.get("version"), STARTED, wid,
                      {**base, "alarm": alarm})
        try:
            result = self._retrain(request, base, alarm)
        except RetrainFailed as failure:
            cause = failure.__cause__
            trace = "".join(traceback.format_exception(cause, limit=-5)) if cause else None
            result = self._failed(request, base, failure.stage, str(failure), trace)
        except Exception as exc:  # a bug here must still end in an event
            log.exception("retrain of %s failed", model)
            result = self._failed(request, base, "worker", f"{type(exc).__name__}: {exc}",
                                  traceback.format_exc(limit=5))
        result.seconds = time.monotonic() - began
        if result.outcome != "registered":
            self.io.end_episode(model, request.event_id, result.outcome)
        return result

    def follow(self, request: RetrainRequest, result: JobResult) -> JobResult:
        """Wait for the started rollout to end; then the model's episode ends."""
        deadline = self.clock() + self.settings.rollout_wait_seconds
        status = RUNNING
        while result.rollout is not None and self.clock() < deadline:
            row = self.io.rollout(result.rollout)
            status = row.status if row is not None else "gone"
            if status != RUNNING:
                break
            self.sleep(1.0)
        result.rollout_status = status
        self.io.end_episode(request.model, request.event_id, status)
        return result

    # -- the steps -------------------------------------------------------------------------
    def _retrain(self, request: RetrainRequest, base: dict[str, Any],
                 alarm: dict[str, Any]) -> JobResult:
        model, s = request.model, self.settings
        current = self.io.current(model)
        self._wait_for_labels(model, request.window_start)
        records = self.io.labelled(model, s.max_records,
                                   request.window_start - s.history_seconds)
        if len(records) < 2:
            raise RetrainFailed("data", f"{len(records)} labelled records of {model!r}")
        train, holdout = split_by_time(records, s.holdout_fraction, request.window_start)
        context = TrainerContext(model, current, train, request.window_start,
                                 self.io.reference(model, current.version), dict(request.payload))
        try:
            result = as_result(self.trainer(context))
        except Exception as exc:
            raise RetrainFailed("trainer", f"{type(exc).__name__}: {exc}") from exc
        card = current.card
        try:
            candidate = holdout_loss(result.estimator, card, holdout)
        except Exception as exc:
            raise RetrainFailed("holdout", f"the candidate could not predict the holdout: "
                                f"{type(exc).__name__}: {exc}") from exc
        verdict = compare(candidate, holdout_loss(current.estimator, card, holdout), s.margin)
        check = {"metric": loss_name(card), **verdict.to_dict(), "holdout_rows": len(holdout),
                 "train_rows": len(train), "holdout_from": float(holdout[TS].iloc[0])}
        if not verdict.accepted:
            why = (f"candidate {check['metric']} {candidate:.6g} on {len(holdout)} holdout "
                   f"records is worse than the current version's {verdict.current:.6g} by more "
                   f"than the margin {s.margin:g} (limit {verdict.limit:.6g})")
            self.io.event(model, current.version, REJECTED, request.webhook_id,
                          {**base, "reason": why, "check": check})
            return JobResult("rejected", 0.0, details={"reason": why, "check": check})
        return self._register(request, base, alarm, current, train, records, result, check)

    def _register(self, request: RetrainRequest, base: dict[str, Any],
                  alarm: dict[str, Any], current: Any,
                  train: pd.DataFrame, records: pd.DataFrame, result: Any,
                  check: dict[str, Any]) -> JobResult:
        model, wid = request.model, request.webhook_id
        recent = records[records[TS] >= request.window_start]
        if len(recent) < MIN_REFERENCE:
            recent = records.tail(max(MIN_REFERENCE, len(recent)))
        reference = recent.tail(REFERENCE_ROWS)
        trigger = {"type": "retrain", "event_id": request.event_id, "webhook_id": wid,
                   "alarm": alarm, "serving_version": request.payload.get("version"),
                   "evidence_window": {"from": request.window_start,
                                       "train_until": float(train[TS].iloc[-1])},
                   "trainer": self.trainer_name, "holdout": check}
        self.io.pin_default(model, current.version,
                            f"retrain {wid}: keep {current.version} until its rollout decides")
        metrics = {**result.metrics, f"holdout_{check['metric']}": check["candidate"]}
        try:
            entry = self.io.register(
                model, result.estimator, train, reference, current, metrics=metrics,
                parameters=result.parameters,
                code_version=result.code_version or trainer_code_version(self.trainer),
                parent_version=current.version, trigger=trigger,
            )
        except Exception as exc:
            raise RetrainFailed("register", f"{type(exc).__name__}: {exc}") from exc
        plan = self.settings.plan(entry.version, f"retrain {wid} ({request.event_id})")
        try:
            rollout = self.io.start_rollout(model, plan)
        except Exception as exc:
            raise RetrainFailed("rollout", f"registered {entry.version} but its rollout did "
                                f"not start: {exc}") from exc
        details = {**base, "version": entry.version, "parent_version": current.version,
                   "rollout": rollout.id, "check": check, "lineage": trigger}
        self.io.event(model, entry.version, REGISTERED, wid, details)
        return JobResult("registered", 0.0, entry.version, rollout.id, details=details)

    def _wait_for_labels(self, model: str, since: float) -> None:
        deadline = self.clock() + self.settings.label_wait_seconds
        while True:
            have = self.io.count_labelled(model, since)
            if have >= self.settings.min_labels:
                return
            if self.clock() >= deadline:
                raise RetrainFailed("data", f"{have} labelled records since the evidence "
                                    f"window, fewer than {self.settings.min_labels} after "
                                    f"{self.settings.label_wait_seconds:g} s")
            self.sleep(1.0)

    def _failed(self, request: RetrainRequest, base: dict[str, Any], stage: str, error: str,
                trace: str | None) -> JobResult:
        details = {**base, "stage": stage, "error": error[:2000]}
        if trace:
            details["traceback"] = trace[-4000:]
        self.io.event(request.model, request.payload.get("version"), FAILED,
                      request.webhook_id, details)
        return JobResult("failed", 0.0, details=details)
