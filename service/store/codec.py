"""JSON encoding of record fields: numpy scalars and arrays become plain JSON, non-finite
floats become null (jsonb and strict JSON readers reject NaN)."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "loads"]


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> str | None:
    """Compact JSON text, or None for None (stored as SQL NULL). orjson writes NaN and
    infinities as null."""
    return None if obj is None else dumps_bytes(obj).decode()


def dumps_bytes(obj: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes (``None`` becomes ``null``)."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        # jsonb gives floats beyond 2**64 back as integers; orjson has no bigints
        return json.dumps(obj, default=_default, separators=(",", ":")).encode()


def loads(text: str | bytes | None) -> Any:
    """Inverse of :func:`dumps` (None stays None)."""
    return None if text is None else orjson.loads(text)
