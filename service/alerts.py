"""``POST /alerts/alertmanager``: Alertmanager webhook payloads (version 4) -> retrain requests.

A firing alert labelled ``retrain="true"`` whose ``model`` label names a served model becomes
a retrain request (trigger ``alertmanager``); firing alerts of one model in one payload make
one request. Everything else (resolved alerts, other alerts) is acknowledged and ignored.
Alerts are deduplicated by ``(fingerprint, startsAt)`` in the store, so Alertmanager's resends
and repeats are no-ops; the model's cooldown suppresses new alerts of the same episode.
Store errors propagate (the HTTP layer answers 503 and Alertmanager retries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from service.errors import APIError
from service.store.base import KeyValueStore
from service.webhooks.outbox import RetrainRequests
from service.webhooks.payload import alert_evidence

__all__ = ["AlertReceiver", "validate_payload"]

ERROR_TYPE = "invalid_alert_payload"
MAX_ALERTS = 1_000
"""Most alerts one payload may carry; set ``max_alerts`` in Alertmanager's webhook config
(it then sends the first ones and counts the rest in ``truncatedAlerts``)."""
ALERT_KEY_PREFIX = "alert:"
_STATUSES = ("firing", "resolved")


def _invalid(message: str, details: Any = None) -> APIError:
    return APIError(422, ERROR_TYPE, message, details)


def validate_payload(body: Any) -> list[dict[str, Any]]:
    """The alerts of a version 4 payload; raises :class:`APIError` if it is malformed."""
    if not isinstance(body, Mapping):
        raise APIError(400, ERROR_TYPE, "the body must be a JSON object")
    if str(body.get("version")) != "4":
        raise _invalid("only Alertmanager webhook payload version 4 is supported",
                       {"version": body.get("version")})  # fmt: skip
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise _invalid("'alerts' must be a list")
    if len(alerts) > MAX_ALERTS:
        raise APIError(413, "too_many_alerts", f"at most {MAX_ALERTS} alerts per payload; "
                       "set max_alerts in Alertmanager's webhook_config", {"alerts": len(alerts)})
    for i, alert in enumerate(alerts):
        if not isinstance(alert, Mapping):
            raise _invalid("each alert must be an object", {"index": i})
        labels, fingerprint = alert.get("labels"), alert.get("fingerprint")
        if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
            raise _invalid("alert 'labels' must be an object of strings", {"index": i})
        if not isinstance(fingerprint, str) or not fingerprint:
            raise _invalid("alert 'fingerprint' is missing", {"index": i})
        if alert.get("status") not in _STATUSES:
            raise _invalid("alert 'status' must be 'firing' or 'resolved'",
                           {"index": i, "status": alert.get("status")})  # fmt: skip
        if not isinstance(alert.get("annotations", {}), Mapping | None):
            raise _invalid("alert 'annotations' must be an object", {"index": i})
        if not isinstance(alert.get("startsAt", ""), str):
            raise _invalid("alert 'startsAt' must be a string", {"index": i})
    return [dict(a) for a in alerts]


def dedupe_key(alert: Mapping[str, Any]) -> str:
    return f"{ALERT_KEY_PREFIX}{alert['fingerprint']}:{alert.get('startsAt') or ''}"


class AlertReceiver:
    """Turns Alertmanager notifications into retrain requests.

    ``receive`` answers ``{"accepted", "retrain_requested", "duplicates", "ignored"}`` plus
    ``suppressed`` (models whose cooldown absorbed the alerts) and ``unknown_models``.
    ``accepted + duplicates + ignored`` is the number of alerts in the payload.
    """

    def __init__(
        self,
        store: KeyValueStore,
        retrain: RetrainRequests,
        reference_fingerprint_of: Callable[[str], str | None],
        served_models: Collection[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retrain = retrain
        self.reference_fingerprint_of = reference_fingerprint_of
        self.served_models = served_models
        self.clock = clock

    def receive(self, body: Any) -> dict[str, Any]:
        """Handle one payload (blocking; call it from a worker thread in async code)."""
        alerts = validate_payload(body)
        now = self.clock()
        ignored = duplicates = 0
        unknown: set[str] = set()
        seen: set[str] = set()
        by_model: dict[str, list[dict[str, Any]]] = {}
        for alert in alerts:
            labels = alert["labels"]
            model = labels.get("model")
            if alert["status"] != "firing" or labels.get("retrain") != "true" or not model:
                ignored += 1
                continue
            if model not in self.served_models:
                unknown.add(model)
                ignored += 1
                continue
            key = dedupe_key(alert)
            if key in seen or self.store.kv_get(key) is not None:
                duplicates += 1
                continue
            seen.add(key)
            by_model.setdefault(model, []).append(alert)

        requested: list[dict[str, str]] = []
        suppressed: list[str] = []
        accepted = 0
        for model, group in by_model.items():
            evidence = alert_evidence(group, body.get("receiver"), body.get("groupKey"))
            outcome = self.retrain.submit(
                model,
                group[0]["labels"].get("version"),
                "alertmanager",
                evidence,
                self.reference_fingerprint_of(model),
                now,
            )
            accepted += len(group)
            if outcome.status == "queued" and outcome.event_id:
                requested.append({"model": model, "event_id": outcome.event_id})
            elif outcome.status == "suppressed":
                suppressed.append(model)
            # Remember the alerts only once their request is stored (a failure before this
            # point makes Alertmanager's retry redo it; the request itself is idempotent).
            for alert in group:
                self.store.kv_set(
                    dedupe_key(alert), {"model": model, "at": now, "event_id": outcome.event_id}
                )
        return {
            "accepted": accepted,
            "retrain_requested": requested,
            "duplicates": duplicates,
            "ignored": ignored,
            "suppressed": suppressed,
            "unknown_models": sorted(unknown),
        }
