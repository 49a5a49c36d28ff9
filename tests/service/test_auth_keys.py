"""API keys: the key ring's refresh (revocation reaches a worker within the interval),
expiry, the open/required start-up, and ``driftgate keys`` / ``driftgate audit``."""

from __future__ import annotations

import json
import logging
import time

import pytest

from service.api_context import OPEN_WARNING, key_ring
from service.auth.keyring import KeyRing
from service.cli import main
from service.config import get_settings
from service.errors import APIError
from service.store.factory import open_store
from tests.service.auth_helpers import make_key
from tests.service.gateway_helpers import configure


@pytest.fixture
def store(tmp_path):
    configure(tmp_path)
    s = open_store(get_settings().resolved_store_url)
    yield s
    s.close()


def test_revocation_reaches_a_running_ring_within_its_refresh_interval(store):
    token = make_key(store, "predict")
    ring = KeyRing(store, refresh_seconds=0.2)
    ring.refresh()
    ring.start()
    try:
        assert ring.authenticate(token).scopes == frozenset({"predict"})
        revoked_at = time.monotonic()
        assert store.key_revoke(token.split("_")[1], "test")
        while True:
            try:
                ring.authenticate(token)
            except APIError as error:
                assert error.type == "revoked_api_key"
                break
            assert time.monotonic() - revoked_at < 2.0, "revocation not seen within 2 s"
            time.sleep(0.02)
    finally:
        ring.stop()


def test_expiry_is_checked_on_every_request():
    from service.auth.keys import new_key

    token, row = new_key(["read"], models=None, expires_at=100.0, name=None, actor="t",
                         now=0.0)
    now = [99.0]
    ring = KeyRing(None, clock=lambda: now[0])
    ring.load([row])
    assert ring.authenticate(token).key_id == row.id
    now[0] = 100.0
    with pytest.raises(APIError) as caught:
        ring.authenticate(token)
    assert (caught.value.status, caught.value.type) == (401, "expired_api_key")


def test_a_wrong_secret_of_a_known_id_is_invalid(store):
    token = make_key(store, "admin")
    ring = KeyRing(store)
    ring.refresh()
    forged = token[:16] + ("A" if token[16] != "A" else "B") + token[17:]
    for bad in (forged, "dg_000000000000_" + "x" * 43, "garbage", token + "x"):
        with pytest.raises(APIError) as caught:
            ring.authenticate(bad)
        assert caught.value.type == "invalid_api_key"


def test_open_gateway_warns_and_required_auth_refuses_to_start(store, caplog):
    settings = get_settings()
    with caplog.at_level(logging.WARNING):
        ring = key_ring(store, settings)
    ring.stop()
    assert not ring.enabled and OPEN_WARNING in caplog.text
    strict = settings.model_copy(update={"require_auth": True})
    with pytest.raises(RuntimeError, match="DRIFTGATE_REQUIRE_AUTH"):
        key_ring(store, strict)
    make_key(store, "admin")
    caplog.clear()
    ring = key_ring(store, strict)
    ring.stop()
    assert ring.enabled and OPEN_WARNING not in caplog.text


def test_cli_creates_lists_revokes_and_audits(store, capsys):
    assert main(["keys", "create", "--scope", "predict", "--scope", "feedback",
                 "--models", "diabetes", "--expires", "90d", "--name", "ci"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    key_id = token.split("_")[1]
    assert token.startswith("dg_") and "shown once" in out.err
    (row,) = store.key_list()
    assert (row.id, row.scopes, row.models) == (key_id, ["feedback", "predict"], ["diabetes"])
    assert row.expires_at == pytest.approx(time.time() + 90 * 86400, abs=60)
    assert token not in json.dumps(row.as_json()) and row.key_hash not in token

    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["id"] for k in listed] == [key_id] and "key_hash" not in listed[0]
    assert main(["keys", "revoke", key_id]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["keys", "revoke", key_id])
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out

    assert main(["audit", "--json"]) == 0
    trail = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["target"]) for r in trail] == [("key.create", key_id),
                                                          ("key.revoke", key_id)]
    assert all(r["actor"].startswith("cli:") for r in trail)
    with pytest.raises(SystemExit):
        main(["keys", "create", "--scope", "predict", "--expires", "soon"])


def test_metrics_open_by_default_or_behind_the_read_scope(store):
    from service.auth.guard import authorize

    token = make_key(store, "read")
    predict = make_key(store, "predict")
    ring = KeyRing(store)
    ring.refresh()
    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [],
             "query_string": b""}
    assert authorize(ring, scope, metrics_open=True) is None
    with pytest.raises(APIError) as caught:
        authorize(ring, scope, metrics_open=False)
    assert caught.value.type == "missing_api_key"
    with pytest.raises(APIError) as caught:
        authorize(ring, {**scope, "headers": [(b"authorization", f"Bearer {predict}".encode())]},
                  metrics_open=False)
    assert caught.value.type == "insufficient_scope"
    allowed = authorize(ring, {**scope, "headers": [(b"x-api-key", token.encode())]},
                        metrics_open=False)
    assert allowed is not None and allowed.key_id == token.split("_")[1]


def test_an_endpoint_missing_from_the_table_answers_admin_keys_only(store):
    from service.auth.guard import authorize

    ring = KeyRing(store)
    keys = {scope: make_key(store, scope) for scope in ("predict", "read", "alerts", "admin")}
    ring.refresh()
    for scope, token in keys.items():
        request = {"type": "http", "method": "POST", "path": "/brand-new/thing",
                   "headers": [(b"authorization", f"Bearer {token}".encode())],
                   "query_string": b""}
        if scope == "admin":
            assert authorize(ring, request) is not None
        else:
            with pytest.raises(APIError) as caught:
                authorize(ring, request)
            assert (caught.value.status, caught.value.details) == (403, {"needed": "admin"})
