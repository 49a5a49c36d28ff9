"""The model registry: models, their cards and reference samples in the BentoML model store.

Each registered version is one BentoML model whose directory holds ``model.pkl`` (the
estimator), ``card.json`` (the :class:`~models.card.ModelCard`) and ``reference.parquet``
(a sample of the training features with the model's predictions and the true labels).

Example
-------
>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> y = pd.Series([1.0, 3.0, 5.0, 7.0], name="y")
>>> entry = register_model("doctest-line", LinearRegression().fit(X.to_numpy(), y), X, y)
>>> get_model("doctest-line").card.features[0].name
'x'
>>> sorted(entry.reference()["__prediction__"].round(6))
[1.0, 3.0, 5.0, 7.0]
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd

from models.card import (
    ExplainerInfo,
    FeatureSpec,
    Lineage,
    ModelCard,
    fingerprint,
    infer_features,
)
from models.explain import ExplainedBatch, Unexplainable, baseline, build_explainer
from models.inputs import input_adapter
from monitoring.calibration import share_rate
from monitoring.config import MonitorConfig
from monitoring.monitor import stream_tolerances
from monitoring.reference import (
    MIN_EFFECTIVE_SIZE,
    Tolerance,
    detectable_shift,
    reference_size,
)

CARD_FILE = "card.json"
ESTIMATOR_FILE = "model.pkl"
REFERENCE_FILE = "reference.parquet"
ATTRIBUTIONS_FILE = "attributions.parquet"  # the reference rows' attributions (baseline)
BASE_COLUMN = "__base__"
OUTPUT_COLUMN = "__output__"
DRIFTGATE_LABEL = "driftgate"
PREDICTION_COLUMN = "__prediction__"
LABEL_COLUMN = "__label__"
PROBA_PREFIX = "__proba__"


class RegistryError(LookupError):
    """A model or version that is not in the registry."""


@dataclass(frozen=True)
class RegisteredModel:
    """One registered version: its tag, card and files."""

    name: str
    version: str
    path: Path
    creation_time: str

    @cached_property
    def card(self) -> ModelCard:
        return ModelCard.model_validate_json((self.path / CARD_FILE).read_text())

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    def load_estimator(self) -> Any:
        with open(self.path / ESTIMATOR_FILE, "rb") as fh:
            return pickle.load(fh)

    def reference(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / REFERENCE_FILE)

    def baseline_attributions(self) -> pd.DataFrame | None:
        """Per-row attributions of the reference (one column per feature, plus the base
        value and the explained output), or None when registration stored none."""
        path = self.path / ATTRIBUTIONS_FILE
        return pd.read_parquet(path) if path.exists() else None

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "created_at": self.creation_time}


def _input_format(estimator: Any) -> str:
    if hasattr(estimator, "predict_one") and not hasattr(estimator, "predict"):
        return "records"
    return "pandas" if hasattr(estimator, "feature_names_in_") else "numpy"


def predict_frame(estimator: Any, card: ModelCard, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions (and class probabilities) of ``estimator`` for ``features`` as columns."""
    out = pd.DataFrame(index=features.index)
    adapter = input_adapter(card.input_format)
    model_input = adapter.from_frame(features, card.feature_names)
    out[PREDICTION_COLUMN] = adapter.predict(estimator, model_input)
    proba = adapter.predict_proba(estimator, model_input)
    if card.task == "classification" and proba is not None:
        columns = np.asarray(proba)
        for i, label in enumerate(card.class_labels or []):
            out[f"{PROBA_PREFIX}{label}"] = columns[:, i]
    return out


