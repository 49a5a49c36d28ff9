"""The feature spec of a model card and the one set of data-quality rules.

The gateway validates request rows with these rules (a rejected value answers 422 and is never
logged; an accepted value with an issue is counted in ``driftgate_data_quality_issues_total``)
and the monitor counts the issues of the logged records with the same rules, so both report
the same counts for the same traffic. The rules, per value of a feature:

- ``null``, and NaN (the prediction log stores NaN as null): valid in a nullable feature, not
  an issue; otherwise rejected (``null_value`` / ``nan_value``, issue ``missing`` / ``nan``).
- +-Infinity, or a number no float64 can hold: rejected (``infinite_value``, issue ``inf``).
- a number outside the card's ``[min, max]``: accepted, issue ``out_of_range``.
- a string not in the card's ``categories``: accepted, issue ``unseen_category`` (never an
  issue when the card lists no categories).
- a value of another JSON type than the kind's (numbers for numeric, strings for categorical,
  ``true``/``false`` for boolean): rejected (``wrong_type``; issue ``missing`` for a numeric
  feature, which gets no number, ``unseen_category`` for the others, which get no category).

A null in a nullable feature is not an issue: the card says the feature may be null (the
training data had nulls), so counting every null would report a feature that is 20% null by
design as 20% broken forever and keep ``DriftgateDataQualityIssues`` firing. NaN is the numeric
form of null (the prediction log stores both as null). Rejected values reach the monitor only
in records written by another producer; it counts them under the issue named above.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

__all__ = ["FeatureKind", "FeatureSpec", "Issue", "ISSUES", "Rules", "checker", "check_value"]

FeatureKind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[str, ...] = get_args(FeatureKind)

#: Data-quality issues, the ``issue`` label of ``driftgate_data_quality_issues_total``.
ISSUES = ("missing", "nan", "inf", "out_of_range", "unseen_category")

_MAX_FLOAT = sys.float_info.max


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature of a model card: kind, dtype, allowed values, whether it may be null.

    The model card (:class:`models.card.ModelCard`) holds a list of these; the monitor reads
    them from the card's JSON form with :meth:`from_mapping`.

    Examples
    --------
    >>> spec = FeatureSpec.from_mapping({"name": "x", "kind": "numeric", "min": 0, "max": 1})
    >>> spec.kind, spec.nullable, check_value(spec, 2.0), check_value(spec, None)
    ('numeric', False, 'out_of_range', 'missing')
    """

    name: str
    kind: FeatureKind = "numeric"
    dtype: str | None = None
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False
    pii: str | None = None  # "hash" (stored as a keyed hash) or "drop" (never stored)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name!r}: kind must be one of {KINDS}, "
                             f"not {self.kind!r}")
        if self.pii not in (None, "hash", "drop"):
            raise ValueError(f"feature {self.name!r}: pii must be 'hash' or 'drop', "
                             f"not {self.pii!r}")
        if self.pii == "hash" and self.kind == "numeric":
            raise ValueError(f"feature {self.name!r}: pii 'hash' keeps drift detection for "
                             "categorical and boolean features only; drop a numeric one")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """The spec from a card's JSON form (missing fields take their defaults)."""
        return cls(name=str(d["name"]), kind=d.get("kind", "numeric"), dtype=d.get("dtype"),
                   min=d.get("min"), max=d.get("max"), categories=d.get("categories"),
                   nullable=bool(d.get("nullable", False)), pii=d.get("pii"))


class Issue(NamedTuple):
    """What is wrong with one value: the data-quality ``issue`` it counts as and, when the
    gateway rejects the value, the API error type and message (``error`` ``None``: accepted
    and counted)."""

    issue: str
    error: str | None = None
    message: str = ""


OUT_OF_RANGE = Issue("out_of_range")
UNSEEN = Issue("unseen_category")
_NULL = Issue("missing", "null_value", "null is not allowed for this feature")
_NAN = Issue("nan", "nan_value", "NaN is not allowed for this feature")
_INF = Issue("inf", "infinite_value", "the value is not a finite float64")


