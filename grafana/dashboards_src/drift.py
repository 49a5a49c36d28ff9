"""driftgate / Drift: drift scores, drift state, drift events, data quality, predictions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import heatmap, stat, statetimeline
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from .common import (
    MODEL,
    MODEL_FEATURE,
    RATE,
    Q,
    dashboard,
    feature_variable,
    quantile_queries,
    red_from,
    row,
    setup,
    share_axis,
    stacked_bars,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

TITLE = "driftgate / Drift"
UID = "driftgate-drift"

SCORE = "driftgate_feature_drift_score"
ACTIVE = "driftgate_drift_active"
EVENTS = "driftgate_drift_events_total"
EFFECT = "driftgate_drift_effect"
DQ = "driftgate_data_quality_issues_total"
PVALUE = "driftgate_prediction_value_bucket"
PCLASS = "driftgate_predicted_class_total"

DRIFTING_NOW = "Features drifting now"
STATE = "Drift state by feature"
SCORES = "Drift score by feature"
KEY_PANELS = frozenset({DRIFTING_NOW, STATE, SCORES})

DRIFT_MAPPING = dm.ValueMap(
    options={
        "0": dm.ValueMappingResult(text="ok", color="green", index=0),
        "1": dm.ValueMappingResult(text="DRIFT", color="red", index=1),
    }
)


def _flag(title: str, feature: str, description: str) -> stat.Panel:
    """ok / DRIFT stat of one special detector (prediction or multivariate)."""
    return (
        stat_panel(
            title,
            description,
            [Q(f'max({ACTIVE}{{{MODEL},feature="{feature}"}})')],
            sparkline=False,
            background=True,
            levels=red_from(1),
        )
        .mappings([DRIFT_MAPPING])
        .no_value("no detector")
    )


def build() -> dm.Dashboard:
    return dashboard(
        TITLE,
        UID,
        "Online drift monitoring: per-feature drift scores and flags, drift events, "
        "data-quality issues and the distribution of predictions.",
        [
            stat_panel(
                DRIFTING_NOW,
                "Number of (model, feature) detectors whose drift flag is set now, over the "
                "selected models and features, including the prediction and multivariate "
                "detectors. Above zero: find the features in 'Currently drifting' below, check "
                "'Data-quality issues' first (a broken upstream field looks like drift), then "
                "decide whether to retrain (a retrain webhook has already been sent unless the "
                "model is in its cooldown; see Operations).",
                [Q(f"sum({ACTIVE}{{{MODEL_FEATURE}}})")],
                background=True,
                sparkline=True,
                levels=red_from(1),
            ),
            _flag(
                "Prediction drift",
                "__prediction__",
                'DRIFT when the distribution of the model\'s outputs (feature="__prediction__") '
                "moved away from the reference predictions for any selected model. Prediction "
                "drift without feature drift often means a small shift in an important feature "
                "or a change in the class mix: check 'Prediction distribution' and the model "
                "quality dashboard before retraining.",
            ),
            _flag(
                "Multivariate drift",
                "__multivariate__",
                'DRIFT when the joint (multivariate) detector (feature="__multivariate__") sees '
                "the features move together even if no single feature crossed its threshold: a "
                "change in correlations. Compare with the per-feature scores; if none stands "
                "out, look at the upstream data pipeline for a join or population change.",
            ),
            stat_panel(
                "Drift events in range",
                "Drift events (all kinds) raised by the monitor over the dashboard time range "
                "for the selected models and features. Each event is also in GET "
                "/monitoring/events with the prediction id at which it fired: use that id to "
                "pull the window of logged predictions for analysis.",
                [Q(f"sum(increase({EVENTS}{{{MODEL_FEATURE}}}[$__range]))", instant=True)],
                decimals=0,
                sparkline=False,
                levels=thresholds((None, "green"), (1, "orange")),
            ),
            setup(
                statetimeline.Panel(),
                STATE,
                "When each feature's drift flag (driftgate_drift_active) was set, per model. "
                "Red bands are drift episodes. One feature flapping on and off suggests a "
                "threshold too tight for that feature; many features turning red at once "
                "suggests an upstream data change (new source, unit change, outage) rather "
                "than gradual concept drift.",
                [
                    Q(
                        f"max by (model, feature) ({ACTIVE}{{{MODEL_FEATURE}}})",
                        "{{model}} {{feature}}",
                    )
                ],
                w=24,
                h=9,
            )
            .mappings([DRIFT_MAPPING])
            .thresholds(red_from(1))
            .show_value(cm.VisibilityMode.NEVER)
            .merge_values(True)
            .row_height(0.8),
            timeseries_panel(
                SCORES,
                "Drift statistic per model, feature and method (the detector's test statistic "
                "or score against the reference sample, calibrated on the reference data). The "
                "level that matters is the detector's threshold; look for features whose score "
                "climbs steadily. Compare with 'Data-quality issues': a spike in nulls or "
                "out-of-range values shows up here too.",
                [
                    Q(
                        f"max by (model, feature, method) ({SCORE}{{{MODEL_FEATURE}}})",
                        "{{model}} {{feature}} ({{method}})",
                    )
                ],
                w=16,
                h=9,
            ),
            table_panel(
                "Currently drifting features",
                "Features whose drift flag is set now, with their current drift score and "
                "method, highest score first. Start the investigation here: compare the live "
                "distribution of the top features with the reference data in the model card "
                "(GET /monitoring/status?model=...).",
                f"max by (model, feature, method) ({SCORE}{{{MODEL_FEATURE}}}) and on "
                f"(model, feature) ({ACTIVE}{{{MODEL_FEATURE}}} == 1)",
                value_name="score",
                w=8,
                h=9,
            ).sort_by([cb.TableSortByFieldState().display_name("Value").desc(True)]),
            timeseries_panel(
                "Effect at the last drift alarm",
                "What moved and by how much at each stream's last drift alarm, with its 95% "
                "interval (low / high): mean_shift in reference standard deviations, "
                "spread_ratio (live sd / reference sd), psi for categories. An alarm whose "
                "interval hugs the stream's tolerance (GET /models/NAME, drift_tolerance) is a "
                "small change; a mean shift of 0.5 sd or a PSI above 0.2 is usually worth a "
                "retrain. The score above says how sure the detector is; this says how much.",
                [
                    Q(
                        f"max by (model, feature, measure) ({EFFECT}{{{MODEL_FEATURE},"
                        'bound="estimate"})',
                        "{{model}} {{feature}} {{measure}}",
                    ),
                    Q(
                        f"max by (model, feature, measure) ({EFFECT}{{{MODEL_FEATURE},"
                        'bound="low"})',
                        "{{model}} {{feature}} {{measure}} low",
                    ),
                    Q(
                        f"max by (model, feature, measure) ({EFFECT}{{{MODEL_FEATURE},"
                        'bound="high"})',
                        "{{model}} {{feature}} {{measure}} high",
                    ),
                ],
                w=24,
            ),
            stacked_bars(
                timeseries_panel(
                    "Drift events",
                    "Drift events raised per interval, by model, feature and kind. Each event "
                    "starts a retraining webhook for the model (one per cooldown). A burst of "
                    "events on many features within minutes is a data incident, not a model "
                    "problem: pause retraining and fix the input data first.",
                    [
                        Q(
                            f"sum by (model, feature, kind) (increase({EVENTS}{{{MODEL_FEATURE}}}"
                            "[$__interval]))",
                            "{{model}} {{feature}} {{kind}}",
                        )
                    ],
                    w=24,
                )
            ).interval("1m"),
            row("Data quality"),
            timeseries_panel(
                "Data-quality issues per second",
                "Rows per second with a data-quality issue (null, out of range, unknown "
                "category, type coercion...) by model, feature and issue. Anything steady above "
                "zero is an upstream bug or a model card that no longer fits: find the "
                "producing client or pipeline; if the new values are legitimate, update the "
                "model card and reference data.",
                [
                    Q(
                        f"sum by (model, feature, issue) (rate({DQ}{{{MODEL_FEATURE}}}[{RATE}]))",
                        "{{model}} {{feature}} {{issue}}",
                    )
                ],
                unit="reqps",
                w=16,
            ),
            table_panel(
                "Data-quality issues in range",
                "Number of data-quality issues per model, feature and issue over the dashboard "
                "time range, largest first: the list to work through.",
                f"sort_desc(sum by (model, feature, issue) "
                f"(increase({DQ}{{{MODEL_FEATURE}}}[$__range])) > 0)",
                value_name="issues",
                w=8,
            ).decimals(0),
            row("Prediction distribution"),
            setup(
                heatmap.Panel(),
                "Regression output distribution",
                "Histogram of regression outputs (driftgate_prediction_value) per interval, "
                "over the selected models (select one model for a readable picture). A band "
                "that moves up or down, widens or splits is prediction drift; if the inputs did "
                "not drift, the model or its preprocessing changed (check the version on the "
                "Overview).",
                [
                    Q(
                        f"sum by (le) (increase({PVALUE}{{{MODEL}}}[$__interval]))",
                        "{{le}}",
                        fmt=pm.PromQueryFormat.HEATMAP,
                    )
                ],
                w=8,
            )
            .interval("1m")
            .calculate(False)
            .color(
                heatmap.HeatmapColorOptions()
                .mode(hm.HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .steps(64)
                .scale(hm.HeatmapColorScale.EXPONENTIAL)
                .exponent(0.5)
            )
            .y_axis(heatmap.YAxisConfig().unit("short")),
            timeseries_panel(
                "Regression output quantiles",
                "p10, p50 and p90 of the regression outputs per model. Compare the band with "
                "the training predictions in the model card: a shifted median is a biased model "
                "or shifted inputs; a widening band means more uncertain or unusual inputs.",
                quantile_queries(
                    PVALUE, (0.1, 0.5, 0.9), by="le, model", selector=MODEL, legend="{{model}}"
                ),
                w=8,
            ),
            share_axis(
                timeseries_panel(
                    "Predicted class share",
                    "Share of predictions per class for classification models. A class whose "
                    "share moves far from its share in the training data is prediction drift "
                    "(label shift or a broken feature); a model that predicts a single class "
                    "for everything is usually fed constant or null inputs: check data quality.",
                    [
                        Q(
                            f"sum by (model, class) (rate({PCLASS}{{{MODEL}}}[{RATE}])) / "
                            f"ignoring (class) group_left sum by (model) "
                            f"(rate({PCLASS}{{{MODEL}}}[{RATE}]))",
                            "{{model}} {{class}}",
                        )
                    ],
                    w=8,
                )
            )
            .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
            .fill_opacity(40),
        ],
        variables=[feature_variable()],
    )
