"""The `slamon` command line."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from collectors.prometheus_import import PrometheusImporter
from collectors.record_import import import_records
from collectors.records import RecordKind, record_from_cli
from collectors.ticket_import import import_tickets, load_ticket_mapping
from dashboards.build import write_provisioning
from dashboards.common import PIPELINE_UID, SERVICE_UID
from dashboards.push import push
from pipeline.parquet import store_from_parquet
from pipeline.rules import generate_rule_tests, render_rules
from pipeline.store import EventStore
from sla.config import KafkaTransportConfig, SlamonConfig
from sla.durations import parse_duration
from sla.errors import ConfigError, SlamonError
from sla.intervals import Interval
from slamon.app import (
    ingest_files,
    publish_events,
    run_all,
    run_collectors,
    run_demo,
    run_pipeline,
)
from slamon.compute import (
    figures_in_batches,
    open_store,
    parse_instant,
    render_table,
    store_from_events,
    write_csv,
    write_json,
)
from slamon.configfile import load_config
from slamon.explain import FIGURES as EXPLAINED
from slamon.explain import explain, parse_target, render_explain_json, render_explain_tables
from slamon.exports import export_to_read
from slamon.openslo import import_openslo, render_yaml
from slamon.report import last_closed_month, write_report

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Service-level monitoring and SLA pipeline.",
    pretty_exceptions_enable=False,
)
# Messages are single lines even in a log file or cron mail, where rich would wrap at 80.
console = Console(stderr=True, soft_wrap=True)
# Tables sent to a file or a pipe keep their natural width instead of being cut at 80 columns.
_UNCUT_WIDTH = 10_000
_state = {"debug": False}
# The project has no public URL: point --runbook-url at wherever your copy is served.
RUNBOOK_URL = "examples/runbook.md"


def _table_console() -> Console:
    """stdout for tables: the terminal's width, or uncut when it is not a terminal."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=_UNCUT_WIDTH)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="slamon YAML config file.")]
BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap servers; overrides the config's transport."),
]
DurationOption = Annotated[
    float | None, typer.Option("--duration", help="Stop after this many seconds.")
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _load(config: Path, bootstrap: str | None = None) -> SlamonConfig:
    loaded = load_config(config)
    if bootstrap is None:
        return loaded
    # Keep the config's Kafka settings (partitions, client id) and replace only the servers.
    settings = loaded.transport.model_dump()
    if loaded.transport.kind != "kafka":
        settings = {"topic_prefix": loaded.transport.topic_prefix}
    try:
        kafka = KafkaTransportConfig.model_validate(
            {**settings, "kind": "kafka", "bootstrap": bootstrap}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        # Our own validators' words, without pydantic's "Value error, " in front.
        reason = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        raise ConfigError(f"--bootstrap {bootstrap!r}: {reason}") from None
    return loaded.model_copy(update={"transport": kafka})


def _stop_on_signals(duration: float | None) -> threading.Event:
    """An event set by SIGTERM, SIGINT or the end of `duration`."""
    stop = threading.Event()

    def _handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    return stop


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="Config file to check.")]) -> None:
    """Check a config file; print every problem with file, line and field."""
    loaded = _load(config)
    # The verdict is the command's output (problems are errors, on stderr), as promtool does.
    Console(soft_wrap=True).print(
        f"[green]ok[/green] {config}: {len(loaded.services)} services, "
        f"{len(loaded.calendars)} calendars, transport {loaded.transport.kind}"
    )


@app.command()
def run(
    config: ConfigOption, bootstrap: BootstrapOption = None, duration: DurationOption = None
) -> None:
    """Collectors, pipeline and exporter in one process."""

    loaded = _load(config, bootstrap)
    run_all(loaded, _stop_on_signals(duration), console, base_dir=config.parent)


