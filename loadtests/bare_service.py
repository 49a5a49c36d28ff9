"""The fair baseline: a bare BentoML 1.4 service serving the same demo model as driftgate.

No validation against the card, no prediction log, no monitoring: only the model's work,
done exactly as the gateway does it (rows to a matrix in card order, ``predict`` and, for
classifiers, ``predict_proba``) in an ``async def`` API on two workers.

    BARE_MODEL=diabetes bentoml serve loadtests.bare_service:BareService --port 3001
    curl -s localhost:3001/predict -H 'content-type: application/json' \\
        -d '{"inputs": [{"age": 48, "sex": 1, "bmi": 21.6, ...}]}'

``BareBatchService`` is the same with BentoML's adaptive batching (``batchable=True``, a
synchronous API run in BentoML's thread pool, as BentoML recommends for scikit-learn): the
baseline of the heavy-model case.
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


BATCH_SIZE = int(os.environ.get("BARE_MAX_BATCH_SIZE", "64"))


class _Model:
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

    def _predict(self, inputs: list[dict]) -> list:
        if self.pandas:
            matrix: Any = pd.DataFrame(inputs, columns=self.names)
        else:
            matrix = np.array([[row[n] for n in self.names] for row in inputs], dtype=np.float64)
        values = np.asarray(self.estimator.predict(matrix)).tolist()
        if self.proba:
            return [[v, p] for v, p in zip(values, self.estimator.predict_proba(matrix).tolist(),
                                           strict=True)]
        return values


@bentoml.service(name="bare", workers=2, traffic={"timeout": 60})
class BareService(_Model):
    """One registered model, nothing else."""

    @bentoml.api
    async def predict(self, inputs: list[dict]) -> list:
        return self._predict(inputs)


@bentoml.service(name="bare-batch", workers=2, traffic={"timeout": 60})
class BareBatchService(_Model):
    """One registered model behind BentoML's adaptive batching."""

    @bentoml.api(batchable=True, max_batch_size=BATCH_SIZE)
    def predict(self, inputs: list[dict]) -> list:
        return self._predict(inputs)
