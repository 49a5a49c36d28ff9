"""Per-prediction explanations with ``shap``, one explainer chosen per model version.

:func:`build_explainer` picks, from the estimator alone:

- ``tree``: exact TreeSHAP (``shap.TreeExplainer``, path-dependent) for scikit-learn forests,
  extra trees, gradient boosting and single trees (XGBoost and LightGBM models too, when
  installed); classifiers are explained in the space the trees vote in (probability for
  forests, log-odds for boosting);
- ``linear``: ``shap.LinearExplainer`` for linear models (scikit-learn ``coef_`` and
  ``intercept_``), also behind a chain of ``StandardScaler`` steps, which is folded into the
  coefficients (explained in raw feature units; classifiers in log-odds);
- ``permutation``: ``shap.PermutationExplainer`` on a background of at most
  :data:`BACKGROUND_ROWS` reference rows, with at most ``2 * (2p + 1)`` masked evaluations
  per explained row (two antithetic permutations), for anything else with numbers out:
  classifiers with ``predict_proba`` are explained in probability, regressors in their
  prediction. Categorical features are masked as integer codes and decoded before the model
  sees them.

A classifier's row is explained for the class it predicts. Every explainer keeps local
accuracy: ``base_value + sum(contributions) == output``.

Example
-------
>>> import numpy as np, pandas as pd
>>> from sklearn.ensemble import RandomForestRegressor
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.standard_normal((200, 3)), columns=["a", "b", "c"])
>>> y = 3 * X["a"] + 0.1 * X["b"]
>>> model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X.to_numpy(), y)
>>> card = {"task": "regression", "class_labels": None, "input_format": "numpy",
...         "features": [{"name": n, "kind": "numeric"} for n in "abc"]}
>>> explainer = build_explainer(model, card, X)
>>> explainer.method
'tree'
>>> batch = explainer.explain(X.head(2))
>>> bool(np.allclose(batch.base + batch.values.sum(axis=1), model.predict(X.head(2).to_numpy())))
True
>>> max(batch.row(0).contributions, key=lambda f: abs(batch.row(0).contributions[f]))
'a'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.inputs import input_adapter

__all__ = ["BACKGROUND_ROWS", "BASELINE_ROWS", "ExplainedBatch", "Explanation",
           "ModelExplainer", "Unexplainable", "baseline", "build_explainer"]

BACKGROUND_ROWS = 50
"""Reference rows the model-agnostic explainer masks with (each explained row costs
``max_evals * BACKGROUND_ROWS`` model rows, in batched calls)."""

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")


class Unexplainable(ValueError):
    """A model (or a row) that no explainer here can explain; the message says why."""


@dataclass(frozen=True)
class Explanation:
    """One row's attribution: ``base_value + sum(contributions.values()) == output``."""

    method: str
    output_space: str
    base_value: float
    output: float
    contributions: dict[str, float]
    explained_class: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"explainer": self.method, "output_space": self.output_space,
                "base_value": self.base_value, "output": self.output,
                "explained_class": self.explained_class, "contributions": self.contributions}


@dataclass
class ExplainedBatch:
    """Attributions of several rows: ``values`` (rows x features), ``base`` and ``output``
    per row, the class each row is explained for (classifiers)."""

    method: str
    output_space: str
    features: list[str]
    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    classes: list[Any] = field(default_factory=list)

    def row(self, i: int) -> Explanation:
        return Explanation(
            self.method, self.output_space, float(self.base[i]), float(self.output[i]),
            {f: float(v) for f, v in zip(self.features, self.values[i], strict=True)},
            self.classes[i] if self.classes else None)


