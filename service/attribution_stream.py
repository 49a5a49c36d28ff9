"""The monitor's attribution stream: explain a sample of logged records per model version
and track their global importance (:class:`monitoring.attribution.AttributionMonitor`).

Sampling is decided by the prediction id (a hash), so a replay from a checkpoint explains the
same records; sparse samples are explained in batches while the monitor is behind the log
(the pending records are part of the checkpointed state). The rate per version is
``DRIFTGATE_EXPLAIN_SAMPLE_RATE`` when set; unset, it is chosen from the explainer's measured
cost (the explanation, the sampled record's frame row and its stored attribution) so that
explaining takes at most ``explain_budget_us`` microseconds per logged record on average
(about 1.4 us of the monitor's 3.1 per record at 64 rows per request, README
"Performance"). Linear models' explanations are computed as one matrix product
(:class:`models.explain.LinearModelExplainer`).
"""

from __future__ import annotations

import logging
import pickle
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.registry import get_model
from monitoring.attribution import AttributionMonitor
from monitoring.events import MonitorEvent
from service.config import Settings
from service.explaining import Explainers, VersionExplainer, explain_frame, previous_version
from service.store.blocks import RecordBlock
from service.store.records import PredictionRecord

log = logging.getLogger(__name__)

Key = tuple[str, str]
KV_ATTRIBUTION = "monitor:attribution:{model}"
"""Key-value key of a model's live attribution per version (read by the attributions API)."""
COST_PROBE_ROWS = 32


def sampled(record_id: str, rate: float) -> bool:
    """Whether a record is in a sample of ``rate`` (deterministic in its id).

    >>> sampled("any", 1.0), sampled("any", 0.0)
    (True, False)
    """
    return rate >= 1.0 or (rate > 0.0 and zlib.crc32(record_id.encode()) / 2**32 < rate)


def sampled_indices(record_ids: Sequence[str], rate: float) -> Sequence[int]:
    """The positions of the ids in a sample of ``rate`` (:func:`sampled` on each).

    >>> ids = [f"id{i}" for i in range(1000)]
    >>> list(sampled_indices(ids, 0.01)) == [i for i, r in enumerate(ids) if sampled(r, 0.01)]
    True
    """
    if rate >= 1.0:
        return range(len(record_ids))
    if rate <= 0.0:
        return ()
    below = rate * 2**32  # exact: crc / 2**32 < rate  <=>  crc < rate * 2**32
    hashes = map(zlib.crc32, map(str.encode, record_ids))
    return [i for i, h in enumerate(hashes) if h < below]


@dataclass
class VersionAttribution:
    """One version's sample rate, attribution monitor and explainer (not pickled)."""

    rate: float
    monitor: AttributionMonitor | None
    reason: str | None = None
    explained: int = 0
    skipped: int = 0
    pending: list[PredictionRecord] = field(default_factory=list)  # sampled, not explained
    flush_rows: int = 1
    explainer: VersionExplainer | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "explainer": None}


