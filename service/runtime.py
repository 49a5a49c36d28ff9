"""A model version loaded in a gateway worker: estimator, card, validator, predict."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.card import ModelCard
from models.inputs import input_adapter
from models.registry import RegisteredModel, get_model
from service.adaptive_batching import AdaptiveBatcher, chunks
from service.config import BatchingConfig
from service.pii import PiiPolicy, pii_key
from service.validation import RowValidator

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
AUTO_MIN_FIXED_MS = 1.0  # batching "auto": on when a call's fixed CPU cost is at least this
COST_ROWS = 32  # warm-up measures a call of one row and one of this many


@dataclass
class Prediction:
    values: list[Any]
    probabilities: list[dict[str, float]] | None

    def split(self, sizes: list[int]) -> list[Prediction]:
        """The answers of consecutive requests of ``sizes`` rows (a merged call's)."""
        values = list(chunks(self.values, sizes))
        probabilities = (list(chunks(self.probabilities, sizes))
                         if self.probabilities is not None else [None] * len(sizes))
        return [Prediction(list(v), list(p) if p is not None else None)
                for v, p in zip(values, probabilities, strict=True)]


@dataclass(frozen=True)
class CallCost:
    """A version's predict cost, measured when it is loaded: ``t(n) = fixed + n * per_row``,
    in CPU milliseconds of the calling thread (CPU time, not wall time: a busy machine
    delays a call without making it cost more).

    >>> round(CallCost.of(one_row_ms=10.0, rows_ms=13.1, rows=32).fixed_ms, 3)
    9.9
    """

    one_row_ms: float
    rows_ms: float  # one call of ``rows`` rows
    rows: int

    @property
    def per_row_ms(self) -> float:
        return max(0.0, (self.rows_ms - self.one_row_ms) / (self.rows - 1))

    @property
    def fixed_ms(self) -> float:
        return max(0.0, self.one_row_ms - self.per_row_ms)

    @classmethod
    def of(cls, one_row_ms: float, rows_ms: float, rows: int) -> CallCost:
        return cls(one_row_ms, rows_ms, rows)

    @classmethod
    def measure(cls, predict: Callable[[Rows], Any], row: dict[str, Any],
                rows: int = COST_ROWS, repeat: int = 5) -> CallCost:
        """Best of ``repeat`` calls of one row and of ``rows`` copies of it (fewer when a
        call costs more than 0.1 s)."""
        def best(batch: Rows) -> float:
            times = []
            for _ in range(repeat):
                started = time.thread_time()
                predict(batch)
                times.append((time.thread_time() - started) * 1000.0)
                if times[-1] > 100.0:
                    break
            return min(times)

        return cls(best([row]), best([row] * rows), rows)


def batching_decision(config: BatchingConfig, cost: CallCost | None) -> tuple[bool, str]:
    """Whether a version batches under ``config``, and why (shown by GET /models/{name}).

    >>> batching_decision(BatchingConfig(), CallCost(0.05, 0.08, 32))
    (False, 'auto: fixed cost 0.049 ms CPU per call < 1 ms')
    >>> batching_decision(BatchingConfig(), CallCost(12.0, 14.0, 32))[0]
    True
    >>> batching_decision(BatchingConfig(enabled=False), CallCost(12.0, 14.0, 32))
    (False, 'off in the serving configuration')
    """
    if config.enabled is True:
        return True, "on in the serving configuration"
    if config.enabled is False:
        return False, "off in the serving configuration"
    if cost is None:
        return False, "auto: call cost not measured"
    fixed = cost.fixed_ms
    sign = ">=" if fixed >= AUTO_MIN_FIXED_MS else "<"
    return fixed >= AUTO_MIN_FIXED_MS, f"auto: fixed cost {fixed:.3g} ms CPU per call {sign} " \
        f"{AUTO_MIN_FIXED_MS:g} ms"


class LoadedModel:
    """One registered version, loaded once per worker."""

    def __init__(self, entry: RegisteredModel) -> None:
        self.entry = entry
        self.name = entry.name
        self.version = entry.version
        self.card: ModelCard = entry.card
        self.estimator = entry.load_estimator()
        self.validator = RowValidator(self.card.features)
        # personal data is never stored raw; a hashed feature without a key fails the load
        self.pii = PiiPolicy(self.card.features, pii_key())
        self._names = self.card.feature_names
        self._adapter = input_adapter(self.card.input_format)
        self._labels = [str(label) for label in self.card.class_labels or []]
        self._has_proba = self.card.task == "classification" and hasattr(
            self.estimator, "predict_proba"
        )
        self.inflight = 0  # requests predicting with it now (the router unloads at 0)
        self.cost: CallCost | None = None  # measured by warm()
        self.batcher: AdaptiveBatcher[Rows, Prediction] | None = None  # None: inline calls
        self._batching: tuple[BatchingConfig, bool, str] | None = None

    @classmethod
    def load(cls, name: str, version: str | None = None) -> LoadedModel:
        return cls(get_model(name, version))

    def predict(self, rows: list[dict[str, Any]], matrix: np.ndarray | None = None
                ) -> Prediction:
        """Predict validated rows; classifiers also return class probabilities.
        ``matrix`` is the rows' validated numbers (:class:`ValidatedBatch`), when built."""
        adapter = self._adapter
        model_input = None if matrix is None else adapter.from_matrix(matrix, self._names)
        if model_input is None:
            model_input = adapter.from_rows(rows, self._names)
        values = adapter.predict(self.estimator, model_input)
        proba = adapter.predict_proba(self.estimator, model_input) if self._has_proba else None
        if proba is None:
            return Prediction(values, None)
        labels = self._labels
        return Prediction(values, [dict(zip(labels, p, strict=True)) for p in proba])

    async def predict_async(self, rows: Rows, matrix: np.ndarray | None = None) -> Prediction:
        """:meth:`predict` through the adaptive batcher when this version batches (merged
        with concurrent requests, computed in the batcher's thread), else inline."""
        batcher = self.batcher
        if batcher is None:
            return self.predict(rows, matrix)
        return await batcher.submit(rows)

    def warm(self) -> Prediction:
        """Predict one reference row (validated as a request would be): a version that
        cannot answer its own reference data is never routed. Then measure the cost of a
        call (one row vs 32), which batching ``auto`` decides on."""
        rows = self.entry.reference()[self._names].head(1).to_dict("records")
        validated = self.validator.validate(rows).rows
        answer = self.predict(validated)
        self.cost = CallCost.measure(self.predict, validated[0])
        return answer

    def configure_batching(self, config: BatchingConfig | None) -> None:
        """Batch (or not) as ``config`` says (None: the defaults); a no-op when unchanged.
        A replaced batcher answers what it queued, then stops its thread."""
        config = config or BatchingConfig()
        if self._batching is not None and self._batching[0] == config:
            return
        on, reason = batching_decision(config, self.cost)
        old, self.batcher = self.batcher, None
        if on:
            self.batcher = AdaptiveBatcher(
                self.predict, merge=_merge_rows, split=Prediction.split,
                max_batch_size=config.max_batch_size, max_wait_ms=config.max_wait_ms,
                name=f"{self.name}:{self.version}",
            )
        self._batching = (config, on, reason)
        log.info("%s:%s adaptive batching %s (%s)", self.name, self.version,
                 "on" if on else "off", reason)
        if old is not None:
            old.close()

    def close(self) -> None:
        """Unloaded: the batcher's thread ends once its queue is answered."""
        if self.batcher is not None:
            self.batcher.close()

    def batching_info(self) -> dict[str, Any]:
        """This worker's batching of the version: on or off and why, settings, counts."""
        config, on, reason = self._batching or (BatchingConfig(), False, "not configured")
        info: dict[str, Any] = {
            "enabled": on, "setting": config.enabled, "reason": reason,
            "max_batch_size": config.max_batch_size, "max_wait_ms": config.max_wait_ms,
        }
        if self.cost is not None:
            info["call_cpu_ms"] = {"one_row": round(self.cost.one_row_ms, 4),
                               f"rows_{self.cost.rows}": round(self.cost.rows_ms, 4),
                               "fixed": round(self.cost.fixed_ms, 4)}
        if self.batcher is not None:
            info["stats"] = self.batcher.stats.as_json()
        return info

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "card": self.card.model_dump()}



def _merge_rows(parts: list[Rows]) -> Rows:
    return [row for part in parts for row in part]
