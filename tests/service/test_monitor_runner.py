"""The monitor runner on a real SQLite log: drift found at the right place, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from models.registry import get_model
from monitoring import MonitorConfig
from service.metrics import monitor_metrics
from service.monitor_runner import MonitorRunner
from service.store.factory import open_store
from service.store.records import PredictionRecord

N_STATIONARY, N_DRIFTED = 1500, 600


@pytest.fixture(scope="module")
def log_records(demo_models) -> list[PredictionRecord]:
    entry = get_model("diabetes", demo_models["diabetes"])
    ref = entry.reference()
    names = entry.card.feature_names
    rng = np.random.default_rng(3)
    picked = ref.iloc[rng.integers(0, len(ref), N_STATIONARY + N_DRIFTED)]
    rows = picked[names].to_dict("records")
    predictions = picked["__prediction__"].tolist()
    sd = float(ref["bmi"].std())
    records = []
    for i, row in enumerate(rows):
        if i >= N_STATIONARY:
            row = {**row, "bmi": row["bmi"] + 1.5 * sd}
        records.append(PredictionRecord(model="diabetes", version=entry.version, features=row,
                                        prediction=predictions[i], ts=1_000_000.0 + i))
    return records


def _runner(store, registry=None) -> MonitorRunner:
    metrics = monitor_metrics(registry) if registry is not None else None
    return MonitorRunner(store, MonitorConfig(quality_events=False), metrics, batch=250)


def _drain(runner: MonitorRunner, limit: int | None = None) -> list[dict]:
    events = []
    steps = 0
    while limit is None or steps < limit:
        result = runner.step()
        if not result.records:
            break
        events.extend(e.to_row() for e in result.events)
        steps += 1
    return events


def test_drift_detected_after_shift_and_metrics_exported(tmp_path, log_records):
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    registry = CollectorRegistry()
    runner = _runner(store, registry)
    events = _drain(runner)
    drift = [e for e in events if e["kind"] == "feature_drift"]
    assert drift, events
    first = drift[0]
    position = [r.id for r in log_records].index(first["record_id"])
    assert first["feature"] == "bmi"
    assert N_STATIONARY <= position < N_STATIONARY + 100
    assert not [e for e in events if e["kind"].endswith("drift")
                and [r.id for r in log_records].index(e["record_id"]) < N_STATIONARY]
    active = registry.get_sample_value("driftgate_drift_active",
                                       {"model": "diabetes", "feature": "bmi"})
    assert active == 1.0
    assert registry.get_sample_value("driftgate_monitor_lag_records") == 0.0
    assert store.read_events("diabetes")[0]["record_id"] == first["record_id"]
    store.close()


def test_restart_from_checkpoint_matches_uninterrupted_run(tmp_path, log_records):
    one = open_store(str(tmp_path / "one.sqlite3"))
    one.append(log_records)
    reference_runner = _runner(one)
    uninterrupted = _drain(reference_runner)
    two = open_store(str(tmp_path / "two.sqlite3"))
    two.append(log_records)
    first = _runner(two)
    before = _drain(first, limit=5)  # 5 batches, then "crash" after a checkpoint
    first.checkpoint()
    resumed = _runner(two)
    assert resumed.offset == first.offset
    after = _drain(resumed)
    strip = [{k: v for k, v in e.items() if k != "id"} for e in before + after]
    assert strip == uninterrupted
    key = next(iter(resumed.monitors))
    assert resumed.monitors[key].status() == reference_runner.monitors[key].status()
    assert any(e["kind"] == "feature_drift" for e in after)
    one.close()
    two.close()


def _identity(events: list[dict]) -> list[tuple]:
    return sorted((e["kind"], e["feature"], e["detector"], e["record_id"]) for e in events)


def test_failed_step_replays_from_checkpoint_without_losing_or_duplicating(tmp_path,
                                                                           log_records):
    reference = open_store(str(tmp_path / "reference.sqlite3"))
    reference.append(log_records)
    expected = _drain(_runner(reference))  # the same log, never failing
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    runner = _runner(store)
    _drain(runner, limit=2)
    runner.checkpoint()
    real_append = store.append_events
    failures = {"left": 1}

    def flaky_append(events, fence=None):
        if events and failures["left"]:
            failures["left"] -= 1
            raise OSError("connection lost")
        return real_append(events, fence=fence)

    store.append_events = flaky_append
    with pytest.raises(OSError):
        _drain(runner)  # fails at the first batch that has events
    runner.reload()  # what the Monitor service does after a failed step
    _drain(runner)
    stored = store.read_events("diabetes", limit=10_000)
    assert _identity(stored) == _identity(expected) and expected


def test_crash_between_step_and_checkpoint_stores_each_event_once(tmp_path, log_records):
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    first = _runner(store)
    _drain(first, limit=2)
    first.checkpoint()
    _drain(first)  # events stored, then the process dies before the next checkpoint
    once = _identity(store.read_events("diabetes", limit=10_000))
    _drain(_runner(store))  # the restarted monitor replays from the checkpoint
    assert _identity(store.read_events("diabetes", limit=10_000)) == once
    assert once
    store.close()


def test_detectors_chosen_by_settings(tmp_path, log_records, monkeypatch):
    """DRIFTGATE_DETECTOR_OVERRIDES (JSON) reaches the monitor: bmi's drift is ADWIN's."""
    from service.config import Settings, monitor_config

    monkeypatch.setenv("DRIFTGATE_DETECTOR_OVERRIDES", '{"bmi": "adwin"}')
    monkeypatch.setenv("DRIFTGATE_CONCEPT_DETECTOR", "hddm_a")
    config = monitor_config(Settings())
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    runner = MonitorRunner(store, config, None, batch=250)
    drift = [e for e in _drain(runner) if e["kind"] == "feature_drift"]
    assert (drift[0]["feature"], drift[0]["detector"]) == ("bmi", "adwin")
    monitor = runner.monitor_for("diabetes", log_records[0].version)
    assert monitor is not None and monitor.performance.detector == "hddm_a"
    store.close()


def test_checkpoint_of_an_older_snapshot_layout_recalibrates_and_continues(tmp_path,
                                                                            log_records):
    """A version-1 monitor snapshot (before the detector contract) is not restored: that
    monitor is rebuilt from its card and the runner continues at the checkpoint's offset."""
    import pickle
    import zlib

    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    key = ("diabetes", log_records[0].version)
    old = b"DGMON" + bytes([1]) + zlib.compress(pickle.dumps({"layout": "v1"}))
    store.save_checkpoint("monitor", 1000, 0, pickle.dumps({key: old}))
    runner = _runner(store)
    assert runner.offset == 1000 and runner.monitors == {}
    events = _drain(runner)
    assert runner.monitors[key].seen == len(log_records) - 1000
    drift = [e for e in events if e["kind"] == "feature_drift"]
    assert drift and drift[0]["feature"] == "bmi"
    store.close()


