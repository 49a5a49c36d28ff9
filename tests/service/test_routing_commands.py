"""Routing commands (CLI) and the HTTP admin routes, on a real SQLite store and the real
routing watcher: a change made by either reaches the serving worker."""

from __future__ import annotations

import json

import yaml

from service.cli import main
from tests.service.gateway_helpers import bound_context, make_client
from tests.service.live_helpers import fresh_name, register_version, row
from tests.service.test_live_routing import FAST, until


def predict(client, name: str, rows: list[dict]) -> str:
    response = client.post("/predict", json={"model": name, "inputs": rows})
    assert response.status_code == 200, response.text
    return response.json()["version"]


def test_cli_commands_change_what_the_gateway_serves(tmp_path, demo_models, capsys):
    name = fresh_name("cli")
    v1, v2 = register_version(name, 1.0), register_version(name, 2.0)
    rows = [row(v1)]
    with make_client(tmp_path, {"models": {name: {"default": v1.version}}}, **FAST) as client:
        assert predict(client, name, rows) == v1.version
        assert main(["models", "promote", name, v2.version, "--reason", "retrained"]) == 0
        assert f"default: {v1.version} -> {v2.version} (retrained)" in capsys.readouterr().out
        until(lambda: predict(client, name, rows) == v2.version)
        assert main(["models", "alias", name, "stable", v1.version]) == 0
        assert main(["models", "canary", name, "stable", "--weight", "0.5"]) == 0
        assert main(["models", "shadow", name, v1.version]) == 0
        until(lambda: bound_context().core.router.models[name].shadow is not None)
        described = bound_context().core.router.models[name].describe()
        batching = described.pop("batching")
        assert described == {
            "revision": bound_context().core.router.revision, "default": v2.version,
            "aliases": {"stable": v1.version}, "canary": {"version": v1.version, "weight": 0.5},
            "shadow": v1.version}
        assert sorted(batching) == sorted({v1.version, v2.version})  # each routed version
        assert all(b["setting"] == "auto" for b in batching.values())  # the default
        assert main(["models", "shadow", name, "--off"]) == 0
        assert main(["models", "canary", name, "--off"]) == 0
        assert main(["models", "rollback", name, "--reason", "3 a.m."]) == 0
        until(lambda: predict(client, name, rows) == v1.version)
        capsys.readouterr()
        assert main(["routing", "history", name, "--json"]) == 0
        history = json.loads(capsys.readouterr().out)
        assert [h["action"] for h in history] == [
            "apply", "promote", "alias", "canary", "shadow", "shadow", "canary", "rollback"]
        assert history[-1]["reason"] == "3 a.m." and history[-1]["actor"].startswith("cli:")
        assert [h["revision"] for h in history] == sorted({h["revision"] for h in history})
        # client mistakes: a message and exit code 1, nothing written
        assert main(["models", "promote", name, "no-such-version"]) == 1
        assert main(["models", "canary", name, v2.version, "--weight", "2"]) == 1
        assert "no version or alias 'no-such-version'" in capsys.readouterr().err


def test_routing_apply_is_idempotent_and_prints_the_diff(tmp_path, demo_models, capsys):
    name = fresh_name("apply")
    v1, v2 = register_version(name, 1.0), register_version(name, 2.0)
    with make_client(tmp_path, **FAST) as client:
        rows = [row(v1)]
        assert predict(client, name, rows) == v2.version  # no routing: latest
        path = tmp_path / "gitops.yaml"
        path.write_text(yaml.safe_dump({"models": {name: {"default": v1.version}}}))
        assert main(["routing", "apply", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"{name}: apply set default={v1.version}" in out and "1 change(s)" in out
        until(lambda: predict(client, name, rows) == v1.version)
        assert main(["routing", "apply", str(path)]) == 0
        assert "no changes" in capsys.readouterr().out
        assert bound_context().store.routing_revision() == 1
        path.write_text(yaml.safe_dump({"models": {}}))
        assert main(["routing", "apply", str(path)]) == 0  # not listed: kept without --prune
        assert "no changes" in capsys.readouterr().out
        assert main(["routing", "apply", str(path), "--prune"]) == 0
        assert "routing removed" in capsys.readouterr().out
        until(lambda: predict(client, name, rows) == v2.version)


def test_http_admin_routes(tmp_path, demo_models):
    name = fresh_name("http")
    v1, v2 = register_version(name, 1.0), register_version(name, 2.0)
    rows = [row(v1)]
    with make_client(tmp_path, {"models": {name: {"default": v1.version}}}, **FAST) as client:
        state = client.get(f"/models/{name}/routing").json()
        assert state["revision"] == 1 and state["routing"]["default"] == v1.version
        assert state["serving"]["default"] == v1.version and state["worker"]["revision"] >= 1
        put = client.put(f"/models/{name}/routing", json={
            "default": v2.version, "canary": {"version": v1.version, "weight": 0.25},
            "reason": "new model", "expected_revision": 1})
        assert put.status_code == 200, put.text
        change = put.json()["change"]
        assert change["revision"] == 2 and change["actor"].startswith("http:")
        until(lambda: client.get(f"/models/{name}").json()["serving"]["canary"] is not None)
        detail = client.get(f"/models/{name}").json()["serving"]
        assert detail["default"] == v2.version and detail["revision"] >= 2
        stale = client.put(f"/models/{name}/routing", json={"shadow": v1.version,
                                                            "expected_revision": 1})
        assert stale.status_code == 409 and stale.json()["error"]["type"] == "routing_conflict"
        off = client.put(f"/models/{name}/routing", json={"canary": None})
        assert off.json()["routing"]["canary"] is None and off.json()["routing"]["default"]
        back = client.post(f"/models/{name}/rollback", json={"reason": "errors"})
        assert back.status_code == 200 and back.json()["routing"]["default"] == v1.version
        until(lambda: predict(client, name, rows) == v1.version)
        history = client.get(f"/models/{name}/routing/history").json()["history"]
        assert [h["action"] for h in history] == ["apply", "set", "set", "rollback"]
        assert history[-1]["reason"] == "errors"
        again = client.put(f"/models/{name}/routing", json={"default": v1.version})
        assert again.status_code == 200 and again.json()["change"] is None
        toggled = client.post(f"/models/{name}/rollback")  # no body; toggles back
        assert toggled.status_code == 200 and toggled.json()["routing"]["default"] == v2.version
        for method, path, body, status, kind in [
            ("put", "/models/nope/routing", {"default": "x"}, 404, "unknown_model"),
            ("put", f"/models/{name}/routing", {"default": "nope"}, 404, "unknown_version"),
            ("put", f"/models/{name}/routing", {"default": "nope", "canary": {
                "version": "nope-either", "weight": 0.5}}, 404, "unknown_version"),
            ("put", f"/models/{name}/routing", {"canary": {"version": v2.version,
                                                           "weight": 3}}, 422, "invalid_body"),
            ("put", f"/models/{name}/routing", {"colour": "red"}, 422, "invalid_body"),
            ("put", f"/models/{name}/routing", {"canary": {"version": v2.version,
                                                           "weight": 0.5}}, 422,
             "invalid_routing"),
            ("post", "/models/nope/rollback", None, 404, "unknown_model"),
            ("get", "/models/nope/routing/history", None, 404, "unknown_model"),
        ]:
            kwargs = {"json": body} if body is not None else {}
            response = client.request(method.upper(), path, **kwargs)
            assert response.status_code == status, (path, body, response.text)
            assert response.json()["error"]["type"] == kind
