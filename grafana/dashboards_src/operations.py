"""driftgate / Operations: prediction log, monitor lag, webhooks and alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from .common import (
    RATE,
    Q,
    base_dashboard,
    dashed_thresholds,
    datasource_variable,
    last_value,
    model_variable,
    multi_tooltip,
    number_panels,
    setup,
    table_legend,
    thresholds,
)

TITLE = "driftgate / Operations"
UID = "driftgate-operations"

LOG = "driftgate_log_write_seconds"
LAG_RECORDS = "driftgate_monitor_lag_records"
LAG_SECONDS = "driftgate_monitor_lag_seconds"
DELIVERIES = "driftgate_webhook_deliveries_total"
PENDING = "driftgate_webhook_pending"
ALERTS = 'ALERTS{alertname=~"Driftgate.*",alertstate="firing"'

KEY_PANELS: frozenset[str] = frozenset()


def build() -> dm.Dashboard:
    stats: list[stat.Panel] = [
        setup(
            stat.Panel().reduce_options(last_value()),
            "Alerts firing",
            "Number of Driftgate* Prometheus alerts firing now (all models). Above zero: "
            "read the table 'Driftgate alerts firing now' at the bottom; each alert's "
            "annotations say what to do.",
            [Q(f"count({ALERTS}}}) or vector(0)")],
            w=6,
            h=4,
        )
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (1, "red"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Monitor lag",
            "How far the monitor is behind the prediction log: age of the oldest record it has "
            "not processed yet. It should stay at "
            "a few seconds; a steady climb means the monitor cannot keep up or is stuck "
            "(check the monitor service logs and /readyz; it resumes from its checkpoint "
            "after a restart).",
            [Q(f"max({LAG_SECONDS})")],
            w=6,
            h=4,
        )
        .unit("s")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .thresholds(thresholds((None, "green"), (30, "orange"), (60, "red"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Webhook outbox pending",
            "Webhook events waiting in the durable outbox for (re)delivery. A growing number "
            "means the retraining receiver is down or rejecting requests: check 'Webhook "
            "deliveries by outcome' and the receiver.",
            [Q(f"max({PENDING})")],
            w=6,
            h=4,
        )
        .decimals(0)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .thresholds(thresholds((None, "green"), (10, "orange"), (100, "red"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Dead letters in range",
            "Webhook events that exhausted all retries over the dashboard time range. Each "
            "is a retraining request nobody received: fix the receiver, then replay the "
            "dead-lettered events from the outbox.",
            [
                Q(
                    f'sum(increase({DELIVERIES}{{outcome="dead_letter"}}[$__range])) or vector(0)',
                    instant=True,
                )
            ],
            w=6,
            h=4,
        )
        .decimals(0)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .thresholds(thresholds((None, "green"), (1, "red"))),
    ]

    pipeline: list[timeseries.Panel] = [
        setup(
            timeseries.Panel(),
            "Prediction log write latency p50 / p95 / p99",
            "Time to durably append a batch of prediction records to the prediction log "
            "(group commit, driftgate_log_write_seconds). Every request waits for it, so it "
            "adds directly to the gateway latency. High values: the disk is slow or full "
            "(SQLite WAL) or PostgreSQL is overloaded; check disk I/O and free space.",
            [
                Q(
                    f"histogram_quantile({q}, sum by (le) (rate({LOG}_bucket[{RATE}])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
        )
        .unit("s")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Prediction log writes per second",
            "Log write operations (group commits) per second. Compared with the request rate "
            "on the Overview it shows how many predictions each commit batches; zero while "
            "the gateway serves means predictions are not being logged: page the owner, "
            "the nothing-lost guarantee is broken.",
            [Q(f"sum(rate({LOG}_count[{RATE}]))", "writes/s")],
        )
        .unit("ops")
        .legend(table_legend()),
        setup(
            timeseries.Panel(),
            "Monitor lag (records)",
            "Prediction log records not yet processed by the monitor. It should hover near "
            "zero. A linear climb means the monitor processes slower than the gateway writes "
            "(scale out by sharding models across monitors); a flat non-zero line with no "
            "progress means it is stuck on a record: check its logs.",
            [Q(f"max by (model) ({LAG_RECORDS})", "lag {{model}}")],
        )
        .unit("short")
        .min(0)
        .legend(table_legend()),
        setup(
            timeseries.Panel(),
            "Monitor lag (seconds)",
            "Age of the oldest prediction log record the monitor has not processed yet. Drift "
            "detection and quality metrics are this late (DriftgateMonitorLagging fires above "
            "60s for 2m). The design target is a few seconds; above a minute, drift "
            "detection is delayed accordingly.",
            [Q(f"max by (model) ({LAG_SECONDS})", "lag {{model}}")],
        )
        .unit("s")
        .min(0)
        .thresholds(thresholds((None, "green"), (60, "red")))
        .thresholds_style(dashed_thresholds())
        .legend(table_legend()),
    ]

    webhooks: list[timeseries.Panel] = [
        setup(
            timeseries.Panel(),
            "Webhook deliveries by outcome",
            "Retraining webhook delivery attempts per interval by outcome: delivered, failed "
            "(will be retried with backoff) and dead_letter (gave up). Failures that do not "
            "turn into deliveries mean the receiver is down, rejects the signature (check the "
            "shared secret) or times out.",
            [
                Q(
                    f"sum by (outcome) (increase({DELIVERIES}[$__interval]))",
                    "{{outcome}}",
                )
            ],
        )
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .decimals(0)
        .interval("1m")
        .legend(table_legend())
        .tooltip(multi_tooltip())
        .override_by_name(
            "dead_letter",
            [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"})],
        )
        .override_by_name(
            "failed",
            [
                dm.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": "orange"}
                )
            ],
        )
        .override_by_name(
            "delivered",
            [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "green"})],
        ),
        setup(
            timeseries.Panel(),
            "Webhook outbox pending over time",
            "Events in the webhook outbox waiting for delivery or retry. Spikes that drain "
            "are normal after a drift episode; a line that only grows means deliveries are "
            "failing (nothing is lost, they wait in the outbox until delivered or "
            "dead-lettered).",
            [Q(f"max({PENDING})", "pending")],
        )
        .decimals(0)
        .min(0)
        .legend(table_legend()),
    ]

    alerts: list[table.Panel | timeseries.Panel] = [
        setup(
            table.Panel(),
            "Driftgate alerts firing now",
            "Every Driftgate* alert firing now, with its labels (model, feature, severity...). "
            "Alerts without a model label (monitor lag, webhooks) are always shown. Follow "
            "the alert's runbook annotation (in Alertmanager, or monitoring/rules/"
            "driftgate.rules.yml); for drift and performance alerts open the "
            "Drift and Model quality dashboards for that model.",
            [
                Q(
                    f'{ALERTS},model=~"$model"}} or {ALERTS},model=""}}',
                    instant=True,
                    fmt=pm.PromQueryFormat.TABLE,
                )
            ],
        ).with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "Value": True, "__name__": True},
                },
            )
        ),
        setup(
            timeseries.Panel(),
            "Alerts firing over time",
            "Number of firing Driftgate* alerts by alert name over time. Alerts that fire "
            "and resolve repeatedly (flapping) are a sign of thresholds or 'for' durations "
            "that need tuning in the Prometheus rules.",
            [Q(f"count by (alertname) ({ALERTS}}})", "{{alertname}}")],
        )
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .decimals(0)
        .legend(table_legend())
        .tooltip(multi_tooltip()),
    ]

    dash = (
        base_dashboard(
            TITLE,
            UID,
            "Health of driftgate's plumbing: prediction log writes, monitor lag, retraining "
            "webhooks and the Driftgate alerts firing in Prometheus.",
        )
        .with_variable(datasource_variable())
        .with_variable(model_variable())
    )
    for p in stats:
        dash = dash.with_panel(p)
    dash = dash.with_row(db.Row("Prediction log and monitor"))
    for p2 in pipeline:
        dash = dash.with_panel(p2)
    dash = dash.with_row(db.Row("Retraining webhooks"))
    for p3 in webhooks:
        dash = dash.with_panel(p3)
    dash = dash.with_row(db.Row("Alerts"))
    for p4 in alerts:
        dash = dash.with_panel(p4)
    return number_panels(dash.build())
