"""Validate request rows against a model card, once compiled per model version.

Every feature of the card must be present and no other; each value is checked with the one
set of data-quality rules of :mod:`monitoring.quality` (the monitor counts the logged records
with the same rules): a rejected value makes the request a 422, an accepted value with an
issue (out of range, unseen category) is counted.

Example
-------
>>> from monitoring.quality import FeatureSpec
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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitoring.quality import FeatureSpec, checker
from service.errors import invalid

MAX_REPORTED_PROBLEMS = 20


@dataclass
class ValidatedBatch:
    """Rows that passed validation, with the data-quality issues found in them."""

    rows: list[dict[str, Any]]
    quality: list[tuple[int, str, str]] = field(default_factory=list)  # (row, feature, issue)


class RowValidator:
    """Checks request rows against the features of one model card."""

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.features = list(features)
        self.names = [f.name for f in features]
        self._name_set = frozenset(self.names)
        self._checks = [(f.name, checker(f)) for f in features]

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
                if issue.error is not None:
                    problems.append(
                        {"row": index, "feature": name, "type": issue.error,
                         "message": issue.message}
                    )
                else:
                    batch.quality.append((index, name, issue.issue))
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
