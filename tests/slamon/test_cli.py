"""The `slamon` command line as users run it: exit codes, one-line errors, files and the demo."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.store import EventStore
from sla.events import PROBE, new_event

if TYPE_CHECKING:
    from conftest import EndToEnd

REPO = Path(__file__).resolve().parents[2]


def slamon(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "slamon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_validate_accepts_the_examples() -> None:
    for example in ("minimal.yaml", "demo.yaml", "compose.yaml"):
        result = slamon("validate", str(REPO / "examples" / example))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"ok {REPO / 'examples' / example}: ")
        assert result.stderr == ""


def test_validate_prints_each_problem_with_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "services:\n"
        "  - id: shop\n"
        "    name: Shop\n"
        "    probes:\n"
        "      - {name: home, http: 'http://127.0.0.1/', interval: 5x}\n"
        "    colour: blue\n"
    )
    result = slamon("validate", str(config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"error: {config}:5:59: services[0].probes[0].interval: invalid duration '5x': "
        "unknown unit 'x' (use s, m, h or d)"
    )
    assert lines[1].startswith(f"{config}:6:5: services[0].colour: unknown key 'colour'")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = slamon("--debug", "validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "file not found" in result.stderr


def test_bad_bootstrap_is_a_one_line_config_error() -> None:
    result = slamon("run", "-c", str(REPO / "examples" / "minimal.yaml"), "--bootstrap", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: --bootstrap 'nope': invalid address 'nope': expected host:port"
    )


def test_a_missing_secret_stops_run_before_anything_is_served(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path], free_port: Callable[[], int]
) -> None:
    config = write_config(
        {
            "transport": {"kind": "embedded"},
            "store": {"path": str(tmp_path / "secret.duckdb")},
            "exporter": {"listen": f"127.0.0.1:{free_port()}"},
            "receivers": {
                "listen": f"127.0.0.1:{free_port()}",
                "auth": {"jira": {"token_env": "SLAMON_TEST_TOKEN_NEVER_SET"}},
            },
            "services": [{"id": "shop", "name": "Shop"}],
        }
    )
    result = slamon("run", "-c", str(config))
    assert result.returncode == 1
    # One line, and no "metrics: http://..." before it as if the process had started.
    assert result.stderr.splitlines() == [
        "error: receivers.auth.jira: environment variable SLAMON_TEST_TOKEN_NEVER_SET "
        "is not set or empty"
    ]


def test_ingest_into_the_embedded_store_dead_letters_bad_lines(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> None:

    store_path = tmp_path / "ingest.duckdb"
    config = write_config(
        {"transport": {"kind": "embedded"}, "store": {"path": str(store_path)}, "services": []}
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    good = [
        new_event(
            PROBE,
            "shop",
            {"check": "home", "ok": True, "latency_ms": 12.5},
            source="test",
            time=start + timedelta(seconds=n),
        ).to_json()
        for n in range(5)
    ]
    # 8 non-empty lines: 2 invalid, 6 published, of which one repeats an event already sent.
    lines = [good[0], b"{not json", good[1], good[2], b"", good[2], b'{"specversion": "1.0"}']
    lines += [good[3], good[4]]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")

    result = slamon("ingest", "-c", str(config), str(events))
    assert result.returncode == 1  # some lines were rejected: scripts must notice
    # One line each, whatever their length, for grep and cut in a log.
    rejections = [line for line in result.stderr.splitlines() if line.startswith(str(events))]
    assert [line.split(": ")[0] for line in rejections] == [f"{events}:2", f"{events}:7"]
    assert rejections[1] == f"{events}:7: missing_field: type: required field missing"
    assert result.stderr.splitlines()[-1] == (
        f"published 6 events, 2 rejected listed above, 5 new events stored in {store_path}"
    )
    with EventStore(store_path, read_only=True) as store:
        assert store.counts_by_type() == {PROBE: 5}


def test_demo_serves_every_service_and_stops_on_ctrl_c(
    tmp_path: Path,
    e2e: EndToEnd,
) -> None:
    demo = yaml.safe_load((REPO / "examples" / "demo.yaml").read_text())
    port = e2e.free_port()
    demo["store"]["path"] = str(tmp_path / "demo.duckdb")
    demo["exporter"]["listen"] = f"127.0.0.1:{port}"
    demo["reports"] = {"enabled": True, "out_dir": str(tmp_path / "reports"), "pdf": False}
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(demo))
    services = {service["id"] for service in demo["services"]}

    process = e2e.slamon_process("demo", "--config", str(config), "--duration", "300")
    url = f"http://127.0.0.1:{port}/metrics"

    def every_service_has_month_availability() -> dict[str, float] | None:
        samples = e2e.scrape(url)
        found = {
            s: samples.get(f'slamon_availability_ratio{{service="{s}",window="month"}}')
            for s in services
        }
        return samples if all(v is not None for v in found.values()) else None

    # The demo first stores three months of history (about 30 s here, more on a busy
    # machine): a readiness deadline, not a speed check.
    samples = e2e.wait_for(every_service_has_month_availability, 120, "demo figures", process)
    # Three months of history: every event family was ingested, not just live probes.
    for event_type in ("probe", "outage", "maintenance", "capacity", "ticket", "change"):
        assert samples[f'slamon_events_ingested_total{{type="slamon.{event_type}.v1"}}'] > 0
    # The pipeline writes last month's review pack by itself, once per customer.
    e2e.wait_for(
        lambda: len(list((tmp_path / "reports").glob(".written-*"))) == 1,
        60,
        "the monthly review pack",
        process,
    )
    process.proc.send_signal(signal.SIGINT)
    assert process.proc.wait(timeout=30) == 0, process.output()
    assert f"http://127.0.0.1:{port}/metrics" in process.output()
    assert "Service levels, month to date" in process.output()
    assert "failed" not in process.output()
    customers = {s["customer"] for s in demo["services"]}
    packs = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert len(packs) == len(customers)
    assert all((pack / "review.html").exists() for pack in packs)


def test_run_stops_by_itself_after_its_duration(
    tmp_path: Path, free_port: Callable[[], int], write_config: Callable[[dict[str, Any]], Path]
) -> None:
    config = write_config(
        {
            "transport": {"kind": "embedded"},
            "store": {"path": str(tmp_path / "run.duckdb")},
            "exporter": {"listen": f"127.0.0.1:{free_port()}"},
            "services": [{"id": "shop", "name": "Shop"}],
        }
    )
    result = slamon("run", "-c", str(config), "--duration", "2", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "metrics: http://127.0.0.1:" in result.stderr


def test_import_openslo_writes_a_config_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    source = REPO / "tests" / "slamon" / "openslo-files" / "web-shop.yaml"
    result = slamon("import-openslo", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "warning: SLO 'search-p99'" in result.stderr  # a latency SLO cannot carry over
    checked = slamon("validate", str(out))
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load(out.read_text())["services"]
    assert [(s["id"], s["objectives"]["availability"]) for s in services] == [("web-shop", 99.95)]


def test_a_busy_exporter_port_is_a_one_line_error(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(
            {
                "transport": {"kind": "embedded"},
                "store": {"path": str(tmp_path / "busy.duckdb")},
                "exporter": {"listen": f"127.0.0.1:{port}"},
            }
        )
        result = slamon("pipeline", "-c", str(config), "--duration", "5")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: exporter.listen 127.0.0.1:{port}: cannot serve /metrics: Address already in use"
    )


def test_ingest_of_a_missing_file_is_a_one_line_error(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> None:
    config = write_config({"store": {"path": str(tmp_path / "x.duckdb")}})
    missing = tmp_path / "nope.jsonl"
    result = slamon("ingest", "-c", str(config), str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {missing}: cannot read: No such file or directory"


def test_record_and_import_commands_store_their_events(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> None:
    store_path = tmp_path / "records.duckdb"
    config = str(
        write_config(
            {
                "transport": {"kind": "embedded"},
                "store": {"path": str(store_path)},
                "services": [{"id": s, "name": s} for s in ("checkout", "search", "shop")],
            }
        )
    )
    change = [
        "--service",
        "shop",
        "--id",
        "CHG-1",
        "--kind",
        "normal",
        "--status",
        "implemented",
        "--start",
        "2026-10-01T10:00:00Z",
        "--end",
        "2026-10-01T11:00:00Z",
    ]
    recorded = slamon("record", "change", "-c", config, *change)
    assert recorded.returncode == 0, recorded.stderr
    again = slamon("record", "change", "-c", config, *change, "--time", "2026-10-01T11:00:00Z")
    assert "1 new events stored" in again.stderr  # a different time is a new state event
    bad = slamon("record", "change", "-c", config, *change[:-2], "--end", "2026-10-01T11:00")
    assert bad.returncode == 1 and "end: expected an RFC 3339 timestamp" in bad.stderr
    continuity = slamon(
        "record", "continuity", "-c", config, "--service", "shop", "--id", "DR-1",
        "--scenario", "database failover", "--invoked-at", "2026-10-02T10:00:00Z",
        "--restored-at", "2026-10-02T10:20:00Z", "--data-restored-to", "2026-10-02T09:59:00Z",
        "--outcome", "passed",
    )  # fmt: skip
    assert continuity.returncode == 0, continuity.stderr
    window = slamon(
        "record", "maintenance", "-c", config, "--service", "shop", "--id", "MW-0",
        "--start", "2026-10-02T01:00:00Z", "--end", "2026-10-02T02:00:00Z", "--reason", "patching",
    )  # fmt: skip
    assert window.returncode == 0, window.stderr

    records = tmp_path / "maintenance.csv"
    records.write_text(
        "service,window_id,start,end,reason\n"
        "shop,MW-1,2026-10-03T01:00:00Z,2026-10-03T02:00:00Z,patching\n"
    )
    imported = slamon("import", "maintenance", "-c", config, str(records))
    assert imported.returncode == 0, imported.stderr
    payloads = REPO / "tests" / "collectors" / "payloads"
    tickets = slamon(
        "import",
        "tickets",
        "-c",
        config,
        str(payloads / "tickets_summary.csv"),
        "--mapping",
        str(payloads / "tickets_summary.yaml"),
    )
    assert tickets.returncode == 0, tickets.stderr

    with EventStore(store_path, read_only=True) as store:
        counts = store.counts_by_type()
    assert counts["slamon.change.v1"] == 2
    assert counts["slamon.continuity.v1"] == 1
    assert counts["slamon.maintenance.v1"] == 2
    assert counts["slamon.ticket.v1"] > 0


def test_prometheus_backfill_needs_a_reachable_configured_server(
    tmp_path: Path, free_port: Callable[[], int], write_config: Callable[[dict[str, Any]], Path]
) -> None:
    store = {"path": str(tmp_path / "p.duckdb")}
    window = ("--from", "2026-10-01", "--to", "2026-10-02")
    bare = write_config({"store": store})
    missing = slamon("import", "prometheus", "-c", str(bare), *window)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"error: {bare}: no collectors.prometheus section to import from"
    )

    query = {"name": "up", "query": "up", "kind": "probe", "service": "shop", "check": "up"}
    unreachable = write_config(
        {
            "store": store,
            "services": [{"id": "shop", "name": "Shop"}],
            "collectors": {
                "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "queries": [query]}
            },
        }
    )
    down = slamon("import", "prometheus", "-c", str(unreachable), *window)
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert down.stderr.startswith("error: ") and "127.0.0.1" in down.stderr


def test_rules_for_the_compose_stack_are_committed_and_current(
    tmp_path: Path, prometheus_binaries: dict[str, Path]
) -> None:
    out = tmp_path / "slamon.rules.yml"
    result = slamon("rules", "-c", str(REPO / "examples" / "compose.yaml"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    committed = REPO / "ops" / "prometheus" / "rules" / "slamon.rules.yml"
    # docker-compose.yml mounts this file into Prometheus: regenerate it when rules change.
    assert committed.read_text() == out.read_text()
    check = subprocess.run(
        [str(prometheus_binaries["promtool"]), "check", "rules", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert slamon("rules", "-c", str(REPO / "examples" / "demo.yaml"), "--tests", "x").stderr == (
        "error: --tests needs --out: the test file names the rules file\n"
    )


def test_dashboards_command_writes_grafana_provisioning(tmp_path: Path) -> None:
    result = slamon(
        "dashboards", "-c", str(REPO / "examples" / "demo.yaml"), "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {
        "datasources/prometheus.yaml",
        "dashboards/slamon.yaml",
        "dashboards/slamon/overview.json",
        "dashboards/slamon/service.json",
        "dashboards/slamon/pipeline-health.json",
    } <= written
    overview = json.loads((tmp_path / "dashboards/slamon/overview.json").read_text())
    assert overview["uid"] == "slamon-overview"
