"""Records held column by column: what :meth:`ModelMonitor.update_batch` consumes.

A monitor reads feature columns, never rows, so a batch built from columnar storage costs
no object per record. Row records ``(id, features, prediction, ts)`` convert with
:meth:`RecordBatch.from_records`.

>>> batch = RecordBatch(["a", "b"], [1.0, 2.0], {"x": [0.5, None]}, [0, 1])
>>> len(batch), batch.column("x"), batch.column("missing"), batch.slice(1, 2).ids
(2, [0.5, None], [None, None], ['b'])
>>> RecordBatch.join([(batch.ids, batch.ts, batch.features, batch.predictions)] * 2
...                  ).predictions
[0, 1, 0, 1]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordBatch", "Record"]

Record = tuple[str, Mapping[str, Any], Any, float]  # (id, features, prediction, ts)


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """``len(ids)`` records: ids, timestamps, one column per feature, predictions."""

    ids: Sequence[str]
    ts: Sequence[float]
    features: Mapping[str, Sequence[Any]]
    predictions: Sequence[Any]

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> Sequence[Any]:
        """A feature's values (``None`` throughout for a feature the records lack)."""
        return _column(self.features, name, len(self.ids))

    def slice(self, start: int, stop: int) -> RecordBatch:
        if start == 0 and stop >= len(self.ids):
            return self
        return RecordBatch(self.ids[start:stop], self.ts[start:stop],
                           {k: v[start:stop] for k, v in self.features.items()},
                           self.predictions[start:stop])

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> RecordBatch:
        """A batch of row records; a feature missing from some records is ``None`` there."""
        names: dict[str, None] = {}
        for r in records:
            names.update(dict.fromkeys(r[1]))
        return cls([r[0] for r in records], [float(r[3]) for r in records],
                   {n: [r[1].get(n) for r in records] for n in names},
                   [r[2] for r in records])

    @classmethod
    def join(cls, parts: Sequence[tuple[Sequence[str], Sequence[float] | float,
                                        Mapping[str, Sequence[Any]], Sequence[Any]]]
             ) -> RecordBatch:
        """One batch of ``(ids, ts, features, predictions)`` parts in order; ``ts`` may be
        one timestamp for all records of its part (a logged request's).

        >>> RecordBatch.join([(["a"], 1.0, {"x": [1]}, [0]), (["b", "c"], 2.0, {}, [1, 1])]
        ...                  ).features
        {'x': [1, None, None]}
        """
        chain = itertools.chain.from_iterable
        keys = parts[0][2].keys() if parts else {}.keys()
        ids = list(chain([p[0] for p in parts]))
        ts = list(chain([[p[1]] * len(p[0]) if isinstance(p[1], (int, float)) else p[1]
                         for p in parts]))
        if all(p[2].keys() == keys for p in parts):  # the usual case: one card's features
            features = {n: list(chain([p[2][n] for p in parts])) for n in keys}
        else:
            names: dict[str, None] = {}
            for part in parts:
                names.update(dict.fromkeys(part[2]))
            features = {n: list(chain([_column(p[2], n, len(p[0])) for p in parts]))
                        for n in names}
        return cls(ids, ts, features, list(chain([p[3] for p in parts])))


def _column(features: Mapping[str, Sequence[Any]], name: str, n: int) -> Sequence[Any]:
    found = features.get(name)
    return [None] * n if found is None else found
