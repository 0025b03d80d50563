"""Review packs on a hand-made month: windows, tables, actions, determinism, formatting."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.errors import ConfigError
from sla.events import CHANGE, CONTINUITY, OUTAGE, TICKET, new_event
from sla.service_levels import rfc3339
from slamon.compute import compute, render_json
from slamon.report import ReviewPack, build_packs, previous_month, write_report
from slamon.report.build import select_scopes
from slamon.report.formats import duration, percent
from slamon.report.tables import pack_tables

NOW = int(datetime(2026, 11, 21, 10, tzinfo=UTC).timestamp())

CONFIG = SlamonConfig.model_validate(
    {
        "calendars": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            }
        },
        "services": [
            {
                "id": "shop",
                "name": "Shop",
                "customer": "acme",
                "objectives": {"availability": 99.9, "rto": "1h", "rpo": "15m"},
                "credits": [{"below": 99.9, "credit": 10}, {"below": 95.0, "credit": 30}],
                "tickets": {"goals": {"P1": {"response": "15m", "resolution": "4h"}}},
            },
            {
                "id": "search",
                "name": "Search",
                "customer": "acme",
                "service_hours": "office",
                "objectives": {"availability": 99.0},
            },
            {"id": "intranet", "name": "Intranet"},
        ],
    }
)


def _event(type_: str, subject: str, data: dict[str, Any], time: str, n: int) -> Any:
    return new_event(type_, subject, data, source="test", time=datetime.fromisoformat(time), id=n)


def _events() -> list[Any]:
    """October 2026: shop has an outage, a late P1, a failed change, a DR test; search an outage."""
    shop_outage = {"outage_id": "INC-7", "start": "2026-10-10T10:00:00Z", "ref": "INC-7"}
    ticket = {"ticket_id": "T1", "kind": "incident", "priority": "P1"}
    test = {
        "test_id": "DR-1",
        "scenario": "region-failover",
        "invoked_at": "2026-10-20T18:00:00Z",
        "restored_at": "2026-10-20T18:40:00Z",
        "data_restored_to": "2026-10-20T17:50:00Z",
        "outcome": "passed",
    }
    change = {
        "change_id": "CHG-1",
        "kind": "normal",
        "status": "failed",
        "start": "2026-10-12T08:00:00Z",
        "end": "2026-10-12T09:00:00Z",
    }
    # 08:00-10:00 CEST on Monday 5 October: one of its two hours is in office hours.
    search_outage = {
        "outage_id": "INC-9",
        "start": "2026-10-05T06:00:00Z",
        "end": "2026-10-05T08:00:00Z",
    }
    rows = [
        (OUTAGE, "shop", {**shop_outage, "end": None}, "2026-10-10T10:00:00Z"),
        (OUTAGE, "shop", {**shop_outage, "end": "2026-10-10T11:00:00Z"}, "2026-10-10T11:00:00Z"),
        (TICKET, "shop", {**ticket, "status": "new"}, "2026-10-05T09:00:00Z"),
        (
            TICKET,
            "shop",
            {**ticket, "status": "in_progress", "responded": True},
            "2026-10-05T09:10:00Z",
        ),
        (TICKET, "shop", {**ticket, "status": "resolved"}, "2026-10-05T14:00:00Z"),
        (CHANGE, "shop", change, "2026-10-12T09:00:00Z"),
        (CONTINUITY, "shop", test, "2026-10-20T19:00:00Z"),
        (OUTAGE, "search", search_outage, "2026-10-05T08:00:00Z"),
    ]
    return [_event(*row, n=f"e{n}") for n, row in enumerate(rows)]


@pytest.fixture(name="store", scope="module")
def store_fixture() -> Iterator[EventStore]:
    with EventStore(":memory:") as store:
        store.write_batch(_events())
        yield store


@pytest.fixture(name="acme", scope="module")
def acme_fixture(store: EventStore) -> ReviewPack:
    (pack,) = build_packs(CONFIG, store, month="2026-10", customer="acme", now=NOW)
    return pack


@pytest.fixture(name="written", scope="module")
def written_fixture(store: EventStore, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every pack of October, without PDF (test_report_demo.py covers the PDF)."""
    out = tmp_path_factory.mktemp("packs")
    return write_report(CONFIG, store, month="2026-10", out_dir=out, now=NOW, pdf=False)


def _read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_previous_month_is_taken_on_the_wall_clock_of_the_zone() -> None:
    assert previous_month(NOW) == "2026-10"
    assert previous_month(int(datetime(2027, 1, 3, tzinfo=UTC).timestamp())) == "2026-12"
    # 2026-11-01 00:30 in Berlin is still 31 October in UTC.
    instant = int(datetime.fromisoformat("2026-11-01T00:30:00+01:00").timestamp())
    assert (previous_month(instant), previous_month(instant, "Europe/Berlin")) == (
        "2026-09",
        "2026-10",
    )


