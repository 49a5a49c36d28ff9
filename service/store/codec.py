"""JSON encoding of record fields: numpy scalars and arrays become plain JSON, non-finite
floats become null (jsonb and strict JSON readers reject NaN)."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "loads"]


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default).encode


def dumps(obj: Any) -> str | None:
    """Compact JSON text, or None for None (stored as SQL NULL)."""
    if obj is None:
        return None
    try:
        return _encode(obj)
    except ValueError:  # NaN or infinity somewhere
        return json.dumps(
            _finite(json.loads(json.dumps(obj, default=_default))), separators=(",", ":")
        )


def loads(text: str | bytes | None) -> Any:
    """Inverse of :func:`dumps` (None stays None)."""
    return None if text is None else json.loads(text)
