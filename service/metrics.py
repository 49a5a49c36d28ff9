"""driftgate's Prometheus metrics (names and labels are a contract: see DESIGN.md).

Create them inside the worker process (BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` there), via
:func:`gateway_metrics` / :func:`monitor_metrics`; tests pass a fresh ``CollectorRegistry``.
Labels stay bounded: model names are the served ones, never a client-supplied string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LABEL_DELAY_BUCKETS = (1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400)
UNKNOWN_MODEL = "_unknown"


@dataclass
class GatewayMetrics:
    predictions: Counter
    errors: Counter
    latency: Histogram
    quality: Counter
    feedback: Counter
    log_write: Histogram
    predicted_class: Counter
    prediction_value: Histogram


_created: dict[tuple[int, str], object] = {}


def gateway_metrics(registry: CollectorRegistry = REGISTRY) -> GatewayMetrics:
    """The gateway's metrics in ``registry`` (created once per registry and process)."""
    key = (id(registry), "gateway")
    if key not in _created:
        _created[key] = _gateway_metrics(registry)
    return _created[key]  # type: ignore[return-value]


def _gateway_metrics(registry: CollectorRegistry) -> GatewayMetrics:
    return GatewayMetrics(
        predictions=Counter(
            "driftgate_predictions_total", "Predicted rows served.",
            ["model", "version", "arm"], registry=registry,
        ),
        errors=Counter(
            "driftgate_prediction_errors_total", "Rejected requests by reason.",
            ["model", "reason"], registry=registry,
        ),
        latency=Histogram(
            "driftgate_prediction_latency_seconds", "Request latency inside the gateway.",
            ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        quality=Counter(
            "driftgate_data_quality_issues_total", "Accepted values with a data-quality issue.",
            ["model", "feature", "issue"], registry=registry,
        ),
        feedback=Counter(
            "driftgate_feedback_total", "Labels received and joined to a prediction.",
            ["model"], registry=registry,
        ),
        log_write=Histogram(
            "driftgate_log_write_seconds", "Duration of one prediction-log commit.",
            buckets=WRITE_BUCKETS, registry=registry,
        ),
        predicted_class=Counter(
            "driftgate_predicted_class_total", "Predicted rows per class (classifiers).",
            ["model", "class"], registry=registry,
        ),
        prediction_value=Histogram(
            "driftgate_prediction_value", "Predicted values (regressors).",
            ["model"], buckets=(0, 25, 50, 75, 100, 150, 200, 250, 300, 400), registry=registry,
        ),
    )


@dataclass
class MonitorMetrics:
    drift_score: Gauge
    drift_active: Gauge
    drift_events: Counter
    drift_effect: Gauge
    performance: Gauge
    lag_records: Gauge
    lag_seconds: Gauge
    label_coverage: Gauge
    label_delay: Histogram
    webhook_deliveries: Counter
    webhook_pending: Gauge
    partition_lag_records: Gauge
    partition_lag_seconds: Gauge
    partition_active: Gauge
    feature_attribution: Gauge
    attribution_ndcg: Gauge


def monitor_metrics(registry: CollectorRegistry = REGISTRY) -> MonitorMetrics:
    """The monitor's metrics in ``registry`` (created once per registry and process)."""
    key = (id(registry), "monitor")
    if key not in _created:
        _created[key] = _monitor_metrics(registry)
    return _created[key]  # type: ignore[return-value]


def _monitor_metrics(registry: CollectorRegistry) -> MonitorMetrics:
    return MonitorMetrics(
        drift_score=Gauge(
            "driftgate_feature_drift_score",
            "Normalised drift score of the detector (< 1 quiet, >= 1 at an alarm).",
            ["model", "feature", "method"], multiprocess_mode="mostrecent", registry=registry,
        ),
        drift_active=Gauge(
            "driftgate_drift_active", "1 while a feature is in the drift state.",
            ["model", "feature"], multiprocess_mode="mostrecent", registry=registry,
        ),
        drift_events=Counter(
            "driftgate_drift_events_total", "Drift, performance and resolution events.",
            ["model", "feature", "kind"], registry=registry,
        ),
        drift_effect=Gauge(
            "driftgate_drift_effect",
            "Estimated effect at a stream's last drift alarm: measure mean_shift (reference sd), "
            "spread_ratio or psi; bound estimate, low or high (95% interval).",
            ["model", "feature", "measure", "bound"], multiprocess_mode="mostrecent",
            registry=registry,
        ),
        performance=Gauge(
            "driftgate_model_performance", "Rolling quality from feedback labels.",
            ["model", "version", "metric"], multiprocess_mode="mostrecent", registry=registry,
        ),
        lag_records=Gauge(
            "driftgate_monitor_lag_records", "Logged records the monitor has not processed.",
            multiprocess_mode="mostrecent", registry=registry,
        ),
        lag_seconds=Gauge(
            "driftgate_monitor_lag_seconds", "Age of the oldest unprocessed record.",
            multiprocess_mode="mostrecent", registry=registry,
        ),
        label_coverage=Gauge(
            "driftgate_label_coverage_ratio", "Share of processed predictions with a label.",
            ["model"], multiprocess_mode="mostrecent", registry=registry,
        ),
        label_delay=Histogram(
            "driftgate_label_delay_seconds", "Time from prediction to its label.",
            ["model"], buckets=LABEL_DELAY_BUCKETS, registry=registry,
        ),
        feature_attribution=Gauge(
            "driftgate_feature_attribution",
            "Global importance (mean |attribution|) of a feature over the sampled window.",
            ["model", "version", "feature"], multiprocess_mode="mostrecent", registry=registry,
        ),
        attribution_ndcg=Gauge(
            "driftgate_attribution_ndcg",
            "nDCG of the live feature ranking against the version's reference baseline.",
            ["model", "version"], multiprocess_mode="mostrecent", registry=registry,
        ),
        webhook_deliveries=Counter(
            "driftgate_webhook_deliveries_total", "Webhook delivery attempts by outcome.",
            ["outcome"], registry=registry,
        ),
        webhook_pending=Gauge(
            "driftgate_webhook_pending", "Webhook events waiting for delivery.",
            multiprocess_mode="mostrecent", registry=registry,
        ),
        partition_lag_records=Gauge(
            "driftgate_monitor_partition_lag_records",
            "Logged records of a partition's models its active monitor has not processed.",
            ["partition"], multiprocess_mode="mostrecent", registry=registry,
        ),
        partition_lag_seconds=Gauge(
            "driftgate_monitor_partition_lag_seconds",
            "Age of a partition's oldest unprocessed record.",
            ["partition"], multiprocess_mode="mostrecent", registry=registry,
        ),
        partition_active=Gauge(
            "driftgate_monitor_partition_active",
            "1 on the monitor process that holds the partition's lease, 0 on its standbys.",
            ["partition"], multiprocess_mode="mostrecent", registry=registry,
        ),
    )


#: Measures of ``driftgate_drift_effect`` (the keys of a drift event's ``effect``).
EFFECT_MEASURES = ("mean_shift", "spread_ratio", "psi")


def export_effect(
    metrics: MonitorMetrics, model: str, feature: str, effect: dict[str, Any]
) -> None:
    """Set ``driftgate_drift_effect`` from a drift event's ``effect`` (estimate and interval).

    >>> m = _monitor_metrics(CollectorRegistry())
    >>> export_effect(m, "iris", "petal_length", {"psi": 0.3, "psi_ci": [0.2, 0.4], "n": 300})
    >>> m.drift_effect.labels("iris", "petal_length", "psi", "high")._value.get()
    0.4
    """
    for measure in EFFECT_MEASURES:
        if measure not in effect:
            continue
        low, high = effect.get(f"{measure}_ci", (effect[measure], effect[measure]))
        for bound, value in (("estimate", effect[measure]), ("low", low), ("high", high)):
            metrics.drift_effect.labels(model, feature, measure, bound).set(float(value))


def observe_many(histogram: Any, values: Sequence[Any]) -> None:
    """``histogram.observe`` for each of ``values`` (a labelled child), with one increment
    per bucket instead of one lock round per value: a 64-row request of a regressor cost
    more in observations than in validation. Falls back to ``observe`` where the child does
    not look like prometheus_client's (values that are not numbers are skipped, as
    ``observe`` would fail on them).

    >>> from prometheus_client import CollectorRegistry, Histogram
    >>> h = Histogram("h", "h", registry=CollectorRegistry(), buckets=(1, 2))
    >>> observe_many(h, [0.5, 1.5, 1.5, 7.0])
    >>> [(s.labels.get("le"), s.value) for s in h.collect()[0].samples if s.name == "h_bucket"]
    [('1.0', 1.0), ('2.0', 3.0), ('+Inf', 4.0)]
    """
    x = np.asarray([v for v in values if isinstance(v, (int, float))], dtype=float)
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in x.tolist():
            histogram.observe(v)
        return
    x = x[~np.isnan(x)]
    if not x.size:
        return
    counts = np.bincount(np.searchsorted(np.asarray(bounds, dtype=float), x, side="left"),
                         minlength=len(bounds))
    total.inc(float(x.sum()))
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))


