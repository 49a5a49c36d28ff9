"""API keys: random, shown once, stored as a SHA-256 hash under a public id.

A key reads ``dg_<id>_<secret>``: ``id`` (12 hex digits) finds the stored row, the secret
(32 random bytes, base64url) is never stored. The keys are random, so one SHA-256 is
enough (a slow password hash protects guessable secrets; these are not guessable).

>>> token, row = new_key(["predict"], models=["diabetes"], expires_at=None, name="ci",
...                      actor="cli:alice", now=0.0)
>>> key_id_of(token) == row.id, row.key_hash == hash_key(token), token in repr(row)
(True, True, False)
>>> key_id_of("Bearer nonsense") is None
True
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

from service.store.entities import ApiKeyRow

PREDICT, FEEDBACK, READ, ADMIN, ALERTS = "predict", "feedback", "read", "admin", "alerts"
SCOPES = (PREDICT, FEEDBACK, READ, ADMIN, ALERTS)
"""What a key may do; ``admin`` may do everything."""

PREFIX = "dg_"
_TOKEN = re.compile(r"dg_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_LENGTH = len(PREFIX) + 12 + 1 + 43
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The public id of a well-formed key, else None."""
    if len(token) != _LENGTH or not token.startswith(PREFIX):
        return None
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def new_key(
    scopes: Sequence[str], *, models: Sequence[str] | None, expires_at: float | None,
    name: str | None, actor: str, now: float,
) -> tuple[str, ApiKeyRow]:
    """A fresh key (the token, to show once) and the row to store (its hash)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {list(SCOPES)}, not {unknown or 'none'}")
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(id=key_id, key_hash=hash_key(token), name=name,
                    scopes=sorted(set(scopes)), models=sorted(set(models)) if models else None,
                    created_at=now, created_by=actor, expires_at=expires_at)
    return token, row


def parse_duration(text: str) -> float:
    """Seconds in ``90d``, ``12h``, ``30m``, ``45s`` or ``2w``.

    >>> parse_duration("90d"), parse_duration("1.5h")
    (7776000.0, 5400.0)
    """
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"a duration is a number and s, m, h, d or w (90d), not {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]