def register_model(
    name: str,
    estimator: Any,
    features: pd.DataFrame,
    target: pd.Series,
    *,
    task: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    metrics: dict[str, float] | None = None,
    parameters: dict[str, Any] | None = None,
    code_version: str = "unknown",
    parent_version: str | None = None,
    trigger: dict[str, Any] | None = None,
    reference_rows: int = 2000,
    reference: pd.DataFrame | None = None,
    reference_target: pd.Series | None = None,
    seed: int = 0,
    drift_tolerance: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Register a trained estimator with its card, reference sample and lineage.

    ``features``/``target`` are the training data: the schema is inferred from them (patched
    by ``overrides``) and fingerprinted. ``reference`` is the data the reference sample is
    drawn from (a held-out set is best, with its true labels as ``reference_target``); it
    defaults to the training data. ``drift_tolerance`` (``{"default": {...}, "features":
    {name: {...}}}`` with ``mean_shift``, ``spread_ratio``, ``psi``) sets the changes that
    raise no drift alarm (see :class:`monitoring.reference.Tolerance` for the defaults).
    """
    if not (hasattr(estimator, "predict") or hasattr(estimator, "predict_one")):
        raise TypeError("the model must have a predict() or predict_one() method")
    if task is None:
        is_classifier = hasattr(estimator, "classes_") or hasattr(estimator, "predict_proba")
        task = "classification" if is_classifier else "regression"
    class_labels = None
    if task == "classification":
        labels = getattr(estimator, "classes_", None)
        if labels is None:
            labels = sorted(pd.unique(target))
        class_labels = [v.item() if isinstance(v, np.generic) else v for v in labels]
    specs: list[FeatureSpec] = infer_features(features, overrides)
    training = features.assign(**{str(target.name or "target"): target.to_numpy()})
    card = ModelCard(
        name=name,
        task=task,
        class_labels=class_labels,
        target=str(target.name) if target.name is not None else None,
        features=specs,
        input_format=_input_format(estimator),
        metrics=metrics or {},
        lineage=Lineage(
            data_fingerprint=fingerprint(training),
            row_count=len(features),
            parameters=_json_params(parameters, estimator),
            code_version=code_version,
            parent_version=parent_version,
            trigger=trigger or {"type": "manual"},
        ),
    )
    source, source_target = (
        (features, target) if reference is None else (reference, reference_target)
    )
    sample = source.sample(n=min(reference_rows, len(source)), random_state=seed)
    card.reference_rows = len(sample)
    if len(sample) < MIN_REFERENCE_ROWS:
        message = (
            f"the reference sample has {len(sample)} rows, fewer than {MIN_REFERENCE_ROWS}: "
            "the drift thresholds calibrated on it come out wide and detection is slow; "
            "register with more held-out rows (GET /models/NAME shows the thresholds)"
        )
        card.warnings.append(message)
        warnings.warn(message, ReferenceTooSmall, stacklevel=2)
    _describe_reference(card, sample, drift_tolerance)
    ref = sample.reset_index(drop=True)
    ref = pd.concat([ref, predict_frame(estimator, card, ref)], axis=1)
    if source_target is not None:
        ref[LABEL_COLUMN] = source_target.loc[sample.index].to_numpy()
    attributions = _explain_reference(estimator, card, ref)
    with bentoml.models.create(
        name, labels={DRIFTGATE_LABEL: "1", "task": task}, metadata={"task": task}
    ) as bento_model:
        path = Path(bento_model.path)
        with open(path / ESTIMATOR_FILE, "wb") as fh:
            pickle.dump(estimator, fh)
        (path / CARD_FILE).write_text(card.model_dump_json(indent=2))
        ref.to_parquet(path / REFERENCE_FILE, index=False)
        if attributions is not None:
            attributions.to_parquet(path / ATTRIBUTIONS_FILE, index=False)
    return _entry(bentoml.models.get(bento_model.tag))


def attribution_frame(batch: ExplainedBatch) -> pd.DataFrame:
    """An explained batch as the stored frame: a column per feature, base value, output."""
    frame = pd.DataFrame(batch.values, columns=batch.features)
    frame[BASE_COLUMN] = batch.base
    frame[OUTPUT_COLUMN] = batch.output
    return frame


def _explain_reference(estimator: Any, card: ModelCard, ref: pd.DataFrame) -> pd.DataFrame | None:
    """Choose the explainer, explain the reference (the baseline) and note both on the card.
    A model no explainer fits still registers: the card says why (``explainer.reason``)."""
    try:
        explainer = build_explainer(estimator, card, ref)
        batch = baseline(explainer, ref)
    except Exception as exc:  # any failure of shap on this model: not explainable
        reason = str(exc) if isinstance(exc, Unexplainable) else f"explaining failed: {exc!r}"
        card.explainer = ExplainerInfo(method="none", reason=reason)
        return None
    importance = np.abs(batch.values).mean(axis=0)
    card.explainer = ExplainerInfo(
        method=explainer.method, output_space=explainer.output_space,
        baseline_rows=len(batch.values), details=explainer.describe(),
        importance={f: float(v) for f, v in zip(batch.features, importance, strict=True)},
    )
    return attribution_frame(batch)


MIN_REFERENCE_ROWS = 100
"""Below this many reference rows a model still registers, with a warning on its card: the
reference mean alone is then uncertain by more than 0.1 standard deviation, and thresholds
calibrated to absorb that come out wide (36 rows: several times those of 2,000)."""


class ReferenceTooSmall(UserWarning):
    """The reference sample is smaller than :data:`MIN_REFERENCE_ROWS`, or holds fewer
    distinct rows than :data:`monitoring.reference.MIN_EFFECTIVE_SIZE`."""


def _describe_reference(
    card: ModelCard, sample: pd.DataFrame, tolerance: dict[str, Any] | None
) -> None:
    """Effective size, tolerances and the smallest detectable shift on the card; a warning
    when the reference holds fewer distinct rows than :data:`MIN_EFFECTIVE_SIZE`."""
    names = card.feature_names
    size = reference_size(sample, names)
    card.reference_size = size.as_dict()
    spec = tolerance or {}
    config = MonitorConfig()
    rate = share_rate(config.expected_run_time, 1.0, len(names) + 1.5,
                      config.false_alarm_safety) * config.chart_weights[0]
    tolerances = stream_tolerances(spec, Tolerance(), names, size.effective_size,
                                   dict.fromkeys(names, rate), config.cusum_k)
    card.drift_tolerance = {**spec, "effective": {k: v.as_dict() for k, v in tolerances.items()}}
    # a feature at the model's default tolerance (per-feature settings aside)
    widest = stream_tolerances({"default": spec.get("default") or {}}, Tolerance(), ["_"],
                               size.effective_size, {"_": rate}, config.cusum_k)["_"]
    card.detectable_shift_sd = round(
        detectable_shift(size.effective_size, rate, widest.mean_shift, config.cusum_k,
                         margin=widest.reference_margin), 3)
    if size.rows >= MIN_REFERENCE_ROWS and size.effective_size < MIN_EFFECTIVE_SIZE:
        message = (
            f"the reference holds {size.effective_size} distinct rows of {size.rows} "
            f"({size.duplicate_share:.0%} copies), fewer than {MIN_EFFECTIVE_SIZE}: drift "
            f"tolerances widen to {widest.mean_shift:.2f} sd and the smallest shift caught within "
            f"1,000 records is {card.detectable_shift_sd:.2f} sd; register with more "
            "distinct held-out rows"
        )
        card.warnings.append(message)
        warnings.warn(message, ReferenceTooSmall, stacklevel=3)


def _json_params(parameters: dict[str, Any] | None, estimator: Any) -> dict[str, Any]:
    if parameters is None and hasattr(estimator, "get_params"):
        parameters = estimator.get_params(deep=False)
    return json.loads(json.dumps(parameters or {}, default=str))


def _entry(model: Any) -> RegisteredModel:
    return RegisteredModel(
        name=model.tag.name,
        version=model.tag.version,
        path=Path(model.path),
        creation_time=model.info.creation_time.isoformat(),
    )


def list_models(name: str | None = None) -> list[RegisteredModel]:
    """Registered driftgate models, oldest first (the last of a name is its latest)."""
    if name is not None and not _valid_name(name):
        return []
    try:
        stored = bentoml.models.list(name)
    except bentoml.exceptions.NotFound:
        return []
    found = [_entry(m) for m in stored if (Path(m.path) / CARD_FILE).exists()]
    return sorted(found, key=lambda m: (m.name, m.creation_time))


def model_names() -> list[str]:
    return sorted({m.name for m in list_models()})


def get_model(name: str, version: str | None = None) -> RegisteredModel:
    """One version of a model; ``None`` or ``"latest"`` means the newest."""
    versions = list_models(name)
    if not versions:
        raise RegistryError(f"unknown model {name!r}")
    if version in (None, "latest"):
        return versions[-1]
    for entry in versions:
        if entry.version == version:
            return entry
    raise RegistryError(f"model {name!r} has no version {version!r}")


_MODEL_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?", re.ASCII)


def _valid_name(name: str) -> bool:
    """A name BentoML accepts as a model tag: lowercase ASCII alphanumerics, ``-``, ``_``,
    ``.`` inside, at most 63 characters."""
    return _MODEL_NAME.fullmatch(name) is not None


def registry_signature() -> tuple[tuple[str, int], ...]:
    """A cheap change detector of the model store: the modification times of its model and
    version directories (a new name, a new version, and every file a registration adds to a
    version directory move one of them). A few ``stat`` calls; no model is read."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    root = Path(BentoMLContainer.model_store_dir.get())
    found: list[tuple[str, int]] = []
    try:
        with os.scandir(root) as names:
            for name in names:
                if not name.is_dir():
                    continue
                found.append((name.name, name.stat().st_mtime_ns))
                with os.scandir(name.path) as versions:
                    found.extend(
                        (f"{name.name}/{v.name}", v.stat().st_mtime_ns)
                        for v in versions if v.is_dir()
                    )
    except FileNotFoundError:  # nothing registered yet, or a directory just removed
        pass
    return tuple(sorted(found))
