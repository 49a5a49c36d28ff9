"""Personal data kept out of the prediction log: a card feature marked ``pii: drop`` is
used for the prediction and never stored; ``pii: hash`` is stored as a keyed HMAC-SHA256
(``DRIFTGATE_PII_KEY``), so the log, exports and the monitor see a stable token per value
and drift on a hashed categorical is still detected (the monitor hashes the reference's
values and the card's categories with the same key).

>>> from models.card import FeatureSpec
>>> policy = PiiPolicy([FeatureSpec("zip", "categorical", pii="hash"),
...                     FeatureSpec("age", pii="drop"), FeatureSpec("x")], b"k")
>>> stored = policy.apply({"zip": "10115", "age": 41, "x": 1.0})
>>> sorted(stored), stored["zip"] == policy.token("10115"), len(stored["zip"])
(['x', 'zip'], True, 32)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from models.card import FeatureSpec

PREFIX = "h:"


class PiiPolicy:
    """What one card's PII markings do to a row before it is stored."""

    def __init__(self, features: Sequence[FeatureSpec], key: bytes | None) -> None:
        self.hashed = [f.name for f in features if f.pii == "hash"]
        self.dropped = {f.name for f in features if f.pii == "drop"}
        if self.hashed and not key:
            raise ValueError(f"features {self.hashed} are marked pii: hash, but no key is set: "
                             "set DRIFTGATE_PII_KEY (or DRIFTGATE_PII_KEY_FILE)")
        self.key = key or b""
        self.active = bool(self.hashed or self.dropped)

    def token(self, value: Any) -> str | None:
        """The stored form of one value (null stays null)."""
        if value is None:
            return None
        text = str(value).lower() if isinstance(value, bool) else str(value)
        digest = hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:30]

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as stored: dropped features removed, hashed ones replaced by tokens."""
        if not self.active:
            return row
        out = {k: v for k, v in row.items() if k not in self.dropped}
        for name in self.hashed:
            if name in out:
                out[name] = self.token(out[name])
        return out

    def apply_columns(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
        """Columns as stored (:meth:`apply` for a batch held column by column)."""
        out = {k: v for k, v in columns.items() if k not in self.dropped}
        for name in self.hashed:
            if name in out:
                out[name] = [self.token(v) for v in out[name]]
        return out

    def card(self, card: dict[str, Any]) -> dict[str, Any]:
        """The card as the monitor sees the stored records: dropped features gone, hashed
        ones categorical over the tokens of their categories."""
        if not self.active:
            return card
        features = []
        for f in card["features"]:
            if f["name"] in self.dropped:
                continue
            if f["name"] in self.hashed:
                categories = f.get("categories") or (
                    ["false", "true"] if f.get("kind") == "boolean" else None)
                f = {**f, "kind": "categorical",
                     "categories": [self.token(c) for c in categories] if categories else None}
            features.append(f)
        return {**card, "features": features}

    def reference(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The reference sample in the stored form (for the monitor's calibration)."""
        if not self.active:
            return frame
        out = frame.drop(columns=[c for c in self.dropped if c in frame.columns])
        for name in self.hashed:
            if name in out.columns:
                out[name] = [None if pd.isna(v) else self.token(v) for v in out[name]]
        return out


def pii_key() -> bytes | None:
    """The configured HMAC key (``DRIFTGATE_PII_KEY`` / ``DRIFTGATE_PII_KEY_FILE``)."""
    from service.config import get_settings
    from service.secrets import read_secret

    settings = get_settings()
    if settings.pii_key is not None:
        return settings.pii_key.get_secret_value().encode()
    if settings.pii_key_file is not None:
        return read_secret(file=settings.pii_key_file).encode()
    return None