def test_packs_go_per_customer_unless_a_service_or_customer_is_chosen(
    written: list[Path],
) -> None:
    scopes = select_scopes(CONFIG, service=None, customer=None)
    assert [(scope, kind, [s.id for s in chosen]) for scope, kind, chosen in scopes] == [
        ("acme", "customer", ["shop", "search"]),
        ("intranet", "service", ["intranet"]),
    ]
    assert sorted({p.parent.name for p in written}) == ["2026-10-acme", "2026-10-intranet"]
    ((scope, _, chosen),) = select_scopes(CONFIG, service="search", customer=None)
    assert (scope, [s.id for s in chosen]) == ("search", ["search"])
    ((scope, _, chosen),) = select_scopes(CONFIG, service=None, customer="acme")
    assert (scope, [s.id for s in chosen]) == ("acme", ["shop", "search"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": "2026-13"}, "--month '2026-13': expected YYYY-MM"),
        ({"month": "0000-01"}, "--month '0000-01': the year must be 1970 to 9998"),
        ({"month": "9999-12"}, "--month '9999-12': the year must be 1970 to 9998"),
        # NOW is in November 2026: December has not begun anywhere.
        ({"month": "2026-12"}, "--month '2026-12': the month has not begun yet"),
        (
            {"month": "2026-10", "service": "nope"},
            "no such service (known: shop, search, intranet)",
        ),
        ({"month": "2026-10", "customer": "nope"}, "no service has this customer (known: acme)"),
        ({"month": "2026-10", "service": "shop", "customer": "acme"}, "at most one of"),
    ],
)
def test_bad_choices_are_config_errors(
    store: EventStore, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_packs(CONFIG, store, now=NOW, **kwargs)


def test_a_packs_provenance_does_not_depend_on_the_other_packs_of_the_run(
    store: EventStore,
) -> None:
    # search alone for a customer of its own: its month ends at 23:00Z (Berlin), the
    # others' at midnight UTC.
    services = [
        s.model_copy(update={"customer": "globex"}) if s.id == "search" else s
        for s in CONFIG.services
    ]
    config = CONFIG.model_copy(update={"services": services})
    together = {p.scope: p.provenance for p in build_packs(config, store, month="2026-10", now=NOW)}
    (alone,) = build_packs(config, store, month="2026-10", customer="globex", now=NOW)
    assert together["globex"] == alone.provenance
    assert rfc3339(alone.provenance.watermark.through) == "2026-10-31T23:00:00Z"
    assert rfc3339(together["acme"].watermark.through) == "2026-11-01T00:00:00Z"


def test_months_and_days_follow_each_service_calendar(acme: ReviewPack) -> None:
    shop, search = acme.services
    # 24x7 counts in UTC; the office calendar in Berlin, on CEST until 25 October.
    assert (rfc3339(shop.month.window.start), rfc3339(shop.month.window.end)) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert (rfc3339(search.month.window.start), rfc3339(search.month.window.end)) == (
        "2026-09-30T22:00:00Z",
        "2026-10-31T23:00:00Z",
    )
    assert [m.month for m in search.trend] == [f"2026-{m:02d}" for m in range(4, 10)]
    assert len(search.days) == 31
    # The day the clocks go back has 25 hours.
    dst = next(d for d in search.days if d.day.isoformat() == "2026-10-25")
    assert dst.window.seconds == 25 * 3600


def test_tables_hold_the_hand_computed_month(acme: ReviewPack) -> None:
    tables = pack_tables(acme)
    compliance = [
        (r["service"], r["objective"], r["subject"], r["target"], r["achieved"], r["result"])
        for r in tables["sla_compliance"].rows
    ]
    assert compliance == [
        # 31 days = 2,678,400 s agreed, 3,600 s down: 2,674,800 / 2,678,400 < 99.9 %.
        ("shop", "availability", "", 99.9, 2_674_800 / 2_678_400, "breached"),
        # DR-1: restored after 40 min (goal 1 h), data lost back to 10 min before (15 min).
        ("shop", "rto", "DR-1", 3600, 2400, "met"),
        ("shop", "rpo", "DR-1", 900, 600, "met"),
        # T1 answered after 10 min (15 min goal), resolved after 5 h (4 h goal).
        ("shop", "resolution", "incident P1", 14_400, 0.0, "breached"),
        ("shop", "response", "incident P1", 900, 1.0, "met"),
        # 22 weekdays x 8 office hours = 633,600 s; one hour of INC-9 fell in them.
        ("search", "availability", "", 99.0, 630_000 / 633_600, "met"),
    ]
    # 99.866 % is under the 99.9 band but not under 95: 10 %.
    assert tables["sla_compliance"].rows[0]["credit_percent"] == 10.0
    outages = [
        (r["service"], r["start"], r["service_seconds"], r["service_hours"], r["reference"])
        for r in tables["outages"].rows
    ]
    assert outages == [
        ("shop", "2026-10-10T10:00:00Z", 3600, "within", "INC-7"),
        ("search", "2026-10-05T06:00:00Z", 3600, "partly", "INC-9"),
    ]
    days = {(r["service"], r["date"]): r for r in tables["availability_daily"].rows}
    assert (
        days["search", "2026-10-05"]["agreed_seconds"],
        days["search", "2026-10-05"]["availability_ratio"],
    ) == (28_800, 0.875)
    # A Sunday has no office hours: nothing to measure.
    assert days["search", "2026-10-04"]["availability_ratio"] is None
    assert days["shop", "2026-10-10"]["availability_ratio"] == 82_800 / 86_400
    # Before the first event of a service there is no evidence: n/a, not 100 %.
    assert [r["availability_ratio"] for r in tables["trend"].rows if r["service"] == "shop"] == [
        None,
        None,
        None,
        None,
        None,
        None,
        2_674_800 / 2_678_400,
    ]
    assert [(r["service"], r["topic"], r["reference"]) for r in tables["actions"].rows] == [
        ("shop", "availability", "INC-7"),
        ("shop", "credit", "2026-10"),
        ("shop", "tickets", "T1"),
        ("shop", "changes", "CHG-1"),
    ]


def test_same_inputs_write_byte_identical_tables(
    store: EventStore, written: list[Path], tmp_path: Path
) -> None:
    # A later `now` changes nothing about a month that is over.
    again = write_report(
        CONFIG, store, month="2026-10", out_dir=tmp_path, now=NOW + 86_400, pdf=False
    )
    out = written[0].parent.parent
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in written]
    for first, second in zip(written, again, strict=True):
        if first.name == "provenance.json":
            # The record of the computation names when it ran; nothing else differs.
            before, after = json.loads(first.read_text()), json.loads(second.read_text())
            assert before.pop("now") != after.pop("now")
            assert before == after
            continue
        assert first.read_bytes() == second.read_bytes(), first.name
    pack = out / "2026-10-acme"
    for table in pack.glob("*.csv"):
        document = json.loads(table.with_suffix(".json").read_text())
        assert (document["table"], document["scope"], document["month"]) == (
            table.stem,
            "acme",
            "2026-10",
        )
        assert next(csv.reader(io.StringIO(table.read_text()))) == document["columns"]
        cells = [
            {
                k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in row.items()
            }
            for row in document["rows"]
        ]
        assert _read_csv(table) == cells, table.name


