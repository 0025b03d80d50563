"""The demo's review pack for the previous month: it renders in headless Chromium without
console errors, its PDF reads back with every section, and its figures are `slamon compute`'s.

Needs `chromium` and `pdftotext` (ops/report/install.sh, run by `make test`).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.store import EventStore
from sla.service_levels import rfc3339
from slamon.configfile import load_config
from slamon.demodata import generate_history
from slamon.report import ReviewPack, build_packs, previous_month, write_pack, write_report
from slamon.report.formats import percent
from slamon.report.html import SECTIONS
from slamon.report.pdf import RenderError, chromium_command

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "examples" / "demo.yaml"
INSTALL = "ops/report/install.sh"
NOW = datetime(2026, 11, 21, 10, tzinfo=UTC)
MONTH = previous_month(int(NOW.timestamp()))
# Six months of trend before the report month, and the report month itself.
HISTORY_MONTHS = 7
SCREEN_WIDTH = 1000


@dataclass
class Demo:
    """The demo history in a store file and the packs written from it."""

    store: Path
    out: Path
    files: list[Path]
    packs: list[ReviewPack] = field(default_factory=list)

    def pack(self, scope: str) -> Path:
        """The directory of the pack of `scope`."""
        return self.out / f"{MONTH}-{scope}"


@pytest.fixture(name="demo", scope="module")
def demo_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    for tool in ("chromium", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: run {INSTALL}")
    root = tmp_path_factory.mktemp("demo-report")
    config = load_config(DEMO_CONFIG)
    path = root / "demo.duckdb"
    with EventStore(path) as store:
        store.write_batch(list(generate_history(config, NOW, months=HISTORY_MONTHS)))
    now = int(NOW.timestamp())
    with EventStore(path, read_only=True) as store:
        packs = build_packs(config, store, month=MONTH, now=now)
    # write_report is build_packs, then write_pack for each.
    files = [path for pack in packs for path in write_pack(pack, root / "packs")]
    yield Demo(path, root / "packs", files, packs)


# --- a small DevTools protocol client: load a page, collect what it logs, screenshot it ---


@dataclass
class PageRun:
    """What Chromium reported while loading a page, and how the page turned out."""

    problems: list[str]
    screenshot: bytes
    evaluated: dict[str, Any]


class _DevTools:
    """Commands and events over one DevTools websocket (flat sessions)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads((await self.ws.receive()).data)
        return message

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self._next += 1
        request: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session is not None:
            request["sessionId"] = session
        await self.ws.send_str(json.dumps(request))
        while True:
            message = await self._receive()
            if message.get("id") != self._next:
                self.events.append(message)
            elif "error" in message:
                raise AssertionError(f"{method}: {message['error']}")
            else:
                return message["result"]

    async def wait_for(self, method: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not any(e.get("method") == method for e in self.events):
                self.events.append(await self._receive())

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and browser log errors (CSP, 404)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in {"error", "warning"}:
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in {"error", "warning"}:
                found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        return found


async def _run_page(url: str, endpoint: str, expressions: dict[str, str]) -> PageRun:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(endpoint, max_msg_size=0) as ws,
    ):
        tools = _DevTools(ws)
        target = (await tools.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await tools.call("Target.attachToTarget", targetId=target, flatten=True))[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            await tools.call(f"{domain}.enable", session)
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=SCREEN_WIDTH,
            height=1200,
            deviceScaleFactor=1,
            mobile=False,
        )
        await tools.call("Page.navigate", session, url=url)
        await tools.wait_for("Page.loadEventFired", timeout=30)
        evaluated = {
            name: (
                await tools.call(
                    "Runtime.evaluate", session, expression=expression, returnByValue=True
                )
            )["result"]["value"]
            for name, expression in expressions.items()
        }
        size = (await tools.call("Page.getLayoutMetrics", session))["cssContentSize"]
        shot = await tools.call(
            "Page.captureScreenshot",
            session,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": SCREEN_WIDTH, "height": size["height"], "scale": 1},
        )
        problems = tools.problems()
        await tools.call("Browser.close")
        return PageRun(problems, base64.b64decode(shot["data"]), evaluated)


