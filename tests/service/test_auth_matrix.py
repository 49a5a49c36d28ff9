"""The permission matrix through the ASGI app: every endpoint of the OpenAPI document times
every credential (none, wrong scope, wrong model, expired, revoked, right scope, admin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from models.registry import get_model
from service.alerts import dedupe_key
from service.auth.keys import ADMIN, SCOPES
from service.auth.scopes import PUBLIC, ROUTE_SCOPES, ScopeTable
from tests.service.auth_helpers import ALLOWED_MODEL, OTHER_MODEL, guarded_client

AUTH_TYPES = {"missing_api_key", "invalid_api_key", "expired_api_key", "revoked_api_key",
              "insufficient_scope", "model_not_allowed"}


def undeclared(openapi: dict[str, Any], table: ScopeTable) -> list[str]:
    """``METHOD path`` of every operation in the document without a declared scope."""
    return [f"{method.upper()} {path}" for path, operations in openapi["paths"].items()
            for method in operations if not table.declared(method, path)]


def operations() -> list[tuple[str, str]]:
    from service.api import app

    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            for method in ops]


@pytest.fixture(scope="module")
def guarded(demo_models, tmp_path_factory) -> Iterator[Any]:
    with guarded_client(tmp_path_factory.mktemp("auth")) as bound:
        yield bound


def test_every_endpoint_of_the_openapi_document_declares_its_scope():
    from service.api import app

    missing = undeclared(app.openapi(), ScopeTable())
    assert not missing, (
        f"endpoints without a declared scope (they answer admin keys only): {missing}; "
        "add each to ROUTE_SCOPES in service/auth/scopes.py")


def test_the_walk_catches_an_endpoint_added_without_a_scope():
    document = {"paths": {"/predict": {"post": {}}, "/brand-new/{name}": {"get": {}}}}
    assert undeclared(document, ScopeTable()) == ["GET /brand-new/{name}"]


def _row(model: str) -> dict[str, Any]:
    entry = get_model(model)
    return entry.reference()[entry.card.feature_names].head(1).to_dict("records")[0]


def _request(method: str, template: str, model: str) -> dict[str, Any]:
    path = (template.replace("{name}", model).replace("{version}", "latest")
            .replace("{rollout_id}", "ro_none").replace("{id}", "none"))
    request: dict[str, Any] = {"method": method, "url": path}
    if ROUTE_SCOPES[(method, template)].model_from == "query":
        request["params"] = {"model": model}
    if method in ("POST", "PUT", "DELETE"):
        body: Any = {}
        if template == "/predict":
            body = {"model": model, "inputs": [_row(model)]}
        request["json"] = body
    return request


def _send(client, request: dict[str, Any], token: str | None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.request(**request, headers=headers)


def _auth_type(response) -> str | None:
    if response.status_code not in (401, 403):
        return None
    body = response.json()
    error = body["error"] if isinstance(body["error"], dict) else body  # v2 shape
    return error["type"]


def _count(reason: str) -> float:
    return REGISTRY.get_sample_value("driftgate_auth_failures_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize(("method", "template"), operations())
def test_permission_matrix(guarded, method: str, template: str):
    client, _, keys = guarded
    rule = ROUTE_SCOPES[(method, template)]
    request = _request(method, template, OTHER_MODEL)
    if rule.scope == PUBLIC:  # health: no key needed, a bad one is not looked at
        for token in (None, keys.revoked, "nonsense"):
            assert _send(client, request, token).status_code == 200
        return

    before = _count("missing_api_key")
    response = _send(client, request, None)
    assert response.status_code == 401 and _auth_type(response) == "missing_api_key", \
        response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert _count("missing_api_key") == before + 1
    assert _auth_type(_send(client, request, keys.by_scope[rule.scope][:-1] + "x")) \
        == "invalid_api_key"
    assert _auth_type(_send(client, request, keys.expired)) == "expired_api_key"
    assert _auth_type(_send(client, request, keys.revoked)) == "revoked_api_key"

    for scope in SCOPES:
        response = _send(client, request, keys.by_scope[scope])
        if scope in (rule.scope, ADMIN):
            assert _auth_type(response) is None, (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert _auth_type(response) == "insufficient_scope"

    # the right scope, limited to another model
    response = _send(client, request, keys.wrong_model[rule.scope])
    if rule.model_from in ("path", "query", "all") or template == "/predict":
        assert response.status_code == 403 and _auth_type(response) == "model_not_allowed", \
            response.text
        allowed = _send(client, _request(method, template, ALLOWED_MODEL),
                        keys.wrong_model[rule.scope])
        assert _auth_type(allowed) is None or rule.model_from == "all", allowed.text
    else:
        assert _auth_type(response) is None, response.text


def test_feedback_of_another_models_prediction_is_unknown_to_a_limited_key(guarded):
    client, _, keys = guarded
    predicted = _send(client, _request("POST", "/predict", OTHER_MODEL), keys.by_scope["predict"])
    assert predicted.status_code == 200, predicted.text
    pid = predicted.json()["ids"][0]
    label = predicted.json()["predictions"][0]
    body = {"method": "POST", "url": "/feedback", "json": {"items": [{"id": pid, "label": label}]}}
    limited = _send(client, body, keys.wrong_model["feedback"]).json()
    assert (limited["accepted"], limited["unknown"]) == ([], [pid])
    assert _send(client, body, keys.by_scope["feedback"]).json()["accepted"] == [pid]


def test_x_api_key_header_and_health_without_a_key(guarded):
    client, _, keys = guarded
    response = client.get(f"/models/{OTHER_MODEL}", headers={"x-api-key": keys.by_scope["read"]})
    assert response.status_code == 200, response.text
    v2 = client.post(f"/v2/models/{OTHER_MODEL}/infer", json={"inputs": []})
    assert v2.status_code == 401 and v2.json()["type"] == "missing_api_key"  # the OIP body
    assert isinstance(v2.json()["error"], str)
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert client.get(path).status_code == 200


ALERT = {"version": "4", "status": "firing", "receiver": "driftgate-gateway", "alerts": [{
    "status": "firing", "fingerprint": "forged01", "startsAt": "2026-11-27T00:00:00Z",
    "labels": {"alertname": "DriftgateFeatureDriftActive", "model": OTHER_MODEL,
               "retrain": "true"}}]}


def test_forged_alertmanager_payload_triggers_nothing(guarded):
    client, context, keys = guarded
    key = dedupe_key(ALERT["alerts"][0])
    for token in (None, keys.by_scope["predict"], keys.by_scope["feedback"],
                  keys.by_scope["read"]):
        response = client.post("/alerts/alertmanager", json=ALERT,
                               headers={"authorization": f"Bearer {token}"} if token else {})
        assert response.status_code in (401, 403), response.text
    assert context.store.kv_get(key) is None
    response = client.post("/alerts/alertmanager", json=ALERT,
                           headers={"authorization": f"Bearer {keys.by_scope['alerts']}"})
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    assert context.store.kv_get(key) is not None


def test_admin_changes_are_audited_under_the_key_id(guarded):
    client, context, keys = guarded
    token = keys.by_scope[ADMIN]
    headers = {"authorization": f"Bearer {token}"}
    version = get_model(ALLOWED_MODEL).version
    response = client.put(f"/models/{ALLOWED_MODEL}/routing", headers=headers,
                          json={"default": version, "reason": "pin"})
    assert response.status_code == 200, response.text
    audit = client.get("/audit", headers=headers, params={"action": "routing.set"})
    assert audit.status_code == 200, audit.text
    records = [r for r in audit.json()["audit"] if r["target"] == ALLOWED_MODEL]
    assert records and records[-1]["actor"] == f"key:{token.split('_')[1]}"
    assert records[-1]["details"]["reason"] == "pin"
    history = client.get(f"/models/{ALLOWED_MODEL}/routing/history", headers=headers).json()
    assert history["history"][-1]["actor"] == f"key:{token.split('_')[1]}"