def test_figures_files_are_compute_json_for_each_service_month(
    store: EventStore, acme: ReviewPack, written: list[Path]
) -> None:
    pack = written[0].parent.parent / "2026-10-acme"
    for review in acme.services:
        window = review.month.window
        figures = compute(CONFIG, store, window, NOW)
        expected = json.loads(render_json(figures, window, min(NOW, window.end)))
        document = json.loads((pack / f"figures-{review.service.id}.json").read_text())
        assert document == {
            **expected,
            "services": {review.service.id: expected["services"][review.service.id]},
        }


class _Cells(HTMLParser):
    """The `data-table`, `data-column`, `data-value` of every figure cell, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-table" in found:
            self.cells.append(
                (found["data-table"] or "", found["data-column"] or "", found["data-value"] or "")
            )


def test_html_cells_carry_the_csv_values(written: list[Path]) -> None:
    pack = written[0].parent.parent / "2026-10-acme"
    parser = _Cells()
    html = (pack / "review.html").read_text()
    parser.feed(html)
    shown: dict[tuple[str, str], list[str]] = {}
    for table, column, value in parser.cells:
        shown.setdefault((table, column), []).append(value)
    assert ("sla_compliance", "achieved") in shown
    for (table, column), values in shown.items():
        assert values == [row[column] for row in _read_csv(pack / f"{table}.csv")], (table, column)
    # Shown for people: rounded down, so a breach never reads as the target.
    assert ">99.865 %<" in html
    assert "Generated" not in html


def test_percentages_round_to_the_unfavourable_side_and_durations_use_two_units() -> None:
    assert percent(0.9999999) == "99.9 %"
    assert percent(0.9999999, 3) == "99.999 %"
    assert percent(0.999, 3) == "99.900 %"
    # Utilization of 64.1875 % against a critical 85 %: headroom 20.8125 %. Shown as
    # 64.2 % and 20.8 %, the two still add up to the threshold.
    assert percent(0.641875, high_is_bad=True) == "64.2 %"
    assert percent(0.208125) == "20.8 %"
    assert percent(0.6, high_is_bad=True) == "60.0 %"
    assert percent(None) == "n/a"
    assert [duration(s) for s in (45, 720, 3900, 273_600, -60)] == [
        "45 s",
        "12 min",
        "1 h 05 min",
        "3 d 4 h",
        "-1 min",
    ]