class ModelExplainer:
    """Explains rows (a DataFrame with the card's feature columns) of one model version."""

    method = "none"
    output_space = "raw"

    def __init__(self, card: Mapping[str, Any]) -> None:
        self.features: list[str] = [str(f["name"]) for f in card["features"]]
        self.classification = card.get("task") == "classification"
        self.class_labels: list[Any] = list(card.get("class_labels") or [])

    def explain(self, frame: pd.DataFrame) -> ExplainedBatch:
        """Attributions of every row of ``frame``; raises :class:`Unexplainable`."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "output_space": self.output_space}

    # -- shared: from shap's (rows, features[, outputs]) to one explained output per row --
    def _batch(self, values: np.ndarray, base: np.ndarray) -> ExplainedBatch:
        values = np.asarray(values, dtype=float)
        base = np.asarray(base, dtype=float)
        n = values.shape[0]
        classes: list[Any] = []
        if values.ndim == 3:  # one output per class: explain the predicted (largest) one
            base = np.broadcast_to(base.reshape(n, -1), (n, values.shape[2]))
            outputs = base + values.sum(axis=1)
            pick = outputs.argmax(axis=1)
            rows = np.arange(n)
            values, base = values[rows, :, pick], base[rows, pick]
            classes = [self._label(int(k)) for k in pick]
        else:
            base = np.broadcast_to(base.reshape(-1), (n,)).copy()
            if self.classification:  # one margin, for the second class (binary)
                out = base + values.sum(axis=1)
                first = out < 0
                values = np.where(first[:, None], -values, values)
                base = np.where(first, -base, base)
                classes = [self._label(0 if f else 1) for f in first]
        output = base + values.sum(axis=1)
        return ExplainedBatch(self.method, self.output_space, self.features, values, base,
                              output, classes)

    def _label(self, k: int) -> Any:
        return self.class_labels[k] if k < len(self.class_labels) else k


class TreeModelExplainer(ModelExplainer):
    method = "tree"

    def __init__(self, estimator: Any, card: Mapping[str, Any]) -> None:
        import shap

        super().__init__(card)
        self._shap = shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
        boosted = "Boost" in type(estimator).__name__ or _module(estimator) != "sklearn.ensemble"
        single = type(estimator).__name__.startswith("DecisionTree")
        self.output_space = ("log_odds" if self.classification and boosted and not single
                             else "probability" if self.classification else "raw")

    def explain(self, frame: pd.DataFrame) -> ExplainedBatch:
        x = _numeric(frame, self.features)
        result = self._shap(x, check_additivity=False)
        return self._batch(result.values, result.base_values)


class LinearModelExplainer(ModelExplainer):
    method = "linear"

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, card: Mapping[str, Any],
                 background: np.ndarray) -> None:
        import shap

        super().__init__(card)
        self.output_space = "log_odds" if self.classification else "raw"
        masker = shap.maskers.Independent(background, max_samples=len(background))
        if coef.ndim == 2 and coef.shape[0] == 1:
            coef, intercept = coef[0], intercept.reshape(-1)[:1]
        self._shap = shap.LinearExplainer((coef, intercept), masker)

    def explain(self, frame: pd.DataFrame) -> ExplainedBatch:
        x = _numeric(frame, self.features)
        if not np.isfinite(x).all():
            raise Unexplainable("the linear explainer needs every feature present (no nulls)")
        values = np.asarray(self._shap.shap_values(x))
        if values.ndim == 2:  # one output: shap's matrix form, no Python loop per row
            base = np.atleast_1d(np.asarray(self._shap.expected_value, dtype=float))
            return self._batch(values, np.broadcast_to(base[:1], (len(x),)))
        result = self._shap(x)
        return self._batch(result.values, result.base_values)


class PermutationModelExplainer(ModelExplainer):
    method = "permutation"

    def __init__(self, estimator: Any, card: Mapping[str, Any], reference: pd.DataFrame,
                 background_rows: int = BACKGROUND_ROWS, seed: int = 0) -> None:
        import shap

        super().__init__(card)
        self._estimator = estimator
        self._adapter = input_adapter(str(card.get("input_format", "numpy")))
        self._codes: dict[int, list[Any]] = {}
        for j, spec in enumerate(card["features"]):
            if spec.get("kind", "numeric") != "numeric":
                seen = reference[spec["name"]].dropna().tolist() if len(reference) else []
                known = list(spec.get("categories") or [])
                if spec.get("kind") == "boolean":
                    known = [False, True]
                self._codes[j] = list(dict.fromkeys([*known, *seen]))
        proba = self.classification and hasattr(estimator, "predict_proba")
        if self.classification and not proba:
            raise Unexplainable("a classifier without predict_proba has no score to attribute")
        if self._adapter.name == "records" and proba:
            raise Unexplainable("records-input classifiers give no class probabilities")
        self.output_space = "probability" if proba else "raw"
        self._proba = proba
        sample = reference[self.features].dropna()
        sample = sample.sample(n=min(background_rows, len(sample)), random_state=seed)
        if sample.empty:
            raise Unexplainable("no complete reference rows to draw a background from")
        p = len(self.features)
        self.max_evals = 2 * (2 * p + 1)
        self.background_rows = len(sample)
        masker = shap.maskers.Independent(self._encode(sample), max_samples=len(sample))
        self._shap = shap.PermutationExplainer(self._model, masker, seed=seed)

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.features)), dtype=float)
        for j, name in enumerate(self.features):
            column = frame[name]
            if j in self._codes:
                index = {_key(v): k for k, v in enumerate(self._codes[j])}
                out[:, j] = [index.get(_key(v), math.nan) for v in column]
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce")
        return out

    def _decode(self, codes: np.ndarray) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for j, name in enumerate(self.features):
            if j in self._codes:
                values = self._codes[j]
                columns[name] = [values[int(c)] for c in codes[:, j]]
            else:
                columns[name] = codes[:, j]
        return pd.DataFrame(columns)

    def _model(self, codes: np.ndarray) -> np.ndarray:
        model_input = self._adapter.from_frame(self._decode(codes), self.features)
        if self._proba:
            return np.asarray(self._estimator.predict_proba(model_input), dtype=float)
        return np.asarray(self._adapter.predict(self._estimator, model_input), dtype=float)

    def explain(self, frame: pd.DataFrame) -> ExplainedBatch:
        codes = self._encode(frame)
        if np.isnan(codes).any():
            raise Unexplainable("a null or unseen category cannot be masked by this explainer")
        result = self._shap(codes, max_evals=self.max_evals, silent=True)
        return self._batch(result.values, result.base_values)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "background_rows": self.background_rows,
                "max_evals": self.max_evals}


def baseline(explainer: ModelExplainer, reference: pd.DataFrame) -> ExplainedBatch:
    """Attributions of the reference rows (complete ones; at most :data:`BASELINE_ROWS` for
    the model-agnostic explainer): the baseline live attributions are compared with."""
    rows = reference[explainer.features].dropna()
    if explainer.method == "permutation":
        rows = rows.head(BASELINE_ROWS)
    if rows.empty:
        raise Unexplainable("no complete reference rows to explain")
    return explainer.explain(rows)


BASELINE_ROWS = 64
"""Reference rows the model-agnostic explainer explains at registration."""


def build_explainer(estimator: Any, card: Mapping[str, Any] | Any,
                    reference: pd.DataFrame) -> ModelExplainer:
    """The explainer of a model version (see the module docstring); ``card`` is a card dict
    or :class:`~models.card.ModelCard`, ``reference`` its reference sample (features).
    Raises :class:`Unexplainable` when none fits."""
    if not isinstance(card, Mapping):
        card = card.model_dump()
    numeric = all(f.get("kind", "numeric") == "numeric" for f in card["features"])
    names = [str(f["name"]) for f in card["features"]]
    if numeric and _is_tree(estimator):
        return TreeModelExplainer(estimator, card)
    linear = _linear_parts(estimator) if numeric else None
    if linear is not None:
        background = _numeric(reference, names)
        background = background[np.isfinite(background).all(axis=1)]
        if len(background):
            return LinearModelExplainer(*linear, card, background[:1000])
    if not hasattr(estimator, "predict") and not hasattr(estimator, "predict_one"):
        raise Unexplainable("the model has no predict method")
    return PermutationModelExplainer(estimator, card, reference)


def _module(estimator: Any) -> str:
    module = type(estimator).__module__
    return next((m for m in TREE_MODULES if module.startswith(m)), module)


def _is_tree(estimator: Any) -> bool:
    module = _module(estimator)
    if module not in TREE_MODULES:
        return False
    name = type(estimator).__name__
    return any(k in name for k in ("Forest", "Trees", "GradientBoosting", "DecisionTree",
                                   "XGB", "LGBM", "Booster"))


def _linear_parts(estimator: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(coef, intercept) in raw feature units of a linear model, possibly behind
    ``StandardScaler`` steps of a scikit-learn pipeline; None for anything else."""
    steps: Sequence[Any] = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    *scalers, last = steps
    coef = getattr(last, "coef_", None)
    intercept = getattr(last, "intercept_", None)
    if coef is None or intercept is None or not type(last).__module__.startswith(
            "sklearn.linear_model"):
        return None
    coef = np.asarray(coef, dtype=float)
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float)).copy()
    for scaler in reversed(scalers):
        if type(scaler).__name__ != "StandardScaler":
            return None
        scale = scaler.scale_ if scaler.scale_ is not None else 1.0
        mean = scaler.mean_ if scaler.mean_ is not None else 0.0
        coef = coef / scale
        intercept = intercept - (coef * mean).sum(axis=-1)
    return coef, intercept


def _numeric(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    return frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def _key(value: Any) -> Any:
    """Category lookup key: booleans and their string forms match, as the card's do."""
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, np.generic):
        value = value.item()
    return value
