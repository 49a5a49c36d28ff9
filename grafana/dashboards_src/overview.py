"""driftgate / Overview: traffic, latency and errors per model and version; canary vs default."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dm

from .common import (
    MODEL,
    MODEL_VERSION,
    RATE,
    Q,
    dashboard,
    dashed_thresholds,
    histogram_quantile,
    quantile_queries,
    row,
    share_axis,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
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

BY_VERSION = "le, model, version"


def _latency(q: float, by: str = BY_VERSION) -> str:
    return histogram_quantile(q, LAT, by=by, selector=MODEL_VERSION)


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


def _rate_by_arm_version() -> str:
    return f"sum by (model, arm, version) (rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))"


def _latency_stat(q: float, description: str, orange: float, red: float) -> stat.Panel:
    """Stat of one latency quantile over all selected models and versions."""
    return stat_panel(
        f"Latency p{int(q * 100)}",
        description,
        [Q(_latency(q, "le"))],
        unit="s",
        sparkline=True,
        levels=thresholds((None, "green"), (orange, "orange"), (red, "red")),
    )


def _error_levels() -> db.ThresholdsConfig:
    """Error ratio: orange from 1%, red from 5% (the DriftgateErrorRatioHigh levels)."""
    return thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))


def build() -> dm.Dashboard:
    return dashboard(
        TITLE,
        UID,
        "Traffic, latency and errors of the driftgate gateway per model and version, "
        "and the canary and default arms side by side.",
        [
            stat_panel(
                RPS_TOTAL,
                "Predicted rows per second (driftgate_predictions_total counts rows, a batch "
                "request counts once per row) over the selected models and versions. "
                "A drop to zero while clients are sending means the gateway is down or every "
                "request fails: check /readyz, the error panels below and the gateway logs. "
                "A sudden jump is usually a client retry storm or a load test.",
                [Q(f"sum(rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))")],
                unit="reqps",
                sparkline=True,
                decimals=1,
            ),
            stat_panel(
                "Error ratio",
                "Share of failed prediction requests: errors / (errors + predicted rows), the "
                "same ratio the DriftgateErrorRatioHigh alert uses, for the selected models. "
                "Above 1% look at 'Errors per second by reason': validation reasons mean a "
                "client sends data that does not match the model card (talk to the client or "
                "check a schema change); internal reasons are gateway bugs or a broken model "
                "version (roll back the canary if it started with a rollout).",
                [Q(_error_ratio(""))],
                unit="percentunit",
                decimals=2,
                sparkline=True,
                background=True,
                levels=_error_levels(),
            ),
            _latency_stat(
                0.95,
                "95th percentile of the gateway's prediction latency over the selected models "
                "and versions. If it rises with traffic the gateway is saturated (scale workers "
                "or replicas); if it rises alone, check the log write latency on the Operations "
                "dashboard and whether a new version is slower.",
                orange=0.1,
                red=0.5,
            ),
            _latency_stat(
                0.99,
                "99th percentile of the prediction latency. BentoML's p99 is often 10x its p50 "
                "under load because of GC pauses; a p99 far above p95 that grows over time "
                "points at memory growth in a worker: compare worker memory and restart the "
                "worker if it keeps growing.",
                orange=0.25,
                red=1.0,
            ),
            row("Traffic, latency and errors"),
            timeseries_panel(
                RPS_BY_VERSION,
                "Predicted rows per second for each model and version (all arms, shadow "
                "included). A model that goes flat while others keep serving usually has a "
                "client problem or was unregistered; a version that keeps serving after a "
                "rollout means an alias or canary weight was not updated.",
                [
                    Q(
                        f"sum by (model, version) (rate({PRED}{{{MODEL_VERSION}}}[{RATE}]))",
                        "{{model}} {{version}}",
                    )
                ],
                unit="reqps",
            ),
            timeseries_panel(
                LATENCY,
                "Gateway prediction latency quantiles per model and version, from the "
                "driftgate_prediction_latency_seconds histogram. If only one version is slow, "
                "that model version is the cause (roll back or shrink its canary weight); if "
                "all are slow together, the gateway or the prediction log is (see Operations).",
                quantile_queries(
                    LAT,
                    (0.5, 0.95, 0.99),
                    by=BY_VERSION,
                    selector=MODEL_VERSION,
                    legend="{{model}} {{version}}",
                ),
                unit="s",
            ),
            timeseries_panel(
                "Error ratio by model",
                "Share of failed prediction requests per model (errors carry no version label, "
                "so this covers all versions of a model). A step that starts with a deployment "
                "or a canary weight change points at the new version: roll it back. A slow "
                "rise of validation errors means clients drifted away from the model card.",
                [Q(_error_ratio("model"), "{{model}}")],
                unit="percentunit",
            )
            .min(0)
            .thresholds(_error_levels())
            .thresholds_style(dashed_thresholds()),
            timeseries_panel(
                "Errors per second by reason",
                "Failed prediction requests per second by model and reason. Client-side "
                "reasons (unknown model, missing or extra feature, wrong type, NaN, body too "
                "large) are 4xx answers: find the client and fix its payload or the model "
                "card. Any internal/5xx reason is a driftgate bug or a broken model: check the "
                "gateway logs for the traceback.",
                [
                    Q(
                        f"sum by (model, reason) (rate({ERR}{{{MODEL}}}[{RATE}]))",
                        "{{model}} {{reason}}",
                    )
                ],
                unit="reqps",
            ),
            row("Canary vs default"),
            timeseries_panel(
                "Canary vs default: predictions per second by arm",
                "Predicted rows per second per routing arm (default, canary, shadow) and the "
                "version behind it. The canary line should match its configured weight; shadow "
                "mirrors live traffic and is not returned to clients. A canary at zero while a "
                "weight is configured means the router is not sending it traffic (check the "
                "model aliases).",
                [Q(_rate_by_arm_version(), "{{model}} {{arm}} ({{version}})")],
                unit="reqps",
            ),
            timeseries_panel(
                "Canary vs default: latency p95 by arm",
                "p95 prediction latency of each version that has traffic, labelled with its "
                "arm (default before canary before shadow when one version serves several). A "
                "canary clearly slower than default (same model) is a reason to stop the "
                "rollout before promoting it; a slow shadow only costs capacity, not client "
                "latency.",
                [
                    Q(
                        f"{_latency(0.95)} * on (model, version) group_left (arm) {_arm_join()}",
                        "{{model}} {{arm}} ({{version}})",
                    )
                ],
                unit="s",
            ),
            share_axis(
                timeseries_panel(
                    "Canary vs default: share of live traffic",
                    "Share of each model's live traffic (default + canary; shadow excluded "
                    "because it duplicates live requests) that each arm serves. It should sit "
                    "at the configured canary weight; a drift away from it means routing does "
                    "not do what the configuration says.",
                    [
                        Q(
                            f'sum by (model, arm) (rate({PRED}{{{MODEL},arm=~"default|canary"}}'
                            f"[{RATE}])) / ignoring (arm) group_left sum by (model) "
                            f'(rate({PRED}{{{MODEL},arm=~"default|canary"}}[{RATE}]))',
                            "{{model}} {{arm}}",
                        )
                    ],
                )
            ),
            table_panel(
                "Arms and versions now",
                "Which version serves which arm right now, with its current predicted rows per "
                "second. Use it to name the canary version before you roll it back or promote "
                "it (POST a new alias / weight through the registry), and to spot a version "
                "that still gets traffic after it was retired.",
                _rate_by_arm_version(),
                value_name="rows/s",
            )
            .unit("reqps")
            .decimals(2),
        ],
        variables=[version_variable()],
    )
