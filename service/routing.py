"""Route a request (model name, optional version or alias) to a loaded model version.

Per model name: a default version, aliases, an optional canary version that receives a
configured share of the requests that name no version, and an optional shadow version that
receives a copy of those requests; shadow answers are logged, never returned.

The routing table is immutable and swapped whole by :meth:`Router.refresh` (called by the
routing watcher thread): every version it routes to was loaded and warmed before the swap,
so a request sees either the old table or the new one, never a version still loading. A
version that fails to load or warm is never routed (``on_failure`` records why); versions
the new table no longer routes to are unloaded once their in-flight requests have drained.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from models.card import ModelCard
from models.registry import RegisteredModel, RegistryError, get_model
from service.config import BatchingConfig, ServedModelConfig
from service.errors import APIError, not_found
from service.routing_state import LATEST, resolve
from service.runtime import LoadedModel

log = logging.getLogger(__name__)

DEFAULT, CANARY, SHADOW = "default", "canary", "shadow"
LOAD_ATTEMPTS = 3  # a version is given up (and the failure recorded) after this many
RETRY_SECONDS = 0.5  # between attempts: a registration may still be copying its files
Registry = Mapping[str, list[RegisteredModel]]  # name -> versions, oldest first
FailureHook = Callable[[str, str, str, str], None]  # model, version, stage, error


@dataclass(frozen=True)
class Route:
    model: LoadedModel
    arm: str
    shadow: LoadedModel | None


class ServedModel:
    """How one model name is served at one routing revision (immutable)."""

    def __init__(
        self, router: Router, name: str, config: ServedModelConfig, revision: int,
        default: LoadedModel, canary: LoadedModel | None, shadow: LoadedModel | None,
    ) -> None:
        self.name = name
        self.config = config
        self.revision = revision
        self.default = default
        self.canary = canary
        self.canary_weight = config.canary.weight if canary is not None and config.canary else 0.0
        self.shadow = shadow
        self._router = router
        self._rng = router.rng

    def route(self, version: str | None) -> Route:
        if version is not None:
            model = self._router.pinned(self.name, self.config.aliases.get(version, version))
            arm = CANARY if self.canary is not None and model is self.canary else DEFAULT
            return Route(model, arm, None)
        if self.canary is not None and self._rng.random() < self.canary_weight:
            return Route(self.canary, CANARY, self._shadow_for(self.canary))
        return Route(self.default, DEFAULT, self._shadow_for(self.default))

    def _shadow_for(self, model: LoadedModel) -> LoadedModel | None:
        """The shadow copy, unless the shadow version is the one already serving."""
        return None if self.shadow is model else self.shadow

    def routed(self) -> list[LoadedModel]:
        return [m for m in (self.default, self.canary, self.shadow) if m is not None]

    def loaded_versions(self) -> list[LoadedModel]:
        return self._router.loaded_versions(self.name)

    def describe(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "default": self.default.version,
            "aliases": self.config.aliases,
            "canary": (
                {"version": self.canary.version, "weight": self.canary_weight}
                if self.canary
                else None
            ),
            "shadow": self.shadow.version if self.shadow else None,
            "batching": {m.version: m.batching_info() for m in self.routed()},
        }


class Router:
    """All served model names of this worker: every registered name, routed as the
    store says (``default: latest`` for a name without routing)."""

    def __init__(self, seed: int | None = None, on_failure: FailureHook | None = None) -> None:
        self.rng = random.Random(seed)
        self.on_failure = on_failure
        self.revision = -1  # nothing applied yet
        self._table: dict[str, ServedModel] = {}
        self._registry: Registry = {}
        self._cache: dict[tuple[str, str], LoadedModel] = {}
        self._retiring: dict[tuple[str, str], LoadedModel] = {}
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()  # the caches; requests and the watcher share them
        self._cards: dict[tuple[str, str], ModelCard | None] = {}

    @property
    def models(self) -> dict[str, ServedModel]:
        """The current table (replaced, never mutated)."""
        return self._table

    def served(self, name: str) -> ServedModel:
        try:
            return self._table[name]
        except KeyError:
            raise not_found(
                "unknown_model", f"unknown model {name!r}", served=sorted(self._table)
            ) from None

    def route(self, name: str, version: str | None = None) -> Route:
        return self.served(name).route(version)

    # -- applying a routing revision -----------------------------------------------------
    def refresh(
        self, revision: int, specs: Mapping[str, ServedModelConfig], registry: Registry
    ) -> None:
        """Load (and warm) what ``specs`` route to, then swap the table in one assignment.

        A role whose version cannot be loaded keeps serving what it served (the default)
        or ends (canary, shadow)."""
        table: dict[str, ServedModel] = {}
        for name, versions in registry.items():
            if not versions:
                continue
            config = specs.get(name) or ServedModelConfig()
            old = self._table.get(name)
            default = self._role(name, config, config.default, versions)
            default = default or (old.default if old else None)
            if default is None:
                continue
            canary = None
            if config.canary is not None and config.canary.weight > 0:
                canary = self._role(name, config, config.canary.version, versions)
            shadow = self._role(name, config, config.shadow, versions) if config.shadow else None
            table[name] = ServedModel(self, name, config, revision, default, canary, shadow)
        self._registry = registry
        self._table = table
        self.revision = revision
        self._retire({(m.name, m.version) for s in table.values() for m in s.routed()})

    def _role(
        self, name: str, config: ServedModelConfig, wanted: str,
        versions: list[RegisteredModel],
    ) -> LoadedModel | None:
        version = resolve(config, wanted, versions)
        if version is None:
            log.warning("routing of %s names %r, which is not registered here", name, wanted)
            return None
        entry = next(v for v in versions if v.version == version)
        return self._obtain(entry, config.batching)

    def _obtain(
        self, entry: RegisteredModel, batching: BatchingConfig | None
    ) -> LoadedModel | None:
        """The loaded, warmed version (loading it now if needed) batching as its name's
        routing says, or None if it failed."""
        key = (entry.name, entry.version)
        with self._lock:
            found = self._cache.get(key) or self._retiring.pop(key, None)
            if found is not None:
                self._cache[key] = found
        if found is not None:
            found.configure_batching(batching)
            return found
        attempts, last = self._failures.get(key, (0, 0.0))
        if attempts >= LOAD_ATTEMPTS or time.monotonic() - last < RETRY_SECONDS:
            return None
        stage = "load"
        try:
            model = LoadedModel(entry)
            stage = "warm"
            model.warm()
        except Exception as exc:  # any failure: this version is not routed
            attempts += 1
            self._failures[key] = (attempts, time.monotonic())
            log.warning("cannot %s %s (attempt %d): %r", stage, entry.tag, attempts, exc)
            if attempts >= LOAD_ATTEMPTS and self.on_failure is not None:
                self.on_failure(entry.name, entry.version, stage, repr(exc))
            return None
        self._failures.pop(key, None)
        model.configure_batching(batching)
        with self._lock:
            return self._cache.setdefault(key, model)

    def retry_pending(self) -> bool:
        """Whether a failed version is due another attempt (the watcher then refreshes)."""
        now = time.monotonic()
        return any(
            n < LOAD_ATTEMPTS and now - t >= RETRY_SECONDS for n, t in self._failures.values()
        )

    def _retire(self, keep: set[tuple[str, str]]) -> None:
        with self._lock:
            for key in [k for k in self._cache if k not in keep]:
                self._retiring[key] = self._cache.pop(key)

    def unload_drained(self) -> list[LoadedModel]:
        """Forget retired versions nobody is using any more (memory goes with the last
        reference: a request that still holds one finishes on it)."""
        with self._lock:
            drained = [k for k, m in self._retiring.items() if m.inflight == 0]
            gone = [self._retiring.pop(k) for k in drained]
        for model in gone:
            model.close()
            log.info("unloaded %s:%s", model.name, model.version)
        return gone

    # -- pinned requests -----------------------------------------------------------------
    def pinned(self, name: str, version: str) -> LoadedModel:
        """A version a request names explicitly (loaded on first use)."""
        if version == LATEST:
            versions = self._registry.get(name) or []
            version = versions[-1].version if versions else version
        key = (name, version)
        with self._lock:
            found = self._cache.get(key) or self._retiring.pop(key, None)
            if found is not None:
                self._cache[key] = found
                return found
        try:
            entry = get_model(name, None if version == LATEST else version)
        except RegistryError as exc:
            raise not_found("unknown_version", str(exc), model=name, version=version) from exc
        served = self._table.get(name)
        model = self._obtain(entry, served.config.batching if served else None)
        if model is None:
            raise APIError(503, "version_unavailable",
                           f"{entry.tag} failed to load; see /monitoring/events",
                           {"model": name, "version": entry.version})
        return model

    def loaded(self, name: str, version: str) -> LoadedModel | None:
        return self._cache.get((name, version))

    def loaded_versions(self, name: str) -> list[LoadedModel]:
        with self._lock:
            return [m for (n, _), m in self._cache.items() if n == name]

    # -- cards -----------------------------------------------------------------------------
    def card_of(self, name: str, version: str) -> ModelCard | None:
        """The card of a logged version: a loaded one, else the registry's (looked up once)."""
        key = (name, version)
        if key not in self._cards:
            loaded = self.loaded(name, version)
            if loaded is not None:
                self._cards[key] = loaded.card
            else:
                try:
                    self._cards[key] = get_model(name, version).card
                except RegistryError:
                    return None  # maybe registered later: look again next time
        return self._cards[key]

    def reference_fingerprint(self, name: str) -> str | None:
        """Training-data fingerprint of the version a model name serves by default."""
        served = self._table.get(name)
        return served.default.card.lineage.data_fingerprint if served else None
