"""driftgate / Overview: traffic, latency and errors per model and version; canary vs default."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from .common import (
    MODEL,
    MODEL_VERSION,
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
    version_variable,
)

TITLE = "driftgate / Overview"
UID = "driftgate-overview"

PRED = "driftgate_predictions_total"
ERR = "driftgate_prediction_errors_total"
LAT = "driftgate_prediction_latency_seconds_bucket"

RPS_TOTAL = "Predictions per second"
RPS_BY_VERSION = "Predictions per second by model and version"
LATENCY = "Latency p50 / p95 / p99 by model and version"
KEY_PANELS = frozenset({RPS_TOTAL, RPS_BY_VERSION, LATENCY})


def _latency(q: float, by: str = "le, model, version") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({LAT}{{{MODEL_VERSION}}}[{RATE}])))"


def _error_ratio(by: str) -> str:
    """errors / (errors + successful predictions); 0 (not empty) when there were no errors."""
    agg = f"sum by ({by})" if by else "sum"
    errors = f"{agg} (rate({ERR}{{{MODEL}}}[{RATE}]))"
    preds = f"{agg} (rate({PRED}{{{MODEL}}}[{RATE}]))"
    if by:
        e = f"({errors} or 0 * {preds})"
        p = f"({preds} or 0 * {errors})"
    else:
        e = f"({errors} or vector(0))"
        p = f"({preds} or vector(0))"
    return f"{e} / ({e} + {p})"


def _arm_join() -> str:
    """1 per (model, version) that has traffic, labelled with its arm.

    A version can serve several arms (a canary is often also mirrored as shadow); the
    label is the first of default, canary, shadow that carries traffic.
    """
    legs = " or ".join(
        f"{rank} * group by (model, version, arm) "
        f'(rate({PRED}{{{MODEL_VERSION},arm="{arm}"}}[{RATE}]) > 0)'
        for rank, arm in ((3, "default"), (2, "canary"), (1, "shadow"))
    )
    return f"(0 * topk by (model, version) (1, {legs}) + 1)"


def build() -> dm.Dashboard:
    stats: list[timeseries.Panel | stat.Panel] = [
        setup(
            stat.Panel().reduce_options(last_value()),
            RPS_TOTAL,
            "Predicted rows per second (driftgate_predictions_total counts rows, a batch "
            "request counts once per row) over the selected models and versions. "
            "A drop to zero while clients are sending means the gateway is down or every "
            "request fails: check /readyz, the error panels below and the gateway logs. "
            "A sudden jump is usually a client retry storm or a load test.",
            [Q(f"sum(rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))")],
            w=6,
            h=4,
        )
        .unit("reqps")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .decimals(1),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Error ratio",
            "Share of failed prediction requests: errors / (errors + predicted rows), the "
            "same ratio the DriftgateErrorRatioHigh alert uses, for the selected models. Above 1% "
            "look at 'Errors per second by reason': validation reasons mean a client sends "
            "data that does not match the model card (talk to the client or check a schema "
            "change); internal reasons are gateway bugs or a broken model version (roll "
            "back the canary if it started with a rollout).",
            [Q(_error_ratio(""))],
            w=6,
            h=4,
        )
        .unit("percentunit")
        .decimals(2)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Latency p95",
            "95th percentile of the gateway's prediction latency over the selected models "
            "and versions. If it rises with traffic the gateway is saturated (scale workers "
            "or replicas); if it rises alone, check the log write latency on the Operations "
            "dashboard and whether a new version is slower.",
            [Q(_latency(0.95, "le"))],
            w=6,
            h=4,
        )
        .unit("s")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .thresholds(thresholds((None, "green"), (0.1, "orange"), (0.5, "red"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Latency p99",
            "99th percentile of the prediction latency. BentoML's p99 is often 10x its p50 "
            "under load because of GC pauses; a p99 far above p95 that grows over time "
            "points at memory growth in a worker: compare worker memory and restart the "
            "worker if it keeps growing.",
            [Q(_latency(0.99, "le"))],
            w=6,
            h=4,
        )
        .unit("s")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .thresholds(thresholds((None, "green"), (0.25, "orange"), (1.0, "red"))),
    ]

    traffic: list[timeseries.Panel | table.Panel] = [
        setup(
            timeseries.Panel(),
            RPS_BY_VERSION,
            "Predicted rows per second for each model and version (all arms, shadow included). "
            "A model that goes flat while others keep serving usually has a client "
            "problem or was unregistered; a version that keeps serving after a rollout "
            "means an alias or canary weight was not updated.",
            [
                Q(
                    f"sum by (model, version) (rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))",
                    "{{model}} {{version}}",
                )
            ],
        )
        .unit("reqps")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            LATENCY,
            "Gateway prediction latency quantiles per model and version, from the "
            "driftgate_prediction_latency_seconds histogram. If only one version is slow, "
            "that model version is the cause (roll back or shrink its canary weight); if "
            "all are slow together, the gateway or the prediction log is (see Operations).",
            [
                Q(_latency(0.5), "p50 {{model}} {{version}}"),
                Q(_latency(0.95), "p95 {{model}} {{version}}"),
                Q(_latency(0.99), "p99 {{model}} {{version}}"),
            ],
        )
        .unit("s")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Error ratio by model",
            "Share of failed prediction requests per model (errors carry no version label, "
            "so this covers all versions of a model). A step that starts with a deployment "
            "or a canary weight change points at the new version: roll it back. A slow rise "
            "of validation errors means clients drifted away from the model card.",
            [Q(_error_ratio("model"), "{{model}}")],
        )
        .unit("percentunit")
        .min(0)
        .legend(table_legend())
        .tooltip(multi_tooltip())
        .thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red")))
        .thresholds_style(dashed_thresholds()),
        setup(
            timeseries.Panel(),
            "Errors per second by reason",
            "Failed prediction requests per second by model and reason. Client-side reasons "
            "(unknown model, missing or extra feature, wrong type, NaN, body too large) are "
            "4xx answers: find the client and fix its payload or the model card. Any "
            "internal/5xx reason is a driftgate bug or a broken model: check the gateway logs "
            "for the traceback.",
            [
                Q(
                    f"sum by (model, reason) (rate({ERR}{{{MODEL}}}[{RATE}]))",
                    "{{model}} {{reason}}",
                )
            ],
        )
        .unit("reqps")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
    ]

    arms: list[timeseries.Panel | table.Panel] = [
        setup(
            timeseries.Panel(),
            "Canary vs default: predictions per second by arm",
            "Predicted rows per second per routing arm (default, canary, shadow) and the version "
            "behind it. The canary line should match its configured weight; shadow mirrors "
            "live traffic and is not returned to clients. A canary at zero while a weight is "
            "configured means the router is not sending it traffic (check the model aliases).",
            [
                Q(
                    f"sum by (model, arm, version) (rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))",
                    "{{model}} {{arm}} ({{version}})",
                )
            ],
        )
        .unit("reqps")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Canary vs default: latency p95 by arm",
            "p95 prediction latency of each version that has traffic, labelled with its arm "
            "(default before canary before shadow when one version serves several). A canary "
            "clearly slower than default (same model) is a reason to stop the rollout before "
            "promoting it; a slow shadow only costs capacity, not client latency.",
            [
                Q(
                    f"{_latency(0.95)} * on (model, version) group_left (arm) {_arm_join()}",
                    "{{model}} {{arm}} ({{version}})",
                )
            ],
        )
        .unit("s")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Canary vs default: share of live traffic",
            "Share of each model's live traffic (default + canary; shadow excluded because it "
            "duplicates live requests) that each arm serves. It should sit at the configured "
            "canary weight; a drift away from it means routing does not do what the "
            "configuration says.",
            [
                Q(
                    f'sum by (model, arm) (rate({PRED}{{{MODEL},arm=~"default|canary"}}'
                    f"[{RATE}])) / ignoring (arm) group_left sum by (model) "
                    f'(rate({PRED}{{{MODEL},arm=~"default|canary"}}[{RATE}]))',
                    "{{model}} {{arm}}",
                )
            ],
        )
        .unit("percentunit")
        .min(0)
        .max(1)
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            table.Panel(),
            "Arms and versions now",
            "Which version serves which arm right now, with its current predicted rows per second. "
            "Use it to name the canary version before you roll it back or promote it "
            "(POST a new alias / weight through the registry), and to spot a version that "
            "still gets traffic after it was retired.",
            [
                Q(
                    f"sum by (model, arm, version) (rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))",
                    instant=True,
                    fmt=pm.PromQueryFormat.TABLE,
                )
            ],
        )
        .unit("reqps")
        .decimals(2)
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "rows/s"}},
            )
        ),
    ]

    dash = (
        base_dashboard(
            TITLE,
            UID,
            "Traffic, latency and errors of the driftgate gateway per model and version, "
            "and the canary and default arms side by side.",
        )
        .with_variable(datasource_variable())
        .with_variable(model_variable())
        .with_variable(version_variable())
    )
    for p in stats:
        dash = dash.with_panel(p)
    dash = dash.with_row(db.Row("Traffic, latency and errors"))
    for p2 in traffic:
        dash = dash.with_panel(p2)
    dash = dash.with_row(db.Row("Canary vs default"))
    for p3 in arms:
        dash = dash.with_panel(p3)
    return number_panels(dash.build())
