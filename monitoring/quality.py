"""Per-record data-quality checks against the model card."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["FeatureSpec", "check_value", "ISSUES"]

ISSUES = ("missing", "nan", "inf", "out_of_range", "unseen_category")


class FeatureSpec:
    """What the card says about one feature.

    Examples
    --------
    >>> spec = FeatureSpec({"name": "x", "kind": "numeric", "min": 0, "max": 1})
    >>> check_value(spec, 2.0), check_value(spec, None), check_value(spec, 0.5)
    ('out_of_range', 'missing', None)
    """

    __slots__ = ("name", "kind", "dtype", "min", "max", "categories", "nullable")

    def __init__(self, d: Mapping[str, Any]) -> None:
        self.name: str = d["name"]
        self.kind: str = d.get("kind", "numeric")
        self.dtype: str | None = d.get("dtype")
        self.min: float | None = d.get("min")
        self.max: float | None = d.get("max")
        self.categories: list[Any] | None = d.get("categories")
        self.nullable: bool = bool(d.get("nullable", False))


def check_value(spec: FeatureSpec, value: Any, known: Any = None) -> str | None:
    """The issue with ``value`` for ``spec``, or ``None``.

    ``known`` is the set of known categories for categorical features (defaults to the card's).
    Missing values and NaN are issues only for non-nullable features.
    """
    if value is None:
        return None if spec.nullable else "missing"
    if spec.kind == "numeric":
        try:
            v = float(value)
        except (TypeError, ValueError):
            return "missing"
        if math.isnan(v):
            return None if spec.nullable else "nan"
        if math.isinf(v):
            return "inf"
        if (spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max):
            return "out_of_range"
        return None
    if isinstance(value, float) and math.isnan(value):
        return None if spec.nullable else "nan"
    cats = known if known is not None else spec.categories
    if cats is not None and value not in cats:
        return "unseen_category"
    return None