def exposed_names() -> set[str]:
    """Every series name driftgate's own metrics expose, for checking rules and dashboards.

    >>> {"driftgate_predictions_total", "driftgate_log_write_seconds_bucket"} <= exposed_names()
    True
    """
    from service.auth.metrics import auth_failures

    registry = CollectorRegistry()
    _gateway_metrics(registry)
    _monitor_metrics(registry)
    _rollout_metrics(registry)
    auth_failures(registry)
    from service.retrain.metrics import retrain_metrics  # the retrain worker's own /metrics

    retrain_metrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "count", "sum"))}
        else:
            names.add(family.name)
    return names


# -- series that exist before the first event ---------------------------------------------------
#: ``reason`` label values of ``driftgate_prediction_errors_total`` (the README's error table).
ERROR_REASONS = (
    "malformed_json", "unknown_model", "unknown_version", "body_too_large", "too_many_rows",
    "missing_feature", "unknown_feature", "wrong_type", "null_value", "nan_value",
    "infinite_value", "invalid_inputs", "invalid_body", "wrong_shape", "wrong_datatype",
    "invalid_tensor", "invalid_label", "log_unavailable", "model_error", "not_found",
    "method_not_allowed", "unsupported_media_type", "invalid_string", "store_unavailable",
    "internal_error", "version_unavailable",
)
#: ``outcome`` label values of ``driftgate_webhook_deliveries_total``.
WEBHOOK_OUTCOMES = ("delivered", "failed", "dead_letter")
#: ``kind`` label values of ``driftgate_drift_events_total`` per kind of stream.
FEATURE_EVENT_KINDS = ("feature_drift", "data_quality", "drift_resolved")
PREDICTION_EVENT_KINDS = ("prediction_drift", "drift_resolved")
MULTIVARIATE_EVENT_KINDS = ("multivariate_drift", "drift_resolved")
MODEL_EVENT_KINDS = ("concept_drift", "performance")


