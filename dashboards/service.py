"""The per-service dashboard: availability, outages, capacity, tickets and burn rate."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as panel_options
from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    GraphThresholdsStyleMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DynamicConfigValue,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from dashboards.common import (
    DATASOURCE,
    OVERVIEW_UID,
    SERVICE_UID,
    TAGS,
    builtin_annotations,
    instant,
    last_value,
    query,
    thresholds,
    up_down_mapping,
    value_mapping,
)

SERVICE = 'service="$service"'
# The SRE workbook's long burn-rate windows and the factors the alerts fire at (30-day period).
BURN_RATE_WINDOWS = (("1h", 14.4), ("6h", 6.0), ("1d", 3.0), ("3d", 1.0))


def burn_rate_series(window: str) -> str:
    """The burn rate over `window` that the recording rules of `slamon rules` keep.

    pipeline/rules.py names it (burn_rate_record): error ratio over the window, the share of
    agreed-service-time samples in which the service was down, / (1 - objective).
    """
    return f"slamon:service_burn_rate:avg{window}"


def service_dashboard(default_service: str | None) -> grafana.Dashboard:
    """One service in depth; `$service` lists every configured service."""
    variable = (
        grafana.QueryVariable("service")
        .label("Service")
        .datasource(DATASOURCE)
        .query("label_values(slamon_agreed_service_time_active, service)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    if default_service is not None:
        variable = variable.current(
            VariableOption(text=default_service, value=default_service, selected=True)
        )
    return (
        grafana.Dashboard("slamon: service $service")
        .annotation(builtin_annotations())
        .uid(SERVICE_UID)
        .tags(TAGS)
        .description(
            "One service against its agreement: availability, outages, capacity, "
            "ticket compliance and error budget burn rate."
        )
        .time("now-30d", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(variable)
        .link(grafana.DashboardLink("Overview").url(f"/d/{OVERVIEW_UID}").keep_time(True))
        .with_row(grafana.Row("Availability"))
        .with_panel(
            _stat("Status", f"max(slamon_service_up{{{SERVICE}}})", "none", span=4).mappings(
                [up_down_mapping()]
            )
        )
        .with_panel(
            _stat(
                "Availability (month)",
                f'max(slamon_availability_ratio{{{SERVICE},window="month"}})',
                "percentunit",
                span=4,
            )
        )
        .with_panel(
            _stat(
                "Availability (30d)",
                f'max(slamon_availability_ratio{{{SERVICE},window="30d"}})',
                "percentunit",
                span=4,
            )
        )
        .with_panel(
            _stat(
                "Target",
                f"max(slamon_availability_target_ratio{{{SERVICE}}})",
                "percentunit",
                span=4,
            )
        )
        .with_panel(
            _stat(
                "Budget left (month)",
                f'max(slamon_error_budget_remaining_ratio{{{SERVICE},window="month"}})',
                "percentunit",
                span=4,
            ).thresholds(thresholds("red", (0.25, "orange"), (0.5, "green")))
        )
        .with_panel(
            _stat(
                "Service credit (month)",
                f'max(slamon_service_credit_ratio{{{SERVICE},window="month"}})',
                "percentunit",
                span=4,
            ).thresholds(thresholds("green", (0.000001, "red")))
        )
        .with_panel(
            statetimeline.Panel()
            .title("Availability timeline")
            .description("Up or down, and whether the moment lay inside agreed service time.")
            .datasource(DATASOURCE)
            .targets(
                [
                    query(f"max(slamon_service_up{{{SERVICE}}})", "service up", ref="A"),
                    query(
                        f"max(slamon_agreed_service_time_active{{{SERVICE}}})",
                        "agreed service time",
                        ref="B",
                    ),
                ]
            )
            .mappings([up_down_mapping()])
            .override_by_name(
                "agreed service time",
                [
                    DynamicConfigValue(
                        id_val="mappings",
                        value=[
                            value_mapping(("1", "agreed", "blue"), ("0", "outside", "transparent"))
                        ],
                    )
                ],
            )
            .height(6)
            .span(24)
        )
        .with_panel(
            timeseries.Panel()
            .title("Availability vs target")
            .datasource(DATASOURCE)
            .targets(
                [
                    query(
                        f"max by (window) (slamon_availability_ratio{{{SERVICE}}})",
                        "availability {{window}}",
                        ref="A",
                    ),
                    query(f"max(slamon_availability_target_ratio{{{SERVICE}}})", "target", ref="B"),
                ]
            )
            .unit("percentunit")
            .decimals(3)
            .height(8)
            .span(24)
        )
        .with_row(grafana.Row("Outages"))
        .with_panel(
            _stat(
                "Outages (month)",
                f'max(slamon_outages{{{SERVICE},window="month"}})',
                "none",
                span=6,
            )
        )
        .with_panel(
            _stat(
                "Downtime (month)",
                f'max(slamon_downtime_seconds{{{SERVICE},window="month"}})',
                "s",
                span=6,
            )
        )
        .with_panel(
            _stat(
                "MTRS (month)", f'max(slamon_mtrs_seconds{{{SERVICE},window="month"}})', "s", span=6
            )
        )
        .with_panel(
            _stat(
                "MTBF (month)", f'max(slamon_mtbf_seconds{{{SERVICE},window="month"}})', "s", span=6
            )
        )
        .with_panel(
            timeseries.Panel()
            .title("Downtime and outages")
            .datasource(DATASOURCE)
            .targets(
                [
                    query(
                        f"max by (window) (slamon_downtime_seconds{{{SERVICE}}})",
                        "downtime {{window}}",
                        ref="A",
                    ),
                    query(
                        f"max by (window) (slamon_mtrs_seconds{{{SERVICE}}})",
                        "MTRS {{window}}",
                        ref="B",
                    ),
                ]
            )
            .unit("s")
            .height(8)
            .span(24)
        )
        .with_row(grafana.Row("Error budget burn rate"))
        .with_panel(_burn_rate_panel())
        .with_row(grafana.Row("Capacity"))
        .with_panel(
            timeseries.Panel()
            .title("Utilization vs thresholds")
            .description("Solid: utilization per resource and host; dashed: warn and crit.")
            .datasource(DATASOURCE)
            .targets(
                [
                    query(
                        f"max by (resource, host) (slamon_capacity_utilization_ratio{{{SERVICE}}})",
                        "{{resource}} {{host}}",
                        ref="A",
                    ),
                    query(
                        f"max by (resource, level) (slamon_capacity_threshold_ratio{{{SERVICE}}})",
                        "{{resource}} {{level}}",
                        ref="B",
                    ),
                ]
            )
            .override_by_query(
                "B",
                [
                    DynamicConfigValue(
                        id_val="custom.lineStyle",
                        value={"fill": "dash", "dash": [10, 10]},
                    )
                ],
            )
            .unit("percentunit")
            .min(0)
            .height(8)
            .span(16)
        )
        .with_panel(
            bargauge.Panel()
            .title("Time to exhaustion")
            .datasource(DATASOURCE)
            .with_target(
                instant(
                    f"min by (resource, host) (slamon_capacity_exhaustion_seconds{{{SERVICE}}})",
                    "{{resource}} {{host}}",
                )
            )
            .unit("s")
            .thresholds(thresholds("red", (7 * 86_400, "orange"), (14 * 86_400, "green")))
            .display_mode(BarGaugeDisplayMode.BASIC)
            .reduce_options(last_value())
            .orientation(VizOrientation.HORIZONTAL)
            .height(8)
            .span(8)
        )
        .with_row(grafana.Row("Tickets"))
        .with_panel(
            bargauge.Panel()
            .title("Ticket SLA compliance by priority (month)")
            .datasource(DATASOURCE)
            .with_target(
                instant(
                    "max by (kind, priority, clock) "
                    f'(slamon_ticket_sla_compliance_ratio{{{SERVICE},window="month"}})',
                    "{{priority}} {{kind}} {{clock}}",
                )
            )
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(thresholds("red", (0.9, "orange"), (0.95, "green")))
            .display_mode(BarGaugeDisplayMode.GRADIENT)
            .reduce_options(last_value())
            .orientation(VizOrientation.HORIZONTAL)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Open and at-risk tickets by priority")
            .datasource(DATASOURCE)
            .targets(
                [
                    query(
                        f"sum by (priority) (slamon_tickets_open{{{SERVICE}}})",
                        "open {{priority}}",
                        ref="A",
                    ),
                    query(
                        f"sum by (priority) (slamon_tickets_at_risk{{{SERVICE}}})",
                        "at risk {{priority}}",
                        ref="B",
                    ),
                ]
            )
            .unit("none")
            .decimals(0)
            .min(0)
            .height(8)
            .span(12)
        )
        .with_row(grafana.Row("Continuity and changes"))
        .with_panel(
            _stat(
                "RTO achieved",
                f"max(slamon_continuity_rto_achieved_seconds{{{SERVICE}}})",
                "s",
                span=6,
            )
        )
        .with_panel(
            _stat(
                "RPO achieved",
                f"max(slamon_continuity_rpo_achieved_seconds{{{SERVICE}}})",
                "s",
                span=6,
            )
        )
        .with_panel(
            _stat(
                "Continuity test overdue",
                f"max(slamon_continuity_test_overdue{{{SERVICE}}})",
                "none",
                span=6,
            )
            .mappings([value_mapping(("0", "no", "green"), ("1", "yes", "red"))])
            .thresholds(thresholds("green", (1, "red")))
        )
        .with_panel(
            _stat(
                "Change success (month)",
                f'max(slamon_change_success_ratio{{{SERVICE},window="month"}})',
                "percentunit",
                span=6,
            )
        )
    )


def _stat(title: str, expr: str, unit: str, *, span: int) -> stat.Panel:
    """A single latest value of the selected service."""
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(instant(expr))
        .unit(unit)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(last_value())
        .no_value("n/a")
        .height(4)
        .span(span)
    )


def _burn_rate_panel() -> timeseries.Panel:
    """Burn rate over the alerting windows, the page factor 14.4 drawn as a threshold."""
    return (
        timeseries.Panel()
        .title("Burn rate")
        .description(
            "Error budget burn rate per window; 1 spends the budget exactly over "
            "30 days. Alerts page at 14.4 (1h) or 6 (6h), ticket at 3 (1d) or 1 (3d)."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                query(
                    f"max({burn_rate_series(window)}{{{SERVICE}}})",
                    f"{window} (alert at {factor:g})",
                    ref=chr(ord("A") + i),
                )
                for i, (window, factor) in enumerate(BURN_RATE_WINDOWS)
            ]
        )
        .unit("none")
        .min(0)
        .thresholds(thresholds("green", (1, "orange"), (14.4, "red")))
        .thresholds_style(
            panel_options.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
        .height(8)
        .span(24)
    )
