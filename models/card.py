"""Model cards: the feature schema, task, metrics and lineage registered with every model.

The card is what the gateway validates requests against and what the monitor builds its
detectors from. Its JSON form is documented in ``docs/contracts.md``.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"age": [31, 45], "plan": ["basic", "pro"], "active": [True, False]})
>>> [(f.name, f.kind) for f in infer_features(df)]
[('age', 'numeric'), ('plan', 'categorical'), ('active', 'boolean')]
>>> fingerprint(df)[:7]
'sha256:'
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

# the one feature spec, shared with the monitor and the gateway's validation
from monitoring.quality import FeatureKind, FeatureSpec

Task = Literal["classification", "regression"]
InputFormat = Literal["numpy", "pandas", "records"]

__all__ = ["ExplainerInfo", "FeatureKind", "FeatureSpec", "InputFormat", "Lineage",
           "ModelCard", "Task", "fingerprint", "infer_features"]


class Lineage(BaseModel):
    """Where a model version came from."""

    data_fingerprint: str
    row_count: int
    parameters: dict[str, Any] = Field(default_factory=dict)
    code_version: str = "unknown"
    parent_version: str | None = None
    trigger: dict[str, Any] = Field(default_factory=lambda: {"type": "manual"})


class ExplainerInfo(BaseModel):
    """How a version's predictions are explained, and its reference's global attribution."""

    method: str = Field(description="tree, linear, permutation, or none (see reason).")
    output_space: str | None = Field(None, description="probability, log_odds or raw.")
    reason: str | None = Field(None, description="Why the model cannot be explained.")
    baseline_rows: int = Field(0, description="Reference rows explained at registration.")
    importance: dict[str, float] = Field(
        default_factory=dict, description="Mean |attribution| per feature on the reference.")
    details: dict[str, Any] = Field(default_factory=dict)


class ModelCard(BaseModel):
    """Everything driftgate needs to know about a registered model version."""

    name: str
    task: Task
    class_labels: list[Any] | None = None
    target: str | None = None
    features: list[FeatureSpec]
    input_format: InputFormat = "numpy"
    metrics: dict[str, float] = Field(default_factory=dict)
    lineage: Lineage
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    reference_rows: int | None = Field(
        None, description="Rows of the reference sample the drift detectors are calibrated on."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What registration found worth a second look."
    )
    reference_size: dict[str, Any] | None = Field(
        None, description="Rows, distinct rows, duplicate share and effective size of the "
        "reference (copies of a resampled reference are not counted as draws).",
    )
    drift_tolerance: dict[str, Any] = Field(
        default_factory=dict, description="Changes that raise no drift alarm: "
        '{"default": {"mean_shift": sd, "spread_ratio": r, "psi": p}, "features": {name: '
        "{...}}} as registered, and \"effective\": each stream's tolerance widened for the "
        "reference's uncertainty (reference_margin: the part of mean_shift added for it).",
    )
    detectable_shift_sd: float | None = Field(
        None, description="Smallest mean shift (in reference sd) of one feature the drift "
        "monitor catches within 1,000 records on average at the default false-alarm budget and "
        "the model's default tolerance.",
    )
    explainer: ExplainerInfo | None = Field(
        None, description="The explainer chosen at registration and the baseline attribution."
    )

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _infer_kind(series: pd.Series) -> FeatureKind:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    return "categorical"


def infer_features(
    data: pd.DataFrame, overrides: dict[str, dict[str, Any]] | None = None
) -> list[FeatureSpec]:
    """Infer a feature schema from training data; ``overrides`` patch fields per feature.

    Numeric ranges are the observed min and max, categories the observed values (sorted),
    ``nullable`` whether any value is missing. Overrides may change any field, for example
    ``{"zip": {"kind": "categorical"}, "age": {"min": 0, "max": 120}}``.
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(data.columns)
    if unknown:
        raise ValueError(f"overrides name unknown features: {sorted(unknown)}")
    specs = []
    for name in data.columns:
        series = data[name]
        patch = overrides.get(name, {})
        kind = patch.get("kind", _infer_kind(series))
        fields: dict[str, Any] = {
            "name": str(name),
            "kind": kind,
            "dtype": str(series.dtype),
            "nullable": bool(series.isna().any()),
        }
        present = series.dropna()
        if kind == "numeric" and len(present):
            fields["min"] = float(present.min())
            fields["max"] = float(present.max())
        elif kind == "categorical":
            fields["categories"] = sorted({str(v) for v in present})
        fields.update(patch)
        specs.append(FeatureSpec(**fields))
    return specs


def fingerprint(data: pd.DataFrame) -> str:
    """Sha256 of the canonical form of a data frame: sorted columns, CSV, no index."""
    canonical = data.reindex(sorted(data.columns), axis=1)
    payload = canonical.to_csv(index=False, float_format="%.17g").encode()
    return "sha256:" + hashlib.sha256(payload).hexdigest()
