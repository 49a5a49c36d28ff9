"""Canary weights and shadow traffic, through the ASGI app and the real prediction log."""

from __future__ import annotations

import pytest
from sklearn.linear_model import Ridge

from models.demo import diabetes_data
from models.registry import get_model, register_model
from service.store.factory import open_store
from tests.service.gateway_helpers import make_client


@pytest.fixture(scope="module")
def two_versions(demo_models) -> tuple[str, str]:
    X, y = diabetes_data()
    candidate = register_model(
        "diabetes", Ridge(alpha=10.0).fit(X.to_numpy(), y), X, y,
        parent_version=demo_models["diabetes"], trigger={"type": "test"},
    )
    return demo_models["diabetes"], candidate.version


def test_canary_split_and_shadow_recorded_never_returned(tmp_path, two_versions):
    stable, candidate = two_versions
    serving = {"models": {"diabetes": {
        "default": "stable", "aliases": {"stable": stable},
        "canary": {"version": candidate, "weight": 0.3}, "shadow": candidate,
    }}}
    entry = get_model("diabetes", stable)
    row = entry.reference()[entry.card.feature_names].iloc[0].to_dict()
    n = 1000
    served: dict[str, int] = {}
    returned_ids: set[str] = set()
    with make_client(tmp_path, serving) as client:
        for _ in range(n):
            body = client.post("/predict", json={"model": "diabetes", "inputs": [row]}).json()
            served[body["version"]] = served.get(body["version"], 0) + 1
            returned_ids.update(body["ids"])
        pinned = client.post("/predict", json={"model": "diabetes", "version": "stable",
                                               "inputs": [row]}).json()
        assert pinned["version"] == stable
    # 0.3 +- 4.5 standard deviations of a binomial(1000, 0.3)
    assert abs(served[candidate] / n - 0.3) < 4.5 * (0.3 * 0.7 / n) ** 0.5
    assert served[stable] + served[candidate] == n
    store = open_store(str(tmp_path / "data" / "predictions.sqlite3"))
    records = store.read_after(0, 10_000)
    store.close()
    by_arm: dict[str, list] = {}
    for record in records:
        by_arm.setdefault(record.arm, []).append(record)
    shadow = by_arm["shadow"]
    assert all(r.version == candidate for r in shadow)
    assert not {r.id for r in shadow} & returned_ids
    assert len(by_arm["default"]) + len(by_arm["canary"]) == n + 1
    assert {r.id for r in by_arm["default"] + by_arm["canary"]} == returned_ids | set(pinned["ids"])
    # the shadow copy goes with every request routed to the default version (a request the
    # canary serves is already served by the shadow's version), never with pinned ones
    assert len(shadow) == len(by_arm["default"]) - 1
