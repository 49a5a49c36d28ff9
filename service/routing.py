"""Route a request (model name, optional version or alias) to a loaded model version.

Per model name: a default version, aliases, an optional canary version that receives a
configured share of the requests that name no version, and an optional shadow version that
receives a copy of those requests; shadow answers are logged, never returned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from models.card import ModelCard
from models.registry import RegistryError, get_model, model_names
from service.config import ServedModelConfig, ServingConfig
from service.errors import not_found
from service.runtime import LoadedModel

DEFAULT, CANARY, SHADOW = "default", "canary", "shadow"


@dataclass
class Route:
    model: LoadedModel
    arm: str
    shadow: LoadedModel | None


class ServedModel:
    """The versions one model name serves, loaded in this worker."""

    def __init__(self, name: str, config: ServedModelConfig, rng: random.Random) -> None:
        self.name = name
        self.config = config
        self._rng = rng
        self._loaded: dict[str, LoadedModel] = {}
        self._resolved: dict[str, str] = {}
        self.default = self._load(self._resolve(config.default))
        self.canary = self._load(self._resolve(config.canary.version)) if config.canary else None
        self.canary_weight = config.canary.weight if config.canary else 0.0
        self.shadow = self._load(self._resolve(config.shadow)) if config.shadow else None

    def _resolve(self, version: str) -> str:
        """A version or alias to a registered version (cached: the store is scanned once)."""
        wanted = self.config.aliases.get(version, version)
        if wanted not in self._resolved:
            try:
                self._resolved[wanted] = get_model(self.name, wanted).version
            except RegistryError as exc:
                raise not_found(
                    "unknown_version", str(exc), model=self.name, version=wanted
                ) from exc
        return self._resolved[wanted]

    def _load(self, version: str) -> LoadedModel:
        if version not in self._loaded:
            self._loaded[version] = LoadedModel.load(self.name, version)
        return self._loaded[version]

    def route(self, version: str | None) -> Route:
        if version is not None:
            model = self._load(self._resolve(version))
            arm = CANARY if self.canary is not None and model is self.canary else DEFAULT
            return Route(model, arm, None)
        if self.canary is not None and self._rng.random() < self.canary_weight:
            return Route(self.canary, CANARY, self._shadow_for(self.canary))
        return Route(self.default, DEFAULT, self._shadow_for(self.default))

    def _shadow_for(self, model: LoadedModel) -> LoadedModel | None:
        """The shadow copy, unless the shadow version is the one already serving."""
        return None if self.shadow is model else self.shadow

    def loaded(self, version: str) -> LoadedModel | None:
        return self._loaded.get(version)

    def loaded_versions(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    def describe(self) -> dict[str, Any]:
        return {
            "default": self.default.version,
            "aliases": self.config.aliases,
            "canary": (
                {"version": self.canary.version, "weight": self.canary_weight}
                if self.canary
                else None
            ),
            "shadow": self.shadow.version if self.shadow else None,
        }


class Router:
    """All served model names of this worker."""

    def __init__(self, serving: ServingConfig, seed: int | None = None) -> None:
        rng = random.Random(seed)
        configs = serving.models or {name: ServedModelConfig() for name in model_names()}
        self.models = {name: ServedModel(name, cfg, rng) for name, cfg in configs.items()}
        self._cards: dict[tuple[str, str], ModelCard | None] = {}

    def served(self, name: str) -> ServedModel:
        try:
            return self.models[name]
        except KeyError:
            raise not_found(
                "unknown_model", f"unknown model {name!r}", served=sorted(self.models)
            ) from None

    def route(self, name: str, version: str | None = None) -> Route:
        return self.served(name).route(version)

    def card_of(self, name: str, version: str) -> ModelCard | None:
        """The card of a logged version: a loaded one, else the registry's (looked up once)."""
        key = (name, version)
        if key not in self._cards:
            served = self.models.get(name)
            loaded = served.loaded(version) if served else None
            if loaded is not None:
                self._cards[key] = loaded.card
            else:
                try:
                    self._cards[key] = get_model(name, version).card
                except RegistryError:
                    self._cards[key] = None
        return self._cards[key]

    def reference_fingerprint(self, name: str) -> str | None:
        """Training-data fingerprint of the version a model name serves by default."""
        served = self.models.get(name)
        return served.default.card.lineage.data_fingerprint if served else None
