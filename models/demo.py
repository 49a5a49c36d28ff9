"""Demo models trained from data scikit-learn ships (no downloads).

- ``breast-cancer``: logistic regression on the ten "mean" features of the Wisconsin breast
  cancer data, classes ``malignant`` / ``benign``.
- ``diabetes``: ridge regression of disease progression on the ten diabetes features.
- ``diabetes-risk``: a classifier with categorical and boolean features derived from the
  diabetes data (``sex``, ``age_band``, ``high_glucose``), classes ``high`` / ``low`` risk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.registry import RegisteredModel, list_models, register_model

SEED = 7
CODE_VERSION = "driftgate-demo-1"


def breast_cancer_data() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    mean_cols = [c for c in data.data.columns if c.startswith("mean ")]
    features = data.data[mean_cols].rename(columns=lambda c: c.replace(" ", "_"))
    target = pd.Series(np.asarray(data.target_names)[data.target], name="diagnosis")
    return features, target


def diabetes_data() -> tuple[pd.DataFrame, pd.Series]:
    data = load_diabetes(as_frame=True, scaled=False)
    return data.data.astype("float64"), data.target.rename("progression")


def diabetes_risk_data() -> tuple[pd.DataFrame, pd.Series]:
    raw, progression = diabetes_data()
    features = pd.DataFrame(
        {
            "sex": np.where(raw["sex"] == 1, "female", "male"),
            "age_band": pd.cut(raw["age"], [0, 39, 59, 200], labels=["<40", "40-59", "60+"])
            .astype(str)
            .to_numpy(),
            "bmi": raw["bmi"],
            "bp": raw["bp"],
            "high_glucose": (raw["s6"] > raw["s6"].median()).to_numpy(),
        }
    )
    target = pd.Series(
        np.where(progression > progression.median(), "high", "low"), name="risk"
    )
    return features, target


def _classifier_metrics(y_true: pd.Series, y_pred: np.ndarray, positive: str) -> dict:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, pos_label=positive)),
    }


def train_breast_cancer() -> RegisteredModel:
    X, y = breast_cancer_data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=SEED, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    model.fit(X_tr.to_numpy(), y_tr)
    metrics = _classifier_metrics(y_te, model.predict(X_te.to_numpy()), "malignant")
    return register_model(
        "breast-cancer", model, X_tr, y_tr, metrics=metrics, reference=X_te, reference_target=y_te,
        parameters={"C": 1.0, "max_iter": 1000}, code_version=CODE_VERSION,
    )


def train_diabetes() -> RegisteredModel:
    X, y = diabetes_data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=SEED)
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X_tr.to_numpy(), y_tr)
    pred = model.predict(X_te.to_numpy())
    metrics = {
        "mae": float(mean_absolute_error(y_te, pred)),
        "rmse": float(root_mean_squared_error(y_te, pred)),
    }
    return register_model(
        "diabetes", model, X_tr, y_tr, metrics=metrics, reference=X_te, reference_target=y_te,
        parameters={"alpha": 1.0}, code_version=CODE_VERSION,
    )


def train_diabetes_risk() -> RegisteredModel:
    X, y = diabetes_risk_data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=SEED, stratify=y)
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["sex", "age_band"]),
            ("numbers", StandardScaler(), ["bmi", "bp"]),
            ("flags", "passthrough", ["high_glucose"]),
        ]
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(X_tr, y_tr)
    metrics = _classifier_metrics(y_te, model.predict(X_te), "high")
    return register_model(
        "diabetes-risk", model, X_tr, y_tr, metrics=metrics, reference=X_te, reference_target=y_te,
        code_version=CODE_VERSION, parameters={"max_iter": 1000},
    )


DEMO_MODELS: dict[str, Callable[[], RegisteredModel]] = {
    "breast-cancer": train_breast_cancer,
    "diabetes": train_diabetes,
    "diabetes-risk": train_diabetes_risk,
}


def register_demo_models(only_missing: bool = True) -> list[RegisteredModel]:
    """Train and register the demo models; with ``only_missing`` skip names already present."""
    present = {m.name for m in list_models()} if only_missing else set()
    return [train() for name, train in DEMO_MODELS.items() if name not in present]


def retrain(context: Any) -> Any:
    """Trainer of the retraining loop (``driftgate retrain worker --trainer
    models.demo:retrain``) for the demo models and any scikit-learn estimator: a fresh copy
    of the serving version's estimator (same pipeline and parameters), fitted on the labelled
    records from the evidence window on (all records when fewer than 50 are that recent).
    ``context`` is a :class:`service.retrain.TrainerContext`."""
    from sklearn.base import clone

    recent = context.recent(min_rows=50)
    labels = recent["label"]
    if context.current.card.task == "regression":
        labels = labels.astype(float)
    model = clone(context.current.estimator)
    return model.fit(context.features(recent), labels)
