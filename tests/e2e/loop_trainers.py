"""Trainers of the retraining-loop tests, chosen by model name: ``...-raise-...`` raises,
``...-worse-...`` returns a model that answers a constant 20 above the mean label (worse than
any sensible model), any other is ``models.demo:retrain``."""

from __future__ import annotations

from typing import Any

from sklearn.dummy import DummyRegressor

from models.demo import retrain


def train(context: Any) -> Any:
    if "-raise-" in context.model:
        raise RuntimeError("trainer broke on purpose")
    if "-worse-" in context.model:
        recent = context.recent()
        labels = recent["label"].astype(float)
        constant = DummyRegressor(strategy="constant", constant=labels.mean() + 20.0)
        return constant.fit(context.features(recent), labels)
    return retrain(context)