@app.command()
def collect(
    config: ConfigOption, bootstrap: BootstrapOption = None, duration: DurationOption = None
) -> None:
    """Run the collectors only, publishing to the configured transport."""

    loaded = _load(config, bootstrap)
    run_collectors(loaded, _stop_on_signals(duration), console, base_dir=config.parent)


@app.command()
def pipeline(
    config: ConfigOption, bootstrap: BootstrapOption = None, duration: DurationOption = None
) -> None:
    """Run the pipeline only: ingest, store, compute and export."""

    loaded = _load(config, bootstrap)
    run_pipeline(loaded, _stop_on_signals(duration), console, base_dir=config.parent)


@app.command()
def ingest(
    config: ConfigOption,
    files: Annotated[list[Path], typer.Argument(help="JSONL files, one CloudEvent per line.")],
    bootstrap: BootstrapOption = None,
) -> None:
    """Publish events from JSONL files; invalid lines go to the dead-letter topic."""

    loaded = _load(config, bootstrap)
    summary = ingest_files(loaded, files, console, base_dir=config.parent)
    if summary.rejected:
        raise typer.Exit(code=1)


class OutputFormat(StrEnum):
    """How `slamon compute` prints its figures."""

    JSON = "json"
    CSV = "csv"
    TABLE = "table"


ParquetOption = typer.Option(
    "--parquet",
    help="Read the Parquet export of the pipeline workers: a directory or s3://bucket/prefix "
    "(store.parquet.path).",
)


def _read_store(
    config: SlamonConfig, store: Path | None, parquet: str | None, base_dir: Path
) -> EventStore:
    """The store to read: `--parquet`, else `--store`, else the config's (shards or file)."""
    if parquet is not None:
        target = export_to_read(config, parquet, base_dir=base_dir)
        with console.status(f"loading the Parquet export {parquet}"):
            return store_from_parquet(target)
    return open_store(store or Path(config.store.path))


@app.command("compute")
def compute_command(
    config: ConfigOption,
    start: Annotated[str, typer.Option("--from", help="Window start: 2026-10-01 or RFC 3339.")],
    end: Annotated[str, typer.Option("--to", help="Window end (exclusive).")],
    events: Annotated[
        Path | None, typer.Option("--events", help="JSONL file of CloudEvents to compute from.")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="DuckDB event store (or directory of shards) to read."),
    ] = None,
    parquet: Annotated[str | None, ParquetOption] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.JSON
    ),
    now: Annotated[
        str | None, typer.Option("--now", help="Evaluate as of this instant (default: now).")
    ] = None,
    explain_target: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="SERVICE[:FIGURE]",
            help="List the stored events behind the figures of one service "
            f"(FIGURE: {', '.join(EXPLAINED)}; default both); --format json or table.",
        ),
    ] = None,
) -> None:
    """Compute every SLA figure for a window, from a store or an events file (no Kafka)."""
    if [events, store, parquet].count(None) != 2:
        raise ConfigError(
            "give exactly one of --events FILE.jsonl, --store DB or --parquet DIR|s3://..."
        )
    if explain_target is not None and output is OutputFormat.CSV:
        raise ConfigError("--explain prints --format json or table, not csv")
    loaded = _load(config)
    target = None if explain_target is None else parse_target(explain_target, loaded)
    window_start, window_end = parse_instant(start, "--from"), parse_instant(end, "--to")
    if window_end <= window_start:
        raise ConfigError(f"--to {end} must be after --from {start}")
    window = Interval(window_start, window_end)
    instant = int(time.time()) if now is None else parse_instant(now, "--now")
    if events is not None:
        source = store_from_events(events, loaded, console)
    else:
        source = _read_store(loaded, store, parquet, config.parent)
    if target is not None:
        with source:
            document = explain(loaded, source, target, window, instant)
        if output is OutputFormat.TABLE:
            _table_console().print(*render_explain_tables(document))
        else:
            sys.stdout.write(render_explain_json(document))
        return
    with source:
        # The CSV and the table are summaries: they need no listed clocks and changes.
        listed = output is OutputFormat.JSON
        figures = figures_in_batches(loaded, source, window, instant, listed=listed)
        if output is OutputFormat.TABLE:
            _table_console().print(render_table(figures, window))
        elif output is OutputFormat.JSON:
            write_json(figures, window, min(instant, window.end), sys.stdout)
        else:
            write_csv(figures, sys.stdout)


