"""The gateway's request handling, independent of the HTTP framework.

``GatewayCore.predict`` validates rows against the card, routes to a version, predicts,
runs the shadow, hands the request's records to the sink (the prediction log) as one
columnar block per model version and counts metrics.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry import trace

from service.errors import APIError
from service.metrics import UNKNOWN_MODEL, GatewayMetrics, observe_many
from service.routing import SHADOW, Route, Router
from service.runtime import LoadedModel, Prediction
from service.store.blocks import RecordBlock
from service.store.records import new_prediction_ids
from service.validation import ValidatedBatch

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    """Where prediction records go; ``submit`` returns once they are as durable as configured."""

    async def submit(self, records: list[RecordBlock]) -> None: ...


class NullSink:
    """Logging switched off."""

    async def submit(self, records: list[RecordBlock]) -> None:
        return None


class PredictResult:
    __slots__ = ("model", "ids", "values", "probabilities")

    def __init__(
        self, model: LoadedModel, ids: list[str], values: list[Any],
        probabilities: list[dict[str, float]] | None,
    ) -> None:
        self.model = model
        self.ids = ids
        self.values = values
        self.probabilities = probabilities

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model.name,
            "version": self.model.version,
            "ids": self.ids,
            "predictions": self.values,
        }
        if self.probabilities is not None:
            body["probabilities"] = self.probabilities
        return body


class GatewayCore:
    """Validate, route, predict, log; one instance per gateway worker."""

    def __init__(
        self, router: Router, sink: RecordSink, metrics: GatewayMetrics, max_rows: int,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.tracer = tracer or trace.get_tracer("driftgate")
        self.router = router
        self.sink = sink
        self.metrics = metrics
        self.max_rows = max_rows

    def count_error(self, error: APIError, model: str | None = None) -> None:
        name = model if model in self.router.models else UNKNOWN_MODEL
        self.metrics.errors.labels(name, error.type).inc()

    async def predict(
        self,
        name: str,
        version: str | None,
        rows: Any,
        request_id: str | None = None,
        trace_id: str | None = None,
        route: Route | None = None,
    ) -> PredictResult:
        """Serve one request; raises :class:`APIError` naming the model on bad input (the
        route counts it: :mod:`service.error_counting`).

        ``route`` is the routing decision when the caller already made it (v2 reads the
        card of the routed version to decode tensors)."""
        started = time.perf_counter()
        try:
            if isinstance(rows, list) and len(rows) > self.max_rows:
                raise APIError(
                    413, "too_many_rows", f"at most {self.max_rows} rows per request",
                    {"rows": len(rows)},
                )
            route = route or self.router.route(name, version)
            with self.tracer.start_as_current_span("driftgate.validate"):
                batch = route.model.validator.validate(rows)
        except APIError as error:
            error.model = error.model or name
            raise
        model = route.model
        with self.tracer.start_as_current_span("driftgate.predict") as span:
            span.set_attribute("driftgate.model", model.name)
            span.set_attribute("driftgate.version", model.version)
            span.set_attribute("driftgate.rows", len(batch.rows))
            model.inflight += 1
            try:
                result, records = await self._run(route, batch, request_id, trace_id, started)
            except Exception as exc:  # the model itself failed on valid input
                raise APIError(500, "model_error", f"the model failed: {exc!r}",
                               model=name) from exc
            finally:
                model.inflight -= 1
        if route.shadow is not None:
            with self.tracer.start_as_current_span("driftgate.shadow") as span:
                span.set_attribute("driftgate.version", route.shadow.version)
                records.extend(
                    await self._shadow(route.shadow, batch, records, request_id, trace_id)
                )
        with self.tracer.start_as_current_span("driftgate.log"):
            try:
                await self.sink.submit(records)
            except Exception as exc:  # not logged means not served: the client may retry
                log.warning("prediction log unavailable: %r", exc)
                raise APIError(503, "log_unavailable", "the prediction log is unavailable: "
                               "nothing was served, retry", model=name) from exc
        self._count(model, route.arm, batch, result.values)  # served: answered with a 2xx
        self.metrics.latency.labels(model.name, model.version).observe(
            time.perf_counter() - started
        )
        return result

    async def _run(
        self, route: Route, batch: ValidatedBatch, request_id: str | None,
        trace_id: str | None, started: float,
    ) -> tuple[PredictResult, list[RecordBlock]]:
        model = route.model
        # batched with others when it pays
        prediction = await model.predict_async(batch.rows, batch.matrix)
        latency_ms = (time.perf_counter() - started) * 1000.0
        block = _block(model, route.arm, batch, prediction, latency_ms, request_id, trace_id)
        result = PredictResult(model, block.ids, prediction.values, prediction.probabilities)
        return result, [block]

    def _count(
        self, model: LoadedModel, arm: str, batch: ValidatedBatch, values: list[Any]
    ) -> None:
        m = self.metrics
        m.predictions.labels(model.name, model.version, arm).inc(len(values))
        for (feature, issue), count in Counter((f, i) for _, f, i in batch.quality).items():
            m.quality.labels(model.name, feature, issue).inc(count)
        if arm == SHADOW:
            return
        if model.card.task == "classification":
            for value, count in Counter(values).items():
                m.predicted_class.labels(model.name, str(value)).inc(count)
        else:
            observe_many(m.prediction_value.labels(model.name), values)

    async def _shadow(
        self, shadow: LoadedModel, batch: ValidatedBatch, primary: list[RecordBlock],
        request_id: str | None, trace_id: str | None,
    ) -> list[RecordBlock]:
        started = time.perf_counter()
        shadow.inflight += 1
        try:
            batch = shadow.validator.validate(batch.rows)
            prediction = await shadow.predict_async(batch.rows, batch.matrix)
        except APIError as error:
            self.metrics.errors.labels(shadow.name, f"shadow_{error.type}").inc()
            return []
        except Exception:  # a failing shadow must never fail the request it copies
            self.metrics.errors.labels(shadow.name, "shadow_model_error").inc()
            return []
        finally:
            shadow.inflight -= 1
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.metrics.predictions.labels(shadow.name, shadow.version, SHADOW).inc(len(batch.rows))
        return [_block(shadow, SHADOW, batch, prediction, latency_ms, request_id, trace_id)]


def _block(
    model: LoadedModel, arm: str, batch: ValidatedBatch, prediction: Prediction,
    latency_ms: float, request_id: str | None, trace_id: str | None,
) -> RecordBlock:
    """The request's records as one columnar block (as stored: pii dropped or hashed)."""
    n = len(batch.rows)
    if len(prediction.values) != n:
        raise ValueError(f"the model answered {len(prediction.values)} rows for {n}")
    columns: dict[str, Sequence[Any]] = dict(batch.columns)
    if model.pii.active:
        columns = model.pii.apply_columns(columns)
    probabilities = None
    if prediction.probabilities is not None:
        labels = list(prediction.probabilities[0]) if n else []
        probabilities = (labels, [list(p.values()) for p in prediction.probabilities])
    return RecordBlock(
        model.name, model.version, arm, time.time(), new_prediction_ids(n), columns,
        prediction.values, probabilities, latency_ms, request_id, trace_id,
    )
