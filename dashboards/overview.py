"""The overview dashboard: every service's status, month availability, budget and tickets."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, statushistory, table
from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig, DynamicConfigValue

from dashboards.common import (
    DATASOURCE,
    OVERVIEW_UID,
    SERVICE_UID,
    TAGS,
    builtin_annotations,
    instant,
    last_value,
    query,
    table_query,
    thresholds,
    up_down_mapping,
)

# The columns of the service table: (refId, header, PromQL, unit). `max by (service)` drops the
# scrape's job/instance labels so the merge transformation joins the rows on `service` alone.
_TABLE_COLUMNS = (
    ("A", "Status", "max by (service) (slamon_service_up)", "none"),
    (
        "B",
        "Availability (month)",
        'max by (service) (slamon_availability_ratio{window="month"})',
        "percentunit",
    ),
    ("C", "Target", "max by (service) (slamon_availability_target_ratio)", "percentunit"),
    (
        "D",
        "Budget left (month)",
        'max by (service) (slamon_error_budget_remaining_ratio{window="month"})',
        "percentunit",
    ),
    ("E", "Open tickets", "sum by (service) (slamon_tickets_open)", "none"),
    ("F", "At-risk tickets", "sum by (service) (slamon_tickets_at_risk)", "none"),
    (
        "G",
        "Service credit (month)",
        'max by (service) (slamon_service_credit_ratio{window="month"})',
        "percentunit",
    ),
)


def overview_dashboard() -> grafana.Dashboard:
    """The landing page: one glance at every service against its agreement."""
    return (
        grafana.Dashboard("slamon: service overview")
        .annotation(builtin_annotations())
        .uid(OVERVIEW_UID)
        .tags(TAGS)
        .description(
            "Every service: status, month availability against target, error "
            "budget left, open and at-risk tickets."
        )
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("browser")
        .link(
            grafana.DashboardLink("slamon")
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .with_row(grafana.Row("At a glance"))
        .with_panel(
            _count_stat("Services down", "count(slamon_service_up == 0) or vector(0)", warn_at=1)
        )
        .with_panel(
            _count_stat(
                "Below target this month",
                'count(max by (service) (slamon_availability_ratio{window="month"})'
                " < on (service) max by (service) (slamon_availability_target_ratio))"
                " or vector(0)",
                warn_at=1,
            )
        )
        .with_panel(_count_stat("Open tickets", "sum(slamon_tickets_open) or vector(0)"))
        .with_panel(
            _count_stat("At-risk tickets", "sum(slamon_tickets_at_risk) or vector(0)", warn_at=1)
        )
        .with_row(grafana.Row("Services"))
        .with_panel(_service_table())
        .with_panel(
            bargauge.Panel()
            .title("Availability this month vs target")
            .description(
                "Month-to-date availability within agreed service time minus the "
                "target: below zero the service misses its agreement."
            )
            .datasource(DATASOURCE)
            .with_target(
                instant(
                    'max by (service) (slamon_availability_ratio{window="month"})'
                    " - on (service) max by (service) (slamon_availability_target_ratio)",
                    "{{service}}",
                )
            )
            .unit("percentunit")
            .decimals(3)
            .thresholds(thresholds("red", (0, "green")))
            .display_mode(BarGaugeDisplayMode.BASIC)
            .reduce_options(last_value())
            .orientation(VizOrientation.HORIZONTAL)
            .height(8)
            .span(12)
        )
        .with_panel(
            bargauge.Panel()
            .title("Error budget left this month")
            .datasource(DATASOURCE)
            .with_target(
                instant(
                    'max by (service) (slamon_error_budget_remaining_ratio{window="month"})',
                    "{{service}}",
                )
            )
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(thresholds("red", (0.25, "orange"), (0.5, "green")))
            .display_mode(BarGaugeDisplayMode.GRADIENT)
            .reduce_options(last_value())
            .orientation(VizOrientation.HORIZONTAL)
            .height(8)
            .span(12)
        )
        .with_row(grafana.Row("History"))
        .with_panel(
            statushistory.Panel()
            .title("Service status")
            .datasource(DATASOURCE)
            .with_target(query("max by (service) (slamon_service_up)", "{{service}}"))
            .mappings([up_down_mapping()])
            .height(8)
            .span(24)
        )
    )


def _count_stat(title: str, expr: str, *, warn_at: float | None = None) -> stat.Panel:
    """A big number; red from `warn_at` on when given."""
    steps = () if warn_at is None else ((warn_at, "red"),)
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(instant(expr))
        .unit("none")
        .decimals(0)
        .thresholds(thresholds("green", *steps))
        .color_mode(BigValueColorMode.BACKGROUND)
        .reduce_options(last_value())
        .height(4)
        .span(6)
    )


def _service_table() -> table.Panel:
    """One row per service; the service name links to its per-service dashboard."""
    panel = (
        table.Panel()
        .title("Service levels")
        .datasource(DATASOURCE)
        .targets([table_query(expr, ref=ref) for ref, _, expr, _ in _TABLE_COLUMNS])
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": {
                        f"Value #{ref}": header for ref, header, _, _ in _TABLE_COLUMNS
                    },
                    "indexByName": {"service": 0}
                    | {
                        f"Value #{ref}": index + 1 for index, (ref, *_) in enumerate(_TABLE_COLUMNS)
                    },
                },
            )
        )
        .override_by_name(
            "service",
            [
                DynamicConfigValue(
                    id_val="links",
                    value=[
                        {
                            "title": "Service dashboard",
                            "url": f"/d/{SERVICE_UID}?var-service=${{__value.text}}"
                            "&${__url_time_range}",
                        }
                    ],
                )
            ],
        )
        .height(9)
        .span(24)
    )
    for _, header, _, unit in _TABLE_COLUMNS:
        properties = [DynamicConfigValue(id_val="unit", value=unit)]
        if header == "Status":
            properties.append(DynamicConfigValue(id_val="mappings", value=[up_down_mapping()]))
        panel = panel.override_by_name(header, properties)
    return panel