def run_page(page: Path, expressions: dict[str, str]) -> PageRun:
    """Load `page` in headless Chromium; evaluate `expressions` (harness only) once loaded."""
    with tempfile.TemporaryDirectory(prefix="slamon-devtools-") as profile:
        command = chromium_command(Path(profile), "--remote-debugging-port=0", "about:blank")
        browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Chromium writes the port it chose and the browser's path into the profile.
            active = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while len(lines := (active.read_text().split() if active.exists() else [])) < 2:
                if time.monotonic() > deadline or browser.poll() is not None:
                    pytest.fail("Chromium did not open its DevTools port")
                time.sleep(0.05)
            endpoint = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            return asyncio.run(_run_page(page.resolve().as_uri(), endpoint, expressions))
        finally:
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- the tests ------------------------------------------------------------------------------


def test_the_pack_holds_html_pdf_and_every_table(demo: Demo) -> None:
    names = {p.name for p in demo.files if p.parent == demo.pack("nordwind-online")}
    assert {"review.html", "review.pdf", "sla_compliance.csv", "sla_compliance.json"} <= names
    assert {"outages.csv", "trend.json", "actions.csv", "figures-checkout.json"} <= names
    assert demo.pack("nordwind-finance").joinpath("review.pdf").stat().st_size > 0


def test_the_demo_pack_renders_in_chromium_without_console_errors(
    demo: Demo, tmp_path: Path
) -> None:
    run = run_page(
        demo.pack("nordwind-online") / "review.html",
        {
            "headings": "[...document.querySelectorAll('h2')].map(h => h.textContent)",
            "charts": "document.querySelectorAll('svg.chart').length",
            "overflow": "document.documentElement.scrollWidth"
            " - document.documentElement.clientWidth",
            "scripts": "document.scripts.length",
        },
    )
    assert run.problems == []
    shot = tmp_path / "review.png"
    shot.write_bytes(run.screenshot)
    width, height = png_size(run.screenshot)
    # The whole page, one screen wide, and nothing sticking out sideways.
    assert (width, run.evaluated["overflow"]) == (SCREEN_WIDTH, 0)
    assert height > 5000
    assert run.evaluated["headings"] == [f"{n} {t}" for n, (_, t) in enumerate(SECTIONS, 1)]
    # Three services: a day chart, a trend pair, and a chart per capacity series (six).
    assert run.evaluated["charts"] == 3 + 3 * 2 + 6
    assert run.evaluated["scripts"] == 0


def test_the_pdf_has_every_section_and_the_key_figures(demo: Demo) -> None:
    pdf = demo.pack("nordwind-online") / "review.pdf"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for number, (_, title) in enumerate(SECTIONS, start=1):
        assert f"{number} {title}" in text
    (pack,) = [p for p in demo.packs if p.scope == "nordwind-online"]
    for review in pack.services:
        figures = review.month.figures
        assert figures.availability is not None
        assert review.service.name in text
        assert percent(figures.availability.ratio, 3) in text
    # Checkout fell under 99.9 % in the demo month: its 5 % credit and the breach show.
    assert "breached" in text
    assert "Service credit of 5 % owed" in " ".join(text.split())


