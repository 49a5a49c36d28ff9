"""Spans of one prediction (in-memory exporter) and its trace id in the prediction log."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from models.registry import get_model
from service.api_context import build_context
from service.config import get_settings
from service.http import current_trace_id
from tests.service.gateway_helpers import configure
from tests.service.live_helpers import fresh_name, register_version


def test_span_tree_of_one_prediction_and_trace_id_in_log(tmp_path, demo_models):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    name = fresh_name("traced")
    v1, v2 = register_version(name, 1.0).version, register_version(name, 2.0).version
    configure(tmp_path, {"models": {name: {"default": v1, "shadow": v2}}})
    context = build_context(get_settings())
    context.core.tracer = tracer
    entry = get_model(name, v1)
    rows = entry.reference()[entry.card.feature_names].head(2).to_dict("records")

    async def serve_one() -> tuple[str, list[str]]:
        with tracer.start_as_current_span("POST /predict"):
            trace_id = current_trace_id()
            result = await context.core.predict(name, None, rows, "req-1", trace_id)
        await context.close()
        return trace_id, result.ids

    trace_id, ids = asyncio.run(serve_one())
    spans = {span.name: span for span in exporter.get_finished_spans()}
    root = spans["POST /predict"]
    for child in ("driftgate.validate", "driftgate.predict", "driftgate.shadow", "driftgate.log"):
        assert spans[child].parent.span_id == root.context.span_id, child
        assert spans[child].context.trace_id == root.context.trace_id
    assert spans["driftgate.predict"].attributes["driftgate.rows"] == 2
    assert trace_id == format(root.context.trace_id, "032x")

    from service.store.factory import open_store

    store = open_store(get_settings().resolved_store_url)
    logged = store.get(ids)
    store.close()
    assert {r.trace_id for r in logged} == {trace_id}
    assert {r.request_id for r in logged} == {"req-1"}
