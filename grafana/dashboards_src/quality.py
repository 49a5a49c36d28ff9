"""driftgate / Model quality: performance from feedback labels, label coverage and delay."""

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

TITLE = "driftgate / Model quality"
UID = "driftgate-model-quality"

PERF = "driftgate_model_performance"
COVERAGE = "driftgate_label_coverage_ratio"
FEEDBACK = "driftgate_feedback_total"
DELAY = "driftgate_label_delay_seconds_bucket"

CLASSIFICATION = "Accuracy and F1 (classification)"
REGRESSION = "MAE and RMSE (regression)"
BY_VERSION = "Performance by version now"
KEY_PANELS = frozenset({CLASSIFICATION, REGRESSION, BY_VERSION})

_PERF_DESC = (
    " Computed by the monitor over a sliding window of predictions that received a label "
    "through POST /feedback, so it lags by the label delay and is only as trustworthy as "
    "the label coverage below."
)


def build() -> dm.Dashboard:
    performance: list[timeseries.Panel | table.Panel] = [
        setup(
            timeseries.Panel(),
            CLASSIFICATION,
            "Accuracy and F1 of each classification model version, from ground-truth "
            "feedback." + _PERF_DESC + " A drop below the training metrics in the model card "
            "is real performance decay: check the Drift dashboard for the cause and retrain "
            "(the performance alert sends the retraining webhook). A canary below default "
            "should not be promoted.",
            [
                Q(
                    f"max by (model, version, metric) "
                    f'({PERF}{{{MODEL_VERSION},metric=~"accuracy|f1"}})',
                    "{{model}} {{version}} {{metric}}",
                )
            ],
        )
        .unit("percentunit")
        .min(0)
        .max(1)
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            REGRESSION,
            "Mean absolute error and root mean squared error of each regression model "
            "version, from ground-truth feedback, in the target's unit (lower is better)."
            + _PERF_DESC
            + " RMSE rising much faster than MAE means a few large misses (outliers, a "
            "broken segment); both rising together is general decay: check drift and retrain.",
            [
                Q(
                    f"max by (model, version, metric) "
                    f'({PERF}{{{MODEL_VERSION},metric=~"mae|rmse"}})',
                    "{{model}} {{version}} {{metric}}",
                )
            ],
        )
        .min(0)
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            table.Panel(),
            BY_VERSION,
            "Latest value of every performance metric per model and version, side by side: "
            "the table to compare a canary with the default version before promoting it. "
            "No row for a version means it has no labelled predictions yet.",
            [
                Q(
                    f"max by (model, version, metric) ({PERF}{{{MODEL_VERSION}}})",
                    instant=True,
                    fmt=pm.PromQueryFormat.TABLE,
                )
            ],
            w=24,
            h=7,
        )
        .decimals(4)
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "value"}},
            )
        ),
    ]

    labels: list[stat.Panel | timeseries.Panel] = [
        setup(
            timeseries.Panel(),
            "Label coverage",
            "Share of predictions that received a ground-truth label (driftgate_label_"
            "coverage_ratio). Below ~10% the performance panels rest on few labels and swing "
            "by chance; a sudden drop to zero means the feedback pipeline stopped calling "
            "POST /feedback (or sends unknown prediction ids): check 'Feedback labels per "
            "second' and the feedback client.",
            [Q(f"max by (model) ({COVERAGE}{{{MODEL}}})", "{{model}}")],
            w=8,
        )
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "red"), (0.1, "green")))
        .thresholds_style(dashed_thresholds())
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Feedback labels per second",
            "Ground-truth labels accepted per second per model. It should follow the "
            "prediction rate times the expected label share; zero for a model that normally "
            "gets labels means the labelling pipeline is down.",
            [Q(f"sum by (model) (rate({FEEDBACK}{{{MODEL}}}[{RATE}]))", "{{model}}")],
            w=8,
        )
        .unit("reqps")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            timeseries.Panel(),
            "Label delay p50 / p90 / p99",
            "Time from a prediction to the arrival of its label (driftgate_label_delay_"
            "seconds). Performance panels describe the predictions of roughly this long ago. "
            "A growing delay means the labelling process is backlogged: performance decay "
            "will be seen later than it happens, so lean on the Drift dashboard meanwhile.",
            [
                Q(
                    f"histogram_quantile({q}, sum by (le, model) "
                    f"(rate({DELAY}{{{MODEL}}}[{RATE}])))",
                    f"p{int(q * 100)} {{{{model}}}}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            w=8,
        )
        .unit("s")
        .legend(table_legend())
        .tooltip(multi_tooltip()),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Lowest label coverage",
            "The lowest label coverage among the selected models now. Red means at least one "
            "model's performance numbers rest on fewer than 10% of its predictions.",
            [Q(f"min({COVERAGE}{{{MODEL}}})")],
            w=8,
            h=4,
        )
        .unit("percentunit")
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .thresholds(thresholds((None, "red"), (0.1, "green"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Labels received in range",
            "Ground-truth labels accepted over the dashboard time range for the selected "
            "models. Zero: no feedback arrived, so the performance panels are stale.",
            [Q(f"sum(increase({FEEDBACK}{{{MODEL}}}[$__range]))", instant=True)],
            w=8,
            h=4,
        )
        .decimals(0)
        .thresholds(thresholds((None, "orange"), (1, "green"))),
        setup(
            stat.Panel().reduce_options(last_value()),
            "Label delay p90",
            "90th percentile of the label delay over the dashboard time range, all selected "
            "models together.",
            [
                Q(
                    f"histogram_quantile(0.9, sum by (le) "
                    f"(increase({DELAY}{{{MODEL}}}[$__range])))",
                    instant=True,
                )
            ],
            w=8,
            h=4,
        ).unit("s"),
    ]

    dash = (
        base_dashboard(
            TITLE,
            UID,
            "Model quality from ground-truth feedback: accuracy and F1 or MAE and RMSE per "
            "version, and how much of the traffic is labelled and how late.",
        )
        .with_variable(datasource_variable())
        .with_variable(model_variable())
        .with_variable(version_variable())
    )
    for p in performance:
        dash = dash.with_panel(p)
    dash = dash.with_row(db.Row("Labels (feedback)"))
    for p2 in labels:
        dash = dash.with_panel(p2)
    return number_panels(dash.build())