record_app = typer.Typer(
    no_args_is_help=True, help="Record a change, continuity test or maintenance window."
)
import_app = typer.Typer(no_args_is_help=True, help="Import tickets or records from files.")
app.add_typer(record_app, name="record")
app.add_typer(import_app, name="import")

ServiceOption = Annotated[str, typer.Option("--service", help="Service id.")]
IdOption = Annotated[str, typer.Option("--id", help="Id of the record (dedupe key).")]
TimeOption = Annotated[
    str | None, typer.Option("--time", help="When the record was made (default: now).")
]


def _services(config: SlamonConfig) -> list[str]:
    return [s.id for s in config.services]


def _record(
    kind: RecordKind, fields: dict[str, str | None], config: Path, bootstrap: str | None
) -> None:
    """Publish one record given on the command line (a change, continuity test, ...)."""
    loaded = _load(config, bootstrap)
    record = record_from_cli(kind, fields, services=_services(loaded))
    publish_events(loaded, [record], console, base_dir=config.parent)


@record_app.command("change")
def record_change_command(
    config: ConfigOption,
    service: ServiceOption,
    change_id: IdOption,
    kind: Annotated[str, typer.Option("--kind", help="standard, normal or emergency.")],
    status: Annotated[
        str, typer.Option("--status", help="scheduled, implemented, failed, rolled_back, ...")
    ],
    start: Annotated[str, typer.Option("--start", help="RFC 3339 with offset.")],
    end: Annotated[str, typer.Option("--end", help="RFC 3339 with offset.")],
    caused_incident: Annotated[
        str | None, typer.Option("--caused-incident", help="Incident the change caused.")
    ] = None,
    at: TimeOption = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Record the state of a change."""
    _record(
        RecordKind.CHANGE,
        {
            "service": service,
            "change_id": change_id,
            "kind": kind,
            "status": status,
            "start": start,
            "end": end,
            "caused_incident": caused_incident,
            "time": at,
        },
        config,
        bootstrap,
    )


@record_app.command("continuity")
def record_continuity_command(
    config: ConfigOption,
    service: ServiceOption,
    test_id: IdOption,
    scenario: Annotated[str, typer.Option("--scenario", help="What was tested.")],
    invoked_at: Annotated[str, typer.Option("--invoked-at", help="When recovery was invoked.")],
    restored_at: Annotated[str, typer.Option("--restored-at", help="When service was back.")],
    data_restored_to: Annotated[
        str, typer.Option("--data-restored-to", help="The last recovered data point.")
    ],
    outcome: Annotated[str, typer.Option("--outcome", help="Free text, e.g. passed.")],
    at: TimeOption = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Record a continuity (disaster recovery) test."""
    _record(
        RecordKind.CONTINUITY,
        {
            "service": service,
            "test_id": test_id,
            "scenario": scenario,
            "invoked_at": invoked_at,
            "restored_at": restored_at,
            "data_restored_to": data_restored_to,
            "outcome": outcome,
            "time": at,
        },
        config,
        bootstrap,
    )


@record_app.command("maintenance")
def record_maintenance_command(
    config: ConfigOption,
    service: ServiceOption,
    window_id: IdOption,
    start: Annotated[str, typer.Option("--start", help="RFC 3339 with offset.")],
    end: Annotated[str, typer.Option("--end", help="RFC 3339 with offset.")],
    reason: Annotated[str, typer.Option("--reason", help="What the maintenance is for.")],
    change_ref: Annotated[
        str | None, typer.Option("--change-ref", help="The change it implements.")
    ] = None,
    at: TimeOption = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Record a planned maintenance window (excluded from agreed service time)."""
    _record(
        RecordKind.MAINTENANCE,
        {
            "service": service,
            "window_id": window_id,
            "start": start,
            "end": end,
            "reason": reason,
            "change_ref": change_ref,
            "time": at,
        },
        config,
        bootstrap,
    )


@import_app.command("tickets")
def import_tickets_command(
    config: ConfigOption,
    file: Annotated[Path, typer.Argument(help="CSV or JSON export of tickets.")],
    mapping: Annotated[Path, typer.Option("--mapping", help="YAML ticket mapping.")],
    bootstrap: BootstrapOption = None,
) -> None:
    """Import a ticket export (history or summary layout) as ticket events."""
    loaded = _load(config, bootstrap)
    events = import_tickets(file, load_ticket_mapping(mapping), services=_services(loaded))
    publish_events(loaded, events, console, base_dir=config.parent)


@import_app.command("prometheus")
def import_prometheus_command(
    config: ConfigOption,
    start: Annotated[str, typer.Option("--from", help="Backfill start: date or RFC 3339.")],
    end: Annotated[str, typer.Option("--to", help="Backfill end.")],
    step: Annotated[
        str | None, typer.Option("--step", help="Resolution, e.g. 5m (default: the interval).")
    ] = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Backfill history from the configured Prometheus queries (query_range)."""
    loaded = _load(config, bootstrap)
    settings = loaded.collectors.prometheus
    if settings is None:
        raise ConfigError(f"{config}: no collectors.prometheus section to import from")
    resolution = settings.interval if step is None else _duration(step, "--step")
    importer = PrometheusImporter(settings, lambda event: None)
    try:
        events = importer.backfill(
            datetime.fromtimestamp(parse_instant(start, "--from"), UTC),
            datetime.fromtimestamp(parse_instant(end, "--to"), UTC),
            resolution,
        )
        publish_events(loaded, events, console, base_dir=config.parent)
    finally:
        importer.close()


def _duration(text: str, option: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _records_importer(kind: RecordKind) -> Callable[..., None]:
    """The `slamon import <kind>` command for one record kind."""

    def command(
        config: ConfigOption,
        file: Annotated[Path, typer.Argument(help="CSV (header row) or JSON array of records.")],
        bootstrap: BootstrapOption = None,
    ) -> None:
        loaded = _load(config, bootstrap)
        events = import_records(file, kind, services=_services(loaded))
        publish_events(loaded, events, console, base_dir=config.parent)

    command.__doc__ = f"Import {kind.plural} from a CSV or JSON file (see docs/recording.md)."
    return command


for _kind in RecordKind:
    import_app.command(_kind.plural)(_records_importer(_kind))


@app.command("report")
def report_command(
    config: ConfigOption,
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM (default: last month).")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="One service's pack.")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="One customer's pack.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the packs.")] = Path("reports"),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print to PDF.")] = True,
    parquet: Annotated[str | None, ParquetOption] = None,
) -> None:
    """Write the monthly service review pack: HTML, PDF and every table as CSV and JSON."""
    loaded = _load(config)
    now = int(time.time())
    with _read_store(loaded, None, parquet, config.parent) as store:
        written = write_report(
            loaded,
            store,
            month=month or last_closed_month(loaded, now),
            service=service,
            customer=customer,
            out_dir=out,
            now=now,
            pdf=pdf,
        )
    for path in written:
        console.print(str(path))


@app.command("rules")
def rules_command(
    config: ConfigOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the rules here, not stdout.")
    ] = None,
    tests: Annotated[
        Path | None, typer.Option("--tests", help="Also write a promtool test file (needs --out).")
    ] = None,
    grafana_url: Annotated[
        str, typer.Option("--grafana-url", help="Grafana base URL for dashboard links.")
    ] = "http://localhost:3000",
    runbook_url: Annotated[
        str, typer.Option("--runbook-url", help="Runbook the alerts link to.")
    ] = RUNBOOK_URL,
    period: Annotated[
        str, typer.Option("--period", help="Error budget period of the burn-rate alerts.")
    ] = "30d",
) -> None:
    """Print Prometheus recording and alerting rules (burn rates and SLA thresholds)."""
    if tests is not None and out is None:
        raise ConfigError("--tests needs --out: the test file names the rules file")
    loaded = _load(config)
    grafana = grafana_url.rstrip("/")
    dashboard, pipeline = f"{grafana}/d/{SERVICE_UID}", f"{grafana}/d/{PIPELINE_UID}"
    seconds = _duration(period, "--period")
    text = render_rules(
        loaded,
        runbook_url=runbook_url,
        dashboard_url=dashboard,
        pipeline_dashboard_url=pipeline,
        period=seconds,
    )
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")
    if tests is not None:
        checks = generate_rule_tests(
            loaded,
            rule_file=os.path.relpath(out, tests.parent),
            runbook_url=runbook_url,
            dashboard_url=dashboard,
            pipeline_dashboard_url=pipeline,
            period=seconds,
        )
        tests.write_text(checks, encoding="utf-8")
        console.print(f"wrote {tests} (run: promtool test rules {tests})")


