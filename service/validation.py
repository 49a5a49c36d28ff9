"""Validate request rows against a model card, once compiled per model version.

Every feature of the card must be present and no other; each value is checked with the one
set of data-quality rules of :mod:`monitoring.quality` (the monitor counts the logged records
with the same rules): a rejected value makes the request a 422, an accepted value with an
issue (out of range, unseen category) is counted. Values are checked a column at a time
(numpy for numbers, set operations for categories); only values that fail the fast test
are put to the per-value rules, which decide.

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

import itertools
import operator
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitoring.quality import FeatureSpec, Issue, checker
from service.errors import invalid

MAX_REPORTED_PROBLEMS = 20
_MAX_FLOAT = sys.float_info.max


@dataclass
class ValidatedBatch:
    """Rows that passed validation, their columns (feature -> values, in card order), and
    the data-quality issues found in them."""

    rows: list[dict[str, Any]]
    quality: list[tuple[int, str, str]] = field(default_factory=list)  # (row, feature, issue)
    columns: dict[str, Sequence[Any]] = field(default_factory=dict)
    #: rows x features (card order) as float64 when every feature is numeric and every value
    #: a number: what the numpy input adapter would build from ``rows``, already built
    matrix: np.ndarray | None = None


class _Column:
    """The vectorised form of one feature's rules: values of the expected types that pass
    the fast test need no per-value check; the others get :func:`checker`'s verdict."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.name = spec.name
        self.check = checker(spec)
        self.kind = spec.kind
        low = -_MAX_FLOAT if spec.min is None else max(spec.min, -_MAX_FLOAT)
        high = _MAX_FLOAT if spec.max is None else min(spec.max, _MAX_FLOAT)
        self.low, self.high = low, high
        self.categories = None if spec.categories is None else frozenset(spec.categories)

    def suspects(self, values: Sequence[Any]) -> Iterable[int]:
        """Indices of the values that may have an issue (a superset: all of them when the
        column holds unexpected types)."""
        kinds = set(map(type, values))
        if self.kind == "numeric":
            if not kinds <= _NUMBERS:
                return range(len(values))
            try:
                x = np.array(values, dtype=np.float64)
            except (OverflowError, ValueError, TypeError):
                return range(len(values))
            with np.errstate(invalid="ignore"):
                fine = (x >= self.low) & (x <= self.high)
            return () if fine.all() else np.flatnonzero(~fine).tolist()
        if self.kind == "boolean":
            return () if kinds == {bool} else range(len(values))
        if kinds != {str}:
            return range(len(values))
        if self.categories is None or self.categories.issuperset(values):
            return ()
        return [i for i, v in enumerate(values) if v not in self.categories]


_NUMBERS = frozenset({int, float})


class RowValidator:
    """Checks request rows against the features of one model card, column by column."""

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.features = list(features)
        self.names = [f.name for f in features]
        self._name_set = frozenset(self.names)
        self._columns = [_Column(f) for f in features]
        self._getters = [operator.itemgetter(n) for n in self.names]  # column by column
        self._numeric = [j for j, c in enumerate(self._columns) if c.kind == "numeric"]
        self._lows = np.array([self._columns[j].low for j in self._numeric])[:, None]
        self._highs = np.array([self._columns[j].high for j in self._numeric])[:, None]

    def validate(self, rows: Any) -> ValidatedBatch:
        if not isinstance(rows, list) or not rows:
            raise invalid("invalid_inputs", "'inputs' must be a non-empty list of objects")
        names = self._name_set
        problems: list[dict[str, Any]] = []
        kept: list[int] | None = None
        if not all(type(row) is dict and row.keys() == names for row in rows):
            for index, row in enumerate(rows):
                if not isinstance(row, dict):
                    problems.append({"row": index, "type": "invalid_row",
                                     "message": "not an object"})
                elif row.keys() != names:
                    problems.extend(self._key_problems(index, row))
            bad = {p["row"] for p in problems}  # the values of malformed rows are not checked
            kept = [i for i in range(len(rows)) if i not in bad]
        good = rows if kept is None else [rows[i] for i in kept]
        cols: list[list[Any]] = [list(map(get, good)) for get in self._getters]
        suspects, numbers = self._numeric_suspects(cols)
        found: list[tuple[int, int, str, Issue]] = []  # (row, feature index, name, issue)
        for j, column in enumerate(self._columns):
            values = cols[j]
            check = column.check
            for i in suspects[j] if j in suspects else column.suspects(values):
                issue = check(values[i])
                if issue is not None:
                    found.append((i if kept is None else kept[i], j, column.name, issue))
        found.sort(key=lambda t: (t[0], t[1]))
        quality: list[tuple[int, str, str]] = []
        for index, _, name, issue in found:
            if issue.error is not None:
                problems.append({"row": index, "feature": name, "type": issue.error,
                                 "message": issue.message})
            else:
                quality.append((index, name, issue.issue))
        if problems:
            problems = _first_rows(problems)
            first = problems[0]
            where = f"row {first['row']}: " if "row" in first else ""
            raise invalid(first["type"], where + first["message"], {"problems": problems})
        whole = kept is None and len(self._numeric) == len(self.names)
        return ValidatedBatch(rows=rows, quality=quality,
                              columns=dict(zip(self.names, cols, strict=True)),
                              matrix=numbers.T if whole and numbers is not None else None)

    def _numeric_suspects(
        self, cols: list[list[Any]]
    ) -> tuple[dict[int, Iterable[int]], np.ndarray | None]:
        """The suspects of every numeric column, all tested in one matrix when they hold
        numbers only (else none: each column is then tested on its own), and that matrix
        (numeric features x rows, None when not built)."""
        if not self._numeric or not cols[self._numeric[0]]:
            return {}, None
        values = [cols[j] for j in self._numeric]
        if not set(map(type, itertools.chain.from_iterable(values))) <= _NUMBERS:
            return {}, None
        try:
            x = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            return {}, None
        with np.errstate(invalid="ignore"):
            fine = (x >= self._lows) & (x <= self._highs)
        if fine.all():
            return dict.fromkeys(self._numeric, ()), x
        return {j: np.flatnonzero(~fine[k]).tolist() for k, j in enumerate(self._numeric)}, x

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


def _first_rows(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The problems of the first rows, in row order, whole rows until at least
    :data:`MAX_REPORTED_PROBLEMS` are listed."""
    problems.sort(key=lambda p: p["row"])  # stable: a row's problems keep their order
    out: list[dict[str, Any]] = []
    for problem in problems:
        if len(out) >= MAX_REPORTED_PROBLEMS and problem["row"] != out[-1]["row"]:
            break
        out.append(problem)
    return out
