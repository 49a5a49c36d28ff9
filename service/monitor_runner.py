"""Tail the prediction log into the monitoring core; export metrics, events and checkpoints.

One :class:`MonitorRunner` per monitor process. ``step()`` reads the next batch of records
(and labels) after the checkpoint, feeds one :class:`monitoring.ModelMonitor` per model
version (each built from that version's card and reference sample), stores the events,
updates the Prometheus gauges and hands drift events to the retrain-request outbox.
``checkpoint()`` saves (log offset, label offset, every monitor's snapshot) in one
transaction, so a restarted runner continues exactly where the last checkpoint was taken.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import trace

from models.registry import get_model
from monitoring import ModelMonitor, MonitorConfig, MonitorEvent
from monitoring.batch import RecordBatch
from monitoring.names import MODEL_STREAM, json_value
from monitoring.state import SnapshotVersionError
from service.attribution_stream import KV_ATTRIBUTION, AttributionStream
from service.metrics import MonitorMetrics, export_effect
from service.store.base import KeyValueStore, LogStore, MonitorStateStore
from service.store.blocks import RecordBlock
from service.store.entities import Lease

log = logging.getLogger(__name__)

CONSUMER = "monitor"
RETRAIN_KINDS = {
    "feature_drift": "drift",
    "prediction_drift": "drift",
    "multivariate_drift": "drift",
    "concept_drift": "performance",
    "performance": "performance",
}
Key = tuple[str, str]  # (model, version)
STALE_SECONDS = 600.0  # a version without records for this long no longer drives gauges
#: Key-value keys of the monitor's state (read by ``/monitoring/status``).
KV_MONITOR_STATUS = "monitor:status"
KV_MODEL_STATUS = "monitor:status:{model}"
ATTRIBUTION_STATE = "attribution"  # the checkpoint's entry of the attribution stream
DRIFT_KINDS = {"feature_drift", "multivariate_drift", "prediction_drift"}


@dataclass(frozen=True)
class ModelEvent:
    """A monitor event of one model version, as the runner hands it on unchanged."""

    model: str
    version: str
    event: MonitorEvent

    @property
    def kind(self) -> str:
        return self.event.kind

    def to_row(self) -> dict[str, Any]:
        """The store's row (``Store.append_events``); non-finite numbers become null."""
        e = self.event
        return {"model": self.model, "version": self.version, "kind": e.kind,
                "feature": e.feature, "detector": e.detector,
                "statistic": json_value(e.statistic), "threshold": json_value(e.threshold),
                "record_id": e.record_id, "ts": e.ts, "details": e.details}


#: (model, version, trigger, events, reference fingerprint, fence) -> anything
RetrainHook = Callable[[str, str, str, list[ModelEvent], str | None, Lease | None], Any]


def build_monitor(model: str, version: str, config: MonitorConfig) -> ModelMonitor:
    """The version's monitor, seeing its card and reference as its records are stored
    (``pii`` features dropped or hashed, see :mod:`service.pii`)."""
    from service.pii import PiiPolicy, pii_key

    entry = get_model(model, version)
    policy = PiiPolicy(entry.card.features, pii_key())
    return ModelMonitor(policy.card(entry.card.model_dump()), policy.reference(entry.reference()),
                        config)


@dataclass
class StepResult:
    """``records``: records of owned models processed; ``read``: records read (a full
    batch means more may be waiting)."""

    read: int = 0
    records: int = 0
    labels: int = 0
    events: list[ModelEvent] = field(default_factory=list)


class RunnerStore(LogStore, MonitorStateStore, KeyValueStore, Protocol):
    """What the runner uses: it reads the log and labels, checkpoints and stores events,
    and publishes its status in the key-value table."""


