"""Rollout commands (CLI) and HTTP routes on the real ASGI app and a real SQLite store: a
started rollout routes its canary to the serving worker; status, abort and the errors."""

from __future__ import annotations

import json

from service.cli import main
from tests.service.gateway_helpers import bound_context, make_client
from tests.service.live_helpers import fresh_name, register_version, row
from tests.service.test_live_routing import FAST, until


def test_http_rollout_routes(tmp_path, demo_models):
    name = fresh_name("rohttp")
    v1, v2 = register_version(name, 1.0), register_version(name, 2.0)
    with make_client(tmp_path, {"models": {name: {"default": v1.version}}}, **FAST) as client:
        started = client.post(f"/models/{name}/rollouts", json={
            "version": v2.version, "steps": [10, 50, 100], "step_seconds": 30,
            "min_requests": 100, "reason": "weekly retrain"})
        assert started.status_code == 201, started.text
        body = started.json()
        assert (body["status"], body["baseline"], body["steps"]) == (
            "running", v1.version, [0.1, 0.5])
        until(lambda: (bound_context().core.router.models[name].canary_weight == 0.1))
        response = client.post("/predict", json={"model": name, "inputs": [row(v1)] * 3})
        assert response.status_code == 200
        again = client.post(f"/models/{name}/rollouts", json={"version": v2.version})
        assert again.status_code == 409 and again.json()["error"]["type"] == "rollout_running"
        listed = client.get(f"/models/{name}/rollouts").json()["rollouts"]
        assert [r["id"] for r in listed] == [body["id"]]
        one = client.get(f"/models/{name}/rollouts/{body['id']}")
        assert one.status_code == 200 and one.json()["version"] == v2.version
        aborted = client.request("DELETE", f"/models/{name}/rollouts/{body['id']}",
                                 json={"reason": "not today"})
        assert aborted.status_code == 200, aborted.text
        assert aborted.json()["status"] == "aborted"
        until(lambda: bound_context().core.router.models[name].canary is None)
        history = client.get(f"/models/{name}/routing/history").json()["history"]
        assert [h["actor"] for h in history[-2:]] == [f"rollout:{body['id']}"] * 2
        assert client.delete(f"/models/{name}/rollouts/{body['id']}").status_code == 409
        for path, status in [(f"/models/{name}/rollouts/ro_nope", 404),
                             ("/models/no-such-model/rollouts", 404)]:
            assert client.get(path).status_code == status
        for payload, status in [({"version": "nope"}, 404), ({"version": v1.version}, 422),
                                ({"version": v2.version, "steps": [50, 10]}, 422),
                                ({"version": v2.version, "steps": [0]}, 422),
                                ({"version": v2.version, "extra": 1}, 422), ({}, 422),
                                ({"version": v2.version, "max_disagreement": 1.5}, 422)]:
            answer = client.post(f"/models/{name}/rollouts", json=payload)
            assert answer.status_code == status, (payload, answer.text)


def test_cli_rollout_commands(tmp_path, demo_models, capsys):
    name = fresh_name("rocli")
    v1, v2 = register_version(name, 1.0), register_version(name, 2.0)
    with make_client(tmp_path, {"models": {name: {"default": v1.version}}}, **FAST):
        assert main(["rollout", "start", name, "--version", v2.version, "--steps", "5,25,100",
                     "--step-seconds", "2", "--min-requests", "10"]) == 0
        out = capsys.readouterr().out
        assert f"{v1.version} -> {v2.version} running, step 1/2 of 5,25 %" in out
        assert main(["rollout", "status", name, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["status"] == "running" and status["min_requests"] == 10
        assert main(["rollout", "abort", name, "--reason", "ops"]) == 0
        assert "aborted" in capsys.readouterr().out
        assert main(["rollout", "abort", name]) == 1
        assert "is aborted" in capsys.readouterr().err
        assert main(["rollout", "start", name, "--version", v2.version, "--shadow-first",
                     "--max-disagreement", "0.2"]) == 0
        assert "running, shadow step (then 5,25,50 %)" in capsys.readouterr().out
        until(lambda: bound_context().core.router.models[name].shadow is not None)
        assert main(["rollout", "abort", name]) == 0
        assert main(["rollout", "start", name, "--version", "nope"]) == 1
        assert main(["rollout", "status", "no-such-model"]) == 1