class AttributionStream:
    """Per (model, version): sample, explain, monitor; see the module docstring."""

    def __init__(self, sample_rate: float | None = None, budget_us: float = 2.0,
                 window: int = 200, check_every: int = 25,
                 expected_run_time: float = 1_000_000.0,
                 explainers: Explainers | None = None) -> None:
        self.sample_rate = sample_rate
        self.budget_us = budget_us
        self.window = window
        self.check_every = check_every
        self.expected_run_time = expected_run_time
        self.explainers = explainers or Explainers()
        self.versions: dict[Key, VersionAttribution] = {}

    # -- state ---------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return pickle.dumps(self.versions)

    def restore(self, blob: bytes) -> None:
        self.versions = pickle.loads(blob)

    # -- processing ----------------------------------------------------------------------
    def _version(self, model: str, version: str) -> VersionAttribution:
        key = (model, version)
        found = self.versions.get(key)
        if found is not None and found.explainer is None and found.monitor is not None:
            found.explainer = self.explainers.get(get_model(model, version))
        if found is None:
            found = self._build(model, version)
            self.versions[key] = found
        return found

    def _build(self, model: str, version: str) -> VersionAttribution:
        entry = get_model(model, version)
        explainer = self.explainers.get(entry)
        own = explainer.baseline_matrix()
        if explainer.explainer is None or own is None:
            return VersionAttribution(0.0, None, explainer.reason or "no baseline")
        baselines = {"baseline": own}
        details: dict[str, dict[str, Any]] = {"baseline": {"version": version}}
        previous = previous_version(entry)
        if previous is not None and previous.card.feature_names == entry.card.feature_names:
            prior = self.explainers.get(previous).baseline_matrix()
            if prior is not None:
                baselines["previous"] = prior
                details["previous"] = {"version": previous.version}
        monitor = AttributionMonitor(
            entry.card.feature_names, baselines, window=self.window,
            check_every=self.check_every, expected_run_time=self.expected_run_time,
            details=details)
        rate = self.sample_rate if self.sample_rate is not None else self._auto_rate(explainer)
        # explain in batches when sampling is sparse: one shap call has a fixed cost (tens
        # of ms for a large forest) that a batch of COST_PROBE_ROWS rows shares
        flush = 1 if rate >= 1.0 else COST_PROBE_ROWS
        return VersionAttribution(rate, monitor, None, explainer=explainer, flush_rows=flush)

    def _auto_rate(self, explainer: VersionExplainer) -> float:
        """The share of records whose explaining fits ``budget_us`` per record."""
        reference = explainer.entry.reference()
        probe = COST_PROBE_ROWS if explainer.describe()["method"] != "permutation" else 4
        names = explainer.entry.card.feature_names
        rows = reference[names].dropna().head(probe).to_dict("records")
        try:  # what a sampled record costs: its frame row, its explanation, its stored doc
            started = time.perf_counter()
            batch = explainer.explain(explain_frame(rows, names))
            _ = [batch.row(i).to_dict() for i in range(len(rows))]
            per_row = (time.perf_counter() - started) / max(len(rows), 1)
        except Exception as exc:
            log.warning("no attribution sampling of %s: %r", explainer.entry.tag, exc)
            return 0.0
        return float(min(1.0, self.budget_us * 1e-6 / max(per_row, 1e-9)))

    def process_blocks(
        self, model: str, version: str, blocks: Sequence[RecordBlock], caught_up: bool = True,
    ) -> tuple[list[MonitorEvent], list[dict[str, Any]]]:
        """:meth:`process` for blocks of the log: only sampled records become objects."""
        state = self._version(model, version)
        if state.monitor is None or state.explainer is None or state.rate <= 0.0:
            return [], []
        chosen = [r for b in blocks for r in b.records(sampled_indices(b.ids, state.rate))]
        return self.process(model, version, chosen, caught_up)

    def process(
        self, model: str, version: str, records: Sequence[PredictionRecord],
        caught_up: bool = True,
    ) -> tuple[list[MonitorEvent], list[dict[str, Any]]]:
        """Explain the sampled ``records`` of one version; return its events and the rows
        to store (``Store.attributions_put``). Sparse samples wait for a batch while the
        monitor is behind (``caught_up`` False); the results do not depend on the batching
        (the attribution monitor takes rows one at a time)."""
        state = self._version(model, version)
        if state.monitor is None or state.explainer is None or state.rate <= 0.0:
            return [], []
        state.pending.extend(r for r in records if sampled(r.id, state.rate))
        if not state.pending or (len(state.pending) < state.flush_rows and not caught_up):
            return [], []
        chosen, state.pending = state.pending, []
        names = state.monitor.features
        frame = explain_frame([r.features for r in chosen], names)
        complete = frame.notna().all(axis=1).to_numpy()
        state.skipped += int((~complete).sum())
        chosen = [r for r, ok in zip(chosen, complete, strict=True) if ok]
        if not chosen:
            return [], []
        try:
            batch = state.explainer.explain(frame[complete])
        except Exception as exc:  # a row shap cannot take must not stop the monitor
            log.warning("explaining %d records of %s:%s failed: %r", len(chosen), model,
                        version, exc)
            state.skipped += len(chosen)
            return [], []
        state.explained += len(chosen)
        events = state.monitor.update_many([r.id for r in chosen], batch.values,
                                           [r.ts for r in chosen])
        rows = [{"id": r.id, "model": model, "version": version, "ts": r.ts,
                 "doc": batch.row(i).to_dict()} for i, r in enumerate(chosen)]
        return events, rows

    # -- reading -------------------------------------------------------------------------
    def weights(self, model: str, version: str) -> dict[str, float]:
        """Each feature's share of the version's importance: live once the window has
        records, the baseline's before."""
        state = self.versions.get((model, version))
        if state is None or state.monitor is None:
            return {}
        mon = state.monitor
        live = mon.importance()
        values = np.array(list(live.values()))
        if not np.isfinite(values).all():
            values = mon.baseline_importance["baseline"]
        total = float(values.sum())
        return {f: (float(v) / total if total > 0 else 0.0)
                for f, v in zip(mon.features, values, strict=True)}

    def status(self, model: str) -> dict[str, Any]:
        """Per version of ``model``: rate, explained and skipped counts, the monitor's state."""
        out: dict[str, Any] = {}
        for (name, version), state in self.versions.items():
            if name != model:
                continue
            out[version] = {
                "sample_rate": state.rate, "explained": state.explained,
                "skipped": state.skipped, "reason": state.reason,
                **(state.monitor.status() if state.monitor is not None else {})}
        return out

    def models(self) -> set[str]:
        return {m for m, _ in self.versions}


def attribution_stream(settings: Settings) -> AttributionStream | None:
    """The monitor's attribution stream (None when the sample rate is 0)."""
    if settings.explain_sample_rate == 0.0:
        return None
    return AttributionStream(settings.explain_sample_rate, settings.explain_budget_us)
