"""The trainer contract: what the user's training function receives and returns.

A trainer is any ``def train(context: TrainerContext) -> TrainerResult | estimator``. It gets
the version serving by default (its estimator and card), the labelled records of the evidence
window and before it (oldest first; the holdout, the most recent records, is kept back for the
worker's check), the reference sample of the current version and the retrain request itself.

>>> def train(context):
...     model = clone(context.current.estimator)
...     recent = context.recent()
...     return model.fit(context.features(recent), recent[LABEL])
>>> from sklearn.base import clone
>>> callable(load_trainer("models.demo:retrain"))
True
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.card import ModelCard
from models.inputs import input_adapter

__all__ = ["LABEL", "TS", "CurrentVersion", "Trainer", "TrainerContext", "TrainerResult",
           "load_trainer", "trainer_code_version"]

LABEL = "label"
"""The column of the records frame holding each record's ground-truth label."""
TS = "ts"
"""The column holding each record's prediction time (unix seconds)."""


@dataclass(frozen=True)
class CurrentVersion:
    """The version serving the model by default when the request arrived."""

    name: str
    version: str
    estimator: Any
    card: ModelCard


@dataclass(frozen=True)
class TrainerContext:
    """Everything a trainer gets. ``records``: labelled prediction records as ``driftgate log
    export --with-labels`` gives them (``id``, ``ts``, ``version``, ``prediction``, ``label``
    and one column per feature), time-ordered, without the holdout. ``window_start``: the
    unix time the evidence window (the drift alarm's first record) starts at."""

    model: str
    current: CurrentVersion
    records: pd.DataFrame
    window_start: float
    reference: pd.DataFrame
    request: dict[str, Any]

    @property
    def feature_names(self) -> list[str]:
        return self.current.card.feature_names

    def features(self, frame: pd.DataFrame) -> Any:
        """``frame``'s features in the form the current estimator was fitted on."""
        adapter = input_adapter(self.current.card.input_format)
        return adapter.from_frame(frame, self.feature_names)

    def recent(self, min_rows: int = 50) -> pd.DataFrame:
        """The records from the evidence window on, or all records when fewer than
        ``min_rows`` are that recent."""
        recent = self.records[self.records[TS] >= self.window_start]
        return recent if len(recent) >= min_rows else self.records


@dataclass(frozen=True)
class TrainerResult:
    """A fitted estimator with optional metrics and parameters for its card."""

    estimator: Any
    metrics: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, Any] | None = None
    code_version: str | None = None


Trainer = Callable[[TrainerContext], Any]


def load_trainer(spec: str) -> Trainer:
    """The function named ``module:function`` (ValueError when it is not one)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"trainer must be MODULE:FUNCTION, got {spec!r}")
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise ValueError(f"{spec!r} is not a function")
    return function


def trainer_code_version(function: Trainer) -> str:
    """``sha256:`` + 12 hex digits of the trainer's module source (unknown if unreadable)."""
    try:
        source = inspect.getsource(inspect.getmodule(function) or function)
    except (OSError, TypeError):
        return "unknown"
    return "sha256:" + hashlib.sha256(source.encode()).hexdigest()[:12]


def as_result(returned: Any) -> TrainerResult:
    """A trainer's return value as a :class:`TrainerResult` (TypeError if no estimator)."""
    result = returned if isinstance(returned, TrainerResult) else TrainerResult(returned)
    estimator = result.estimator
    if not (hasattr(estimator, "predict") or hasattr(estimator, "predict_one")):
        raise TypeError(f"the trainer returned {type(estimator).__name__}, not an estimator "
                        "with predict()")
    return result
