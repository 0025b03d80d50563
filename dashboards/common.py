"""Building blocks shared by the slamon dashboards: datasource, queries, thresholds."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as panel_options
from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# Every panel names the datasource by this uid; provisioning and `push` create it under it.
DATASOURCE_UID = "slamon-prometheus"
DATASOURCE_NAME = "Prometheus (slamon)"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAGS = ["slamon"]

OVERVIEW_UID = "slamon-overview"
SERVICE_UID = "slamon-service"
PIPELINE_UID = "slamon-pipeline-health"

# Grafana's grid is 24 columns wide.
GRID_WIDTH = 24
# The rate() window Grafana scales to the panel's step and the scrape interval.
RATE_WINDOW = "$__rate_interval"


def query(expr: str, legend: str = "", *, ref: str = "A") -> prometheus.Dataquery:
    """A range query on the slamon datasource."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(DATASOURCE)
        .range()
    )


def instant(expr: str, legend: str = "", *, ref: str = "A") -> prometheus.Dataquery:
    """An instant query, for stats and bar gauges that show the latest value."""
    return query(expr, legend, ref=ref).instant()


def table_query(expr: str, *, ref: str) -> prometheus.Dataquery:
    """An instant query in table format, one column per query after a merge."""
    return instant(expr, ref=ref).format(PromQueryFormat.TABLE)


def last_value() -> panel_options.ReduceDataOptions:
    """Stats and bar gauges show the latest non-null value of each series."""
    return panel_options.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def builtin_annotations() -> grafana.AnnotationQuery:
    """Grafana's own annotations and alerts, which every dashboard carries."""
    return (
        grafana.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )


def thresholds(base: str, *steps: tuple[float, str]) -> grafana.ThresholdsConfig:
    """Absolute thresholds: `base` colour below the first step, then each step's colour."""
    return (
        grafana.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(None, base), *(Threshold(value, color) for value, color in steps)])
    )


def value_mapping(*entries: tuple[str, str, str]) -> ValueMap:
    """Values shown as words in colours: each entry is (value, text, colour)."""
    return ValueMap(
        {
            value: ValueMappingResult(text=text, color=color, index=index)
            for index, (value, text, color) in enumerate(entries)
        }
    )


def up_down_mapping() -> ValueMap:
    """`slamon_service_up` shown as words: 1 up (green), 0 down (red)."""
    return value_mapping(("1", "up", "green"), ("0", "down", "red"))
