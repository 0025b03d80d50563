"""The pipeline-health dashboard: ingest rate, rejections, lag, store memory, the last batch."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models.common import BigValueColorMode

from dashboards.common import (
    DATASOURCE,
    PIPELINE_UID,
    RATE_WINDOW,
    TAGS,
    builtin_annotations,
    instant,
    last_value,
    query,
    thresholds,
)


def pipeline_health_dashboard() -> grafana.Dashboard:
    """Is slamon itself keeping up: events in, events rejected, how far behind."""
    return (
        grafana.Dashboard("slamon: pipeline health")
        .annotation(builtin_annotations())
        .uid(PIPELINE_UID)
        .tags(TAGS)
        .description(
            "slamon's own health: events stored per type, messages sent to the "
            "dead-letter topic per reason, lag, the event store's memory and the last "
            "stored batch."
        )
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_row(grafana.Row("Now"))
        .with_panel(
            _now_stat(
                "Since last batch",
                "time() - max(slamon_pipeline_last_batch_timestamp_seconds)",
                thresholds("green", (300, "orange"), (900, "red")),
            )
            .description("Seconds since the pipeline last stored a batch.")
            .unit("s")
        )
        .with_panel(
            _now_stat(
                "Lag",
                "max(slamon_pipeline_lag_seconds)",
                thresholds("green", (60, "orange"), (300, "red")),
            )
            .description("From the newest event's time in the last batch to its storage.")
            .unit("s")
        )
        .with_panel(
            _now_stat(
                "Rejected (last hour)",
                "sum(increase(slamon_events_rejected_total[1h]))",
                thresholds("green", (1, "orange")),
            )
            .unit("none")
            .decimals(0)
        )
        .with_row(grafana.Row("Flow"))
        .with_panel(
            timeseries.Panel()
            .title("Events stored per second by type")
            .datasource(DATASOURCE)
            .with_target(
                query(
                    f"sum by (type) (rate(slamon_events_ingested_total[{RATE_WINDOW}]))", "{{type}}"
                )
            )
            .unit("ops")
            .min(0)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Rejected per second by reason")
            .description(
                "Messages sent to the dead-letter topic; the reason is the code of "
                "the parse or validation failure."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    f"sum by (reason) (rate(slamon_events_rejected_total[{RATE_WINDOW}])) > 0",
                    "{{reason}}",
                )
            )
            .unit("ops")
            .min(0)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Lag")
            .datasource(DATASOURCE)
            .with_target(query("max(slamon_pipeline_lag_seconds)", "lag"))
            .unit("s")
            .min(0)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Store memory (DuckDB)")
            .description(
                "What DuckDB uses for the event store beside what it may use "
                "(store.memory_limit_mib). Its cache fills up to the limit and then evicts, "
                "so a flat line near the limit is normal."
            )
            .datasource(DATASOURCE)
            .with_target(query("sum(slamon_store_memory_bytes)", "in use"))
            .with_target(query("sum(slamon_store_memory_limit_bytes)", "limit", ref="B"))
            .unit("bytes")
            .min(0)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Age of the last batch")
            .datasource(DATASOURCE)
            .with_target(
                query(
                    "time() - max(slamon_pipeline_last_batch_timestamp_seconds)", "since last batch"
                )
            )
            .unit("s")
            .min(0)
            .height(8)
            .span(12)
        )
    )


def _now_stat(title: str, expr: str, levels: grafana.ThresholdsConfig) -> stat.Panel:
    """One of the "Now" row's three stat panels: the latest value, coloured by `levels`."""
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(instant(expr))
        .thresholds(levels)
        .color_mode(BigValueColorMode.BACKGROUND)
        .reduce_options(last_value())
        .height(4)
        .span(8)
    )
