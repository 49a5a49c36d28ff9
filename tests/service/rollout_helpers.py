"""Helpers for the rollout tests: classifier versions (a good one, one answering a
constant class) registered under fresh names."""

from __future__ import annotations

from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from models.demo import breast_cancer_data
from models.registry import RegisteredModel, register_model


def register_classifier(name: str, c: float = 1.0) -> RegisteredModel:
    """A logistic regression on the breast-cancer data (a good version)."""
    X, y = breast_cancer_data()
    model = LogisticRegression(C=c, max_iter=5000).fit(X.to_numpy(), y)
    return register_model(name, model, X, y, reference_rows=100, trigger={"type": "test"})


def register_constant(name: str) -> RegisteredModel:
    """A deliberately bad version: it answers the same class for every row."""
    X, y = breast_cancer_data()
    model = DummyClassifier(strategy="constant", constant=y.iloc[0]).fit(X.to_numpy(), y)
    return register_model(name, model, X, y, reference_rows=100, trigger={"type": "test"})
