"""The keys a gateway worker checks requests against: an in-memory copy of the store's key
table, refreshed every ``refresh_seconds`` by a background thread.

A request costs one SHA-256 and a dict lookup; the store is never on the request path.
A key created or revoked anywhere reaches every worker of every replica within one refresh
interval plus one store read. When the store does not answer, the last copy stays in force.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.auth.keys import ADMIN, hash_key, key_id_of
from service.errors import APIError
from service.store.base import AccessStore
from service.store.entities import ApiKeyRow

log = logging.getLogger(__name__)

_DUMMY_HASH = hash_key("dg_000000000000_" + "A" * 43)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, its scopes and the models it is limited to (None: all)."""

    key_id: str
    scopes: frozenset[str]
    models: frozenset[str] | None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


def unauthorized(reason: str, message: str) -> APIError:
    return APIError(401, reason, message)


def forbidden(reason: str, message: str, details: object = None) -> APIError:
    return APIError(403, reason, message, details)


class KeyRing:
    """Authenticates tokens against the stored keys (see the module docstring).

    Authentication is on once any key exists in the store (revoked and expired ones count:
    revoking every key does not reopen the gateway)."""

    def __init__(
        self, store: AccessStore | None, refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._keys: dict[str, tuple[ApiKeyRow, Principal]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def load(self, keys: Iterable[ApiKeyRow]) -> None:
        """Replace the copy (each key's principal is built here, not per request)."""
        self._keys = {k.id: (k, _principal(k)) for k in keys}

    def refresh(self) -> None:
        """Reload the keys from the store (the last copy stays if it does not answer)."""
        if self.store is None:
            return
        try:
            self.load(self.store.key_list())
        except Exception as exc:
            log.warning("API keys not refreshed, the last copy stays in force: %r", exc)

    def start(self) -> None:
        if self.store is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="driftgate-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a valid key; :class:`APIError` 401 otherwise. The secret is
        compared in constant time, and an unknown id costs the same comparison."""
        if not token:
            raise unauthorized("missing_api_key", "this endpoint needs an API key: send "
                               "'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        key_id = key_id_of(token)
        found = self._keys.get(key_id) if key_id is not None else None
        stored = found[0].key_hash if found is not None else _DUMMY_HASH
        if not hmac.compare_digest(hash_key(token), stored) or found is None:
            raise unauthorized("invalid_api_key", "the API key is not valid")
        row, principal = found
        if row.revoked_at is not None:
            raise unauthorized("revoked_api_key", f"the API key {row.id} was revoked")
        if row.expires_at is not None and row.expires_at <= self.clock():
            raise unauthorized("expired_api_key", f"the API key {row.id} has expired")
        return principal


def _principal(row: ApiKeyRow) -> Principal:
    models = frozenset(row.models) if row.models is not None else None
    return Principal(row.id, frozenset(row.scopes), models)