def _wrong_type(issue: str, expected: str, value: Any) -> Issue:
    return Issue(issue, "wrong_type", f"expected {expected}, got {type(value).__name__}")


def _not_a_category(value: Any, null: Issue | None, nan: Issue | None,
                    expected: str) -> Issue | None:
    """A categorical or boolean feature's value of another type: null, NaN or the wrong type."""
    if value is None:
        return null
    if type(value) is float and value != value:
        return nan
    return _wrong_type("unseen_category", expected, value)


def checker(spec: FeatureSpec) -> Callable[[Any], Issue | None]:
    """The rules of the module docstring for ``spec``, compiled into one function of a value
    (JSON-decoded: ``int``/``float``/``str``/``bool``/``None``); ``None`` when it is valid.

    Examples
    --------
    >>> check = checker(FeatureSpec("x", "numeric", min=0, max=1, nullable=True))
    >>> check(0.5), check(None), check(float("nan")), check(7).issue, check(float("inf")).error
    (None, None, None, 'out_of_range', 'infinite_value')
    >>> checker(FeatureSpec("c", "categorical", categories=["a"]))("b")
    Issue(issue='unseen_category', error=None, message='')
    """
    null = None if spec.nullable else _NULL
    nan = None if spec.nullable else _NAN
    if spec.kind == "numeric":
        # finite bounds: an infinity is never in range, whatever the card says
        low = -_MAX_FLOAT if spec.min is None else max(spec.min, -_MAX_FLOAT)
        high = _MAX_FLOAT if spec.max is None else min(spec.max, _MAX_FLOAT)

        def check_numeric(value: Any) -> Issue | None:
            if type(value) is float or type(value) is int:
                if low <= value <= high:
                    return None
                if value != value:
                    return nan
                if abs(value) > _MAX_FLOAT:  # inf, or an integer no float can hold
                    return _INF
                return OUT_OF_RANGE
            if value is None:
                return null
            return _wrong_type("missing", "a number", value)

        return check_numeric

    if spec.kind == "boolean":

        def check_boolean(value: Any) -> Issue | None:
            if type(value) is bool:
                return None
            return _not_a_category(value, null, nan, "true or false")

        return check_boolean

    categories = None if spec.categories is None else frozenset(spec.categories)

    def check_categorical(value: Any) -> Issue | None:
        if type(value) is str:
            return None if categories is None or value in categories else UNSEEN
        return _not_a_category(value, null, nan, "a string")

    return check_categorical


class Rules:
    """The compiled rules (:func:`checker`) of every feature of a card, by feature name.

    Picklable (a monitor snapshot holds one): pickled as its specs, compiled again on load.

    Examples
    --------
    >>> import pickle
    >>> rules = pickle.loads(pickle.dumps(Rules([FeatureSpec("x", min=0, max=1)])))
    >>> rules["x"](5.0).issue
    'out_of_range'
    """

    def __init__(self, specs: Iterable[FeatureSpec]) -> None:
        self.specs = tuple(specs)
        self._checks = {s.name: checker(s) for s in self.specs}

    def __getitem__(self, name: str) -> Callable[[Any], Issue | None]:
        return self._checks[name]

    def __reduce__(self) -> tuple[type[Rules], tuple[tuple[FeatureSpec, ...]]]:
        return (Rules, (self.specs,))


def check_value(spec: FeatureSpec, value: Any) -> str | None:
    """The data-quality issue ``value`` counts as for ``spec``, or ``None`` (compiles the
    rules on every call: keep a :func:`checker` for many values).

    Examples
    --------
    >>> spec = FeatureSpec("c", "categorical", categories=["a", "b"], nullable=True)
    >>> check_value(spec, "z"), check_value(spec, None), check_value(spec, "a")
    ('unseen_category', None, None)
    """
    found = checker(spec)(value)
    return None if found is None else found.issue
