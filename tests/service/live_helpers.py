"""Helpers for the live-routing tests: small regression models registered under fresh names."""

from __future__ import annotations

from sklearn.linear_model import Ridge

from loadtests.harness import fresh_name, register_version  # noqa: F401 - re-exported
from models.demo import diabetes_data
from models.registry import RegisteredModel, register_model


def _refuse_to_load(message: str) -> None:
    raise RuntimeError(message)


class LoadFails(Ridge):
    """Predicts at registration; unpickling it (loading it in a gateway) raises."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_refuse_to_load, ("this version cannot be loaded",))


class WarmFails(Ridge):
    """Loads, but a loaded copy raises on every prediction (the warm-up catches it)."""

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.broken = True

    def predict(self, X):  # type: ignore[no-untyped-def]
        if getattr(self, "broken", False):
            raise ValueError("this version cannot predict")
        return super().predict(X)


def register_broken(name: str, kind: type[Ridge]) -> RegisteredModel:
    X, y = diabetes_data()
    return register_model(name, kind().fit(X.to_numpy(), y), X, y, reference_rows=50)


def row(entry: RegisteredModel) -> dict:
    return entry.reference()[entry.card.feature_names].iloc[0].to_dict()
