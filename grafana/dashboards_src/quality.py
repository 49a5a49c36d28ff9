"""driftgate / Model quality: performance from feedback labels, label coverage and delay."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import (
    DATASOURCE,
    MODEL,
    MODEL_VERSION,
    RATE,
    Item,
    Q,
    dashboard,
    dashed_thresholds,
    histogram_quantile,
    quantile_queries,
    row,
    setup,
    share_axis,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    version_variable,
)

TITLE = "driftgate / Model quality"
UID = "driftgate-model-quality"

PERF = "driftgate_model_performance"
COVERAGE = "driftgate_label_coverage_ratio"
FEEDBACK = "driftgate_feedback_total"
DELAY = "driftgate_label_delay_seconds_bucket"
ATTRIBUTION = "driftgate_feature_attribution"
NDCG = "driftgate_attribution_ndcg"
ATTRIBUTION_BY_VERSION = "Feature attribution by version"
WEIGHT = "driftgate_rollout_weight"
GATE = "driftgate_rollout_gate"
DECISIONS = "driftgate_rollout_decisions_total"

CLASSIFICATION = "Accuracy and F1 (classification)"
REGRESSION = "MAE and RMSE (regression)"
BY_VERSION = "Performance by version now"
KEY_PANELS = frozenset({CLASSIFICATION, REGRESSION, BY_VERSION})

_PERF_DESC = (
    " Computed by the monitor over a sliding window of predictions that received a label "
    "through POST /feedback, so it lags by the label delay and is only as trustworthy as "
    "the label coverage below."
)


def _performance(metrics: str) -> Q:
    """The performance metrics matching the regex ``metrics``, per model and version."""
    return Q(
        f'max by (model, version, metric) ({PERF}{{{MODEL_VERSION},metric=~"{metrics}"}})',
        "{{model}} {{version}} {{metric}}",
    )


def _coverage_levels() -> db.ThresholdsConfig:
    """Label coverage: red below 10%, green from there."""
    return thresholds((None, "red"), (0.1, "green"))


GATE_MAPPING = dm.ValueMap(
    options={
        "0": dm.ValueMappingResult(text="FAIL", color="red", index=0),
        "1": dm.ValueMappingResult(text="pass", color="green", index=1),
    }
)


def rollout_decisions() -> db.AnnotationQuery:
    """Marks when a rollout ended (promoted, rolled back or aborted), per model and version."""
    return (
        db.AnnotationQuery()
        .name("Rollout decisions")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("purple")
        .expr(f"sum by (model, version, decision) "
              f"(increase({DECISIONS}{{{MODEL}}}[2m])) > 0")
    )


def _rollout_panels() -> list[Item]:
    return [
        row("Rollouts"),
        share_axis(
            timeseries_panel(
                "Rollout canary weight",
                "Share of the unpinned requests an automated rollout routes to its canary "
                "version (driftgate_rollout_weight), per model and version: a staircase up the "
                "steps, then 0 when it ended. A drop to 0 before the last step is a rollback "
                "or an abort: the purple 'Rollout decisions' annotations say which, and "
                "`driftgate rollout status MODEL` names the failed gate and its evidence. "
                "A shadow step shows weight 0 (the version answers copies only).",
                [Q(f"max by (model, version) ({WEIGHT}{{{MODEL}}})", "{{model}} {{version}}")],
                w=12,
            )
        ),
        setup(
            statetimeline.Panel(),
            "Rollout gates",
            "Each gate's verdict over time (driftgate_rollout_gate: share, answers, latency, "
            "performance, drift, agreement), per model and canary version. Any red band is "
            "a failed gate: the rollout rolls back at that evaluation, so red is the last "
            "state of a rolled-back rollout.",
            [Q(f"min by (model, version, gate) ({GATE}{{{MODEL}}})",
               "{{model}} {{version}} {{gate}}")],
            w=12,
            h=8,
        )
        .mappings([GATE_MAPPING])
        .thresholds(thresholds((None, "red"), (1, "green")))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True),
    ]


def build() -> dm.Dashboard:
    return dashboard(
        TITLE,
        UID,
        "Model quality from ground-truth feedback: accuracy and F1 or MAE and RMSE per "
        "version, and how much of the traffic is labelled and how late.",
        [
            share_axis(
                timeseries_panel(
                    CLASSIFICATION,
                    "Accuracy and F1 of each classification model version, from ground-truth "
                    "feedback." + _PERF_DESC + " A drop below the training metrics in the "
                    "model card is real performance decay: check the Drift dashboard for the "
                    "cause and retrain (the performance alert sends the retraining webhook). A "
                    "canary below default should not be promoted.",
                    [_performance("accuracy|f1")],
                )
            ),
            timeseries_panel(
                REGRESSION,
                "Mean absolute error and root mean squared error of each regression model "
                "version, from ground-truth feedback, in the target's unit (lower is better)."
                + _PERF_DESC
                + " RMSE rising much faster than MAE means a few large misses (outliers, a "
                "broken segment); both rising together is general decay: check drift and "
                "retrain.",
                [_performance("mae|rmse")],
            ).min(0),
            table_panel(
                BY_VERSION,
                "Latest value of every performance metric per model and version, side by "
                "side: the table to compare a canary with the default version before promoting "
                "it. No row for a version means it has no labelled predictions yet.",
                f"max by (model, version, metric) ({PERF}{{{MODEL_VERSION}}})",
                value_name="value",
                w=24,
                h=7,
            ).decimals(4),
            row("Attribution (what the model leans on)"),
            timeseries_panel(
                ATTRIBUTION_BY_VERSION,
                "Global importance of each feature (mean |SHAP attribution| over the monitor's "
                "sliding window of sampled predictions, in the model's output unit) per model "
                "version. Versions side by side show whether a new version reasons like the "
                "last one; a feature whose line collapses lost its weight in the model (a "
                "retrain without its signal, a broken upstream column), a feature rising to "
                "the top deserves a look at its drift. The baseline of each version is in "
                "GET /models/{name}/attributions and `driftgate models attributions NAME`.",
                [Q(f"max by (model, version, feature) ({ATTRIBUTION}{{{MODEL_VERSION}}})",
                   "{{model}} {{version}} {{feature}}")],
                w=16,
            ).min(0),
            share_axis(
                timeseries_panel(
                    "Attribution ranking vs baseline (nDCG)",
                    "nDCG of the live feature ranking against the version's reference "
                    "baseline (1 = same order). Below its calibrated threshold (in "
                    "/monitoring/status and the attribution_drift event) the model leans on "
                    "different features than it did on its reference data: an "
                    "attribution_drift event names the features that moved.",
                    [Q(f"min by (model, version) ({NDCG}{{{MODEL_VERSION}}})",
                       "{{model}} {{version}}")],
                    w=8,
                )
            ),
            row("Labels (feedback)"),
            share_axis(
                timeseries_panel(
                    "Label coverage",
                    "Share of predictions that received a ground-truth label (driftgate_label_"
                    "coverage_ratio). Below ~10% the performance panels rest on few labels and "
                    "swing by chance; a sudden drop to zero means the feedback pipeline stopped "
                    "calling POST /feedback (or sends unknown prediction ids): check 'Feedback "
                    "labels per second' and the feedback client.",
                    [Q(f"max by (model) ({COVERAGE}{{{MODEL}}})", "{{model}}")],
                    w=8,
                )
            )
            .thresholds(_coverage_levels())
            .thresholds_style(dashed_thresholds()),
            timeseries_panel(
                "Feedback labels per second",
                "Ground-truth labels accepted per second per model. It should follow the "
                "prediction rate times the expected label share; zero for a model that "
                "normally gets labels means the labelling pipeline is down.",
                [Q(f"sum by (model) (rate({FEEDBACK}{{{MODEL}}}[{RATE}]))", "{{model}}")],
                unit="reqps",
                w=8,
            ),
            timeseries_panel(
                "Label delay p50 / p90 / p99",
                "Time from a prediction to the arrival of its label (driftgate_label_delay_"
                "seconds). Performance panels describe the predictions of roughly this long "
                "ago. A growing delay means the labelling process is backlogged: performance "
                "decay will be seen later than it happens, so lean on the Drift dashboard "
                "meanwhile.",
                quantile_queries(
                    DELAY, (0.5, 0.9, 0.99), by="le, model", selector=MODEL, legend="{{model}}"
                ),
                unit="s",
                w=8,
            ),
            stat_panel(
                "Lowest label coverage",
                "The lowest label coverage among the selected models now. Red means at least "
                "one model's performance numbers rest on fewer than 10% of its predictions.",
                [Q(f"min({COVERAGE}{{{MODEL}}})")],
                w=8,
                unit="percentunit",
                background=True,
                levels=_coverage_levels(),
            ),
            stat_panel(
                "Labels received in range",
                "Ground-truth labels accepted over the dashboard time range for the selected "
                "models. Zero: no feedback arrived, so the performance panels are stale.",
                [Q(f"sum(increase({FEEDBACK}{{{MODEL}}}[$__range]))", instant=True)],
                w=8,
                decimals=0,
                levels=thresholds((None, "orange"), (1, "green")),
            ),
            stat_panel(
                "Label delay p90",
                "90th percentile of the label delay over the dashboard time range, all "
                "selected models together.",
                [
                    Q(
                        histogram_quantile(
                            0.9, DELAY, selector=MODEL, fn="increase", window="$__range"
                        ),
                        instant=True,
                    )
                ],
                w=8,
                unit="s",
            ),
            *_rollout_panels(),
        ],
        variables=[version_variable()],
        annotations=[rollout_decisions()],
    )
