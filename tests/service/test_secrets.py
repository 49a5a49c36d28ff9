"""Secrets: webhook secrets and the DSN from the environment or files, inline secrets warned
about, and no secret or DSN password in any response body or log line of a gateway
configured with them (real PostgreSQL, DSN with a password)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from service.auth.keys import ADMIN
from service.config import ServingConfig, Settings, WebhookEndpoint
from service.secrets import redact_dsn
from service.store.factory import open_store
from tests.pg_fixtures import pg_database, pg_schema_url  # noqa: F401
from tests.service.auth_helpers import guarded_client

WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXdlYmhvb2stY2FuYXJ5LTEyMzQ1Ng=="
DSN_PASSWORD = "pw-canary-7f3a9c"


def test_webhook_secret_from_env_or_file_and_never_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    (tmp_path / "hook").write_text(WEBHOOK_SECRET + "\n")
    with caplog.at_level(logging.WARNING):
        from_env = WebhookEndpoint(url="http://r/1", secret_env="HOOK_SECRET")
        from_file = WebhookEndpoint(url="http://r/2", secret_file=str(tmp_path / "hook"))
    assert from_env.secret == from_file.secret == WEBHOOK_SECRET
    assert not caplog.records  # no warning for secrets kept out of the file
    inline = WebhookEndpoint(url="http://r/3", secret=WEBHOOK_SECRET)
    assert "inline" in caplog.text and WEBHOOK_SECRET not in caplog.text
    for endpoint in (from_env, from_file, inline):
        assert WEBHOOK_SECRET not in repr(endpoint) + str(endpoint.model_dump())
    with pytest.raises(ValueError) as caught:  # a broken serving file: the error quotes nothing
        ServingConfig.model_validate({"webhooks": [
            {"url": "http://r/5", "secret": WEBHOOK_SECRET, "secret_env": "HOOK_SECRET"}]})
    assert "exactly one" in str(caught.value) and WEBHOOK_SECRET[-8:] not in str(caught.value)
    for bad in ({}, {"secret": WEBHOOK_SECRET, "secret_env": "HOOK_SECRET"},
                {"secret_env": "NOT_SET_ANYWHERE"}, {"secret_file": str(tmp_path / "none")}):
        with pytest.raises(ValueError) as caught:
            WebhookEndpoint(url="http://r/4", **bad)
        assert WEBHOOK_SECRET not in str(caught.value)


def test_dsn_from_a_file_and_redacted(tmp_path):
    dsn = f"postgresql://app:{DSN_PASSWORD}@db.internal:5432/driftgate"
    (tmp_path / "dsn").write_text(dsn + "\n")
    settings = Settings(store_url_file=tmp_path / "dsn")
    assert settings.resolved_store_url == dsn
    assert DSN_PASSWORD not in repr(Settings(store_url=dsn)) + repr(settings)
    assert DSN_PASSWORD not in redact_dsn(dsn) and "db.internal" in redact_dsn(dsn)


def test_store_errors_never_carry_the_dsn_password():
    for dsn in (f"postgresql://postgres:{DSN_PASSWORD}@127.0.0.1:1/x",
                f"postgresql://postgres:{DSN_PASSWORD}@127.0.0.1:5432/postgres?bad=1"):
        with pytest.raises(psycopg.OperationalError) as caught:
            open_store(dsn)
        assert DSN_PASSWORD not in str(caught.value)


@pytest.fixture(scope="module")
def secret_gateway(demo_models, pg_database, tmp_path_factory) -> Iterator[Any]:  # noqa: F811
    """A gateway on PostgreSQL through a DSN with a password (trust auth ignores it), with
    one webhook secret from a file and one inline."""
    import os

    tmp = tmp_path_factory.mktemp("secrets")
    (tmp / "hook").write_text(WEBHOOK_SECRET)
    dsn = pg_schema_url(pg_database).replace("postgres@", f"postgres:{DSN_PASSWORD}@", 1)
    assert DSN_PASSWORD in dsn
    serving = {"webhooks": [{"url": "http://127.0.0.1:9/a", "secret_file": str(tmp / "hook")},
                            {"url": "http://127.0.0.1:9/b", "secret": WEBHOOK_SECRET}]}
    os.environ["DRIFTGATE_STORE_URL"] = dsn
    try:
        with guarded_client(tmp, serving) as bound:
            yield bound
    finally:
        os.environ.pop("DRIFTGATE_STORE_URL", None)


def test_no_secret_in_any_response_or_log_line(secret_gateway, caplog):
    from service.api import app

    client, context, keys = secret_gateway
    admin = {"authorization": f"Bearer {keys.by_scope[ADMIN]}"}
    assert context.store is not None and "Postgres" in repr(context.store)
    bodies: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for path, operations in app.openapi()["paths"].items():
            concrete = (path.replace("{name}", "diabetes").replace("{version}", "latest")
                        .replace("{rollout_id}", "ro_x").replace("{id}", "x"))
            for method in operations:
                for headers in (admin, {}):
                    response = client.request(method.upper(), concrete, headers=headers,
                                              json={} if method != "get" else None)
                    assert response.status_code < 500, (method, path, response.text)
                    bodies.append(response.text + str(response.headers))
        context.store.close()  # the store goes away: errors must not name it either
        for path in ("/monitoring/status", "/monitoring/events", "/audit"):
            response = client.get(path, headers=admin)
            bodies.append(response.text)
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    everything = "\n".join(bodies) + logged
    assert WEBHOOK_SECRET not in everything
    assert DSN_PASSWORD not in everything
    assert keys.by_scope[ADMIN] not in logged
