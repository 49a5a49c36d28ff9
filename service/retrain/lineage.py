"""The chain from a model version back through its parents: who trained each version, on
what data, why (the alarm, the retrain request, the webhook), how it compared on the holdout,
and which rollout promoted it (``driftgate models show NAME --lineage``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.registry import RegistryError, get_model
from service.rollout import KV_PROMOTIONS
from service.routing_state import RoutingAdmin, resolve
from service.store.base import Store

__all__ = ["chain", "format_chain"]


def _iso(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "?"
    return datetime.fromtimestamp(float(ts), tz=UTC).isoformat(timespec="seconds")


def chain(store: Store, model: str, version: str | None = None,
          limit: int = 50) -> list[dict[str, Any]]:
    """``version`` (default: the one serving by default) and its ancestors, newest first;
    each with its lineage, its promotions and the monitor events that raised its alarm."""
    admin = RoutingAdmin(store, "cli")
    spec, _ = admin.current(model)
    versions = admin.versions(model)
    default = resolve(spec, spec.default, versions)
    current = resolve(spec, version, versions) if version else default
    events = {e["id"]: e for e in store.read_events(model, limit=100_000)}
    out: list[dict[str, Any]] = []
    while current is not None and len(out) < limit:
        try:
            entry = get_model(model, current)
        except RegistryError:
            out.append({"version": current, "missing": True})
            break
        lineage = entry.card.lineage.model_dump()
        alarm = (lineage.get("trigger") or {}).get("alarm") or {}
        out.append({
            "version": entry.version, "created_at": entry.creation_time,
            "default": entry.version == default, "lineage": lineage,
            "promotions": store.kv_get(KV_PROMOTIONS.format(model=model,
                                                            version=entry.version)) or [],
            "alarm_events": [events[i] for i in alarm.get("monitor_event_ids", [])
                             if i in events],
        })  # fmt: skip
        current = lineage.get("parent_version")
    return out


def format_chain(model: str, links: list[dict[str, Any]]) -> str:
    """One paragraph per version, newest first."""
    lines: list[str] = []
    for link in links:
        if link.get("missing"):
            lines.append(f"{model} {link['version']}: not in the model store")
            continue
        lineage, trigger = link["lineage"], link["lineage"].get("trigger") or {}
        head = f"{model} {link['version']}" + (" (serving by default)" if link["default"] else "")
        lines.append(f"{head}, registered {link['created_at'][:19]}")
        for p in link["promotions"]:
            lines.append(f"  promoted {_iso(p.get('promoted_at'))} by rollout {p.get('rollout')}"
                         f" (from {p.get('baseline')})")
        lines.append(f"  data {lineage['data_fingerprint'][:19]}, {lineage['row_count']} rows, "
                     f"code {lineage.get('code_version')}")
        if trigger.get("type") == "retrain":
            check = trigger.get("holdout") or {}
            lines.append(f"  trained by {trigger.get('trainer')}: holdout {check.get('metric')} "
                         f"{check.get('candidate', float('nan')):.4g} vs parent "
                         f"{check.get('current', float('nan')):.4g} on "
                         f"{check.get('holdout_rows')} records")
            alarm = trigger.get("alarm") or {}
            window = alarm.get("window") or {}
            lines.append(f"  because: {alarm.get('trigger')} alarm, retrain request "
                         f"{trigger.get('event_id')} (webhook {trigger.get('webhook_id')}), "
                         f"window from {_iso(window.get('first_ts'))} at prediction "
                         f"{window.get('first_prediction_id')}")
            for e in link["alarm_events"]:
                bound = f" > {e['threshold']:.4g}" if e.get("threshold") is not None else ""
                stat = f" {e['statistic']:.4g}" if e.get("statistic") is not None else ""
                feature = f" {e['feature']}" if e.get("feature") else ""
                lines.append(f"    event #{e['id']} {e['kind']}{feature} {e.get('detector')}"
                             f"{stat}{bound} at prediction {e.get('record_id')} "
                             f"({_iso(e.get('ts'))})")
        else:
            lines.append(f"  trigger: {trigger}")
        if lineage.get("parent_version"):
            lines.append(f"  parent {lineage['parent_version']}")
    return "\n".join(lines)