class MonitorRunner:
    """Consumes the log from its checkpoint; see the module docstring."""

    def __init__(
        self,
        store: RunnerStore,
        config: MonitorConfig,
        metrics: MonitorMetrics | None = None,
        retrain: RetrainHook | None = None,
        batch: int = 5_000,
        consumer: str = CONSUMER,
        monitor_factory: Callable[[str, str, MonitorConfig], ModelMonitor] = build_monitor,
        *,
        fresh: bool = False,
        models: set[str] | None = None,
        since: float | None = None,
        owns: Callable[[str], bool] | None = None,
        partition: str | None = None,
        status_key: str = KV_MONITOR_STATUS,
        seed: str | None = None,
        attribution: AttributionStream | None = None,
        metrics_every: float = 0.0,
    ) -> None:
        """``fresh`` ignores (and never writes) a checkpoint: for replays. ``models`` limits
        the runner to those models; ``owns`` to the models it accepts (a partition's: the
        names of others' models are learnt and no longer read); ``since`` skips records
        older than that unix time.
        ``partition`` labels its lag gauges (the process then reports its total lag);
        ``status_key`` is where :meth:`checkpoint` publishes offsets and lag. Set
        :attr:`fence` to the lease the runner works under: its checkpoint, events and retrain
        requests are then written only while that lease is held. ``seed`` names a consumer
        whose checkpoint a runner without one of its own starts from (its owned models'
        detector states): a single monitor split into partitions resumes where it was.
        ``attribution`` explains a sample of the records (attribution drift).
        ``metrics_every``: seconds between gauge exports while no step finds an event (0:
        after every step); a monitor working off a backlog then spends its time on records."""
        self.store = store
        self.config = config
        self.metrics = metrics
        self.retrain = retrain
        self.batch = batch
        self.consumer = consumer
        self._factory = monitor_factory
        self.tracer = trace.get_tracer("driftgate.monitor")
        self.unusable: set[Key] = set()
        self.models = models
        self.since = since
        self.fresh = fresh
        self.owns = owns
        self.seed = seed
        self.others: set[str] = set()  # models seen in the log that belong to others
        self.partition = partition
        self.status_key = status_key
        self.fence: Lease | None = None
        # (records, seconds) behind the log, refreshed with the gauges: up to
        # ``metrics_every`` (plus one step) stale while a backlog is worked off
        self.lag: tuple[int, float] = (0, 0.0)
        self._series: set[tuple[str, ...]] = set()  # gauge label sets this runner has set
        self.monitors: dict[Key, ModelMonitor] = {}
        self.attribution = attribution
        self.metrics_every = metrics_every
        self._exported = -math.inf  # monotonic time of the last gauge export
        self._attributions: list[dict[str, Any]] = []
        self._caught_up = True  # the last read was not a full batch: explain what is pending
        self.offset = self.label_offset = 0
        self.reload()

    def reload(self) -> None:
        """Return to the last checkpoint (offsets and every detector's state).

        After a failed step the detectors may have seen records whose events were not
        stored; replaying from the checkpoint is deterministic, and storing events is
        idempotent, so nothing is lost and nothing is counted twice in the event table.
        """
        self.offset, self.label_offset, self.monitors = 0, 0, {}
        self._attributions = []
        if self.attribution is not None:
            self.attribution.versions = {}
        checkpoint = None if self.fresh else self.store.load_checkpoint(self.consumer)
        if checkpoint is None and self.seed is not None and not self.fresh:
            checkpoint = self.store.load_checkpoint(self.seed)
            if checkpoint is not None:
                log.info("%s starts from %s's checkpoint (offset %d)", self.consumer,
                         self.seed, checkpoint.offset)
        if checkpoint is not None:
            self.offset = checkpoint.offset
            self.label_offset = checkpoint.label_offset
            snapshots: dict[Any, bytes] = pickle.loads(checkpoint.state) if checkpoint.state else {}
            attribution = snapshots.pop(ATTRIBUTION_STATE, None)
            if attribution is not None and self.attribution is not None:
                self.attribution.restore(attribution)
            for key, blob in snapshots.items():
                if self.owns is not None and not self.owns(key[0]):
                    continue
                try:
                    self.monitors[key] = ModelMonitor.restore(blob)
                except SnapshotVersionError as error:
                    # a snapshot of an older layout: this version's monitor starts afresh from
                    # its card and reference at the checkpoint's offset
                    log.warning("monitor state of %s:%s not restored (%s); recalibrating",
                                *key, error)

    def monitor_for(self, model: str, version: str) -> ModelMonitor | None:
        key = (model, version)
        if key not in self.monitors and key not in self.unusable:
            try:
                self.monitors[key] = self._factory(model, version, self.config)
            except Exception:  # an unregistered or broken version must not stop the others
                log.exception("cannot build a monitor for %s:%s", model, version)
                self.unusable.add(key)
        return self.monitors.get(key)

    def drifted(self, model: str, version: str) -> list[str]:
        """The drift-active streams of a version's monitor (none if it has no monitor yet)."""
        monitor = self.monitors.get((model, version))
        if monitor is None:
            return []
        return [name for name, state in list(monitor.drift.items()) if state.active]

    def step(self) -> StepResult:
        """Process the next batch of records and labels; returns what was done."""
        with self.tracer.start_as_current_span("driftgate.monitor.batch") as span:
            result = self._step()
            span.set_attribute("driftgate.records", result.records)
            span.set_attribute("driftgate.labels", result.labels)
            span.set_attribute("driftgate.events", len(result.events))
            return result

    def _step(self) -> StepResult:
        result = StepResult()
        models = self.models
        blocks = self.store.read_blocks_after(self.offset, self.batch, models,
                                              self.others or None)
        if blocks:
            result.read = sum(len(b) for b in blocks)
            self.offset = blocks[-1].last_offset or self.offset
            blocks = self._own(blocks, lambda b: b.model)
            result.records = sum(len(b) for b in blocks)
            if self.since is not None:
                blocks = [b for b in blocks if b.ts >= self.since]
            self._caught_up = result.records < self.batch
            result.events.extend(self._blocks(blocks))
        labels = self.store.read_labels_after(self.label_offset, self.batch)
        if labels:
            self.label_offset = labels[-1].label_offset
            if models is not None:
                labels = [e for e in labels if e.record.model in models]
            labels = self._own(labels, lambda e: e.record.model)
            result.labels = len(labels)
            result.events.extend(self._labels(labels))
        if self._attributions and not self.fresh:
            self.store.attributions_put(self._attributions)
        self._attributions = []
        if result.events and not self.fresh:
            new = self.store.append_events([e.to_row() for e in result.events], fence=self.fence)
            self._hand_on(result.events, new)
        now = time.monotonic()
        if result.events or now - self._exported >= self.metrics_every:
            self._exported = now
            self.export_metrics()
        return result

    def _own(self, items: list[Any], model_of: Callable[[Any], str]) -> list[Any]:
        """The items of models this runner owns (all without ``owns``)."""
        if self.owns is None:
            return items
        kept = []
        for item in items:
            model = model_of(item)
            if self.owns(model):
                kept.append(item)
            else:
                self.others.add(model)
        return kept

    def _blocks(self, blocks: list[RecordBlock]) -> list[ModelEvent]:
        """Each version's records, column by column, through its monitor (log order)."""
        groups: dict[Key, list[RecordBlock]] = defaultdict(list)
        for b in blocks:
            groups[(b.model, b.version)].append(b)
        events: list[ModelEvent] = []
        for (model, version), group in groups.items():
            monitor = self.monitor_for(model, version)
            if monitor is None:
                continue
            batch = RecordBatch.join([(b.ids, b.ts, b.features, b.predictions) for b in group])
            found = monitor.update_batch(batch)
            if self.attribution is not None:
                found = self._attribute(model, version, group, found)
            events.extend(ModelEvent(model, version, e) for e in found)
        return events

    def _attribute(self, model: str, version: str, blocks: list[RecordBlock],
                   found: list[MonitorEvent]) -> list[MonitorEvent]:
        """Explain the version's sampled records; drift events get each drifted feature's
        current attribution weight (its share of the model's importance)."""
        assert self.attribution is not None
        try:
            extra, rows = self.attribution.process_blocks(model, version, blocks,
                                                          self._caught_up)
        except Exception:  # an unexplainable version must not stop the monitor
            log.exception("attribution of %s:%s failed", model, version)
            extra, rows = [], []
        self._attributions.extend(rows)
        weights = self.attribution.weights(model, version)
        if weights:
            for event in found:
                if event.kind in DRIFT_KINDS and event.feature in weights:
                    event.details["attribution_weight"] = weights[event.feature]
        return sorted([*found, *extra], key=lambda e: e.ts)

    def _labels(self, labels: list[Any]) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        for event in labels:
            r = event.record
            monitor = self.monitor_for(r.model, r.version)
            if monitor is None or event.relabel:
                continue  # a corrected label updates the log, not the rolling metrics twice
            if self.metrics is not None and r.label_ts is not None:
                self.metrics.label_delay.labels(r.model).observe(max(0.0, r.label_ts - r.ts))
            found = monitor.update_label(r.id, r.prediction, r.label, r.label_ts or r.ts)
            events.extend(ModelEvent(r.model, r.version, e) for e in found)
        return events

    def _hand_on(self, events: list[ModelEvent], new: list[bool]) -> None:
        """Count the events new in the store (a replay after a takeover re-emits events
        the previous holder counted) and hand every retrain-worthy one to the outbox (its
        cooldown and event ids make that idempotent: a request lost in a crash is made)."""
        by_model: dict[Key, list[ModelEvent]] = defaultdict(list)
        for event, is_new in zip(events, new, strict=True):
            if self.metrics is not None and is_new:
                feature = event.event.feature or MODEL_STREAM
                self.metrics.drift_events.labels(event.model, feature, event.kind).inc()
                effect = event.event.details.get("effect") if event.event.details else None
                if effect:
                    export_effect(self.metrics, event.model, feature, effect)
            if event.kind in RETRAIN_KINDS:
                by_model[(event.model, event.version)].append(event)
        if self.retrain is None:
            return
        for (model, version), found in by_model.items():
            trigger = RETRAIN_KINDS[found[0].kind]
            lineage = self.monitors[(model, version)].card.get("lineage") or {}
            self.retrain(model, version, trigger, found, lineage.get("data_fingerprint"),
                         self.fence)

    def export_metrics(self) -> None:
        """Set the gauges. Drift gauges are per model (labels carry no version): a feature
        is active if it is in any *current* version, its score the highest; versions whose
        last record is over ``STALE_SECONDS`` older than the model's newest record no longer
        count (an old version's unresolved drift must not hold the alert forever), and their
        performance gauges read NaN (no alert compares true on NaN)."""
        m = self.metrics
        if m is None:
            return
        records, seconds = self.lag = self.store.lag(self.offset, self.models,
                                                     self.others or None)
        if self.partition is None:
            m.lag_records.set(records)
            m.lag_seconds.set(seconds)
        else:
            m.partition_lag_records.labels(self.partition).set(records)
            m.partition_lag_seconds.labels(self.partition).set(seconds)
        statuses = {key: monitor.status() for key, monitor in self.monitors.items()}
        newest: dict[str, float] = defaultdict(float)
        for (model, _), status in statuses.items():
            newest[model] = max(newest[model], status.last_ts or 0.0)
        scores: dict[tuple[str, str, str], float] = {}
        active: dict[tuple[str, str], bool] = {}
        seen: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (model, version), status in statuses.items():
            current = (status.last_ts or 0.0) >= newest[model] - STALE_SECONDS
            for metric, value in status.performance.items():
                if value is not None:
                    m.performance.labels(model, version, metric).set(
                        value if current else float("nan")
                    )
                    self._series.add(("performance", model, version, metric))
            if not current:
                continue
            for name, stream in status.streams.items():
                key = (model, name, stream.method)
                scores[key] = max(scores.get(key, 0.0), stream.peak_score)
                active[(model, name)] = active.get((model, name), False) or stream.drift_active
            seen[model][0] += status.records_seen
            seen[model][1] += status.labels_seen
        for (model, feature, method), score in scores.items():
            m.drift_score.labels(model, feature, method).set(score)
            self._series.add(("drift_score", model, feature, method))
        for (model, feature), is_active in active.items():
            m.drift_active.labels(model, feature).set(1 if is_active else 0)
            self._series.add(("drift_active", model, feature))
        for model, (records_seen, labels_seen) in seen.items():
            if records_seen:
                m.label_coverage.labels(model).set(min(1.0, labels_seen / records_seen))
                self._series.add(("label_coverage", model))
        if self.attribution is not None:
            self._export_attribution(m)

    def _export_attribution(self, m: MonitorMetrics) -> None:
        assert self.attribution is not None
        for (model, version), state in self.attribution.versions.items():
            if state.monitor is None or not state.monitor.seen:
                continue
            for feature, value in state.monitor.importance().items():
                m.feature_attribution.labels(model, version, feature).set(value)
                self._series.add(("feature_attribution", model, version, feature))
            score = state.monitor.scores.get("baseline")
            if score is not None:
                m.attribution_ndcg.labels(model, version).set(score)
                self._series.add(("attribution_ndcg", model, version))

    def retire_metrics(self) -> None:
        """Withdraw the gauges this runner set (its partition moved to another process,
        which exports them now). Without a multiprocess directory the series disappear;
        under BentoML's they read NaN, which ``max by`` in the rules ignores."""
        m = self.metrics
        if m is None:
            return
        gauges = {"performance": m.performance, "drift_score": m.drift_score,
                  "drift_active": m.drift_active, "label_coverage": m.label_coverage,
                  "feature_attribution": m.feature_attribution,
                  "attribution_ndcg": m.attribution_ndcg}
        if self.partition is not None:
            self._series |= {("partition_lag_records", self.partition),
                             ("partition_lag_seconds", self.partition)}
            gauges |= {"partition_lag_records": m.partition_lag_records,
                       "partition_lag_seconds": m.partition_lag_seconds}
        for name, *labels in self._series:
            gauge = gauges[name]
            gauge.labels(*labels).set(float("nan"))
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        self._series.clear()

    def checkpoint(self) -> None:
        snapshots: dict[Any, bytes] = {k: m.snapshot() for k, m in self.monitors.items()}
        if self.attribution is not None:
            snapshots[ATTRIBUTION_STATE] = self.attribution.snapshot()
        state = pickle.dumps(snapshots)
        self.store.save_checkpoint(self.consumer, self.offset, self.label_offset, state,
                                   fence=self.fence)
        lag_records, lag_seconds = self.store.lag(self.offset, self.models, self.others or None)
        status: dict[str, Any] = {
            "offset": self.offset, "label_offset": self.label_offset, "updated_at": time.time(),
            "lag_records": lag_records, "lag_seconds": lag_seconds,
        }
        if self.partition is not None:
            status |= {"partition": self.partition, "consumer": self.consumer,
                       "holder": self.fence.holder if self.fence else None,
                       "token": self.fence.token if self.fence else None}
        self.store.kv_set(self.status_key, status)
        per_model: dict[str, dict[str, Any]] = defaultdict(dict)
        for (model, version), monitor in self.monitors.items():
            per_model[model][version] = monitor.status().to_dict()
        for model, versions in per_model.items():
            self.store.kv_set(KV_MODEL_STATUS.format(model=model), {"versions": versions})
        if self.attribution is not None:
            for model in self.attribution.models():
                self.store.kv_set(KV_ATTRIBUTION.format(model=model),
                                  {"updated_at": time.time(),
                                   "versions": self.attribution.status(model)})
