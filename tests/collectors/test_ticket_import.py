"""Import of ticket exports: CSV history and summary layouts, JSON arrays, precise errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.ticket_import import (
    SOURCE,
    TicketImportError,
    import_tickets,
    load_ticket_mapping,
)
from collectors.webhooks.payload import stable_event_id
from sla.config import SummaryColumns, TicketMapping
from sla.errors import ConfigError
from sla.events import EventType, TicketData

PAYLOADS = Path(__file__).parent / "payloads"
SERVICES = ("checkout", "search")
JSON_MAPPING = TicketMapping(
    ticket_id="key",
    service="fields.project",
    priority="fields.priority",
    status="fields.status",
    updated="fields.updated",
    kind=None,
    customer=None,
    service_map={"CHK": "checkout"},
    priority_map={"High": "P2"},
    status_map={"Waiting for support": "open", "In Progress": "in_progress"},
    responded={"before_statuses": ["Waiting for support"]},
)


def rows(path: Path, mapping: TicketMapping) -> list[tuple[str, datetime, TicketData]]:
    events = list(import_tickets(path, mapping, services=SERVICES))
    assert {(e.type, e.source) for e in events} <= {(EventType.TICKET, SOURCE)}
    for event in events:
        assert isinstance(event.data, TicketData)
        parts = (event.data.ticket_id, event.time.isoformat(), event.data.status)
        assert event.id == stable_event_id(
            SOURCE, *parts, event.data.priority, str(event.data.responded)
        )
    return [(e.subject, e.time, e.data) for e in events]  # type: ignore[misc]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 2, day, hour, minute, second, tzinfo=UTC)


def test_a_history_csv_is_one_event_per_row_in_its_time_zone() -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_history.yaml")
    chk: dict[str, Any] = {"ticket_id": "CHK-7", "kind": "incident"}
    # Berlin is UTC+1 in February: 08:00 local is 07:00Z; the offset in the last row wins.
    assert rows(PAYLOADS / "tickets_history.csv", mapping) == [
        ("checkout", at(3, 7), TicketData(**chk, priority="P2", status="new")),
        (
            "checkout",
            at(3, 7, 40),
            TicketData(**chk, priority="P2", status="in_progress", responded=True),
        ),
        ("checkout", at(3, 10, 15, 30), TicketData(**chk, priority="P1", status="resolved")),
        (
            "search",
            at(4, 8),
            TicketData(ticket_id="SRCH-2", kind="incident", priority="P3", status="new"),
        ),
    ]


def test_a_summary_csv_expands_into_the_ticket_lifecycle() -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_summary.yaml")
    inc: dict[str, Any] = {
        "ticket_id": "INC-100",
        "kind": "incident",
        "priority": "P1",
        "customer": "retail",
    }
    assert rows(PAYLOADS / "tickets_summary.csv", mapping) == [
        ("checkout", at(10, 10), TicketData(**inc, status="new")),
        ("checkout", at(10, 10, 12), TicketData(**inc, status="in_progress", responded=True)),
        ("checkout", at(10, 13, 30), TicketData(**inc, status="resolved")),
        ("checkout", at(12, 9), TicketData(**inc, status="closed")),
        # Blank timestamps: the request is still new.
        (
            "search",
            at(11, 15),
            TicketData(ticket_id="REQ-200", kind="request", priority="P3", status="new"),
        ),
    ]


def test_a_json_array_of_nested_records() -> None:
    chk: dict[str, Any] = {"ticket_id": "CHK-9", "kind": "incident", "priority": "P2"}
    # updated 1770112800000 ms is 2026-02-03T10:00:00Z.
    assert rows(PAYLOADS / "tickets.json", JSON_MAPPING) == [
        ("checkout", at(3, 10), TicketData(**chk, status="open")),
        ("checkout", at(3, 10, 30), TicketData(**chk, status="in_progress", responded=True)),
    ]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "Issue key,Service,Priority,Status,Updated,Agent response\n"
JSON_ROW = (
    '{"Issue key": "CHK-1", "Service": "checkout", "Priority": "P2", "Status": "New", '
    '"Updated": "2026-02-03 08:00"}'
)
UPDATED = '"2026-02-03 08:00"'


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.csv",
            HEADER
            + "CHK-1,checkout,P2,New,2026-02-03 08:00,\nCHK-1,checkout,P2,Done,2026-02-03 09:00,\n",
            "bad.csv: row 3, column 'Status': unknown status 'Done': add it to status_map",
        ),
        (
            "bad.csv",
            HEADER + "CHK-1,billing,P2,New,2026-02-03 08:00,\n",
            "bad.csv: row 2, column 'Service': 'billing' is no configured service",
        ),
        (
            "bad.csv",
            HEADER + "CHK-1,checkout,P2,New,,\n",
            "bad.csv: row 2, column 'Updated': required timestamp missing or empty",
        ),
        (
            "bad.csv",
            HEADER.replace("Priority", "Prio"),
            "bad.csv: row 1: no column 'Priority' (mapped by priority); the columns are ",
        ),
        (
            "bad.csv",
            HEADER + "CHK-1,checkout,P2,New,99999999999999999999,\n",
            "bad.csv: row 2, column 'Updated': timestamp out of range: 99999999999999999999",
        ),
        (
            "bad.json",
            f"[{JSON_ROW}, {JSON_ROW.replace(UPDATED, 'NaN')}]",
            "bad.json: row 2, field 'Updated': timestamp out of range: nan",
        ),
        (
            "bad.json",
            f"[{JSON_ROW.replace(UPDATED, '1e300')}]",
            "bad.json: row 1, field 'Updated': timestamp out of range: 1e+300",
        ),
        ("empty.csv", "", "empty.csv: empty file: expected a header row"),
        ("bad.txt", "", "bad.txt: cannot import .txt: expected .csv"),
        ("bad.json", '{"key": "CHK-1"}', "bad.json: expected a JSON array of ticket records"),
        ("bad.json", f"[{JSON_ROW}, 7]", "bad.json: row 2: expected an object, got 7"),
        ("bad.json", "[", "bad.json: not JSON: "),
    ],
)
def test_a_bad_export_names_file_row_and_column(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_history.yaml")
    path = write(tmp_path, name, text)
    with pytest.raises(TicketImportError) as caught:
        list(import_tickets(path, mapping, services=SERVICES))
    assert str(caught.value).startswith(f"{tmp_path}/{message}")
    assert isinstance(caught.value, ConfigError)


def test_nothing_is_yielded_before_the_whole_file_is_checked(tmp_path: Path) -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_history.yaml")
    good = "CHK-1,checkout,P2,New,2026-02-03 08:00,\n"
    path = write(tmp_path, "late.csv", HEADER + good * 3 + "CHK-1,checkout,P2,Nope,2026-02-03,\n")
    events = import_tickets(path, mapping, services=SERVICES)
    with pytest.raises(TicketImportError, match="row 5, column 'Status'"):
        next(events)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        # Resolved the day before it was created.
        (
            "2026-02-10T10:00:00Z,2026-02-10T10:12:00Z,2026-02-09T13:30:00Z,",
            "row 3, column 'resolved': 2026-02-09T13:30:00+00:00 is before created "
            "2026-02-10T10:00:00+00:00",
        ),
        (
            "2026-02-10T10:00:00Z,2026-02-10T09:12:00Z,,",
            "row 3, column 'first_response': 2026-02-10T09:12:00+00:00 is before created",
        ),
        (
            "2026-02-10T10:00:00Z,,2026-02-10T13:30:00Z,2026-02-10T12:00:00Z",
            "row 3, column 'closed': 2026-02-10T12:00:00+00:00 is before resolved "
            "2026-02-10T13:30:00+00:00",
        ),
    ],
)
def test_a_summary_row_out_of_order_is_refused(tmp_path: Path, row: str, message: str) -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_summary.yaml")
    good = (PAYLOADS / "tickets_summary.csv").read_text().splitlines()[:2]
    path = write(tmp_path, "summary.csv", "\n".join([*good, f"INC-9,checkout,P1,Incident,,{row}"]))
    with pytest.raises(TicketImportError) as caught:
        list(import_tickets(path, mapping, services=SERVICES))
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_cell_over_several_lines_does_not_shift_the_row_numbers(tmp_path: Path) -> None:
    mapping = load_ticket_mapping(PAYLOADS / "tickets_history.yaml")
    # Row 2's response spans three lines of the file, as exports of descriptions do.
    spans = 'CHK-1,checkout,P2,New,2026-02-03 08:00,"Looking into it.\nSee the log.\nBye"\n'
    path = write(tmp_path, "wrapped.csv", HEADER + spans + "CHK-1,checkout,P2,Nope,2026-02-03,\n")
    with pytest.raises(TicketImportError, match=r"wrapped\.csv: row 3, column 'Status'"):
        list(import_tickets(path, mapping, services=SERVICES))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status_map: {Done: finished}\n", "status_map.Done: Input should be 'new', "),
        ("summary: {resolved: done}\n", "summary.created: required field missing"),
        # One line with the position, not pyyaml's drawing over several.
        ("ticket_id: [\n", ":2:1: invalid YAML in the ticket mapping: expected the node content"),
        ("tiket_id: key\n", "tiket_id: Extra inputs are not permitted"),
    ],
)
def test_a_bad_mapping_file_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "mapping.yaml", text)
    with pytest.raises(TicketImportError) as caught:
        load_ticket_mapping(path)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_empty_mapping_file_is_the_generic_mapping(tmp_path: Path) -> None:
    mapping: Any = load_ticket_mapping(write(tmp_path, "mapping.yaml", "# defaults\n"))
    assert mapping == TicketMapping()
    assert TicketMapping(summary=SummaryColumns(created="opened")).summary is not None
