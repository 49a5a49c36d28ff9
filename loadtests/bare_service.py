"""The fair baseline: a bare BentoML 1.4 service serving the same demo model as driftgate.

No validation against the card, no prediction log, no monitoring: only the model's work,
done exactly as the gateway does it (rows to a matrix in card order, ``predict`` and, for
classifiers, ``predict_proba``) in an ``async def`` API on two workers.

    BARE_MODEL=diabetes bentoml serve loadtests.bare_service:BareService --port 3001
    curl -s localhost:3001/predict -H 'content-type: application/json' \\
        -d '{"inputs": [{"age": 48, "sex": 1, "bmi": 21.6, ...}]}'
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from models.registry import get_model
from service.tail_latency import cancel_request_timers, freeze_startup_objects

MODEL = os.environ.get("BARE_MODEL", "diabetes")
TAIL_FIX = os.environ.get("BARE_TAIL_LATENCY_FIX", "false").lower() == "true"
cancel_request_timers(TAIL_FIX)  # the same fix as driftgate's, when the benchmark asks


@bentoml.service(name="bare", workers=2, traffic={"timeout": 60})
class BareService:
    """One registered model, nothing else."""

    def __init__(self) -> None:
        threadpool_limits(1)  # as the gateway does: no BLAS threads per worker
        entry = get_model(MODEL)
        card = entry.card
        self.estimator = entry.load_estimator()
        self.names = card.feature_names
        self.pandas = card.input_format == "pandas"
        self.proba = card.task == "classification" and hasattr(self.estimator, "predict_proba")
        if TAIL_FIX:
            freeze_startup_objects()

    @bentoml.api
    async def predict(self, inputs: list[dict]) -> list:
        if self.pandas:
            matrix: Any = pd.DataFrame(inputs, columns=self.names)
        else:
            matrix = np.array([[row[n] for n in self.names] for row in inputs], dtype=np.float64)
        values = np.asarray(self.estimator.predict(matrix)).tolist()
        if self.proba:
            return [[v, p] for v, p in zip(values, self.estimator.predict_proba(matrix).tolist(),
                                           strict=True)]
        return values
