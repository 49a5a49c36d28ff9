"""The worker's check of a candidate: a time-ordered train/holdout split and the loss of the
candidate against the current version on the same holdout.

>>> import pandas as pd
>>> frame = pd.DataFrame({"ts": [3.0, 1.0, 2.0, 4.0], "label": [0, 1, 0, 1]})
>>> train, holdout = split_by_time(frame, 0.25)
>>> list(train["ts"]), list(holdout["ts"])
([1.0, 2.0, 3.0], [4.0])
>>> train, holdout = split_by_time(frame, 0.5, since=2.0)  # half of the 3 records since 2.0
>>> list(train["ts"]), list(holdout["ts"])
([1.0, 2.0], [3.0, 4.0])
>>> verdict = compare(candidate=0.30, current=0.28, margin=0.1)
>>> verdict.accepted, verdict.limit
(True, 0.308)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.card import ModelCard
from models.inputs import input_adapter
from service.retrain.contract import LABEL, TS

__all__ = ["Verdict", "compare", "holdout_loss", "loss_name", "split_by_time"]


def split_by_time(
    frame: pd.DataFrame, fraction: float, since: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training records and the holdout, the most recent ``fraction`` of the records since
    ``since`` (the evidence window: the holdout shows the world as it is now), or of all
    records; at least one record each when there are two."""
    ordered = frame.sort_values(TS, kind="stable").reset_index(drop=True)
    recent = int((ordered[TS] >= since).sum()) if since is not None else len(ordered)
    if recent < 2:
        recent = len(ordered)
    cut = len(ordered) - max(1, round(recent * fraction))
    cut = min(max(cut, 1), len(ordered))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def loss_name(card: ModelCard) -> str:
    return "error_rate" if card.task == "classification" else "mae"


def holdout_loss(estimator: Any, card: ModelCard, holdout: pd.DataFrame) -> float:
    """Error rate (classifiers) or mean absolute error (regressors) on ``holdout``."""
    adapter = input_adapter(card.input_format)
    predicted = adapter.predict(estimator, adapter.from_frame(holdout, card.feature_names))
    labels = holdout[LABEL].tolist()
    if card.task == "classification":
        return float(np.mean([str(p) != str(y) for p, y in zip(predicted, labels, strict=True)]))
    errors = np.abs(np.asarray(predicted, dtype=float) - np.asarray(labels, dtype=float))
    return float(np.mean(errors))


@dataclass(frozen=True)
class Verdict:
    """The candidate's loss against the current version's; ``accepted`` when the candidate's
    is at most ``limit`` = current x (1 + margin)."""

    candidate: float
    current: float
    margin: float
    limit: float
    accepted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(candidate: float, current: float, margin: float) -> Verdict:
    """Never worse than the current version by more than ``margin`` (relative)."""
    limit = round(current * (1.0 + margin), 12)
    accepted = math.isfinite(candidate) and candidate <= limit
    return Verdict(candidate, current, margin, limit, accepted)
