"""driftgate / Operations: prediction log, monitor lag, webhooks and alerts."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from .common import (
    RATE,
    Q,
    dashboard,
    dashed_thresholds,
    fixed_color,
    quantile_queries,
    red_from,
    row,
    stacked_bars,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

TITLE = "driftgate / Operations"
UID = "driftgate-operations"

LOG = "driftgate_log_write_seconds"
LAG_SECONDS = "driftgate_monitor_lag_seconds"
PARTITION_LAG_RECORDS = "driftgate_monitor_partition_lag_records"
PARTITION_LAG_SECONDS = "driftgate_monitor_partition_lag_seconds"
DELIVERIES = "driftgate_webhook_deliveries_total"
PENDING = "driftgate_webhook_pending"
RETRAINS = "driftgate_retrains_total"
RETRAIN_SECONDS = "driftgate_retrain_seconds"
ALERTS = 'ALERTS{alertname=~"Driftgate.*",alertstate="firing"'

KEY_PANELS: frozenset[str] = frozenset()


def build() -> dm.Dashboard:
    return dashboard(
        TITLE,
        UID,
        "Health of driftgate's plumbing: prediction log writes, monitor lag, retraining "
        "webhooks and the Driftgate alerts firing in Prometheus.",
        [
            stat_panel(
                "Alerts firing",
                "Number of Driftgate* Prometheus alerts firing now (all models). Above zero: "
                "read the table 'Driftgate alerts firing now' at the bottom; each alert's "
                "annotations say what to do.",
                [Q(f"count({ALERTS}}}) or vector(0)")],
                background=True,
                sparkline=False,
                levels=red_from(1),
            ),
            stat_panel(
                "Monitor lag",
                "How far the monitor is behind the prediction log: age of the oldest record it "
                "has not processed yet. It should stay at a few seconds; a steady climb means "
                "the monitor cannot keep up or is stuck (check the monitor service logs and "
                "/readyz; it resumes from its checkpoint after a restart).",
                [Q(f"max({LAG_SECONDS})")],
                unit="s",
                sparkline=True,
                background=True,
                levels=thresholds((None, "green"), (30, "orange"), (60, "red")),
            ),
            stat_panel(
                "Webhook outbox pending",
                "Webhook events waiting in the durable outbox for (re)delivery. A growing "
                "number means the retraining receiver is down or rejecting requests: check "
                "'Webhook deliveries by outcome' and the receiver.",
                [Q(f"max({PENDING})")],
                decimals=0,
                sparkline=True,
                levels=thresholds((None, "green"), (10, "orange"), (100, "red")),
            ),
            stat_panel(
                "Dead letters in range",
                "Webhook events that exhausted all retries over the dashboard time range. Each "
                "is a retraining request nobody received: fix the receiver, then replay the "
                "dead-lettered events from the outbox.",
                [
                    Q(
                        f'sum(increase({DELIVERIES}{{outcome="dead_letter"}}[$__range])) '
                        "or vector(0)",
                        instant=True,
                    )
                ],
                decimals=0,
                background=True,
                levels=red_from(1),
            ),
            row("Prediction log and monitor"),
            timeseries_panel(
                "Prediction log write latency p50 / p95 / p99",
                "Time to durably append a batch of prediction records to the prediction log "
                "(group commit, driftgate_log_write_seconds). Every request waits for it, so "
                "it adds directly to the gateway latency. High values: the disk is slow or "
                "full (SQLite WAL) or PostgreSQL is overloaded; check disk I/O and free space.",
                quantile_queries(f"{LOG}_bucket", (0.5, 0.95, 0.99)),
                unit="s",
            ),
            timeseries_panel(
                "Prediction log writes per second",
                "Log write operations (group commits) per second. Compared with the request "
                "rate on the Overview it shows how many predictions each commit batches; zero "
                "while the gateway serves means predictions are not being logged: page the "
                "owner, the nothing-lost guarantee is broken.",
                [Q(f"sum(rate({LOG}_count[{RATE}]))", "writes/s")],
                unit="ops",
                tooltip=False,
            ),
            timeseries_panel(
                "Monitor lag (records)",
                "Prediction log records not yet processed by the monitor. It should hover near "
                "zero. A linear climb means the monitor processes slower than the gateway "
                "writes (scale out: DRIFTGATE_MONITOR_PARTITIONS, see the README's Scaling "
                "out); a flat non-zero line with no progress means it is stuck on a record: "
                "check its logs. One line per monitoring partition, from the process that "
                "holds its lease.",
                [Q(f"max by (partition) ({PARTITION_LAG_RECORDS})", "partition {{partition}}")],
                unit="short",
                tooltip=False,
            ).min(0),
            timeseries_panel(
                "Monitor lag (seconds)",
                "Age of the oldest prediction log record the monitor has not processed yet. "
                "Drift detection and quality metrics are this late (DriftgateMonitorLagging "
                "fires above 60s for 2m). The design target is a few seconds; above a minute, "
                "drift detection is delayed accordingly. One line per monitoring partition.",
                [Q(f"max by (partition) ({PARTITION_LAG_SECONDS})", "partition {{partition}}")],
                unit="s",
                tooltip=False,
            )
            .min(0)
            .thresholds(red_from(60))
            .thresholds_style(dashed_thresholds()),
            row("Retraining webhooks"),
            stacked_bars(
                timeseries_panel(
                    "Webhook deliveries by outcome",
                    "Retraining webhook delivery attempts per interval by outcome: delivered, "
                    "failed (will be retried with backoff) and dead_letter (gave up). Failures "
                    "that do not turn into deliveries mean the receiver is down, rejects the "
                    "signature (check the shared secret) or times out.",
                    [Q(f"sum by (outcome) (increase({DELIVERIES}[$__interval]))", "{{outcome}}")],
                )
            )
            .interval("1m")
            .override_by_name("dead_letter", fixed_color("red"))
            .override_by_name("failed", fixed_color("orange"))
            .override_by_name("delivered", fixed_color("green")),
            timeseries_panel(
                "Webhook outbox pending over time",
                "Events in the webhook outbox waiting for delivery or retry. Spikes that drain "
                "are normal after a drift episode; a line that only grows means deliveries are "
                "failing (nothing is lost, they wait in the outbox until delivered or "
                "dead-lettered).",
                [Q(f"max({PENDING})", "pending")],
                tooltip=False,
            )
            .decimals(0)
            .min(0),
            row("Retraining loop"),
            stacked_bars(
                timeseries_panel(
                    "Retrains by outcome",
                    "Retrains the retrain worker (driftgate retrain worker, scraped as its own "
                    "target) ran per interval, by model and outcome: registered (a candidate "
                    "passed the holdout check and its rollout started), rejected (worse than "
                    "the serving version on the most recent labelled records) and failed (the "
                    "trainer raised, too few labels, or registration failed). Rejected or "
                    "failed: read the retrain_rejected / retrain_failed event in "
                    "/monitoring/events?model=... (it says why); the serving version is "
                    "untouched. Registered: follow the rollout (driftgate rollout status).",
                    [Q(f'sum by (model, outcome) (increase({RETRAINS}{{model=~"$model"}}'
                       "[$__interval]))", "{{model}} {{outcome}}")],
                )
            )
            .interval("1m")
            .override_by_name("failed", fixed_color("red"))
            .override_by_name("rejected", fixed_color("orange"))
            .override_by_name("registered", fixed_color("green")),
            timeseries_panel(
                "Retrain duration p50 / p95",
                "Time from a retrain request's arrival at the worker to its registration or "
                "verdict (waiting for labels, training, the holdout check, registering). It "
                "grows with the training data and when labels arrive late "
                "(DRIFTGATE_RETRAIN_MIN_LABELS are awaited first).",
                quantile_queries(f"{RETRAIN_SECONDS}_bucket", (0.5, 0.95)),
                unit="s",
                tooltip=False,
            ),
            row("Alerts"),
            table_panel(
                "Driftgate alerts firing now",
                "Every Driftgate* alert firing now, with its labels (model, feature, "
                "severity...). Alerts without a model label (monitor lag, webhooks) are always "
                "shown. Follow the alert's runbook annotation (in Alertmanager, or "
                "monitoring/rules/driftgate.rules.yml); for drift and performance alerts open "
                "the Drift and Model quality dashboards for that model.",
                f'{ALERTS},model=~"$model"}} or {ALERTS},model=""}}',
                hide=("Time", "Value", "__name__"),
            ),
            stacked_bars(
                timeseries_panel(
                    "Alerts firing over time",
                    "Number of firing Driftgate* alerts by alert name over time. Alerts that "
                    "fire and resolve repeatedly (flapping) are a sign of thresholds or 'for' "
                    "durations that need tuning in the Prometheus rules.",
                    [Q(f"count by (alertname) ({ALERTS}}})", "{{alertname}}")],
                )
            ),
        ],
    )
