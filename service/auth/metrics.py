"""``driftgate_auth_failures_total{reason}``: refused requests by reason (bounded labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter

REASONS = ("missing_api_key", "invalid_api_key", "expired_api_key", "revoked_api_key",
           "insufficient_scope", "model_not_allowed")

_created: dict[int, Counter] = {}


def auth_failures(registry: CollectorRegistry = REGISTRY) -> Counter:
    """The counter in ``registry`` (created once per registry and process, every reason
    exported at 0)."""
    if id(registry) not in _created:
        counter = Counter("driftgate_auth_failures_total",
                          "Requests refused for a missing, invalid or insufficient API key.",
                          ["reason"], registry=registry)
        for reason in REASONS:
            counter.labels(reason)
        _created[id(registry)] = counter
    return _created[id(registry)]
