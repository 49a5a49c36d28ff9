"""Validate request rows against a model card, once compiled per model version.

Rules: every feature of the card must be present and no other; numeric features take JSON
numbers (not booleans), categorical features strings, boolean features ``true``/``false``.
``null`` and NaN are accepted only for nullable features (and counted as data-quality issues),
infinities never. Out-of-range numbers and unseen categories are accepted and counted.

Example
-------
>>> from models.card import FeatureSpec
>>> v = RowValidator([FeatureSpec(name="x", kind="numeric", dtype="float64", min=0, max=1)])
>>> batch = v.validate([{"x": 0.5}, {"x": 3}])
>>> batch.quality
[(1, 'x', 'out_of_range')]
>>> v.validate([{"y": 1}])
Traceback (most recent call last):
...
service.errors.APIError: row 0: missing feature 'x'
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from models.card import FeatureSpec
from service.errors import invalid

MAX_REPORTED_PROBLEMS = 20
MAX_FLOAT = sys.float_info.max


@dataclass
class ValidatedBatch:
    """Rows that passed validation, with the data-quality issues found in them."""

    rows: list[dict[str, Any]]
    quality: list[tuple[int, str, str]] = field(default_factory=list)  # (row, feature, issue)


class RowValidator:
    """Checks request rows against the features of one model card."""

    def __init__(self, features: list[FeatureSpec]) -> None:
        self.features = features
        self.names = [f.name for f in features]
        self._name_set = frozenset(self.names)
        self._checks = [(f.name, _check_for(f)) for f in features]

    def validate(self, rows: Any) -> ValidatedBatch:
        if not isinstance(rows, list) or not rows:
            raise invalid("invalid_inputs", "'inputs' must be a non-empty list of objects")
        batch = ValidatedBatch(rows=rows)
        problems: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append({"row": index, "type": "invalid_row", "message": "not an object"})
                continue
            if row.keys() != self._name_set:
                problems.extend(self._key_problems(index, row))
                continue
            for name, check in self._checks:
                issue = check(row[name])
                if issue is None:
                    continue
                if issue[0] == "error":
                    problems.append(
                        {"row": index, "feature": name, "type": issue[1], "message": issue[2]}
                    )
                else:
                    batch.quality.append((index, name, issue[1]))
            if len(problems) >= MAX_REPORTED_PROBLEMS:
                break
        if problems:
            first = problems[0]
            where = f"row {first['row']}: " if "row" in first else ""
            raise invalid(first["type"], where + first["message"], {"problems": problems})
        return batch

    def _key_problems(self, index: int, row: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for name in self.names:
            if name not in row:
                found.append(
                    {"row": index, "feature": name, "type": "missing_feature",
                     "message": f"missing feature {name!r}"}
                )
        for name in row:
            if name not in self._name_set:
                found.append(
                    {"row": index, "feature": name, "type": "unknown_feature",
                     "message": f"unknown feature {name!r}; expected {self.names}"}
                )
        return found


Issue = tuple[str, str, str] | tuple[str, str]


def _check_for(spec: FeatureSpec):  # noqa: C901 - one small closure per kind
    nullable = spec.nullable

    def null_issue(value: Any) -> Issue:
        if nullable:
            return ("quality", "missing")
        return ("error", "null_value", "null is not allowed for this feature")

    if spec.kind == "numeric":
        low = -math.inf if spec.min is None else spec.min
        high = math.inf if spec.max is None else spec.max

        def check_numeric(value: Any) -> Issue | None:
            if type(value) is float or type(value) is int:
                if low <= value <= high:
                    return None
                if value != value:  # NaN
                    return ("quality", "nan") if nullable else (
                        "error", "nan_value", "NaN is not allowed for this feature")
                if abs(value) > MAX_FLOAT:  # inf, or an integer no float can hold
                    return ("error", "infinite_value", "the value is not a finite float64")
                return ("quality", "out_of_range")
            if value is None:
                return null_issue(value)
            return ("error", "wrong_type", f"expected a number, got {type(value).__name__}")

        return check_numeric

    if spec.kind == "boolean":

        def check_boolean(value: Any) -> Issue | None:
            if type(value) is bool:
                return None
            if value is None:
                return null_issue(value)
            return ("error", "wrong_type", f"expected true or false, got {type(value).__name__}")

        return check_boolean

    categories = frozenset(spec.categories or [])

    def check_categorical(value: Any) -> Issue | None:
        if type(value) is str:
            return None if value in categories else ("quality", "unseen_category")
        if value is None:
            return null_issue(value)
        return ("error", "wrong_type", f"expected a string, got {type(value).__name__}")

    return check_categorical
