"""Shared pieces of the driftgate dashboards: datasource, variables, panel helpers.

Every panel and every query uses the ``${datasource}`` variable, never a ``${DS_...}``
import placeholder, so the files work with Grafana's file provisioning as they are.
Template variables are always used inside regex matchers (``label=~"$model"``) and their
"All" value is ``.*``, so any selection is a valid PromQL regex.

A dashboard module defines ``TITLE``, ``UID``, ``KEY_PANELS`` and ``build()``, which
passes a flat list of panels and ``row(...)`` headers to ``dashboard(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
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

# ----------------------------------------------------------------------------- queries


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


def histogram_quantile(
    q: float,
    bucket: str,
    *,
    by: str = "le",
    selector: str = "",
    fn: str = "rate",
    window: str = RATE,
) -> str:
    """``histogram_quantile(q, sum by (by) (fn(bucket{selector}[window])))``."""
    matchers = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({by}) ({fn}({bucket}{matchers}[{window}])))"


def quantile_queries(
    bucket: str,
    quantiles: Sequence[float],
    *,
    by: str = "le",
    selector: str = "",
    legend: str = "",
) -> list[Q]:
    """One ``histogram_quantile`` query per quantile, its legend ``p<NN> <legend>``."""
    return [
        Q(
            histogram_quantile(q, bucket, by=by, selector=selector),
            f"p{int(q * 100)} {legend}".rstrip(),
        )
        for q in quantiles
    ]


def table_query(expr: str) -> Q:
    """An instant query in table format, for table panels."""
    return Q(expr, instant=True, fmt=pm.PromQueryFormat.TABLE)


# ----------------------------------------------------------------------------- options


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def red_from(value: float, base: str = "green") -> db.ThresholdsConfig:
    """``base`` below ``value``, red from ``value`` on."""
    return thresholds((None, base), (value, "red"))


def table_legend() -> cb.VizLegendOptions:
    """Legend as a table below the graph, with the last and the max value."""
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
    """Tooltip listing every series, highest first."""
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)


def organize(
    value_name: str | None = None, hide: Sequence[str] = ("Time",)
) -> dm.DataTransformerConfig:
    """Table transformation: hide columns ``hide`` and rename the Value column."""
    options: dict[str, object] = {"excludeByName": {name: True for name in hide}}
    if value_name is not None:
        options["renameByName"] = {"Value": value_name}
    return dm.DataTransformerConfig(id_val="organize", options=options)


def fixed_color(color: str) -> list[dm.DynamicConfigValue]:
    """Field override properties that paint a series in one fixed colour."""
    return [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})]


# ----------------------------------------------------------------------------- panels


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


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    unit: str | None = None,
    decimals: float | None = None,
    sparkline: bool | None = None,
    background: bool = False,
    levels: db.ThresholdsConfig | None = None,
    w: int = 6,
    h: int = 4,
) -> stat.Panel:
    """A small stat panel showing the last value of its query.

    ``sparkline`` True draws the value's graph behind it, False hides it (None: Grafana's
    default); ``background`` colours the whole panel by ``levels``.
    """
    panel = setup(stat.Panel().reduce_options(last_value()), title, description, queries, w=w, h=h)
    if unit is not None:
        panel = panel.unit(unit)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if sparkline is not None:
        panel = panel.graph_mode(
            cm.BigValueGraphMode.AREA if sparkline else cm.BigValueGraphMode.NONE
        )
    if background:
        panel = panel.color_mode(cm.BigValueColorMode.BACKGROUND)
    if levels is not None:
        panel = panel.thresholds(levels)
    return panel


def timeseries_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    unit: str | None = None,
    w: int = 12,
    h: int = 8,
    tooltip: bool = True,
) -> timeseries.Panel:
    """A time series with a table legend and (unless ``tooltip=False``) a multi tooltip."""
    panel = setup(timeseries.Panel(), title, description, queries, w=w, h=h).legend(table_legend())
    if unit is not None:
        panel = panel.unit(unit)
    if tooltip:
        panel = panel.tooltip(multi_tooltip())
    return panel


def share_axis(panel: timeseries.Panel) -> timeseries.Panel:
    """Y axis for a share: percent, from 0 to 1."""
    return panel.unit("percentunit").min(0).max(1)


def stacked_bars(panel: timeseries.Panel) -> timeseries.Panel:
    """Draw a count per interval as stacked bars with whole numbers."""
    return (
        panel.draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .decimals(0)
    )


def table_panel(
    title: str,
    description: str,
    expr: str,
    *,
    value_name: str | None = None,
    hide: Sequence[str] = ("Time",),
    w: int = 12,
    h: int = 8,
) -> table.Panel:
    """A table of one instant query, the Time column hidden and Value renamed."""
    return setup(
        table.Panel(), title, description, [table_query(expr)], w=w, h=h
    ).with_transformation(organize(value_name, hide))


# ----------------------------------------------------------------------------- variables


def datasource_variable() -> db.DatasourceVariable:
    """The Prometheus data source every panel and query uses."""
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
    """``$model``: the registered model names."""
    return query_variable(
        "model",
        "Model",
        "label_values(driftgate_predictions_total, model)",
        "Registered model name (label model).",
    )


def version_variable() -> db.QueryVariable:
    """``$version``: the versions of the selected models."""
    return query_variable(
        "version",
        "Version",
        'label_values(driftgate_predictions_total{model=~"$model"}, version)',
        "Model version (label version) of the selected models.",
    )


def feature_variable() -> db.QueryVariable:
    """``$feature``: the monitored features of the selected models."""
    return query_variable(
        "feature",
        "Feature",
        'label_values(driftgate_drift_active{model=~"$model"}, feature)',
        "Monitored feature; __prediction__ is the prediction drift detector and "
        "__multivariate__ the joint (multivariate) detector.",
    )


# ----------------------------------------------------------------------------- dashboard

Item = cogbuilder.Builder[dm.Panel] | db.Row
"""One entry of a dashboard's layout: a panel or a row header."""


def row(title: str) -> db.Row:
    """A row header; the panels listed after it belong to it."""
    return db.Row(title)


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
    """Dashboard settings shared by all driftgate dashboards (no variables, no panels)."""
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


def dashboard(
    title: str,
    uid: str,
    description: str,
    layout: Sequence[Item],
    *,
    variables: Sequence[db.QueryVariable] = (),
    annotations: Sequence[db.AnnotationQuery] = (),
) -> dm.Dashboard:
    """A numbered dashboard: ``$datasource``, ``$model``, ``variables``, then ``layout``;
    ``annotations`` beside the Prometheus alerts annotation."""
    dash = (
        base_dashboard(title, uid, description)
        .with_variable(datasource_variable())
        .with_variable(model_variable())
    )
    for annotation in annotations:
        dash = dash.annotation(annotation)
    for variable in variables:
        dash = dash.with_variable(variable)
    for item in layout:
        dash = dash.with_row(item) if isinstance(item, db.Row) else dash.with_panel(item)
    return number_panels(dash.build())


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
