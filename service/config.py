"""Configuration: environment settings (``DRIFTGATE_*``) and the YAML serving file.

Example serving file (``driftgate.yaml``)::

    models:
      breast-cancer:
        default: latest            # a version, an alias or "latest"
        aliases: {stable: 3nhl5ghjx6li2ax4}
        canary: {version: 4abcd..., weight: 0.1}
        shadow: 5efgh...
        batching: {enabled: auto, max_batch_size: 64, max_wait_ms: 2}   # the defaults
    webhooks:
      - url: https://retrain.example.com/hooks/driftgate
        secret_env: DRIFTGATE_WEBHOOK_SECRET   # or secret_file: /run/secrets/webhook
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitoring import MonitorConfig
from service.secrets import read_secret

log = logging.getLogger(__name__)


class CanaryConfig(BaseModel):
    version: str
    weight: float = Field(ge=0.0, le=1.0, description="Share of requests sent to the canary.")


class BatchingConfig(BaseModel):
    """Adaptive batching of one model name's versions in each gateway worker (see
    :mod:`service.adaptive_batching`): concurrent requests merged into one model call."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | Literal["auto"] = Field(
        "auto", description="true, false, or auto: on when the version's fixed cost per call, "
        "measured when it is loaded (one row vs 32 rows), is at least 1 ms.",
    )
    max_batch_size: int = Field(
        64, ge=1, le=100_000, description="Most rows of one merged call (a larger request is "
        "called alone, never split).",
    )
    max_wait_ms: float = Field(
        2.0, ge=0.0, le=1000.0, description="While the model is busy, how long the oldest "
        "queued request may wait for more to fill its batch; a request reaching an idle "
        "model is called at once.",
    )


class ServedModelConfig(BaseModel):
    """How one model name is served: default version, aliases, canary and shadow, and how
    its versions batch (None: the defaults of :class:`BatchingConfig`)."""

    default: str = "latest"
    aliases: dict[str, str] = Field(default_factory=dict)
    canary: CanaryConfig | None = None
    shadow: str | None = None
    batching: BatchingConfig | None = None


class WebhookEndpoint(BaseModel):
    """A retraining endpoint. Its Standard Webhooks secret comes from ``secret_env`` (an
    environment variable) or ``secret_file`` (a file); ``secret`` inline in the serving file
    works but warns. Never shown: left out of repr and dumps."""

    model_config = ConfigDict(hide_input_in_errors=True)  # errors never quote a secret

    url: str
    secret: str = Field("", repr=False, exclude=True,
                        description="Standard Webhooks secret, base64 with optional whsec_ "
                        "prefix (resolved from secret_env / secret_file when given).")
    secret_env: str | None = Field(None, description="Environment variable holding the secret.")
    secret_file: str | None = Field(None, description="File holding the secret.")
    models: list[str] | None = Field(default=None, description="Only these models; None = all.")

    @model_validator(mode="after")
    def _resolve_secret(self) -> WebhookEndpoint:
        given = [n for n in ("secret", "secret_env", "secret_file") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(f"webhook {self.url}: give exactly one of secret_env, secret_file "
                             f"or secret (got {given or 'none'})")
        if self.secret:
            log.warning("webhook %s: its secret is inline in the serving file; give it as "
                        "secret_env or secret_file instead", self.url)
            return self
        self.secret = read_secret(self.secret_env, self.secret_file)
        return self


class ServingConfig(BaseModel):
    """Contents of the YAML serving file. ``models`` empty means: serve every registered model."""

    model_config = ConfigDict(hide_input_in_errors=True)

    models: dict[str, ServedModelConfig] = Field(default_factory=dict)
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> ServingConfig:
        if path is None or not path.exists():
            return cls()
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})


