"""OpenTelemetry: BentoML's tracing, configured from the standard ``OTEL_*`` variables.

BentoML already creates a span per HTTP request (its ASGI middleware) and owns the tracer
provider; driftgate adds child spans (``driftgate.validate``, ``driftgate.predict``,
``driftgate.shadow``, ``driftgate.log``, and ``driftgate.monitor.batch`` in the monitor) and
stores each request's trace id with its prediction records. Export is off unless
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; then spans go
over OTLP/HTTP, sampled at ``OTEL_TRACES_SAMPLER_ARG`` (default 1.0).

>>> bentoml_tracing_config({})
{}
>>> cfg = bentoml_tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
...                               "OTEL_TRACES_SAMPLER_ARG": "0.25"})
>>> cfg["otlp"]["endpoint"], cfg["sample_rate"]
('http://collector:4318/v1/traces', 0.25)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def bentoml_tracing_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``tracing`` section for ``@bentoml.service`` derived from ``OTEL_*`` variables."""
    env = os.environ if env is None else env
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    if not endpoint:
        return {}
    return {
        "exporter_type": "otlp",
        "sample_rate": float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")),
        "otlp": {"protocol": "http", "endpoint": endpoint},
    }
