"""The exported drift score means the same for every numeric detector, and every labelled
series known at start is exported at 0 before the first request (a real ``bentoml serve``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import FAST_MONITOR, Server, start_gateway_retrying, stop_gateway
from tests.e2e.traffic import metric_value, reference_rows, send, shifted, wait_for

MODEL = "breast-cancer"
# one feature per numeric detector (the default, cusum, and three overrides)
DETECTOR_OF = {"mean_texture": "cusum", "mean_smoothness": "page_hinkley",
               "mean_symmetry": "adwin", "mean_compactness": "kswin"}
SCORE = "driftgate_feature_drift_score"


@pytest.fixture(scope="module")
def detectors_gateway(demo_models, tmp_path_factory) -> Iterator[Server]:
    overrides = {f: d for f, d in DETECTOR_OF.items() if d != "cusum"}
    server = start_gateway_retrying(tmp_path_factory.mktemp("detectors"), {
        **FAST_MONITOR, "DRIFTGATE_MONITOR_POLL_SECONDS": "0.05",
        "DRIFTGATE_NUMERIC_DETECTOR": "cusum",
        "DRIFTGATE_DETECTOR_OVERRIDES": json.dumps(overrides)})
    yield server
    stop_gateway(server)


def _series(text: str, name: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
            for line in text.splitlines() if line.startswith(name + "{")]


def test_fresh_gateway_exports_known_series_at_zero(detectors_gateway: Server) -> None:
    from models.registry import get_model
    from monitoring.quality import ISSUES
    from service.metrics import ERROR_REASONS, FEATURE_EVENT_KINDS, WEBHOOK_OUTCOMES

    url = detectors_gateway.url
    features = get_model(MODEL).card.feature_names
    assert set(DETECTOR_OF) <= set(features)

    def monitor_started() -> bool:
        return metric_value(url, "driftgate_webhook_deliveries_total",
                            {"outcome": "delivered"}) is not None

    wait_for(monitor_started, timeout=30, what="the monitor's series")
    expected = {
        "driftgate_prediction_errors_total": [{"model": MODEL, "reason": r}
                                              for r in ERROR_REASONS],
        "driftgate_feedback_total": [{"model": MODEL}],
        "driftgate_data_quality_issues_total": [{"model": MODEL, "feature": f, "issue": i}
                                                for f in features for i in ISSUES],
        "driftgate_drift_events_total": [{"model": MODEL, "feature": f, "kind": k}
                                         for f in features for k in FEATURE_EVENT_KINDS],
        "driftgate_webhook_deliveries_total": [{"outcome": o} for o in WEBHOOK_OUTCOMES],
    }
    for name, label_sets in expected.items():
        for labels in label_sets:
            assert metric_value(url, name, labels) == 0.0, (name, labels)
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in ("driftgate_prediction_latency_seconds_count", "driftgate_webhook_pending",
                   "driftgate_monitor_lag_records", "driftgate_monitor_lag_seconds"):
        assert re.search(rf"^{family}(\{{|\s)", text, re.M), family


def test_score_below_one_when_stationary_and_at_least_one_at_the_alarm(
        detectors_gateway: Server) -> None:
    url = detectors_gateway.url
    send(url, MODEL, reference_rows(MODEL, 1000, seed=21), per_request=25)

    def caught_up() -> bool:
        return metric_value(url, "driftgate_monitor_lag_records", {}) == 0.0 and all(
            metric_value(url, SCORE, {"model": MODEL, "feature": f, "method": d}) is not None
            for f, d in DETECTOR_OF.items())

    wait_for(caught_up, timeout=60, what="the stationary traffic processed")
    for f, d in DETECTOR_OF.items():
        score = metric_value(url, SCORE, {"model": MODEL, "feature": f, "method": d})
        assert score is not None and 0.0 <= score < 1.0, (f, d, score)

    drifted = reference_rows(MODEL, 300, seed=22)
    for f in DETECTOR_OF:
        drifted = shifted(drifted, MODEL, f, 2.0)
    before: dict[str, list[float]] = {f: [] for f in DETECTOR_OF}
    at_alarm: dict[str, float] = {}
    for row in drifted:  # one record per step: the gauge as the monitor left it after it
        send(url, MODEL, [row])
        wait_for(lambda: metric_value(url, "driftgate_monitor_lag_records", {}) == 0.0,
                 timeout=10, interval=0.02)
        text = httpx.get(f"{url}/metrics", timeout=10).text
        for f, d in DETECTOR_OF.items():
            if f in at_alarm:
                continue
            score = _value(text, SCORE, {"model": MODEL, "feature": f, "method": d})
            active = _value(text, "driftgate_drift_active", {"model": MODEL, "feature": f})
            if active == 1.0:
                at_alarm[f] = score
            else:
                before[f].append(score)
        if len(at_alarm) == len(DETECTOR_OF):
            break
    assert set(at_alarm) == set(DETECTOR_OF), at_alarm
    for f, d in DETECTOR_OF.items():
        assert at_alarm[f] >= 1.0, (f, d, at_alarm[f])
        assert all(s < 1.0 for s in before[f]), (f, d, max(before[f]))


def _value(text: str, name: str, labels: dict[str, str]) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not exported")
