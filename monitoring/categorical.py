"""Categories: the key a raw value is counted under, and reference frequencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["UNSEEN", "CategoryFrequencies", "normalize_category"]

UNSEEN = "__unseen__"


def normalize_category(value: Any, boolean: bool = False) -> Any:
    """Map a raw value to the form used as a category key (booleans to ``True``/``False``).

    Examples
    --------
    >>> normalize_category("true", boolean=True), normalize_category(0, boolean=True)
    (True, False)
    """
    if boolean:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            return value
        if isinstance(value, bool | int | float | np.bool_) and value in (0, 1):
            return bool(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class CategoryFrequencies:
    """Known categories (the card's, then the reference's others) with smoothed reference
    frequencies; one extra bin, the last, for categories never seen.

    Examples
    --------
    >>> f = CategoryFrequencies(["a", "a", "b", None], ["a", "b", "c"])
    >>> f.categories, f.code("b"), f.code("zzz"), f.probs.round(3).tolist()
    (['a', 'b', 'c'], 1, 3, [0.5, 0.3, 0.1, 0.1])
    """

    def __init__(self, reference: Sequence[Any], categories: Sequence[Any] | None) -> None:
        cats: list[Any] = list(categories or [])
        for v in reference:
            if v is not None and v == v and v not in cats:
                cats.append(v)
        self.categories = cats
        self.codes = {c: i for i, c in enumerate(cats)}
        k = len(cats) + 1
        counts = np.zeros(k)
        for v in reference:
            if v is not None and v == v:
                counts[self.codes[v]] += 1
        self.n_reference = int(counts.sum())
        self.probs = (counts + 0.5) / (counts.sum() + 0.5 * k)

    def code(self, value: Any) -> int:
        """Bin of ``value`` (the last bin holds unseen categories)."""
        return self.codes.get(value, len(self.categories))
