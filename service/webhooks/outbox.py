"""Retrain requests: per-model cooldown, then one outbox item per matching endpoint.

A model has at most one retrain request in flight: the episode state lives in the store's
key-value table (``cooldown:<model>``), so it holds across processes and restarts. The episode
ends when its retrain ends (the retrain worker calls :func:`end_episode`: promoted, rolled back,
rejected or failed), or after ``retrain_timeout_seconds`` when nobody reports its end; then a
new episode may request again. ``retrain_cooldown_seconds`` only limits the rate: a request
within it of the previous one is suppressed with reason ``cooldown`` (reported), so an early or
false episode whose retrain ended does not use up the request a real one needs.

Concurrent requests for the same model that both see an expired
cooldown compute the SAME event id (it is derived from the cooldown state they read), so the
outbox's unique ``(event_id, endpoint)`` key turns the race into a single request.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.config import Settings, WebhookEndpoint
from service.store.base import DeliveryStore
from service.store.entities import Lease
from service.webhooks.payload import TRIGGERS, build_payload

__all__ = ["RetrainOutcome", "RetrainRequests", "cooldown_key", "end_episode", "endpoints_for"]

_NAMESPACE = uuid.UUID("6d1f4a0e-4f52-4c4b-9a43-2b8f0d5c7e11")
EPOCH_KEY = "webhooks:epoch"


def cooldown_key(model: str) -> str:
    return f"cooldown:{model}"


def endpoints_for(endpoints: Sequence[WebhookEndpoint], model: str) -> list[WebhookEndpoint]:
    """Endpoints that want retrain requests for ``model`` (``models=None`` means all)."""
    return [e for e in endpoints if e.models is None or model in e.models]


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    """What :meth:`RetrainRequests.submit` did.

    ``status``: ``queued`` (a request exists for this episode; ``event_id`` names it),
    ``suppressed`` (``reason`` ``in_flight``: the episode's retrain has not ended, or
    ``cooldown``: the previous request is more recent than the cooldown; ``event_id`` is the
    episode's request) or ``no_endpoint`` (no configured endpoint wants this model).
    """

    status: Literal["queued", "suppressed", "no_endpoint"]
    event_id: str | None = None
    suppressed: int = 0
    reason: Literal["in_flight", "cooldown"] | None = None


class RetrainRequests:
    """Turns drift/performance/alert evidence into queued retrain webhooks.

    One drift episode = one request: the first request for a model opens an episode; requests
    while it is in flight (until :func:`end_episode` or ``settings.retrain_timeout_seconds``)
    or within ``settings.retrain_cooldown_seconds`` of its start are suppressed and counted in
    the state (``cooldown(model)["suppressed"]``; ``on_suppressed`` is called too).
    """

    def __init__(
        self,
        store: DeliveryStore,
        endpoints: Sequence[WebhookEndpoint],
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        on_suppressed: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.endpoints = list(endpoints)
        self.settings = settings
        self.clock = clock
        self.on_suppressed = on_suppressed

    def cooldown(self, model: str) -> dict[str, Any] | None:
        """The model's cooldown state (episode, event_id, started_at, until, suppressed)."""
        return self.store.kv_get(cooldown_key(model))

    def request(
        self,
        model: str,
        version: str | None,
        trigger: str,
        evidence: Mapping[str, Any],
        reference_fingerprint: str | None,
        now: float | None = None,
        *,
        fence: Lease | None = None,
    ) -> list[str]:
        """Queue a retrain request; the event ids queued ([] when suppressed or unrouted)."""
        out = self.submit(model, version, trigger, evidence, reference_fingerprint, now,
                          fence=fence)
        return [out.event_id] if out.status == "queued" and out.event_id else []

    def submit(
        self,
        model: str,
        version: str | None,
        trigger: str,
        evidence: Mapping[str, Any],
        reference_fingerprint: str | None,
        now: float | None = None,
        *,
        since: float | None = None,
        fence: Lease | None = None,
    ) -> RetrainOutcome:
        """Like :meth:`request`, with the reason when nothing new was queued. With
        ``fence`` (the monitor's lease) the outbox rows are written only while it is held
        (:class:`~service.store.entities.LeaseLost` otherwise, before the cooldown moves)."""
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {trigger!r}")
        targets = endpoints_for(self.endpoints, model)
        if not targets:
            return RetrainOutcome("no_endpoint")
        now = self.clock() if now is None else now
        key = cooldown_key(model)
        state = self.store.kv_get(key)
        reason = suppression(state, now)
        if state is not None and reason is not None:
            state = {**state, "suppressed": int(state.get("suppressed", 0)) + 1,
                     "last_suppressed_at": now, "last_reason": reason}  # fmt: skip
            self.store.kv_set(key, state)
            if self.on_suppressed is not None:
                self.on_suppressed(model)
            return RetrainOutcome("suppressed", state.get("event_id"), state["suppressed"],
                                  reason)

        episode = int(state.get("episode", 0)) + 1 if state else 1
        previous = state.get("started_at") if state else None
        event_id = (
            "evt_" + uuid.uuid5(_NAMESPACE, f"{self._epoch()}|{model}|{episode}|{previous!r}").hex
        )
        payload = build_payload(
            event_id=event_id,
            model=model,
            version=version,
            trigger=trigger,
            evidence=evidence,
            reference_fingerprint=reference_fingerprint,
            created_at=now,
            public_url=self.settings.public_url,
            since=since,
        )
        # Enqueue BEFORE starting the cooldown: a failure in between leaves the old state,
        # a retry recomputes the same event id and the enqueue is a no-op (nothing lost).
        for endpoint in targets:
            self.store.outbox_enqueue(event_id, endpoint.url, payload, model, fence=fence)
        self.store.kv_set(
            key,
            {
                "episode": episode,
                "event_id": event_id,
                "trigger": trigger,
                "started_at": now,
                "until": now + self.settings.retrain_timeout_seconds,
                "cooldown_until": now + self.settings.retrain_cooldown_seconds,
                "ended_at": None,
                "suppressed": 0,
            },
        )
        return RetrainOutcome("queued", event_id)

    def _epoch(self) -> str:
        """A random token per store, so a fresh store never reuses an old event id."""
        token = self.store.kv_get(EPOCH_KEY)
        if token is None:
            self.store.kv_set(EPOCH_KEY, secrets.token_hex(8))
            token = self.store.kv_get(EPOCH_KEY)
        return str(token)


def suppression(
    state: Mapping[str, Any] | None, now: float
) -> Literal["in_flight", "cooldown"] | None:
    """Why a request at ``now`` is suppressed by the episode ``state`` (None: it is not).

    >>> open_ = {"started_at": 0.0, "until": 3600.0, "cooldown_until": 300.0, "ended_at": None}
    >>> suppression(open_, 100.0), suppression(open_, 1000.0), suppression(open_, 4000.0)
    ('in_flight', 'in_flight', None)
    >>> ended = {**open_, "ended_at": 50.0}
    >>> suppression(ended, 100.0), suppression(ended, 1000.0)
    ('cooldown', None)
    """
    if state is None:
        return None
    in_flight = state.get("ended_at") is None and now < float(state.get("until", 0.0))
    if in_flight:
        return "in_flight"
    cooldown_until = state.get("cooldown_until", state.get("until", 0.0))
    return "cooldown" if now < float(cooldown_until) else None


def end_episode(
    store: DeliveryStore, model: str, event_id: str, outcome: str, now: float
) -> bool:
    """Mark the retrain of request ``event_id`` ended (``outcome``: promoted, rolled_back,
    rejected, failed); False when the model's episode is another request's by now."""
    key = cooldown_key(model)
    state = store.kv_get(key)
    if state is None or state.get("event_id") != event_id:
        return False
    store.kv_set(key, {**state, "ended_at": now, "outcome": outcome})
    return True