def test_partitions_start_from_the_single_monitors_checkpoint(tmp_path, log_records):
    """1 -> 2 partitions: each partition's runner resumes at the single monitor's offset with
    the detector states of its own models, and ends where an unsplit monitor ends."""
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    reference = _runner(store)
    reference.consumer = "reference"
    _drain(reference)
    single = _runner(store)
    _drain(single, limit=5)
    single.checkpoint()
    config = MonitorConfig(quality_events=False)
    mine = MonitorRunner(store, config, batch=250, consumer="monitor:0/2", seed="monitor",
                         owns=lambda model: model == "diabetes")
    theirs = MonitorRunner(store, config, batch=250, consumer="monitor:1/2", seed="monitor",
                           owns=lambda model: model != "diabetes")
    assert mine.offset == theirs.offset == single.offset > 0
    assert list(mine.monitors) == list(single.monitors) and theirs.monitors == {}
    _drain(mine)
    _drain(theirs)
    key = next(iter(reference.monitors))
    assert mine.monitors[key].status() == reference.monitors[key].status()
    assert theirs.monitors == {} and theirs.others == {"diabetes"}
    store.close()


def test_metrics_every_exports_on_the_first_step_and_on_events_only(tmp_path, log_records):
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(log_records)
    registry = CollectorRegistry()
    metrics = monitor_metrics(registry)
    runner = MonitorRunner(store, MonitorConfig(quality_events=False), metrics, batch=250,
                           metrics_every=60.0)

    def lag() -> float | None:
        return registry.get_sample_value("driftgate_monitor_lag_records")

    first = runner.step()
    assert not first.events
    assert lag() == len(log_records) - 250 and runner.lag[0] == len(log_records) - 250
    second = runner.step()
    assert second.records and not second.events
    assert lag() == len(log_records) - 250  # not refreshed: no event, within 60 s
    while not (result := runner.step()).events:
        assert result.records, "the drift was never found"
        assert lag() == len(log_records) - 250
    done = runner.offset - (log_records[0].offset or 1) + 1
    assert lag() == len(log_records) - done  # the step that found an event exported
    assert registry.get_sample_value("driftgate_drift_active",
                                     {"model": "diabetes", "feature": "bmi"}) == 1.0
    store.close()