dashboards_app = typer.Typer(
    invoke_without_command=True,
    help="Write Grafana dashboards and provisioning files, or push them to a Grafana.",
)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.callback()
def dashboards_command(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="slamon config.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory for Grafana file provisioning.")
    ] = None,
) -> None:
    """Write the overview, per-service and pipeline dashboards with provisioning files."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None or out is None:
        raise ConfigError("slamon dashboards needs --config and --out (or the push command)")
    for path in write_provisioning(_load(config), out):
        console.print(f"wrote {path}")


@dashboards_app.command("push")
def dashboards_push_command(
    config: ConfigOption,
    grafana_url: Annotated[str, typer.Option("--grafana-url", help="Grafana base URL.")],
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding an API token.")
    ] = "GRAFANA_TOKEN",
    folder: Annotated[str, typer.Option("--folder", help="Grafana folder title.")] = "slamon",
    prometheus_url: Annotated[
        str, typer.Option("--prometheus-url", help="URL Grafana reaches Prometheus at.")
    ] = "http://prometheus:9090",
) -> None:
    """Create or update the datasource, folder and dashboards through Grafana's HTTP API."""
    result = push(
        _load(config),
        grafana_url,
        token=os.environ.get(token_env),
        folder=folder,
        prometheus_url=prometheus_url,
    )
    console.print(f"datasource {result.datasource}, folder {result.folder}")
    for name, url in result.dashboards.items():
        console.print(f"dashboard {name}: {url}")


