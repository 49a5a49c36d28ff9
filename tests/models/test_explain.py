"""Explanations: the same values as shap's own explainers, and local accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.demo import diabetes_risk_data
from models.explain import Unexplainable, build_explainer
from models.registry import get_model, register_model


def _numeric_card(names: list[str], task: str, labels: list | None = None) -> dict:
    return {"task": task, "class_labels": labels, "input_format": "numpy",
            "features": [{"name": n, "kind": "numeric"} for n in names]}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.standard_normal((600, 6)), columns=[f"f{i}" for i in range(6)])
    y = (2 * X["f0"] - X["f1"] + 0.3 * rng.standard_normal(600) > 0).astype(int).to_numpy()
    return X, y


def test_forest_matches_shap_and_adds_up(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = RandomForestClassifier(n_estimators=40, random_state=0).fit(X.to_numpy(), y)
    explainer = build_explainer(model, _numeric_card(list(X.columns), "classification", [0, 1]),
                                X)
    rows = X.iloc[:50]
    batch = explainer.explain(rows)
    assert explainer.method == "tree" and explainer.output_space == "probability"
    own = shap.TreeExplainer(model)(rows.to_numpy())
    proba = model.predict_proba(rows.to_numpy())
    predicted = proba.argmax(axis=1)
    idx = np.arange(len(rows))
    np.testing.assert_allclose(batch.values, own.values[idx, :, predicted], atol=1e-12)
    np.testing.assert_allclose(batch.base + batch.values.sum(axis=1), proba[idx, predicted],
                               atol=1e-6)
    assert batch.classes == [int(k) for k in predicted]
    top = np.abs(batch.values).mean(axis=0).argsort()[::-1][:2]
    assert set(X.columns[top]) == {"f0", "f1"}


def test_boosting_local_accuracy(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = data
    target = 3 * X["f2"] + X["f3"] ** 2
    model = GradientBoostingRegressor(n_estimators=50, random_state=0).fit(X.to_numpy(), target)
    batch = build_explainer(model, _numeric_card(list(X.columns), "regression"), X).explain(X)
    np.testing.assert_allclose(batch.base + batch.values.sum(axis=1),
                               model.predict(X.to_numpy()), atol=1e-6)
    own = shap.TreeExplainer(model)(X.to_numpy())
    np.testing.assert_allclose(batch.values, own.values, atol=1e-12)


def test_scaled_linear_pipeline_is_linear_and_exact(
        data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y)
    explainer = build_explainer(model, _numeric_card(list(X.columns), "classification", [0, 1]),
                                X)
    assert (explainer.method, explainer.output_space) == ("linear", "log_odds")
    batch = explainer.explain(X.iloc[:20])
    margin = model.decision_function(X.iloc[:20].to_numpy())
    np.testing.assert_allclose(batch.output, np.abs(margin), atol=1e-9)
    # shap's linear explainer on the standardised data gives the same attributions
    scaled = model[0].transform(X.to_numpy())
    own = shap.LinearExplainer(model[-1], shap.maskers.Independent(scaled, max_samples=600))
    expected = own(scaled[:20]).values * np.sign(margin)[:, None]
    np.testing.assert_allclose(batch.values, expected, atol=1e-9)


def test_model_agnostic_on_categorical_features() -> None:
    entry = get_model("diabetes-risk") if _registered("diabetes-risk") else None
    X, y = diabetes_risk_data()
    if entry is None:
        from models.demo import train_diabetes_risk

        entry = train_diabetes_risk()
    model = entry.load_estimator()
    explainer = build_explainer(model, entry.card, X)
    assert explainer.method == "permutation"
    rows = X.iloc[:4]
    batch = explainer.explain(rows)
    proba = model.predict_proba(rows)
    classes = list(model.classes_)
    expected = [proba[i, classes.index(c)] for i, c in enumerate(batch.classes)]
    np.testing.assert_allclose(batch.base + batch.values.sum(axis=1), expected, atol=1e-9)
    assert batch.classes == list(model.predict(rows))


def test_registration_stores_explainer_and_baseline(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X.to_numpy(), y)
    entry = register_model("explain-forest", model, X, pd.Series(y, name="y"))
    info = entry.card.explainer
    assert info is not None and info.method == "tree" and info.baseline_rows == 600
    frame = entry.baseline_attributions()
    assert frame is not None and list(frame.columns[:6]) == list(X.columns)
    assert max(info.importance, key=info.importance.__getitem__) == "f0"


class _Labeller:
    """A classifier with labels out and no scores: nothing to attribute."""

    classes_ = np.array(["a", "b"])

    def predict(self, x: object) -> np.ndarray:
        return np.array(["a"] * len(x))  # type: ignore[arg-type]


def test_unexplainable_model_registers_and_says_why(
        data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = data
    entry = register_model("explain-labeller", _Labeller(), X,
                           pd.Series(np.where(X["f0"] > 0, "a", "b"), name="y"))
    assert entry.card.explainer is not None and entry.card.explainer.method == "none"
    assert "predict_proba" in (entry.card.explainer.reason or "")
    assert entry.baseline_attributions() is None
    with pytest.raises(Unexplainable):
        build_explainer(_Labeller(), entry.card, X)


def _registered(name: str) -> bool:
    from models.registry import list_models

    return bool(list_models(name))
