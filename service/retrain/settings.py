"""Settings of the retrain worker (``DRIFTGATE_RETRAIN_*``; the store and the model store
are the gateway's: ``DRIFTGATE_STORE_URL`` / ``DRIFTGATE_DATA_DIR`` and ``BENTOML_HOME``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.rollout import RolloutPlan


class RetrainSettings(BaseSettings):
    """How the worker checks a candidate and rolls it out."""

    model_config = SettingsConfigDict(env_prefix="DRIFTGATE_RETRAIN_", env_file=".env",
                                      extra="ignore")

    secret: str | None = Field(
        None, description="Standard Webhooks secret of the endpoint (whsec_...); the same "
        "as the endpoint's secret in driftgate.yaml. Unsigned or badly signed requests get 401."
    )
    margin: float = Field(
        0.0, ge=0.0, description="A candidate may be worse than the current version on the "
        "holdout by at most this fraction of the current version's loss; else rejected."
    )
    holdout_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of the labelled records since the evidence "
        "window held out (the most recent ones) to check the candidate on."
    )
    min_labels: int = Field(
        200, ge=2, description="Labelled records from the evidence window on that the worker "
        "waits for before training (labels arrive after predictions)."
    )
    label_wait_seconds: float = Field(
        3600.0, ge=0.0, description="How long to wait for min_labels; then the retrain fails."
    )
    max_records: int = Field(50_000, ge=10, description="Most recent labelled records read.")
    history_seconds: float = Field(
        7 * 86_400.0, ge=0.0, description="How far before the evidence window labelled "
        "records are read from."
    )
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        description="Rollout canary steps in percent (JSON list).",
    )
    step_seconds: float = Field(600.0, ge=0.0, description="Least time per rollout step.")
    min_requests: int = Field(500, ge=1, description="Canary answers per rollout step.")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Rollout gates' false-rollback rate.")
    latency_slack_ms: float = Field(5.0, ge=0.0, description="Rollout latency gate slack.")
    advisory_gates: list[str] = Field(
        default_factory=lambda: ["answers"],
        description="Rollout gates reported but not rolling back (JSON list). A retrained "
        "version is meant to answer differently from the one it replaces after the world "
        "changed, so the answers gate only reports; the labelled performance gate judges.",
    )
    rollout_wait_seconds: float = Field(
        86_400.0, ge=0.0, description="How long the worker follows the rollout it started "
        "(the model's retrain stays in flight meanwhile)."
    )

    def plan(self, version: str, reason: str) -> RolloutPlan:
        return RolloutPlan(version, [s / 100.0 for s in self.steps], self.step_seconds,
                           self.min_requests, self.alpha, latency_slack_ms=self.latency_slack_ms,
                           reason=reason, advisory=tuple(self.advisory_gates))
