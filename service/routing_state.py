"""Routing changes: promote, alias, canary, shadow, rollback and applying ``driftgate.yaml``.

The routing of a model name is a :class:`~service.config.ServedModelConfig` stored as one
JSON document in the store (see :mod:`service.store.routing`); a name without a document is
served with the implicit routing ``default: latest``. The CLI and the HTTP admin routes both
call :class:`RoutingAdmin`; every gateway worker picks the change up from the store
(:mod:`service.routing_watch`). Versions named by a command are checked against the registry
and stored resolved (a concrete version), so what a change means does not move later.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from models.registry import RegisteredModel, list_models
from service.config import CanaryConfig, ServedModelConfig, ServingConfig
from service.errors import APIError, invalid, not_found
from service.store.base import RoutingStore
from service.store.entities import RoutingChange, RoutingConflict

LATEST = "latest"
FILE_ACTOR = "file"
_ATTEMPTS = 5  # compare-and-set retries when another admin changed the same model


def spec_of(document: dict[str, Any] | None) -> ServedModelConfig:
    """The routing of a stored document (None: the implicit ``default: latest``)."""
    return ServedModelConfig.model_validate(document or {})


def document_of(spec: ServedModelConfig) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def resolve(
    spec: ServedModelConfig, wanted: str, versions: Sequence[RegisteredModel]
) -> str | None:
    """A version, alias or ``latest`` to a registered version of ``versions`` (oldest
    first), or None when it names none of them."""
    wanted = spec.aliases.get(wanted, wanted)
    if wanted == LATEST:
        return versions[-1].version if versions else None
    return wanted if any(v.version == wanted for v in versions) else None


def created_at(entry: RegisteredModel) -> float:
    return datetime.fromisoformat(entry.creation_time).timestamp()


class RoutingAdmin:
    """Validated routing changes of one store, attributed to ``actor``."""

    def __init__(self, store: RoutingStore, actor: str) -> None:
        self.store = store
        self.actor = actor
        self._versions: dict[str, list[RegisteredModel]] = {}  # one registry scan per change

    # -- reading -------------------------------------------------------------------------
    def versions(self, name: str) -> list[RegisteredModel]:
        if name not in self._versions:
            found = [v for v in list_models(name) if v.name == name]
            if not found:
                raise not_found("unknown_model", f"unknown model {name!r}")
            self._versions[name] = found
        return self._versions[name]

    def current(self, name: str) -> tuple[ServedModelConfig, int]:
        """The stored routing of ``name`` (implicit if none) and its revision (0: none)."""
        snapshot = self.store.routing_read()
        return spec_of(snapshot.states.get(name)), snapshot.revisions.get(name, 0)

    def history(self, name: str, limit: int = 100) -> list[RoutingChange]:
        return self.store.routing_history(name, limit)

    def _version(self, name: str, spec: ServedModelConfig, wanted: str) -> str:
        found = resolve(spec, wanted, self.versions(name))
        if found is None:
            raise not_found(
                "unknown_version", f"model {name!r} has no version or alias {wanted!r}",
                model=name, version=wanted,
            )
        return found

    # -- changing ------------------------------------------------------------------------
    def _change(
        self, name: str, action: str, reason: str | None, edit: Any, expected: int | None = None
    ) -> RoutingChange | None:
        """Read, ``edit(spec) -> spec``, write with compare-and-set; None if unchanged."""
        for _ in range(_ATTEMPTS):
            self._versions.clear()
            spec, revision = self.current(name)
            if expected is not None and expected != revision:
                raise _conflict(RoutingConflict(name, expected, revision))
            new = edit(spec.model_copy(deep=True))
            self.validate(name, new)
            try:
                changes = self.store.routing_write(
                    {name: document_of(new)}, actor=self.actor, action=action, reason=reason,
                    expected={name: revision},
                )
            except RoutingConflict as conflict:
                if expected is not None:
                    raise _conflict(conflict) from None
                continue
            return changes[0] if changes else None
        raise APIError(409, "routing_conflict", f"routing of {name!r} kept changing; retry")

    def validate(self, name: str, spec: ServedModelConfig) -> None:
        """Every version the routing names must be registered (aliases may name any)."""
        versions = self.versions(name)
        for alias, target in spec.aliases.items():
            if alias == LATEST or resolve(ServedModelConfig(), target, versions) is None:
                raise invalid("invalid_routing", f"alias {alias!r} -> {target!r} of {name!r} "
                              "must name a registered version (and not be 'latest')")
        named = [("default", spec.default), ("shadow", spec.shadow),
                 ("canary", spec.canary.version if spec.canary else None)]
        for role, wanted in named:
            if wanted is not None and resolve(spec, wanted, versions) is None:
                raise not_found("unknown_version", f"{role} {wanted!r} of {name!r} is not a "
                                "registered version or alias", model=name, version=wanted)
        if spec.canary is not None and spec.canary.weight > 0 and resolve(
            spec, spec.canary.version, versions
        ) == resolve(spec, spec.default, versions):
            raise invalid("invalid_routing", f"the canary of {name!r} is its default version")

    def promote(self, name: str, version: str, reason: str | None = None) -> RoutingChange | None:
        """Make ``version`` the default; a canary or shadow of it ends (it now serves)."""
        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            target = self._version(name, spec, version)
            spec.default = target
            if spec.canary is not None and resolve(spec, spec.canary.version,
                                                   self.versions(name)) == target:
                spec.canary = None
            if spec.shadow is not None and resolve(spec, spec.shadow,
                                                   self.versions(name)) == target:
                spec.shadow = None
            return spec

        return self._change(name, "promote", reason, edit)

    def alias(
        self, name: str, alias: str, version: str | None, reason: str | None = None
    ) -> RoutingChange | None:
        """Point ``alias`` at ``version`` (None removes it)."""
        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            if version is None:
                spec.aliases.pop(alias, None)
            else:
                spec.aliases[alias] = self._version(name, ServedModelConfig(), version)
            return spec

        return self._change(name, "alias", reason, edit)

    def canary(
        self, name: str, version: str | None, weight: float = 0.0, reason: str | None = None
    ) -> RoutingChange | None:
        """Send ``weight`` of the unpinned requests to ``version`` (None or 0: no canary)."""
        if not 0.0 <= weight <= 1.0:
            raise invalid("invalid_weight", f"weight must be within [0, 1], got {weight}")

        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            if version is None or weight == 0.0:
                spec.canary = None
                return spec
            spec.canary = CanaryConfig(version=self._version(name, spec, version), weight=weight)
            return spec

        return self._change(name, "canary", reason, edit)

    def shadow(
        self, name: str, version: str | None, reason: str | None = None
    ) -> RoutingChange | None:
        """Copy the unpinned requests to ``version`` (answers logged, never returned)."""
        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            spec.shadow = None if version is None else self._version(name, spec, version)
            return spec

        return self._change(name, "shadow", reason, edit)

    def shadow_to_canary(
        self, name: str, version: str, weight: float, reason: str | None = None
    ) -> RoutingChange | None:
        """In one change: ``version`` stops shadowing and takes ``weight`` as the canary."""
        if not 0.0 < weight <= 1.0:
            raise invalid("invalid_weight", f"weight must be within (0, 1], got {weight}")

        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            target = self._version(name, spec, version)
            if spec.shadow is not None and resolve(spec, spec.shadow,
                                                   self.versions(name)) == target:
                spec.shadow = None
            spec.canary = CanaryConfig(version=target, weight=weight)
            return spec

        return self._change(name, "canary", reason, edit)

    def put(
        self, name: str, spec: ServedModelConfig, reason: str | None = None,
        expected: int | None = None,
    ) -> RoutingChange | None:
        """Replace the routing of ``name`` (compare-and-set when ``expected`` is given)."""
        return self._change(name, "set", reason, lambda _: spec, expected)

    def rollback(self, name: str, reason: str | None = None) -> RoutingChange:
        """Back to the default served before the current one took over, in one change;
        the canary ends. Two rollbacks in a row toggle (as ``kubectl rollout undo``)."""
        def edit(spec: ServedModelConfig) -> ServedModelConfig:
            target = self.previous_default(name)
            spec.default = target
            spec.canary = None
            return spec

        change = self._change(name, "rollback", reason, edit)
        if change is None:  # pragma: no cover - previous_default differs by construction
            raise APIError(409, "nothing_to_roll_back", f"{name!r} has no previous default")
        return change

    def previous_default(self, name: str) -> str:
        """The version that served by default before the current one: the default is
        re-evaluated just before every routing change and every registration (a registration
        moves ``latest``), newest first, until it differs from the current one."""
        versions = self.versions(name)
        history = self.store.routing_history(name, 10_000)
        current, _ = self.current(name)
        times = [h.ts for h in history]
        born = [created_at(v) for v in versions]

        def default_before(t: float) -> str | None:
            i = bisect_left(times, t)
            spec = spec_of(history[i - 1].after) if i else (
                spec_of(history[0].before) if history else current
            )
            known = versions[: bisect_left(born, t)]
            return resolve(spec, spec.default, known)

        now = resolve(current, current.default, versions)
        for moment in sorted(set(times) | set(born), reverse=True):
            before = default_before(moment)
            if before is not None and before != now:
                return before
        raise APIError(409, "nothing_to_roll_back", f"{name!r} has had no other default",
                       {"model": name, "default": now})

    def apply(
        self, serving: ServingConfig, *, prune: bool = False, only_if_unset: bool = False,
        reason: str | None = None,
    ) -> list[RoutingChange]:
        """Make the store's routing what the serving file says (idempotent). Names the file
        does not list keep their routing unless ``prune``."""
        self._versions.clear()
        for name, spec in serving.models.items():
            self.validate(name, spec)
        states: dict[str, dict[str, Any] | None] = {
            name: document_of(spec) for name, spec in serving.models.items()
        }
        if prune:
            for name in self.store.routing_read().states:
                states.setdefault(name, None)
        return self.store.routing_write(
            states, actor=self.actor, action="apply", reason=reason,
            only_if_unset=only_if_unset,
        )


def _conflict(conflict: RoutingConflict) -> APIError:
    return APIError(409, "routing_conflict", str(conflict),
                    {"expected_revision": conflict.expected, "revision": conflict.actual})


def describe_change(change: RoutingChange) -> str:
    """One line per change for people: revision, model, what moved."""
    before, after = change.before or {}, change.after or {}
    if change.after is None:
        moved = "routing removed"
    elif change.before is None:
        moved = "set " + _fields(after)
    else:
        keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        moved = ", ".join(f"{k}: {_short(before.get(k))} -> {_short(after.get(k))}" for k in keys)
    why = f" ({change.reason})" if change.reason else ""
    return f"r{change.revision} {change.model}: {change.action} {moved}{why} by {change.actor}"


def _fields(document: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in document.items() if v not in (None, {}))


def _short(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"version", "weight"}:
        return f"{value['version']}@{value['weight']:g}"
    return "-" if value in (None, {}) else str(value)