@app.command("import-openslo")
def import_openslo_command(
    files: Annotated[list[Path], typer.Argument(help="OpenSLO v1 / v1alpha YAML files.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the config here, not stdout.")
    ] = None,
) -> None:
    """Turn OpenSLO Service/SLO documents into slamon config (services and objectives)."""
    result = import_openslo(files)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    text = render_yaml(result)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {len(result.config['services'])} services to {out}")


@app.command()
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="Demo config.")] = Path(
        "examples/demo.yaml"
    ),
    duration: DurationOption = None,
) -> None:
    """The whole product in one process on bundled history plus live local probes."""

    loaded = _load(config)
    run_demo(loaded, _stop_on_signals(duration), console, base_dir=config.parent)


def main() -> None:
    """Entry point: run the CLI, printing slamon errors as one line."""
    try:
        app()
    except SlamonError as exc:
        if _state["debug"]:
            raise
        # soft_wrap keeps each FILE:LINE:COL problem on one line, whatever the terminal width.
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # a path given on the command line or in the config
        if _state["debug"]:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        console.print(
            f"[red]error:[/red] {escape(exc.strerror or str(exc))}{escape(where)}", soft_wrap=True
        )
        sys.exit(1)
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if _state["debug"]:
            raise
        console.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}"
            " (rerun with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
