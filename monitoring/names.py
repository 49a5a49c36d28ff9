"""Names shared by the monitor and the service: stream names and the one NaN-to-null rule."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LABEL", "MODEL_STREAM", "MULTIVARIATE", "PREDICTION", "json_value"]

#: Stream (and reference column) of a model's predictions.
PREDICTION = "__prediction__"
#: Stream of the joint numeric features (the Mahalanobis chart).
MULTIVARIATE = "__multivariate__"
#: Reference column of the labels.
LABEL = "__label__"
#: Feature label of model-level events (performance, concept drift) in metrics.
MODEL_STREAM = "__model__"


def json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite float becomes ``None``, the rest is kept.

    This is driftgate's one NaN-to-null rule (statuses, events, webhook evidence).

    Examples
    --------
    >>> json_value(float("nan")), json_value(float("-inf")), json_value(2.5), json_value("x")
    (None, None, 2.5, 'x')
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
