"""Retraining webhooks: payload, cooldown + outbox, signed delivery with retries."""

from __future__ import annotations

from service.webhooks.dispatcher import (
    WebhookDispatcher,
    enable_endpoint,
    list_deliveries,
    retry_dead,
)
from service.webhooks.outbox import RetrainOutcome, RetrainRequests
from service.webhooks.payload import EVENT_TYPE, alert_evidence, build_payload, drift_evidence

__all__ = [
    "EVENT_TYPE",
    "RetrainOutcome",
    "RetrainRequests",
    "WebhookDispatcher",
    "alert_evidence",
    "build_payload",
    "drift_evidence",
    "enable_endpoint",
    "list_deliveries",
    "retry_dead",
]
