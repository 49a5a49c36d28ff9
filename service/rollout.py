"""Automated rollouts: a canary walks through weight steps, gated against the default arm.

A rollout is a row in the store (:mod:`service.store.rollouts`) holding its whole state, so
a restarted monitor resumes it where it was. :meth:`Rollouts.start` (CLI, HTTP) checks the
version, stores the rollout and routes its first weight; the monitor calls
:meth:`Rollouts.tick` every ``rollout_eval_seconds``; each tick evaluates every running
rollout over the window since its current step began (the canary arm and the default arm
over the same time window, read from the prediction log):

* ``share``: the canary arm's share of logged answers is not below its routed weight
  (a request routed to the canary that failed is never logged, so this is the error-ratio
  gate: it fails when the canary fails more than ``error_margin`` more of its requests than
  the default does; one-sided binomial test);
* ``answers``: its predictions follow the default's (G test on classes, KS on values);
* ``latency``: its p99 is at most ``latency_ratio`` x the default's + ``latency_slack_ms``
  (checked once the step has ``min_requests``);
* ``performance``: once labels exist, its loss (1 - accuracy, absolute error) is not worse
  than the default's, by a mixture SPRT's always-valid p-value;
* ``drift``: none of the version's own monitored streams is drift-active (its inputs or
  answers already look drifted against its own reference: it is not promoted silently).

With ``shadow_first`` the rollout begins with a shadow step: the version answers a copy of
the default's requests (answers logged, never returned) and is gated on ``agreement`` (row
by row with the default on the same inputs: the share of rows where it fails or answers
another class, or a value further than ``agreement_tolerance`` standard deviations of the
default's answers, is not above ``max_disagreement``), ``answers``, ``latency`` and
``drift``; then the canary steps follow.

The statistical gates look many times; look ``k`` of a step is tested at
:func:`~monitoring.rollout_stats.look_alpha` ``(alpha / steps, k)``, so a good canary is
rolled back by chance with probability below ``alpha`` over the whole rollout. Any failed
gate rolls back at once; a step advances when every gate passes, it is ``step_seconds`` old
and the canary arm answered ``min_requests``; after the last step the version is promoted.
Routing changes go through :class:`RoutingAdmin` with actor ``rollout:<id>``.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.registry import get_model
from monitoring.rollout_stats import (
    GateResult,
    MixtureSPRT,
    agreement_test,
    answers_test,
    drift_gate,
    latency_gate,
    look_alpha,
    share_deficit,
)
from service.config import WebhookEndpoint
from service.errors import APIError, invalid
from service.metrics import RolloutMetrics
from service.routing import CANARY, DEFAULT, SHADOW
from service.routing_state import RoutingAdmin, resolve
from service.store.base import Store
from service.store.entities import RolloutConflict, RolloutRow, WindowRow
from service.store.rollouts import RUNNING
from service.webhooks.outbox import endpoints_for
from service.webhooks.payload import iso

log = logging.getLogger(__name__)

PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
STEP_EVENT, PROMOTED_EVENT, ROLLED_BACK_EVENT = (
    "rollout_step", "rollout_promoted", "rollout_rolled_back"
)
FINISHED_TYPE = "driftgate.rollout_finished"
GATES = ("share", "answers", "latency", "performance", "drift", "agreement")
SHADOW_PHASE, CANARY_PHASE = "shadow", "canary"
START_GRACE_SECONDS = 60.0  # a rollout whose start() died this long ago is given up
MIN_LOOK_REQUESTS = 20  # statistical gates look once the canary arm has this many answers
KV_PROMOTIONS = "lineage:promotions:{model}:{version}"
_NAMESPACE = uuid.UUID("0b7c6d0a-2f1e-4a8e-9d55-6f1f3c2a9e01")


@dataclass
class RolloutPlan:
    """What to roll out and how (weights in (0, 1); a final 1.0 means "promote")."""

    version: str
    steps: list[float] = field(default_factory=lambda: [0.05, 0.25, 0.5])
    step_seconds: float = 600.0
    min_requests: int = 500
    alpha: float = 0.05
    latency_ratio: float = 1.5
    latency_slack_ms: float = 5.0
    reason: str | None = None
    shadow_first: bool = False
    max_disagreement: float = 0.1
    error_margin: float = 0.01  # share gate: extra failed share tolerated on the canary
    agreement_tolerance: float = 0.25  # regressors: in standard deviations of the answers
    advisory: tuple[str, ...] = ()  # gates evaluated and reported whose failure rolls nothing back


def canary_steps(steps: Sequence[float]) -> list[float]:
    """The canary weights of ``steps`` (fractions); 1.0 (or more) is the promotion."""
    weights = [float(w) for w in steps if float(w) < 1.0]
    if any(not 0.0 < w < 1.0 for w in weights) or weights != sorted(set(weights)):
        raise invalid("invalid_steps", "steps must be increasing weights within (0, 100] %")
    if not weights:
        raise invalid("invalid_steps", "a rollout needs at least one canary step below 100 %")
    return weights


class Rollouts:
    """Starts, evaluates, aborts and lists the rollouts of one store."""

    def __init__(
        self,
        store: Store,
        *,
        metrics: RolloutMetrics | None = None,
        webhooks: Callable[[], Sequence[WebhookEndpoint]] = list,
        clock: Callable[[], float] = time.time,
        drifted: Callable[[str, str], list[str]] = lambda model, version: [],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.webhooks = webhooks
        self.clock = clock
        self.drifted = drifted  # (model, version) -> its drift-active streams (the monitor's)

    # -- commands --------------------------------------------------------------------------
    def start(self, model: str, plan: RolloutPlan, actor: str) -> RolloutRow:
        """Store a rollout and route its first weight (4xx: unknown version, one running)."""
        weights = canary_steps(plan.steps)
        if (plan.step_seconds < 0 or plan.min_requests < 1 or not 0 < plan.alpha < 1
                or not 0 <= plan.max_disagreement < 1 or plan.agreement_tolerance < 0
                or not 0 <= plan.error_margin < 1):
            raise invalid("invalid_rollout", "step_seconds >= 0, min_requests >= 1, "
                          "alpha within (0, 1), max_disagreement and error_margin within "
                          "[0, 1), agreement_tolerance >= 0")
        check = RoutingAdmin(self.store, actor)
        versions = check.versions(model)
        spec, _ = check.current(model)
        version = resolve(spec, plan.version, versions)
        if version is None:
            raise APIError(404, "unknown_version", f"model {model!r} has no version "
                           f"{plan.version!r}", {"model": model, "version": plan.version})
        baseline = resolve(spec, spec.default, versions)
        if version == baseline:
            raise invalid("invalid_rollout", f"{version!r} already serves {model!r} by default")
        rollout_id = "ro_" + uuid.uuid4().hex[:12]
        now = self.clock()
        doc: dict[str, Any] = {
            "id": rollout_id, "model": model, "version": version, "baseline": baseline,
            "steps": weights, "step_seconds": plan.step_seconds,
            "min_requests": plan.min_requests, "alpha": plan.alpha,
            "latency_ratio": plan.latency_ratio, "latency_slack_ms": plan.latency_slack_ms,
            "actor": actor, "reason": plan.reason, "created_at": now, "step": 0,
            "advisory": [g for g in plan.advisory if g in GATES],
            "step_started_at": now, "looks": 0, "performance_p": 1.0, "gates": [],
            "decision": None, "finished_at": None, "routed": False,
            "phase": SHADOW_PHASE if plan.shadow_first else CANARY_PHASE,
            "max_disagreement": plan.max_disagreement,
            "agreement_tolerance": plan.agreement_tolerance,
            "error_margin": plan.error_margin,
        }  # fmt: skip
        try:
            row = self.store.rollout_create(rollout_id, model, doc)
        except RolloutConflict as conflict:
            raise APIError(409, "rollout_running", str(conflict),
                           {"model": model, "rollout": conflict.running}) from None
        shadow_first = doc["phase"] == SHADOW_PHASE
        try:
            if shadow_first:
                self._admin(doc).shadow(model, version, self._why(doc, "start: shadow step"))
            else:
                self._admin(doc).canary(model, version, weights[0], self._why(doc, "start"))
        except APIError as error:
            doc.update(decision=f"could not route the {doc['phase']}: {error.message}",
                       finished_at=self.clock())
            self.store.rollout_update(rollout_id, ABORTED, doc)
            raise
        doc["routed"] = True  # from now on the monitor evaluates it
        self.store.rollout_update(rollout_id, RUNNING, doc)
        first = 0.0 if shadow_first else weights[0]
        self._event(doc, STEP_EVENT, {"weight": first, "phase": doc["phase"], "started": True})
        self._set_weight(doc, first)
        return row

    def abort(self, model: str, rollout_id: str, actor: str, reason: str | None) -> RolloutRow:
        """Stop a running rollout; its canary ends at once (the default keeps serving)."""
        row = self.get(model, rollout_id)
        if row.status != RUNNING:
            raise APIError(409, "rollout_finished", f"rollout {rollout_id!r} is {row.status}",
                           {"status": row.status})
        doc = dict(row.doc)
        doc.update(decision=f"aborted by {actor}" + (f": {reason}" if reason else ""),
                   finished_at=self.clock())
        if not self.store.rollout_update(rollout_id, ABORTED, doc):
            return self.abort(model, rollout_id, actor, reason)  # finished meanwhile: 409
        self.store.audit_append(actor, "rollout.abort", model,
                                {"rollout": rollout_id, "reason": reason})
        self._end_canary(doc, doc["decision"])
        self._finish(doc, ROLLED_BACK_EVENT, ABORTED)
        return self.get(model, rollout_id)

    def get(self, model: str, rollout_id: str) -> RolloutRow:
        row = self.store.rollout_get(rollout_id)
        if row is None or row.model != model:
            raise APIError(404, "unknown_rollout", f"model {model!r} has no rollout "
                           f"{rollout_id!r}", {"model": model, "rollout": rollout_id})
        return row

    # -- the monitor's loop ------------------------------------------------------------------
    def tick(self, owns: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        """Evaluate every running rollout once (of the models ``owns`` accepts: the monitor
        runs the rollouts of the partitions it holds); the documents after the decisions."""
        out = []
        for row in self.store.rollout_list(status=RUNNING, limit=1000):
            if owns is not None and not owns(row.model):
                continue
            try:
                out.append(self.evaluate(row))
            except Exception:  # one broken rollout must not stop the others
                log.exception("rollout %s could not be evaluated", row.id)
        return out

    def evaluate(self, row: RolloutRow) -> dict[str, Any]:
        doc = dict(row.doc)
        now = self.clock()
        if not doc.get("routed", True):  # start() is routing its first step
            if now - doc["created_at"] < START_GRACE_SECONDS:
                return doc
            doc.update(decision="aborted: its start did not complete", finished_at=now)
            if self.store.rollout_update(row.id, ABORTED, doc):
                self._end_canary(doc, doc["decision"])
            return doc
        if not self._routes_rollout(doc):  # someone changed the routing by hand: stand aside
            doc.update(decision=f"aborted: the routing no longer sends the rollout's "
                       f"{self._phase(doc)} to its version (changed outside the rollout)",
                       finished_at=now)
            if self.store.rollout_update(row.id, ABORTED, doc):
                self._set_weight(doc, 0.0)
                self._finish(doc, ROLLED_BACK_EVENT, ABORTED)
            return doc
        since = float(doc["step_started_at"])
        shadow = self._phase(doc) == SHADOW_PHASE
        arm = SHADOW if shadow else CANARY
        rows = self.store.rollout_window(doc["model"], since,
                                         {arm: doc["version"], DEFAULT: doc["baseline"]})
        canary = ArmWindow.of(rows, arm)
        default = ArmWindow.of(rows, DEFAULT)
        gates: list[GateResult] = []
        copied = len(default) if shadow else len(canary)  # the shadow copies every default
        if copied >= MIN_LOOK_REQUESTS:
            doc["looks"] += 1
            level = look_alpha(doc["alpha"] / self._stages(doc), doc["looks"])
            if shadow:
                gates += self._shadow_gates(doc, rows, canary, default, level)
            else:
                gates += self._gates(doc, canary, default, doc["steps"][doc["step"]], level)
            gates.append(drift_gate(self.drifted(doc["model"], doc["version"])))
        enough = len(canary) >= doc["min_requests"]
        if enough:
            gates.append(latency_gate(canary.latencies, default.latencies,
                                      doc["latency_ratio"], doc["latency_slack_ms"]))
        doc["gates"] = [g.to_dict() for g in gates]
        doc["window"] = {"since": since, "until": now, "canary": len(canary),
                         "default": len(default)}
        self._export_gates(doc, gates)
        advisory = set(doc.get("advisory") or ())
        failed = [g for g in gates if not g.passed and g.gate not in advisory]
        if failed:
            return self._roll_back(row, doc, failed)
        if enough and now - since >= doc["step_seconds"]:
            return self._advance(row, doc)
        self.store.rollout_update(row.id, RUNNING, doc)
        return doc

    def _gates(
        self, doc: dict[str, Any], canary: ArmWindow, default: ArmWindow, weight: float,
        level: float,
    ) -> list[GateResult]:
        total = len(canary) + len(default)
        margin = float(doc.get("error_margin", 0.0))
        expected = weight * (1 - margin) / (weight * (1 - margin) + 1 - weight)
        p = share_deficit(len(canary), total, expected)
        share = GateResult("share", p >= level, len(canary) / max(total, 1), p, level,
                           f"{len(canary)} of {total} logged answers on the canary arm, "
                           f"routed weight {weight:g} (error margin {margin:g})")
        classification = _is_classifier(doc["model"], doc["version"])
        answers = answers_test(canary.predictions, default.predictions, classification, level)
        gates = [share, answers]
        losses_c, losses_d = canary.losses(classification), default.losses(classification)
        if len(losses_c) >= 2 and len(losses_d) >= 2:
            gates.append(self._performance(doc, losses_c, losses_d, classification))
        return gates

    def _shadow_gates(
        self, doc: dict[str, Any], rows: list[WindowRow], shadow: ArmWindow,
        default: ArmWindow, level: float,
    ) -> list[GateResult]:
        classification = _is_classifier(doc["model"], doc["version"])
        tolerance = 0.0
        if not classification and len(default) >= 2:
            spread = float(np.std([float(v) for v in default.predictions]))
            tolerance = doc["agreement_tolerance"] * spread
        agreement = agreement_test(shadow_pairs(rows), classification,
                                   doc["max_disagreement"], level, tolerance)
        answers = answers_test(shadow.predictions, default.predictions, classification, level)
        return [agreement, answers]

    def _performance(
        self, doc: dict[str, Any], losses_c: list[float], losses_d: list[float],
        classification: bool,
    ) -> GateResult:
        scale = sum(losses_d) / len(losses_d)
        tau2 = 0.01 if classification else max((0.2 * scale) ** 2, 1e-6)
        test = MixtureSPRT(tau2)
        test.update(losses_c, losses_d)
        doc["performance_p"] = min(float(doc.get("performance_p", 1.0)), test.p_value)
        level = doc["alpha"] / self._stages(doc)
        mean_c, mean_d = test.mean_losses
        metric = "error rate" if classification else "MAE"
        return GateResult("performance", doc["performance_p"] >= level, mean_c,
                          doc["performance_p"], level,
                          f"{metric} canary {mean_c:.4g} vs default {mean_d:.4g} over "
                          f"{len(losses_c)}/{len(losses_d)} labels (mixture SPRT)")

    # -- decisions -------------------------------------------------------------------------
    def _advance(self, row: RolloutRow, doc: dict[str, Any]) -> dict[str, Any]:
        evidence = {"gates": doc["gates"], "window": doc["window"]}
        admin = self._admin(doc)
        if self._phase(doc) == SHADOW_PHASE:  # the shadow step passed: the canary steps
            weight = doc["steps"][0]
            admin.shadow_to_canary(doc["model"], doc["version"], weight, self._why(
                doc, f"shadow step passed: canary weight {weight:g}"))
            return self._stepped(row, doc, 0, weight, evidence)
        nxt = doc["step"] + 1
        if nxt < len(doc["steps"]):
            weight = doc["steps"][nxt]
            admin.canary(doc["model"], doc["version"], weight,
                         self._why(doc, f"step {nxt + 1}: weight {weight:g}"))
            return self._stepped(row, doc, nxt, weight, evidence)
        reason = self._why(doc, "every step passed: promoted")
        self._admin(doc).promote(doc["model"], doc["version"], reason)
        advisory = sorted({g["gate"] for g in doc["gates"] if not g["passed"]})
        doc.update(decision="promoted: every gate passed at every step" if not advisory else
                   "promoted: every deciding gate passed at every step; advisory gates "
                   f"failing at the last look: {', '.join(advisory)}", finished_at=self.clock())
        if self.store.rollout_update(row.id, PROMOTED, doc):
            key = KV_PROMOTIONS.format(model=doc["model"], version=doc["version"])
            lines = list(self.store.kv_get(key) or [])
            self.store.kv_set(key, [*lines, {"promoted_at": doc["finished_at"],
                                             "rollout": doc["id"], "by": doc["actor"],
                                             "baseline": doc["baseline"], "evidence": evidence}])
            self._finish(doc, PROMOTED_EVENT, PROMOTED)
        return doc

    def _stepped(self, row: RolloutRow, doc: dict[str, Any], step: int, weight: float,
                 evidence: dict[str, Any]) -> dict[str, Any]:
        """Record that canary step ``step`` (weight already routed) has begun."""
        doc.update(phase=CANARY_PHASE, step=step, step_started_at=self.clock(), looks=0,
                   performance_p=1.0)
        if not self.store.rollout_update(row.id, RUNNING, doc):
            self._end_canary(doc, "rollout ended while stepping")
            return doc
        self._event(doc, STEP_EVENT, {"weight": weight, "phase": CANARY_PHASE, **evidence})
        self._set_weight(doc, weight)
        return doc

    def _roll_back(
        self, row: RolloutRow, doc: dict[str, Any], failed: list[GateResult]
    ) -> dict[str, Any]:
        names = ", ".join(g.gate for g in failed)
        doc.update(decision=f"rolled back: gate {names} failed", finished_at=self.clock())
        self._end_canary(doc, f"gate {names} failed: " + "; ".join(g.detail for g in failed))
        if self.store.rollout_update(row.id, ROLLED_BACK, doc):
            self._finish(doc, ROLLED_BACK_EVENT, ROLLED_BACK)
        return doc

    def _routes_rollout(self, doc: dict[str, Any]) -> bool:
        admin = self._admin(doc)
        spec, _ = admin.current(doc["model"])
        versions = admin.versions(doc["model"])
        if self._phase(doc) == SHADOW_PHASE:
            return (spec.shadow is not None
                    and resolve(spec, spec.shadow, versions) == doc["version"]
                    and resolve(spec, spec.default, versions) == doc["baseline"])
        return (spec.canary is not None
                and resolve(spec, spec.canary.version, versions) == doc["version"]
                and math.isclose(spec.canary.weight, doc["steps"][doc["step"]])
                and resolve(spec, spec.default, versions) == doc["baseline"])

    def _end_canary(self, doc: dict[str, Any], why: str) -> None:
        admin = self._admin(doc)
        spec, _ = admin.current(doc["model"])
        versions = admin.versions(doc["model"])
        if spec.canary is not None and resolve(
            spec, spec.canary.version, versions
        ) == doc["version"]:
            admin.canary(doc["model"], None, 0.0, self._why(doc, why))
        if spec.shadow is not None and resolve(spec, spec.shadow, versions) == doc["version"]:
            admin.shadow(doc["model"], None, self._why(doc, why))
        self._set_weight(doc, 0.0)

    def _finish(self, doc: dict[str, Any], kind: str, status: str) -> None:
        if self.metrics is not None:
            self.metrics.decisions.labels(doc["model"], doc["version"], status).inc()
        self._event(doc, kind, {"decision": doc["decision"], "gates": doc["gates"],
                                "window": doc.get("window")})
        payload = {
            "type": FINISHED_TYPE,
            "event_id": "evt_" + uuid.uuid5(_NAMESPACE, doc["id"]).hex,
            "created_at": iso(doc["finished_at"]),
            "model": doc["model"], "version": doc["version"], "baseline": doc["baseline"],
            "rollout": doc["id"], "status": status, "decision": doc["decision"],
            "evidence": {"gates": doc["gates"], "window": doc.get("window"),
                         "step": doc["step"], "steps": doc["steps"]},
        }  # fmt: skip
        for endpoint in endpoints_for(list(self.webhooks()), doc["model"]):
            self.store.outbox_enqueue(payload["event_id"], endpoint.url, payload, doc["model"])

    # -- records ---------------------------------------------------------------------------
    @staticmethod
    def _phase(doc: dict[str, Any]) -> str:
        return str(doc.get("phase", CANARY_PHASE))  # rollouts stored before shadow-first

    @staticmethod
    def _stages(doc: dict[str, Any]) -> int:
        """Stages sharing the rollout's significance level: the steps (+ the shadow step)."""
        return len(doc["steps"]) + int(bool(doc.get("shadow_first")))

    def _admin(self, doc: dict[str, Any]) -> RoutingAdmin:
        return RoutingAdmin(self.store, f"rollout:{doc['id']}")

    @staticmethod
    def _why(doc: dict[str, Any], what: str) -> str:
        return f"rollout {doc['id']} of {doc['version']}: {what}"

    def _event(self, doc: dict[str, Any], kind: str, details: dict[str, Any]) -> None:
        stage = "shadow" if self._phase(doc) == SHADOW_PHASE else doc["step"]
        self.store.append_events([{
            "model": doc["model"], "version": doc["version"], "kind": kind,
            "feature": None, "detector": "rollout", "statistic": None, "threshold": None,
            "record_id": f"{doc['id']}:{stage}:{kind}", "ts": self.clock(),
            "details": {"rollout": doc["id"], "step": doc["step"], "baseline": doc["baseline"],
                        **details},
        }])  # fmt: skip

    def _set_weight(self, doc: dict[str, Any], weight: float) -> None:
        if self.metrics is not None:
            self.metrics.weight.labels(doc["model"], doc["version"]).set(weight)

    def _export_gates(self, doc: dict[str, Any], gates: list[GateResult]) -> None:
        if self.metrics is None:
            return
        for gate in gates:
            self.metrics.gate.labels(doc["model"], doc["version"], gate.gate).set(
                1.0 if gate.passed else 0.0)


