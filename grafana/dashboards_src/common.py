"""Shared pieces of the driftgate dashboards: datasource, variables, panel helpers.

Every panel and every query uses the ``${datasource}`` variable, never a ``${DS_...}``
import placeholder, so the files work with Grafana's file provisioning as they are.
Template variables are always used inside regex matchers (``label=~"$model"``) and their
"All" value is ``.*``, so any selection is a valid PromQL regex.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "driftgate"

# Selectors reused by the dashboards.
MODEL = 'model=~"$model"'
MODEL_VERSION = 'model=~"$model",version=~"$version"'
MODEL_FEATURE = 'model=~"$model",feature=~"$feature"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    fmt: pm.PromQueryFormat | None = None


def targets(queries: Sequence[Q]) -> list[prometheus.Dataquery]:
    """Dataquery builders with refIds A, B, C... and the datasource variable."""
    out: list[prometheus.Dataquery] = []
    for i, q in enumerate(queries):
        t = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + i))
            .expr(q.expr)
            .datasource(DATASOURCE)
            .editor_mode(pm.QueryEditorMode.CODE)
        )
        if q.legend:
            t = t.legend_format(q.legend)
        t = t.instant() if q.instant else t.range()
        if q.fmt is not None:
            t = t.format(q.fmt)
        out.append(t)
    return out


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def table_legend() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def dashed_thresholds() -> cb.GraphThresholdsStyleConfig:
    """Draw the thresholds of a time series as dashed lines."""
    return cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)


def last_value() -> cb.ReduceDataOptions:
    """Stat panels show the last non-null value of the range."""
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def multi_tooltip() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)


class _PanelBuilder(Protocol):
    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: dm.DataSourceRef) -> Self: ...
    def targets(self, targets: list[prometheus.Dataquery]) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...


P = TypeVar("P", bound=_PanelBuilder)


def setup(
    panel: P, title: str, description: str, queries: Sequence[Q], *, w: int = 12, h: int = 8
) -> P:
    """Title, on-call description, datasource variable, queries and size of a panel."""
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets(queries))
        .span(w)
        .height(h)
    )


# ----------------------------------------------------------------------------- variables


def datasource_variable() -> db.DatasourceVariable:
    return (
        db.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("Prometheus that scrapes the driftgate /metrics endpoint.")
    )


def query_variable(name: str, label: str, query: str, description: str) -> db.QueryVariable:
    """A multi-value variable with an "All" option whose value is the regex ``.*``."""
    return (
        db.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def model_variable() -> db.QueryVariable:
    return query_variable(
        "model",
        "Model",
        "label_values(driftgate_predictions_total, model)",
        "Registered model name (label model).",
    )


def version_variable() -> db.QueryVariable:
    return query_variable(
        "version",
        "Version",
        'label_values(driftgate_predictions_total{model=~"$model"}, version)',
        "Model version (label version) of the selected models.",
    )


def feature_variable() -> db.QueryVariable:
    return query_variable(
        "feature",
        "Feature",
        'label_values(driftgate_drift_active{model=~"$model"}, feature)',
        "Monitored feature; __prediction__ is the prediction drift detector and "
        "__multivariate__ the joint (multivariate) detector.",
    )


# ----------------------------------------------------------------------------- dashboard


def alerts_annotation() -> db.AnnotationQuery:
    """Marks the time ranges in which a Driftgate* Prometheus alert fired."""
    return (
        db.AnnotationQuery()
        .name("Driftgate alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr('ALERTS{alertname=~"Driftgate.*",alertstate="firing"}')
    )


def base_dashboard(title: str, uid: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .timezone("browser")
        .refresh("30s")
        .annotation(alerts_annotation())
        .link(
            db.DashboardLink("driftgate")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def number_panels(dash: dm.Dashboard) -> dm.Dashboard:
    """Give every panel and row a stable id, in layout order."""
    next_id = 1
    for panel in dash.panels or []:
        panel.id_val = next_id
        next_id += 1
        if isinstance(panel, dm.RowPanel):
            for inner in panel.panels:
                inner.id_val = next_id
                next_id += 1
    return dash
