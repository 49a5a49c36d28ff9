"""Result and row types returned by stores (besides :class:`PredictionRecord`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from service.store.records import PredictionRecord

__all__ = [
    "Checkpoint", "LabelEvent", "LabelResult", "OutboxItem", "RoutingChange", "RoutingConflict",
    "RoutingSnapshot", "RolloutConflict", "RolloutRow",
]


@dataclass(slots=True)
class LabelResult:
    """Outcome of :meth:`Store.add_labels`.

    Relabel policy: the LAST label wins (the prediction row holds it), every label ever
    received stays in the label-event stream (the history), and a label for an id that
    already had one is reported in ``relabeled`` and emitted with ``relabel=True``.
    """

    accepted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    relabeled: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LabelEvent:
    """One entry of the label stream; unpacks as ``(label_offset, record)``.

    ``record.label`` / ``record.label_ts`` are this event's label; ``previous_label`` is
    the label it replaced (``relabel`` is True then).
    """

    label_offset: int
    record: PredictionRecord
    relabel: bool = False
    previous_label: Any = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.label_offset, self.record))


@dataclass(slots=True)
class Checkpoint:
    """A consumer's position in both streams and its opaque state, saved together."""

    consumer: str
    offset: int
    label_offset: int
    state: bytes
    updated_at: float


@dataclass(slots=True)
class OutboxItem:
    """A webhook delivery; ``status`` is ``pending``, ``delivered`` or ``dead``."""

    id: int
    event_id: str
    endpoint: str
    model: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    last_error: str | None
    created_at: float
    delivered_at: float | None


@dataclass(slots=True)
class RoutingSnapshot:
    """The routing state of every model name that has one, at ``revision``.

    ``states`` maps a model name to its routing document (JSON); ``revisions`` to the
    revision of its last change (0 is never used: a name without a row has no routing).
    """

    revision: int
    states: dict[str, dict[str, Any]]
    revisions: dict[str, int]


@dataclass(slots=True)
class RoutingChange:
    """One entry of the routing history: the state of ``model`` before and after."""

    revision: int
    model: str
    ts: float
    actor: str
    action: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "model": self.model, "ts": self.ts, "actor": self.actor,
            "action": self.action, "reason": self.reason, "before": self.before,
            "after": self.after,
        }  # fmt: skip


class RoutingConflict(Exception):
    """The routing of a model changed since the caller read it (compare-and-set failed)."""

    def __init__(self, model: str, expected: int, actual: int) -> None:
        super().__init__(
            f"routing of {model!r} is at revision {actual}, the change expected {expected}"
        )
        self.model = model
        self.expected = expected
        self.actual = actual


@dataclass(slots=True)
class RolloutRow:
    """A stored rollout: ``doc`` is its whole state (see :mod:`service.rollout`)."""

    id: str
    model: str
    status: str
    created_at: float
    updated_at: float
    doc: dict[str, Any]


class WindowRow(NamedTuple):
    """One logged answer in a rollout's window (no features are read)."""

    arm: str
    prediction: Any
    latency_ms: float
    label: Any
    request_id: str | None


class RolloutConflict(Exception):
    """A model already has a running rollout."""

    def __init__(self, model: str, running: str) -> None:
        super().__init__(f"model {model!r} already has the running rollout {running!r}")
        self.model = model
        self.running = running
