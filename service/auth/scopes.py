"""Which scope each endpoint needs: one table, failing closed.

A route is ``(method, path template)``; its :class:`Rule` names the scope and where the
request names its model (``path``: the ``{name}`` parameter, ``query``: ``?model=``,
``body``: checked by the handler, ``none``: no model, ``all``: every model). A route that is
not in the table needs ``admin`` (an endpoint added without a scope is refused to everyone
else); ``tests/service/test_auth_matrix.py`` walks the OpenAPI document and fails for it.
Health (and, unless configured otherwise, ``/metrics``) is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from starlette.routing import compile_path

from service.auth.keys import ADMIN, ALERTS, FEEDBACK, PREDICT, READ

ModelFrom = Literal["path", "query", "body", "none", "all"]


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str
    model_from: ModelFrom = "none"


PUBLIC = "public"
"""The scope of health endpoints: no key needed."""
METRICS_PATH = "/metrics"

ROUTE_SCOPES: dict[tuple[str, str], Rule] = {
    ("GET", "/livez"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/v2/health/live"): Rule(PUBLIC),
    ("GET", "/v2/health/ready"): Rule(PUBLIC),
    ("POST", "/predict"): Rule(PREDICT, "body"),
    ("POST", "/v2/models/{name}/infer"): Rule(PREDICT, "path"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): Rule(PREDICT, "path"),
    ("GET", "/v2"): Rule(PREDICT),
    ("GET", "/v2/models/{name}"): Rule(PREDICT, "path"),
    ("GET", "/v2/models/{name}/versions/{version}"): Rule(PREDICT, "path"),
    ("GET", "/v2/models/{name}/ready"): Rule(PREDICT, "path"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"): Rule(PREDICT, "path"),
    ("POST", "/explain"): Rule(PREDICT, "body"),
    ("GET", "/predictions/{prediction_id}/explanation"): Rule(PREDICT, "all"),
    ("POST", "/feedback"): Rule(FEEDBACK, "body"),
    ("GET", "/models"): Rule(READ, "all"),
    ("GET", "/models/{name}"): Rule(READ, "path"),
    ("GET", "/models/{name}/attributions"): Rule(READ, "path"),
    ("GET", "/monitoring/status"): Rule(READ, "query"),
    ("GET", "/monitoring/events"): Rule(READ, "query"),
    ("GET", "/docs.json"): Rule(READ),
    ("GET", "/"): Rule(READ),
    ("GET", METRICS_PATH): Rule(READ),  # open unless DRIFTGATE_METRICS_REQUIRE_KEY
    ("GET", "/models/{name}/routing"): Rule(ADMIN, "path"),
    ("PUT", "/models/{name}/routing"): Rule(ADMIN, "path"),
    ("POST", "/models/{name}/rollback"): Rule(ADMIN, "path"),
    ("GET", "/models/{name}/routing/history"): Rule(ADMIN, "path"),
    ("POST", "/models/{name}/rollouts"): Rule(ADMIN, "path"),
    ("GET", "/models/{name}/rollouts"): Rule(ADMIN, "path"),
    ("GET", "/models/{name}/rollouts/{rollout_id}"): Rule(ADMIN, "path"),
    ("DELETE", "/models/{name}/rollouts/{rollout_id}"): Rule(ADMIN, "path"),
    ("GET", "/audit"): Rule(ADMIN),
    ("POST", "/alerts/alertmanager"): Rule(ALERTS),
}
PUBLIC_PATHS = frozenset(path for (_, path), rule in ROUTE_SCOPES.items()
                         if rule.scope == PUBLIC)
DOCS_ASSETS = ("/static_content/", "/assets/")
"""BentoML's files of the docs UI at ``/``: the ``read`` scope, as the UI."""
UNDECLARED = Rule(ADMIN, "all")
"""What a route missing from :data:`ROUTE_SCOPES` needs (fail closed)."""


class ScopeTable:
    """Finds the rule of a request: exact paths by dict, templates by regex (cached)."""

    def __init__(self, rules: dict[tuple[str, str], Rule] = ROUTE_SCOPES) -> None:
        self.rules = rules
        self._exact = {key: rule for key, rule in rules.items() if "{" not in key[1]}
        self._templates = [(method, compile_path(path)[0], rule)
                           for (method, path), rule in rules.items() if "{" in path]
        self.lookup = lru_cache(maxsize=4096)(self._lookup)

    def declared(self, method: str, template: str) -> bool:
        return (method.upper(), template) in self.rules

    def _lookup(self, method: str, path: str) -> tuple[Rule, str | None]:
        """The rule of ``method path`` and the ``{name}`` path parameter, if any."""
        method = "GET" if method == "HEAD" else method
        rule = self._exact.get((method, path))
        if rule is not None:
            return rule, None
        for rule_method, pattern, rule in self._templates:
            if rule_method == method and (match := pattern.match(path)):
                return rule, match.groupdict().get("name")
        if method == "GET" and path.startswith(DOCS_ASSETS):
            return Rule(READ), None
        return UNDECLARED, None
