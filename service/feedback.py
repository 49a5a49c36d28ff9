"""``POST /feedback``: join ground-truth labels to logged predictions by prediction id.

Labels are checked against the card of the model that made the prediction (a class label for
classifiers, a finite number for regressors); one bad label rejects the request with 422 and
applies nothing. Unknown ids are returned in ``unknown``. A second label for the same id
replaces the first (last label wins) and is reported in ``relabeled``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from typing import Any

from anyio import to_thread
from pydantic import BaseModel, Field

from models.card import ModelCard
from service.core import GatewayCore
from service.errors import APIError
from service.routing import Router
from service.store.base import LogStore

MAX_ITEMS = 10_000


class FeedbackItem(BaseModel):
    id: str = Field(description="A prediction id returned by /predict or v2 infer.")
    label: Any = Field(description="The true class label, or the true value for regressors.")


class FeedbackRequest(BaseModel):
    items: list[FeedbackItem] = Field(min_length=1, max_length=MAX_ITEMS)


def normalise_label(label: Any, card: ModelCard | None) -> Any:
    """The label as stored: one of the card's classes for classifiers, a float for
    regressors (so every store keeps the same value); ValueError says what is wrong."""
    classes = card.class_labels if card is not None and card.task == "classification" else None
    if classes is not None:
        for known in classes:
            if known == label and isinstance(known, bool) == isinstance(label, bool):
                return known
        raise ValueError(f"label must be one of {classes}")
    if isinstance(label, int | float) and not isinstance(label, bool):
        try:
            value = float(label)
        except OverflowError:
            value = math.inf
        if math.isfinite(value):
            return value
    raise ValueError("label must be a finite number")


def _apply(
    payload: FeedbackRequest, store: LogStore, router: Router,
    models: Collection[str] | None = None,
) -> tuple[dict[str, Any], dict[str, int]]:
    ids = [item.id for item in payload.items]
    known = {record.id: record for record in store.get(ids)
             if models is None or record.model in models}  # others' ids are "unknown"
    problems: list[dict[str, Any]] = []
    labels: dict[int, Any] = {}
    for index, item in enumerate(payload.items):
        record = known.get(item.id)
        if record is None:
            continue
        try:
            card = router.card_of(record.model, record.version)
            labels[index] = normalise_label(item.label, card)
        except ValueError as exc:
            problems.append({"item": index, "id": item.id, "message": str(exc)})
    if problems:
        model = known[problems[0]["id"]].model
        raise APIError(422, "invalid_label", problems[0]["message"], {"problems": problems},
                       model=model)
    pairs = [(payload.items[index].id, label) for index, label in labels.items()]
    result = store.add_labels(pairs, time.time()) if pairs else None
    per_model: dict[str, int] = {}
    for record_id, _ in pairs:
        model = known[record_id].model
        per_model[model] = per_model.get(model, 0) + 1
    body = {
        "accepted": result.accepted if result else [],
        "unknown": [i for i in ids if i not in known],
        "relabeled": result.relabeled if result else [],
    }
    return body, per_model


async def apply_feedback(
    payload: FeedbackRequest, store: LogStore, core: GatewayCore,
    models: Collection[str] | None = None,
) -> dict[str, Any]:
    """Apply the labels; ``models`` limits them to predictions of those models (a key
    limited to some models): the ids of other models' predictions are reported unknown."""
    body, per_model = await to_thread.run_sync(_apply, payload, store, core.router, models)
    for model, count in per_model.items():
        core.metrics.feedback.labels(model).inc(count)
    return body
