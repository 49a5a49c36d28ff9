"""Result and row types returned by stores (besides :class:`PredictionRecord`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from service.store.records import PredictionRecord

__all__ = ["Checkpoint", "LabelEvent", "LabelResult", "OutboxItem"]


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
