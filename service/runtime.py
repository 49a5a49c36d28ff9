"""A model version loaded in a gateway worker: estimator, card, validator, predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.card import ModelCard
from models.inputs import input_adapter
from models.registry import RegisteredModel, get_model
from service.pii import PiiPolicy, pii_key
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
        # personal data is never stored raw; a hashed feature without a key fails the load
        self.pii = PiiPolicy(self.card.features, pii_key())
        self._names = self.card.feature_names
        self._adapter = input_adapter(self.card.input_format)
        self._labels = [str(label) for label in self.card.class_labels or []]
        self._has_proba = self.card.task == "classification" and hasattr(
            self.estimator, "predict_proba"
        )
        self.inflight = 0  # requests predicting with it now (the router unloads at 0)

    @classmethod
    def load(cls, name: str, version: str | None = None) -> LoadedModel:
        return cls(get_model(name, version))

    def predict(self, rows: list[dict[str, Any]]) -> Prediction:
        """Predict validated rows; classifiers also return class probabilities."""
        adapter = self._adapter
        model_input = adapter.from_rows(rows, self._names)
        values = adapter.predict(self.estimator, model_input)
        proba = adapter.predict_proba(self.estimator, model_input) if self._has_proba else None
        if proba is None:
            return Prediction(values, None)
        labels = self._labels
        return Prediction(values, [dict(zip(labels, p, strict=True)) for p in proba])

    def warm(self) -> Prediction:
        """Predict one reference row (validated as a request would be): a version that
        cannot answer its own reference data is never routed."""
        rows = self.entry.reference()[self._names].head(1).to_dict("records")
        return self.predict(self.validator.validate(rows).rows)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "card": self.card.model_dump()}

