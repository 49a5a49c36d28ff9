"""``driftgate keys create|list|revoke`` and ``driftgate audit`` (they write to the store
named by ``DRIFTGATE_STORE_URL`` / ``DRIFTGATE_DATA_DIR``, with or without a gateway)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from service.auth.keys import SCOPES, new_key, parse_duration
from service.store.base import AccessStore
from service.times import parse_time


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def create(store: AccessStore, args: argparse.Namespace, actor: str) -> int:
    models = [m for item in args.models or [] for m in item.split(",") if m.strip()]
    now = time.time()
    try:
        expires = now + parse_duration(args.expires) if args.expires else None
        token, row = new_key(args.scope, models=models or None, expires_at=expires,
                             name=args.name, actor=actor, now=now)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    store.key_insert(row)
    print(f"created key {row.id}: scopes {','.join(row.scopes)}, models "
          f"{','.join(row.models) if row.models else 'all'}, expires {_when(expires)}",
          file=sys.stderr)
    print("the key is shown once; store it in your secret manager:", file=sys.stderr)
    print(token)
    return 0


def listing(store: AccessStore, args: argparse.Namespace) -> int:
    keys = store.key_list()
    if args.json:
        json.dump([k.as_json() for k in keys], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    now = time.time()
    for k in keys:
        state = ("revoked" if k.revoked_at is not None else
                 "expired" if k.expires_at is not None and k.expires_at <= now else "active")
        print(f"{k.id} {state:8} scopes={','.join(k.scopes)} "
              f"models={','.join(k.models) if k.models else 'all'} expires={_when(k.expires_at)}"
              f" name={k.name or '-'} created={_when(k.created_at)} by {k.created_by}")
    if not keys:
        print("no API keys: the gateway is open (driftgate keys create --scope admin)")
    return 0


def revoke(store: AccessStore, args: argparse.Namespace, actor: str) -> int:
    if not store.key_revoke(args.key_id, actor):
        raise SystemExit(f"error: no active key {args.key_id!r}")
    print(f"revoked {args.key_id}: every gateway refuses it within its key refresh interval")
    return 0


def audit(store: AccessStore, args: argparse.Namespace) -> int:
    records = store.audit_read(parse_time(args.since), args.action, args.limit)
    if args.json:
        json.dump([r.as_json() for r in records], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    for r in records:
        print(f"{_when(r.ts)} {r.actor} {r.action} {r.target or '-'} "
              f"{json.dumps(r.details, default=str, sort_keys=True)}")
    return 0


def add_commands(groups: Any, store: Callable[[], Any], actor: Callable[[], str]) -> None:
    """Add ``keys`` and ``audit`` to the ``driftgate`` parser."""
    keys = groups.add_parser("keys", help="scoped API keys").add_subparsers(
        dest="command", required=True)
    make = keys.add_parser("create", help="create a key (printed once)")
    make.add_argument("--scope", action="append", required=True, choices=SCOPES,
                      help="repeat for several scopes; admin may do everything")
    make.add_argument("--models", action="append",
                      help="limit the key to these models (comma separated)")
    make.add_argument("--expires", help="lifetime, e.g. 90d, 12h (default: never)")
    make.add_argument("--name", help="what the key is for")
    make.set_defaults(func=lambda a: create(store(), a, actor()))
    show = keys.add_parser("list", help="every key (never its secret)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=lambda a: listing(store(), a))
    drop = keys.add_parser("revoke", help="revoke a key by id")
    drop.add_argument("key_id")
    drop.set_defaults(func=lambda a: revoke(store(), a, actor()))

    trail = groups.add_parser("audit", help="admin actions: keys, routing, rollouts, models")
    trail.add_argument("--since", help="ISO time or unix seconds")
    trail.add_argument("--action", help="only this action, e.g. key.create")
    trail.add_argument("--limit", type=int, default=1000)
    trail.add_argument("--json", action="store_true")
    trail.set_defaults(func=lambda a: audit(store(), a))
