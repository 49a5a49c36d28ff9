"""A model version loaded in a gateway worker: estimator, card, validator, predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.card import ModelCard
from models.registry import RegisteredModel, get_model
from service.validation import RowValidator


@dataclass
class Prediction:
    values: list[Any]
    probabilities: list[dict[str, float]] | None


class LoadedModel:
    """One registered version, loaded once per worker."""

    def __init__(self, entry: RegisteredModel) -> None:
        self.entry = entry
        self.name = entry.name
        self.version = entry.version
        self.card: ModelCard = entry.card
        self.estimator = entry.load_estimator()
        self.validator = RowValidator(self.card.features)
        self._names = self.card.feature_names
        self._labels = [str(label) for label in self.card.class_labels or []]
        self._has_proba = self.card.task == "classification" and hasattr(
            self.estimator, "predict_proba"
        )
        self.inflight = 0  # requests predicting with it now (the router unloads at 0)

    @classmethod
    def load(cls, name: str, version: str | None = None) -> LoadedModel:
        return cls(get_model(name, version))

    def _model_input(self, rows: list[dict[str, Any]]) -> Any:
        if self.card.input_format == "pandas":
            return pd.DataFrame(rows, columns=self._names)
        names = self._names
        return np.array(
            [[np.nan if row[n] is None else row[n] for n in names] for row in rows],
            dtype=np.float64,
        )

    def predict(self, rows: list[dict[str, Any]]) -> Prediction:
        """Predict validated rows; classifiers also return class probabilities."""
        if self.card.input_format == "records":
            return Prediction([_plain(self.estimator.predict_one(r)) for r in rows], None)
        model_input = self._model_input(rows)
        values = np.asarray(self.estimator.predict(model_input)).tolist()
        if not self._has_proba:
            return Prediction(values, None)
        proba = np.asarray(self.estimator.predict_proba(model_input)).tolist()
        labels = self._labels
        return Prediction(values, [dict(zip(labels, p, strict=True)) for p in proba])

    def warm(self) -> Prediction:
        """Predict one reference row (validated as a request would be): a version that
        cannot answer its own reference data is never routed."""
        rows = self.entry.reference()[self._names].head(1).to_dict("records")
        return self.predict(self.validator.validate(rows).rows)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "card": self.card.model_dump()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
