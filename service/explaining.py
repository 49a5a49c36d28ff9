"""Explainers of registered versions, built once per process, and their baselines.

Shared by the gateway's explanation routes and the monitor's attribution stream. A version
that no explainer fits is remembered with the reason (asked again, it says the same).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.explain import ExplainedBatch, ModelExplainer, Unexplainable, baseline, build_explainer
from models.registry import RegisteredModel, RegistryError, attribution_frame, list_models

log = logging.getLogger(__name__)


@dataclass
class VersionExplainer:
    """A version's explainer (or why there is none), its baseline and its cost per row."""

    entry: RegisteredModel
    explainer: ModelExplainer | None
    reason: str | None
    seconds_per_row: float = 0.0
    _baseline: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def explain(self, frame: pd.DataFrame) -> ExplainedBatch:
        """Attributions of ``frame``'s rows; raises :class:`Unexplainable`."""
        if self.explainer is None:
            raise Unexplainable(self.reason or "no explainer")
        with self._lock:  # shap explainers keep per-call state
            started = time.perf_counter()
            batch = self.explainer.explain(frame)
            cost = (time.perf_counter() - started) / max(len(frame), 1)
        self.seconds_per_row = cost if not self.seconds_per_row else (
            0.8 * self.seconds_per_row + 0.2 * cost)
        return batch

    def baseline(self) -> pd.DataFrame | None:
        """Per-row attributions of the reference: stored at registration, or computed now
        for a version registered before explanations existed (kept in memory)."""
        if self._baseline is None:
            self._baseline = self.entry.baseline_attributions()
        if self._baseline is None and self.explainer is not None:
            try:
                with self._lock:
                    self._baseline = attribution_frame(
                        baseline(self.explainer, self.entry.reference()))
            except Exception as exc:
                log.warning("no baseline attributions of %s: %r", self.entry.tag, exc)
        return self._baseline

    def baseline_matrix(self) -> np.ndarray | None:
        frame = self.baseline()
        if frame is None:
            return None
        return frame[self.entry.card.feature_names].to_numpy(dtype=float)

    def describe(self) -> dict[str, Any]:
        if self.explainer is None:
            return {"method": "none", "reason": self.reason}
        return self.explainer.describe()


class Explainers:
    """One :class:`VersionExplainer` per (model, version), built on first use."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], VersionExplainer] = {}
        self._lock = threading.Lock()

    def get(self, entry: RegisteredModel, estimator: Any | None = None) -> VersionExplainer:
        key = (entry.name, entry.version)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        built = _build(entry, estimator)
        with self._lock:
            return self._cache.setdefault(key, built)


def _build(entry: RegisteredModel, estimator: Any | None) -> VersionExplainer:
    info = entry.card.explainer
    if info is not None and info.method == "none":
        return VersionExplainer(entry, None, info.reason)
    try:
        model = estimator if estimator is not None else entry.load_estimator()
        return VersionExplainer(entry, build_explainer(model, entry.card, entry.reference()),
                                None)
    except Unexplainable as exc:
        return VersionExplainer(entry, None, str(exc))
    except Exception as exc:  # shap cannot take this model: say so, never fail the caller
        log.warning("cannot build an explainer for %s: %r", entry.tag, exc)
        return VersionExplainer(entry, None, f"building the explainer failed: {exc!r}")


def previous_version(entry: RegisteredModel) -> RegisteredModel | None:
    """The version this one is compared with across versions: its lineage parent when that
    is registered, else the version of the same name registered just before it."""
    versions = list_models(entry.name)
    parent = entry.card.lineage.parent_version
    for candidate in versions:
        if parent is not None and candidate.version == parent:
            return candidate
    earlier = [v for v in versions if v.creation_time < entry.creation_time]
    return earlier[-1] if earlier else None


def explain_frame(rows: list[dict[str, Any]], names: list[str]) -> pd.DataFrame:
    """Validated request rows (or logged features) as the frame the explainers take."""
    return pd.DataFrame([{n: row.get(n) for n in names} for row in rows], columns=names)


__all__ = ["Explainers", "RegistryError", "VersionExplainer", "explain_frame",
           "previous_version"]
