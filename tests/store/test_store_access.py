"""Contract tests of API keys and the audit trail (both backends)."""

from __future__ import annotations

import pytest

from service.store import Store
from service.store.entities import ApiKeyRow


def _key(key_id: str, **fields) -> ApiKeyRow:
    base = {"key_hash": "h" * 64, "name": "ci", "scopes": ["predict"], "models": None,
            "created_at": 100.0, "created_by": "cli:alice"}
    return ApiKeyRow(id=key_id, **{**base, **fields})


def test_keys_roundtrip_and_revocation_is_audited(store: Store) -> None:
    assert store.key_list() == []
    a = _key("k1", scopes=["predict", "feedback"], models=["diabetes"], expires_at=500.0)
    b = _key("k2", created_at=101.0, name=None)
    store.key_insert(a)
    store.key_insert(b)
    assert store.key_list() == [a, b]
    assert store.key_revoke("k1", "cli:bob", ts=200.0) is True
    assert store.key_revoke("k1", "cli:bob") is False  # already revoked
    assert store.key_revoke("nope", "cli:bob") is False
    listed = {k.id: k for k in store.key_list()}
    assert listed["k1"].revoked_at == 200.0 and listed["k2"].revoked_at is None
    assert "key_hash" not in listed["k1"].as_json()
    audit = store.audit_read()
    assert [(r.actor, r.action, r.target) for r in audit] == [
        ("cli:alice", "key.create", "k1"), ("cli:alice", "key.create", "k2"),
        ("cli:bob", "key.revoke", "k1")]
    assert audit[0].details["scopes"] == ["predict", "feedback"]
    assert "h" * 64 not in str([r.as_json() for r in audit])  # no hash in the trail


def test_duplicate_key_id_is_refused(store: Store) -> None:
    store.key_insert(_key("k1"))
    with pytest.raises(Exception):  # noqa: B017 - the backend's integrity error
        store.key_insert(_key("k1"))
    assert len(store.key_list()) == 1


def test_audit_filters_and_limit_keep_order(store: Store) -> None:
    for i in range(5):
        store.audit_append(f"key:{i}", "routing.promote" if i % 2 else "model.register",
                           f"m{i}", {"i": i})
    records = store.audit_read()
    assert [r.details["i"] for r in records] == [0, 1, 2, 3, 4]
    assert [r.details["i"] for r in store.audit_read(limit=2)] == [3, 4]  # latest, in order
    assert [r.target for r in store.audit_read(action="routing.promote")] == ["m1", "m3"]
    assert store.audit_read(since=records[-1].ts + 10) == []


def test_routing_changes_and_rollout_starts_are_audited(store: Store) -> None:
    state = {"default": "v1", "aliases": {}, "canary": None, "shadow": None}
    store.routing_write({"m": state}, actor="key:ab12", action="promote", reason="why")
    store.rollout_create("ro_1", "m", {"actor": "key:ab12", "version": "v2", "steps": [0.5]})
    audit = store.audit_read()
    assert [(r.actor, r.action, r.target) for r in audit] == [
        ("key:ab12", "routing.promote", "m"), ("key:ab12", "rollout.start", "m")]
    assert audit[0].details["after"] == state and audit[0].details["reason"] == "why"
    assert audit[1].details["rollout"] == "ro_1"


def test_audit_trail_is_append_only_in_sql(store: Store) -> None:
    store.audit_append("cli:alice", "model.register", "m")
    for sql in ("UPDATE audit SET actor = 'mallory'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"), store._write() as cur:  # type: ignore[attr-defined]
            cur.execute(sql)
    assert [r.actor for r in store.audit_read()] == ["cli:alice"]
