"""One set of data-quality rules: for the same traffic (nulls, NaN, out-of-range values, unseen
categories) the gateway's ``/metrics`` and the monitor's ``/monitoring/status`` report the same
counts (a real ``bentoml serve``; the gateway counts at validation, the monitor from the log)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from tests.e2e.conftest import FAST_MONITOR, Server, start_gateway_retrying, stop_gateway
from tests.e2e.traffic import metric_value, wait_for

MODEL = "quality-probe"
FEATURES = ("amount", "score", "channel")


def _register() -> None:
    """A regressor whose card has a nullable numeric (``amount``), a numeric that is not
    nullable (``score``) and a nullable categorical (``channel``)."""
    from models.registry import register_model

    rng = np.random.default_rng(5)
    n = 600
    amount = rng.normal(100.0, 20.0, n)
    amount[rng.random(n) < 0.1] = np.nan
    channel = rng.choice(["web", "store", "phone"], n).astype(object)
    channel[rng.random(n) < 0.1] = None
    X = pd.DataFrame({"amount": amount, "score": rng.random(n), "channel": channel})
    y = pd.Series(0.5 * np.nan_to_num(amount, nan=100.0) + 10 * X["score"], name="target")
    numbers = ColumnTransformer([("numbers", SimpleImputer(), ["amount", "score"])])
    register_model(MODEL, make_pipeline(numbers, Ridge()).fit(X, y), X, y,
                   reference_rows=300, trigger={"type": "test"})


@pytest.fixture(scope="module")
def quality_gateway(demo_models, tmp_path_factory) -> Iterator[Server]:
    _register()
    server = start_gateway_retrying(tmp_path_factory.mktemp("quality"), {
        **FAST_MONITOR, "DRIFTGATE_MONITOR_POLL_SECONDS": "0.05"})
    yield server
    stop_gateway(server)


def _rows() -> list[dict]:
    """Every case of the rules, several times over, in a seeded order."""
    ok = {"amount": 101.5, "score": 0.4, "channel": "web"}
    cases = [
        ok,
        {**ok, "amount": None},           # null, nullable: valid
        {**ok, "amount": float("nan")},   # NaN, nullable: valid
        {**ok, "amount": 1e6},            # out_of_range
        {**ok, "score": -3.0},            # out_of_range
        {**ok, "channel": None},          # null, nullable: valid
        {**ok, "channel": float("nan")},  # NaN in a nullable categorical: valid
        {**ok, "channel": "fax"},         # unseen_category
        {"amount": None, "score": 7.0, "channel": "carrier pigeon"},  # two issues
    ]
    picked = np.random.default_rng(3).integers(0, len(cases), 120)
    return [cases[i] for i in picked]


def test_metrics_and_status_report_identical_quality_counts(quality_gateway: Server) -> None:
    url = quality_gateway.url
    rows = _rows()
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(0, len(rows), 4):
            # NaN literals, as Python's json writes them (the gateway accepts them)
            body = json.dumps({"model": MODEL, "inputs": rows[i : i + 4]})
            response = client.post("/predict", content=body,
                                   headers={"content-type": "application/json"})
            assert response.status_code == 200, response.text
        # rejected: never logged, never counted as a data-quality issue by either side
        for bad in ({"amount": 1.0, "score": None, "channel": "web"},
                    {"amount": 1.0, "score": float("nan"), "channel": "web"}):
            response = client.post("/predict", content=json.dumps(
                {"model": MODEL, "inputs": [bad]}), headers={"content-type": "application/json"})
            assert response.status_code == 422, response.text

    def monitor_counts() -> dict[str, dict[str, int]] | None:
        status = httpx.get(f"{url}/monitoring/status", params={"model": MODEL},
                           timeout=10).json()
        versions = (status["models"].get(MODEL) or {}).get("versions", {})
        if sum(v["records_seen"] for v in versions.values()) < len(rows):
            return None
        totals: dict[str, dict[str, int]] = {}
        for v in versions.values():
            for feature, issues in v["data_quality"].items():
                for issue, count in issues.items():
                    totals.setdefault(feature, {}).setdefault(issue, 0)
                    totals[feature][issue] += count
        return totals

    monitored = wait_for(monitor_counts, timeout=60, what="the monitor's status of every row")
    assert isinstance(monitored, dict)

    from monitoring.quality import ISSUES

    exported = {f: {i: metric_value(url, "driftgate_data_quality_issues_total",
                                    {"model": MODEL, "feature": f, "issue": i})
                    for i in ISSUES} for f in FEATURES}
    assert exported == {f: {i: float(monitored[f][i]) for i in ISSUES} for f in FEATURES}
    # the traffic exercised the rules: issues counted, nulls and NaN in nullable features not
    expected = {"amount": {"out_of_range": sum(r["amount"] == 1e6 for r in rows)},
                "score": {"out_of_range": sum(r["score"] in (-3.0, 7.0) for r in rows)},
                "channel": {"unseen_category": sum(r["channel"] in ("fax", "carrier pigeon")
                                                   for r in rows)}}
    for feature, counts in expected.items():
        for issue, count in counts.items():
            assert count > 0 and exported[feature][issue] == count, (feature, issue)
    assert all(exported[f][i] == 0 for f in FEATURES for i in ("missing", "nan", "inf"))

