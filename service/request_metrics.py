"""Bounded ``endpoint`` labels for BentoML's own request metrics.

BentoML labels ``bentoml_service_request_*`` with the concrete request path, so every model
name in ``/v2/models/{name}/infer`` and every path a scanner tries becomes new series: an
unbounded label. :func:`bound_endpoint_labels` makes the middleware label with the route
template instead (``/v2/models/{name}/infer``), and ``other`` for paths no route serves.

>>> templates = EndpointTemplates(["/models/{name}", "/metrics"])
>>> templates("/models/churn"), templates("/metrics"), templates("/wp-login.php")
('/models/{name}', '/metrics', 'other')
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware
from starlette.routing import compile_path

OTHER = "other"
BENTOML_PATHS = ("/", "/metrics", "/livez", "/readyz", "/healthz", "/docs.json",
                 "/schema.json")
_METRICS = ("metrics_request_duration", "metrics_request_total", "metrics_request_in_progress",
            "metrics_websocket_connections", "metrics_websocket_data_received",
            "metrics_websocket_data_sent")
_ORIGINAL_SETUP = RunnerTrafficMetricsMiddleware._setup


class EndpointTemplates:
    """Maps a request path to the route template that serves it (``other`` if none does).

    ``templates`` are path templates as OpenAPI lists them (``/v2/models/{name}/infer``);
    BentoML's own endpoints are always known.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        self._fixed = frozenset(BENTOML_PATHS)
        self._patterns = [(compile_path(t)[0], t) for t in templates]
        self._lookup = lru_cache(maxsize=4096)(self._template)

    def _template(self, path: str) -> str:
        if path in self._fixed:
            return path
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return OTHER

    def __call__(self, path: str) -> str:
        return self._lookup(path)


class _TemplatedEndpoint:
    """A metric whose ``labels(endpoint=...)`` receives the route template."""

    def __init__(self, metric: Any, templates: EndpointTemplates) -> None:
        self._metric = metric
        self._templates = templates

    def labels(self, *args: Any, **labels: Any) -> Any:
        if "endpoint" in labels:
            labels["endpoint"] = self._templates(labels["endpoint"])
        return self._metric.labels(*args, **labels)


def bound_endpoint_labels(templates: EndpointTemplates) -> None:
    """Make BentoML's traffic-metrics middleware label requests by route template."""

    def _setup(self: RunnerTrafficMetricsMiddleware) -> None:
        _ORIGINAL_SETUP(self)
        for name in _METRICS:
            metric = getattr(self, name, None)
            if metric is not None and not isinstance(metric, _TemplatedEndpoint):
                setattr(self, name, _TemplatedEndpoint(metric, templates))

    RunnerTrafficMetricsMiddleware._setup = _setup  # type: ignore[method-assign, assignment]