class Settings(BaseSettings):
    """Gateway and monitor settings, read from ``DRIFTGATE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTGATE_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Where the SQLite log and state live. Default: .data, or, when served "
        "from a built Bento, $BENTOML_HOME/driftgate-data (never inside the Bento).",
    )
    store_url: SecretStr | None = Field(
        None,
        description="Prediction log: a postgresql:// DSN, or a SQLite path. "
        "Default: <data_dir>/predictions.sqlite3.",
    )
    store_url_file: Path | None = Field(
        None, description="A file holding store_url (a DSN with its password), e.g. a "
        "mounted Kubernetes secret; used when store_url is not set.",
    )
    config_file: Path = Field(Path("driftgate.yaml"), description="YAML serving file.")
    durability: Literal["durable", "async"] = Field(
        "durable", description="durable: 2xx after commit. async: commit within max_delay_ms."
    )
    async_max_delay_ms: float = Field(50.0, description="Commit delay bound in async mode.")
    log_max_pending: int = Field(10_000, description="Records queued before backpressure.")
    logging_enabled: bool = Field(True, description="Switch the prediction log off (benchmarks).")
    monitoring_enabled: bool = Field(True, description="Run the monitor service loop.")
    workers: int = Field(2, description="Gateway worker processes.")
    max_body_bytes: int = Field(4 * 1024 * 1024, description="Larger request bodies get 413.")
    max_rows: int = Field(10_000, description="Most rows one request may carry.")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A connection must complete each request's headers within "
        "this (slow or idle clients are disconnected).",
    )
    keepalive_timeout_seconds: float = Field(
        5.0, gt=0, description="Idle keep-alive connections are closed after this."
    )
    max_connections: int = Field(
        1000, gt=0, description="Open connections per gateway worker; more are refused."
    )
    expected_run_time: int = Field(
        100_000, description="Predictions per model between false drift alarms (on average)."
    )
    numeric_detector: str = Field(
        "cusum", description="Drift detector of numeric features and regression outputs."
    )
    detector_overrides: dict[str, str] = Field(
        default_factory=dict,
        description='Per-feature detector, JSON, e.g. {"age": "adwin"}.',
    )
    concept_detector: str = Field(
        "adwin", description="Concept-drift detector on the labelled error stream."
    )
    routing_poll_seconds: float = Field(
        0.25, description="How often each gateway worker checks the store's routing revision "
        "and the registry for changes."
    )
    monitor_poll_seconds: float = Field(0.2, description="How often the monitor tails the log.")
    monitor_in_gateway: bool = Field(
        True, description="Start a monitor inside every gateway (BentoML dependency). Set "
        "false on gateway replicas when the monitor runs on its own (`driftgate monitor run`)."
    )
    monitor_partitions: int = Field(
        1, ge=1, description="Split the models over this many partitions, each with its own "
        "lease (one active monitor process) and checkpoint. Same value on every gateway and "
        "monitor of a store."
    )
    monitor_partition_map: dict[str, int] = Field(
        default_factory=dict, description='Pin models to partitions, JSON: {"churn": 0}; '
        "others go by a stable hash of their name."
    )
    monitor_lease_seconds: float = Field(
        5.0, gt=0, description="A monitor's lease expires this long after its last renewal "
        "(a standby takes over then)."
    )
    monitor_lease_poll_seconds: float = Field(
        1.0, gt=0, description="How often a monitor renews its leases and a standby tries "
        "to take free ones."
    )
    monitor_batch: int = Field(5_000, description="Records the monitor reads per batch.")
    explain_sample_rate: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Share of logged records the monitor explains for attribution drift "
        "(0 switches it off). Unset: per version, as many as fit explain_budget_us per record.",
    )
    explain_budget_us: float = Field(
        2.0, gt=0, description="Unset sample rate: microseconds of explaining (with the "
        "sampled record's frame row and stored attribution) per logged record the monitor "
        "may spend on average.",
    )
    rollout_eval_seconds: float = Field(
        5.0, gt=0, description="How often the monitor evaluates the gates of running rollouts "
        "(a failed gate rolls back within one interval)."
    )
    checkpoint_every_seconds: float = Field(2.0, description="Checkpoint interval.")
    retention_days: float | None = Field(None, description="Prune log records older than this.")
    alert_retention_days: float = Field(
        30.0, gt=0, description="Forget received Alertmanager alerts (their dedupe records) "
        "after this many days.",
    )
    webhook_max_attempts: int = Field(8, description="Attempts before a dead letter.")
    webhook_backoff_seconds: float = Field(1.0, description="First retry delay (doubles).")
    webhook_max_backoff_seconds: float = Field(300.0, description="Longest retry delay.")
    webhook_timeout_seconds: float = Field(5.0, description="HTTP timeout of one delivery.")
    retrain_cooldown_seconds: float = Field(
        300.0, ge=0.0, description="Least time between two retrain requests of a model (a "
        "rate limit; a suppressed request is reported as a retrain_suppressed event)."
    )
    retrain_timeout_seconds: float = Field(
        3600.0, ge=0.0, description="A model has one retrain request in flight until its "
        "retrain reports its end (the retrain worker does), or this long at most."
    )
    retrain_from_events: bool = Field(
        True,
        description="Drift and performance events request retraining directly. Set false to "
        "let only Alertmanager (POST /alerts/alertmanager) decide, with its silences.",
    )
    fast_predict_route: bool = Field(
        True, description="Answer POST /predict from a lean Starlette route ahead of FastAPI "
        "(same handler; measured by `python -m loadtests.bench --fast-route`)."
    )
    tail_latency_fix: bool = Field(
        True,
        description="Cancel BentoML's per-request timeout timers and gc.freeze() after "
        "start-up, and in the Monitor again once its monitors are built (see "
        "service.tail_latency).",
    )
    pii_key: SecretStr | None = Field(
        None, description="HMAC key of card features marked pii: hash (keep it secret and "
        "stable: the same value gives the same token only under the same key).",
    )
    pii_key_file: Path | None = Field(None, description="A file holding pii_key.")
    require_auth: bool = Field(
        False, description="Refuse to start while the store holds no API key (production)."
    )
    metrics_require_key: bool = Field(
        False, description="/metrics needs a key with the read scope (else it is open)."
    )
    auth_refresh_seconds: float = Field(
        1.0, gt=0, le=60, description="How often each worker re-reads the API keys (a "
        "revocation reaches every worker within this plus one store read).",
    )
    public_url: str = Field(
        "http://localhost:3000", description="Base URL put into webhook payloads."
    )

    @model_validator(mode="after")
    def _monitor_settings_valid(self) -> Settings:
        monitor_config(self)  # the monitoring core validates detector names and budget
        if self.monitor_lease_poll_seconds * 2 > self.monitor_lease_seconds:
            raise ValueError("monitor_lease_seconds must be at least twice "
                             "monitor_lease_poll_seconds (a lease must survive a late renewal)")
        bad = {m: p for m, p in self.monitor_partition_map.items()
               if not 0 <= p < self.monitor_partitions}
        if bad:
            raise ValueError(f"monitor_partition_map outside 0..{self.monitor_partitions - 1}:"
                             f" {bad}")
        return self

    @field_validator("data_dir", "config_file")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_store_url(self) -> str:
        """The store's URL (it may hold a password: never print it; see redact_dsn)."""
        if self.store_url is not None:
            return self.store_url.get_secret_value()
        if self.store_url_file is not None:
            return read_secret(file=self.store_url_file)
        return str(self.data_dir / "predictions.sqlite3")

    def serving(self) -> ServingConfig:
        return ServingConfig.load(self.config_file)


def default_data_dir(cwd: Path | None = None) -> Path:
    """``.data`` in the working directory, except inside a built Bento (BentoML serves it
    from its ``src`` directory): there, ``$BENTOML_HOME/driftgate-data``, so the log
    outlives the build and every build of the service shares it.

    >>> default_data_dir(Path("/nowhere"))
    PosixPath('.data')
    """
    here = cwd or Path.cwd()
    if (here.parent / "bento.yaml").exists():
        home = os.environ.get("BENTOML_HOME") or str(Path.home() / "bentoml")
        return Path(home).expanduser() / "driftgate-data"
    return Path(".data")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def monitor_config(settings: Settings) -> MonitorConfig:
    """The monitoring core's configuration from the service settings."""
    return MonitorConfig(
        expected_run_time=settings.expected_run_time,
        numeric_detector=settings.numeric_detector,
        detector_overrides=dict(settings.detector_overrides),
        concept_detector=settings.concept_detector,
        quality_events=False,
    )
