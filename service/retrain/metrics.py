"""Prometheus metrics of the retrain worker (its own ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

RETRAIN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class RetrainMetrics:
    retrains: Counter
    seconds: Histogram
    requests: Counter


def retrain_metrics(registry: CollectorRegistry) -> RetrainMetrics:
    """``driftgate_retrains_total{model,outcome}`` (registered, rejected, failed),
    ``driftgate_retrain_seconds`` (request to registration or verdict) and
    ``driftgate_retrain_requests_total{status}`` (accepted, duplicate, busy, ignored,
    invalid)."""
    return RetrainMetrics(
        Counter("driftgate_retrains_total", "Retrains by their outcome.",
                ["model", "outcome"], registry=registry),
        Histogram("driftgate_retrain_seconds", "One retrain, from its request to the "
                  "registration or the verdict.", buckets=RETRAIN_BUCKETS, registry=registry),
        Counter("driftgate_retrain_requests_total", "Webhook requests the worker answered, "
                "by what it did.", ["status"], registry=registry),
    )