def _is_classifier(model: str, version: str) -> bool:
    return get_model(model, version).card.task == "classification"


@dataclass
class ArmWindow:
    """What one arm answered in a rollout's window."""

    predictions: list[Any] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    labelled: list[tuple[Any, Any]] = field(default_factory=list)  # (prediction, label)

    @classmethod
    def of(cls, rows: list[WindowRow], arm: str) -> ArmWindow:
        window = cls()
        for row in rows:
            if row.arm != arm:
                continue
            window.predictions.append(row.prediction)
            window.latencies.append(row.latency_ms)
            if row.label is not None:
                window.labelled.append((row.prediction, row.label))
        return window

    def __len__(self) -> int:
        return len(self.predictions)

    def losses(self, classification: bool) -> list[float]:
        """1 - correct (classifiers) or the absolute error (regressors) per label."""
        if classification:
            return [0.0 if str(p) == str(y) else 1.0 for p, y in self.labelled]
        return [abs(float(p) - float(y)) for p, y in self.labelled
                if math.isfinite(float(p) - float(y))]


def shadow_pairs(rows: list[WindowRow]) -> list[tuple[Any, Any | None]]:
    """(default answer, shadow answer or None) per default row, matched row by row within
    each request (a request's shadow rows are logged right after its default rows, in the
    same order); a default row whose shadow failed pairs with None.

    >>> from service.store.entities import WindowRow as W
    >>> shadow_pairs([W("default", "a", 1, None, "q1"), W("default", "b", 1, None, "q1"),
    ...               W("shadow", "a", 1, None, "q1"), W("shadow", "c", 1, None, "q1"),
    ...               W("default", "a", 1, None, "q2")])
    [('a', 'a'), ('b', 'c'), ('a', None)]
    """
    pairs: list[list[Any]] = []
    waiting: dict[str | None, deque[list[Any]]] = {}
    for row in rows:
        if row.arm == DEFAULT:
            pair = [row.prediction, None]
            pairs.append(pair)
            waiting.setdefault(row.request_id, deque()).append(pair)
        elif row.arm == SHADOW and waiting.get(row.request_id):
            waiting[row.request_id].popleft()[1] = row.prediction
    return [(d, s) for d, s in pairs]
