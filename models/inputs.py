"""One adapter per model input format: how rows become what an estimator's ``predict``
takes, and how its answers come back as plain Python values. The registry uses it on the
reference frame, the gateway on validated request rows, so both feed a model the same way.

>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
>>> adapter = input_adapter("numpy")
>>> [round(v, 6) for v in adapter.predict(model, adapter.from_rows([{"x": 0.5}], ["x"]))]
[1.0]
>>> frame = pd.DataFrame({"x": [1.0]})
>>> [round(v, 6) for v in adapter.predict(model, adapter.from_frame(frame, ["x"]))]
[2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class InputAdapter:
    """A 2-D float matrix in card order (``None`` becomes NaN): scikit-learn without
    feature names, and most estimators."""

    name = "numpy"

    def from_rows(self, rows: list[dict[str, Any]], names: list[str]) -> Any:
        return np.array(
            [[np.nan if row[n] is None else row[n] for n in names] for row in rows],
            dtype=np.float64,
        )

    def from_frame(self, frame: pd.DataFrame, names: list[str]) -> Any:
        return frame[names].to_numpy()

    def from_matrix(self, matrix: np.ndarray, names: list[str]) -> Any | None:
        """The model input from rows already held as a float matrix in card order (the
        gateway's validated numbers), or None where only :meth:`from_rows` builds it.
        Row-major, as :meth:`from_rows` builds it, so answers match to the last bit."""
        return np.ascontiguousarray(matrix, dtype=np.float64)

    def predict(self, estimator: Any, model_input: Any) -> list[Any]:
        return np.asarray(estimator.predict(model_input)).tolist()

    def predict_proba(self, estimator: Any, model_input: Any) -> list[list[float]] | None:
        if not hasattr(estimator, "predict_proba"):
            return None
        return np.asarray(estimator.predict_proba(model_input)).tolist()


class PandasInput(InputAdapter):
    """A DataFrame with the card's column names (estimators fitted on named features)."""

    name = "pandas"

    def from_rows(self, rows: list[dict[str, Any]], names: list[str]) -> Any:
        return pd.DataFrame(rows, columns=names)

    def from_matrix(self, matrix: np.ndarray, names: list[str]) -> Any | None:
        return None  # integer columns stay integers in from_rows' frame

    def from_frame(self, frame: pd.DataFrame, names: list[str]) -> Any:
        return frame[names]


class RecordsInput(InputAdapter):
    """One dict per row through ``predict_one`` (river); no class probabilities."""

    name = "records"

    def from_rows(self, rows: list[dict[str, Any]], names: list[str]) -> Any:
        return rows

    def from_frame(self, frame: pd.DataFrame, names: list[str]) -> Any:
        return frame[names].to_dict("records")

    def from_matrix(self, matrix: np.ndarray, names: list[str]) -> Any | None:
        return None

    def predict(self, estimator: Any, model_input: Any) -> list[Any]:
        return [_plain(estimator.predict_one(row)) for row in model_input]

    def predict_proba(self, estimator: Any, model_input: Any) -> list[list[float]] | None:
        return None


_ADAPTERS: dict[str, InputAdapter] = {a.name: a for a in (InputAdapter(), PandasInput(),
                                                           RecordsInput())}


def input_adapter(input_format: str) -> InputAdapter:
    """The adapter of a card's ``input_format`` (``numpy``, ``pandas`` or ``records``)."""
    return _ADAPTERS[input_format]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