def start_gateway_series(
    metrics: GatewayMetrics, served: dict[str, tuple[list[str], list[str]]]
) -> None:
    """Export at 0 every gateway series whose labels are known at start (Prometheus'
    instrumentation guidelines): ``served`` maps each served model to (versions, features).

    >>> from prometheus_client import generate_latest
    >>> m = _gateway_metrics(CollectorRegistry())
    >>> start_gateway_series(m, {"iris": (["v1"], ["petal_length"])})
    >>> m.quality.labels("iris", "petal_length", "nan")._value.get()
    0.0
    """
    from monitoring.quality import ISSUES

    for model, (versions, features) in served.items():
        for reason in ERROR_REASONS:
            metrics.errors.labels(model, reason)
        metrics.feedback.labels(model)
        for version in versions:
            metrics.latency.labels(model, version)
        for feature in features:
            for issue in ISSUES:
                metrics.quality.labels(model, feature, issue)


def start_monitor_series(metrics: MonitorMetrics, served: dict[str, list[str]]) -> None:
    """Export at 0 the monitor's counters whose labels are known at start: drift events per
    served model (mapped to its features) by stream and kind, webhook deliveries by outcome."""
    from monitoring.names import MODEL_STREAM, MULTIVARIATE, PREDICTION

    for outcome in WEBHOOK_OUTCOMES:
        metrics.webhook_deliveries.labels(outcome)
    metrics.webhook_pending.set(0)
    for model, features in served.items():
        streams = [*((f, FEATURE_EVENT_KINDS) for f in features),
                   (PREDICTION, PREDICTION_EVENT_KINDS),
                   (MULTIVARIATE, MULTIVARIATE_EVENT_KINDS), (MODEL_STREAM, MODEL_EVENT_KINDS)]
        for stream, kinds in streams:
            for kind in kinds:
                metrics.drift_events.labels(model, stream, kind)


@dataclass
class RoutingMetrics:
    revision: Gauge
    load_failures: Counter


def routing_metrics(registry: CollectorRegistry = REGISTRY) -> RoutingMetrics:
    """The live-routing metrics of a gateway worker (created once per registry and process).

    ``driftgate_routing_revision`` is the lowest routing revision any live worker applies:
    once it reaches a change's revision, every worker serves that change."""
    key = (id(registry), "routing")
    if key not in _created:
        _created[key] = RoutingMetrics(
            revision=Gauge(
                "driftgate_routing_revision", "Routing revision applied (lowest over workers).",
                multiprocess_mode="livemin", registry=registry,
            ),
            load_failures=Counter(
                "driftgate_model_load_failures", "Versions given up after failing to load "
                "or warm.", ["model"], registry=registry,
            ),
        )
    return _created[key]  # type: ignore[return-value]


@dataclass
class RolloutMetrics:
    weight: Gauge
    gate: Gauge
    decisions: Counter


def rollout_metrics(registry: CollectorRegistry = REGISTRY) -> RolloutMetrics:
    """The rollout gauges of the monitor (created once per registry and process):
    the canary weight a rollout routes (0 once it ended), each gate's last verdict
    (1 passed, 0 failed) and the rollouts ended per decision."""
    key = (id(registry), "rollout")
    if key not in _created:
        _created[key] = _rollout_metrics(registry)
    return _created[key]  # type: ignore[return-value]


def _rollout_metrics(registry: CollectorRegistry) -> RolloutMetrics:
    return RolloutMetrics(
        weight=Gauge(
            "driftgate_rollout_weight", "Canary weight a rollout routes (0: ended).",
            ["model", "version"], multiprocess_mode="mostrecent", registry=registry,
        ),
        gate=Gauge(
            "driftgate_rollout_gate", "Last verdict of a rollout gate (1 pass, 0 fail).",
            ["model", "version", "gate"], multiprocess_mode="mostrecent", registry=registry,
        ),
        decisions=Counter(
            "driftgate_rollout_decisions", "Rollouts ended, by decision (promoted, "
            "rolled_back, aborted).", ["model", "version", "decision"], registry=registry,
        ),
    )
