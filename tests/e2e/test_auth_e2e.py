"""API keys on a real ``bentoml serve``: BentoML's own endpoints, the fast ``/predict``
route, FastAPI's routes and the Open Inference Protocol behind one guard; a revocation
reaching both workers within the refresh bound; a gateway that requires keys and has none
refusing to start."""

from __future__ import annotations

import time

import httpx
import pytest

from loadtests.harness import metric_value, reference_rows
from service.auth.keys import new_key
from service.store.factory import open_store
from tests.e2e.conftest import free_port, start_gateway
from tests.webhooks.webhook_helpers import SECRET

MODEL, LIMITED_TO = "diabetes", "breast-cancer"


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def test_every_kind_of_endpoint_is_guarded(alerting_gateway):
    gw = alerting_gateway
    row = reference_rows(MODEL, 1, seed=5)
    body = {"model": MODEL, "inputs": row}
    infer = {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                        for k, v in row[0].items()]}
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for path in ("/livez", "/readyz", "/metrics", "/v2/health/ready"):
            assert client.get(path).status_code == 200, path
        # the fast /predict route (Starlette, ahead of FastAPI)
        missing = client.post("/predict", json=body)
        assert missing.status_code == 401 and missing.json()["error"]["type"] == \
            "missing_api_key"
        assert client.post("/predict", json=body, headers=_bearer(gw.keys["read"])
                           ).json()["error"]["type"] == "insufficient_scope"
        limited = client.post("/predict", json=body,
                              headers={"x-api-key": gw.keys[f"predict:{LIMITED_TO}"]})
        assert limited.status_code == 403 and limited.json()["error"]["type"] == \
            "model_not_allowed"
        assert client.post("/predict", json=body, headers=_bearer(gw.keys["predict"])
                           ).status_code == 200
        # Open Inference Protocol: its own error body; a tritonclient sends X-API-Key
        v2 = client.post(f"/v2/models/{MODEL}/infer", json=infer)
        assert v2.status_code == 401 and v2.json()["type"] == "missing_api_key"
        assert isinstance(v2.json()["error"], str)
        assert client.post(f"/v2/models/{MODEL}/infer", json=infer,
                           headers={"x-api-key": gw.keys[f"predict:{LIMITED_TO}"]}
                           ).json()["type"] == "model_not_allowed"
        assert client.post(f"/v2/models/{MODEL}/infer", json=infer,
                           headers={"x-api-key": gw.keys["predict"]}).status_code == 200
        # BentoML's own OpenAPI document and FastAPI's admin routes
        assert client.get("/docs.json").status_code == 401
        assert client.get("/docs.json", headers=_bearer(gw.keys["read"])).status_code == 200
        assert client.get(f"/models/{MODEL}/routing", headers=_bearer(gw.keys["read"])
                          ).status_code == 403
        assert client.get(f"/models/{MODEL}/routing", headers=_bearer(gw.keys["admin"])
                          ).status_code == 200
        audit = client.get("/audit", headers=_bearer(gw.keys["admin"]))
        assert {r["action"] for r in audit.json()["audit"]} >= {"key.create"}
        # a forged Alertmanager payload: refused before it is read
        forged = {"version": "4", "alerts": [{"status": "firing", "fingerprint": "forged",
                  "labels": {"model": MODEL, "retrain": "true"}}]}
        for token in (None, gw.keys["predict"], gw.keys["admin"][:-2] + "xx"):
            assert client.post("/alerts/alertmanager", json=forged, headers=_bearer(token)
                               ).status_code in (401, 403)
    assert (metric_value(gw.url, "driftgate_auth_failures_total",
                         {"reason": "missing_api_key"}) or 0) >= 4
    # neither a key nor the webhook secret (inline in its serving file) is in the log
    logged = gw.server.log.read_text()
    assert "inline in the serving file" in logged  # the warning, naming only the URL
    assert SECRET not in logged and not [k for k in gw.keys.values() if k in logged]


def test_a_revoked_key_is_refused_by_every_worker_within_the_bound(alerting_gateway):
    gw = alerting_gateway
    store = open_store(gw.server.data_dir / "predictions.sqlite3")
    try:
        token, row = new_key(["read"], models=None, expires_at=None, name="rotate",
                             actor="e2e", now=time.time())
        store.key_insert(row)
        with httpx.Client(base_url=gw.url, timeout=10, headers=_bearer(token)) as client:
            deadline = time.monotonic() + 5
            while client.get("/models").status_code != 200:  # created: accepted soon
                assert time.monotonic() < deadline
                time.sleep(0.05)
            store.key_revoke(row.id, "e2e")
            revoked = time.monotonic()
            # two workers: once both refuse, 20 requests in a row are refused
            streak = 0
            while streak < 20:
                refused = client.get("/models").status_code == 401
                streak = streak + 1 if refused else 0
                assert time.monotonic() - revoked < 3.0, "revocation not applied within 3 s"
            assert client.get("/models").json()["error"]["type"] == "revoked_api_key"
    finally:
        store.close()


def test_a_gateway_that_requires_keys_and_has_none_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError, match="DRIFTGATE_REQUIRE_AUTH is set"):
        start_gateway(tmp_path, free_port(), {"DRIFTGATE_REQUIRE_AUTH": "true"}, timeout=60)


def test_an_open_gateway_says_so_and_a_keyed_one_does_not(gateway, alerting_gateway):
    from service.api_context import OPEN_WARNING

    assert OPEN_WARNING in gateway.log.read_text()  # the shared gateway has no key
    assert OPEN_WARNING not in alerting_gateway.server.log.read_text()
    assert httpx.get(f"{gateway.url}/models", timeout=10).status_code == 200