def _compute(window_from: int, window_to: int, store: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "slamon",
            "compute",
            "--config",
            str(DEMO_CONFIG),
            "--store",
            str(store),
            "--from",
            rfc3339(window_from),
            "--to",
            rfc3339(window_to),
            "--now",
            rfc3339(int(NOW.timestamp())),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _cell(value: Any) -> str:
    """A `slamon compute` JSON value as the pack's CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-table" in found:
            key = (found["data-table"] or "", found["data-column"] or "")
            self.values.setdefault(key, []).append(found["data-value"] or "")


def test_figures_in_html_csv_and_json_equal_slamon_compute(demo: Demo) -> None:
    checked = 0
    for pack in demo.packs:
        directory = demo.pack(pack.scope)
        for review in pack.services:
            sid = review.service.id
            window = review.month.window
            expected = _compute(window.start, window.end, demo.store)
            figures = expected["services"][sid]
            written = json.loads((directory / f"figures-{sid}.json").read_text())
            assert written == {**expected, "services": {sid: figures}}
            a = figures["availability"]
            (summary,) = [r for r in _csv(directory / "summary.csv") if r["service"] == sid]
            assert (summary["from"], summary["to"]) == (
                expected["window"]["from"],
                expected["window"]["to"],
            )
            for column, value in (
                ("agreed_seconds", a["agreed_seconds"]),
                ("downtime_seconds", a["downtime_seconds"]),
                ("availability_ratio", a["ratio"]),
                ("availability_24x7_ratio", a["ratio_24x7"]),
                ("mtbf_seconds", a["mtbf_seconds"]),
                ("mtrs_seconds", a["mtrs_seconds"]),
                ("error_budget_remaining_ratio", figures["error_budget"]["remaining_ratio"]),
                ("credit_percent", figures["credit"]["percent"]),
                ("changes", figures["changes"]["total"]),
                ("change_success_ratio", figures["changes"]["success_ratio"]),
            ):
                assert summary[column] == _cell(value), (sid, column)
            outages = [r for r in _csv(directory / "outages.csv") if r["service"] == sid]
            assert [
                (r["start"], r["end"], r["duration_seconds"], r["service_seconds"], r["source"])
                for r in outages
            ] == [
                (
                    o["start"],
                    _cell(o["end"]),
                    str(o["duration_seconds"]),
                    str(o["service_seconds"]),
                    o["source"],
                )
                for o in a["outage_list"]
            ]
            compliance = [
                r for r in _csv(directory / "ticket_compliance.csv") if r["service"] == sid
            ]
            assert [
                {
                    k: r[k]
                    for k in ("kind", "priority", "clock", "met", "breached", "in_flight", "ratio")
                }
                for r in compliance
            ] == [{k: _cell(v) for k, v in row.items()} for row in figures["ticket_compliance"]]
            capacity = [r for r in _csv(directory / "capacity.csv") if r["service"] == sid]
            assert [
                {k: r[k] for k in c} for r, c in zip(capacity, figures["capacity"], strict=True)
            ] == [{k: _cell(v) for k, v in c.items()} for c in figures["capacity"]]
            tests = [r for r in _csv(directory / "continuity_tests.csv") if r["service"] == sid]
            assert [
                (r["test_id"], r["achieved_rto_seconds"], r["achieved_rpo_seconds"], r["passed"])
                for r in tests
            ] == [
                (
                    t["test"]["test_id"],
                    str(t["achieved_rto_seconds"]),
                    str(t["achieved_rpo_seconds"]),
                    _cell(t["passed"]),
                )
                for t in figures["continuity"]["tests"]
            ]
            (availability,) = [
                r
                for r in _csv(directory / "sla_compliance.csv")
                if (r["service"], r["objective"]) == (sid, "availability")
            ]
            assert (availability["achieved"], availability["credit_percent"]) == (
                _cell(a["ratio"]),
                _cell(figures["credit"]["percent"]),
            )
            checked += 1
        # The HTML shows each figure with the exact value of its CSV cell.
        cells = _Cells()
        cells.feed((directory / "review.html").read_text())
        for (table, column), values in cells.values.items():
            assert values == [r[column] for r in _csv(directory / f"{table}.csv")], (table, column)
        # And each table's JSON holds the same values as its CSV.
        for table in directory.glob("*.csv"):
            rows = json.loads(table.with_suffix(".json").read_text())["rows"]
            assert _csv(table) == [{k: _cell(v) for k, v in r.items()} for r in rows], table.name
    assert checked == 4


def test_same_inputs_give_byte_identical_tables_and_html(demo: Demo, tmp_path: Path) -> None:
    config = load_config(DEMO_CONFIG)
    with EventStore(demo.store, read_only=True) as store:
        again = write_report(
            config,
            store,
            month=MONTH,
            out_dir=tmp_path,
            now=int(NOW.timestamp()) + 86_400,
            pdf=False,
        )
    assert again
    for path in again:
        first = demo.out / path.relative_to(tmp_path)
        if path.name == "provenance.json":
            # The record of the computation names when it ran; nothing else differs.
            before, after = json.loads(first.read_text()), json.loads(path.read_text())
            assert before.pop("now") != after.pop("now")
            assert before == after
            continue
        assert first.read_bytes() == path.read_bytes(), path.name


def test_a_missing_chromium_is_a_render_error(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slamon.report.pdf import print_pdf  # noqa: PLC0415 - next to the patch it needs

    monkeypatch.setenv("SLAMON_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(RenderError, match="cannot run"):
        print_pdf(demo.pack("nordwind-online") / "review.html", tmp_path / "x.pdf")
