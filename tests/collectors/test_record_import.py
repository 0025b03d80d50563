"""CSV and JSON files of change, continuity and maintenance records import as events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.record_import import RecordImportError, import_records
from collectors.records import RecordKind
from sla.events import ChangeData, ContinuityData, EventType, MaintenanceData

SERVICES = ("checkout", "payments")
IMPORTED = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
CHANGES_CSV = """\
service,change_id,kind,status,start,end,caused_incident,time
checkout,CHG-1,normal,scheduled,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z,,2026-02-20T10:00:00Z
checkout,CHG-1,normal,failed,2026-03-01T22:00:00Z,2026-03-01T23:10:00Z,INC-3,2026-03-01T23:10:00Z

payments,CHG-2,standard,implemented,2026-03-03T09:00:00+01:00,2026-03-03T09:20:00+01:00,,
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def imported(path: Path, kind: RecordKind) -> list[object]:
    return [
        event.data for event in import_records(path, kind, services=SERVICES, received_at=IMPORTED)
    ]


def error_of(path: Path, kind: RecordKind = RecordKind.CHANGE) -> str:
    with pytest.raises(RecordImportError) as caught:
        list(import_records(path, kind, services=SERVICES, received_at=IMPORTED))
    return str(caught.value)


def test_csv_rows_become_events_and_blank_rows_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "changes.csv", CHANGES_CSV)
    events = list(import_records(path, RecordKind.CHANGE, services=SERVICES, received_at=IMPORTED))
    assert [(e.type, e.subject, e.source) for e in events] == [
        (EventType.CHANGE, "checkout", "import/changes.csv"),
        (EventType.CHANGE, "checkout", "import/changes.csv"),
        (EventType.CHANGE, "payments", "import/changes.csv"),
    ]
    # The row's own time where the cell is filled, the import time where it is empty.
    assert [e.time for e in events] == [
        datetime(2026, 2, 20, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 10, tzinfo=UTC),
        IMPORTED,
    ]
    assert events[1].data == ChangeData(
        change_id="CHG-1",
        kind="normal",
        status="failed",
        start=datetime(2026, 3, 1, 22, 0, tzinfo=UTC),
        end=datetime(2026, 3, 1, 23, 10, tzinfo=UTC),
        caused_incident="INC-3",
    )
    assert events[0].data == events[0].data.model_copy(update={"caused_incident": None})


def test_importing_the_same_file_twice_yields_the_same_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "changes.csv", CHANGES_CSV)
    first = [e.id for e in import_records(path, RecordKind.CHANGE, services=SERVICES)]
    again = [e.id for e in import_records(path, RecordKind.CHANGE, services=SERVICES)]
    assert first == again
    assert len(set(first)) == 3


def test_csv_from_a_spreadsheet_with_bom_quotes_and_padding(tmp_path: Path) -> None:
    text = (
        "\ufeffservice , test_id,scenario,invoked_at,restored_at,data_restored_to,outcome\r\n"
        'payments, DR-1 ,"failover, region B",2026-02-10T09:00:00Z,2026-02-10T10:00:00Z,'
        "2026-02-10T08:55:00Z,passed\r\n"
        ",,,,,,\r\n"
    )
    path = write(tmp_path, "tests.csv", text)
    assert imported(path, RecordKind.CONTINUITY) == [
        ContinuityData(
            test_id="DR-1",
            scenario="failover, region B",
            invoked_at=datetime(2026, 2, 10, 9, 0, tzinfo=UTC),
            restored_at=datetime(2026, 2, 10, 10, 0, tzinfo=UTC),
            data_restored_to=datetime(2026, 2, 10, 8, 55, tzinfo=UTC),
            outcome="passed",
        )
    ]


def test_json_array_of_records(tmp_path: Path) -> None:
    windows = [
        {
            "service": "checkout",
            "window_id": "MW-1",
            "start": "2026-03-07T02:00:00Z",
            "end": "2026-03-07T04:00:00Z",
            "reason": "database upgrade",
            "change_ref": "CHG-1",
        },
        {
            "service": "payments",
            "window_id": "MW-2",
            "start": "2026-03-08T02:00:00Z",
            "end": "2026-03-08T03:00:00Z",
            "reason": "patching",
            "change_ref": None,
        },
    ]
    path = write(tmp_path, "windows.JSON", json.dumps(windows))
    data = imported(path, RecordKind.MAINTENANCE)
    assert [d.window_id for d in data if isinstance(d, MaintenanceData)] == ["MW-1", "MW-2"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "checkout,CHG-3,normal,implemented,2026-03-01T22:00:00,2026-03-01T23:00:00Z",
            "row 3: start: timestamp has no UTC offset (add Z or e.g. +01:00), "
            "got '2026-03-01T22:00:00'",
        ),
        (
            "billing,CHG-3,normal,implemented,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z",
            "row 3: service: unknown service 'billing' (configured: checkout, payments)",
        ),
        (
            "checkout,CHG-3,major,implemented,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z",
            "row 3: kind: expected 'standard', 'normal' or 'emergency', got 'major'",
        ),
        (
            "checkout,CHG-3,normal,implemented,2026-03-01T22:00:00Z,2026-03-01T21:00:00Z",
            "row 3: end: 2026-03-01T21:00:00+00:00 is before start 2026-03-01T22:00:00+00:00",
        ),
        (
            "checkout,,normal,implemented,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z",
            "row 3: change_id: required field missing",
        ),
        (
            "checkout,CHG-3,normal,implemented,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z,x",
            "row 3: 7 cells but 6 columns in the header",
        ),
    ],
)
def test_a_bad_csv_row_names_file_row_and_field(tmp_path: Path, row: str, message: str) -> None:
    good = "checkout,CHG-1,normal,implemented,2026-03-01T22:00:00Z,2026-03-01T23:00:00Z"
    path = write(
        tmp_path, "changes.csv", f"service,change_id,kind,status,start,end\n{good}\n{row}\n"
    )
    assert error_of(path) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "service,change_id,kind,status,start,end,approver",
            "row 1: column 7: unknown column 'approver' (a change record has service, "
            "change_id, kind, status, start, end, caused_incident, time)",
        ),
        ("service,change_id,kind,status,start,start", "row 1: column 6: duplicate column 'start'"),
        ("service,change_id,kind,start", "row 1: missing columns status, end"),
        ("", "empty file; expected a header row"),
    ],
)
def test_a_bad_csv_header_is_named(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path, "changes.csv", f"{header}\n" if header else "")
    assert error_of(path) == f"{path}: {message}"


def test_a_bad_json_record_names_file_index_and_field(tmp_path: Path) -> None:
    good = {
        "service": "checkout",
        "window_id": "MW-1",
        "start": "2026-03-07T02:00:00Z",
        "end": "2026-03-07T04:00:00Z",
        "reason": "upgrade",
    }
    path = write(tmp_path, "windows.json", json.dumps([good, {**good, "reason": ""}]))
    assert error_of(path, RecordKind.MAINTENANCE) == (
        f"{path}: [1]: reason: expected a non-empty string, got ''"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("changes.json", "[{", "not JSON: "),
        ("changes.json", "[]", "expected at least one record, got an empty array"),
        ("changes.csv", b"service\xff\n", "not UTF-8 text: invalid start byte"),
        ("changes.jsonl", "{}", "cannot import .jsonl: expected .csv "),
    ],
)
def test_unusable_files_are_named(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert error_of(path).startswith(f"{path}: {message}")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    assert error_of(path) == f"{path}: cannot read: No such file or directory"


def test_nothing_is_yielded_before_the_whole_file_is_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "changes.csv",
        CHANGES_CSV + "checkout,CHG-9,normal,done,2026-03-09T22:00:00Z,2026-03-09T23:00:00Z,,\n",
    )
    events = import_records(path, RecordKind.CHANGE, services=SERVICES)
    with pytest.raises(RecordImportError, match="row 6: status: "):
        next(events)


def test_a_cell_over_several_lines_does_not_shift_the_row_numbers(tmp_path: Path) -> None:
    # Row 6 holds a cell over two lines of the file; the bad row after it is row 7.
    wrapped = 'checkout,CHG-3,normal,failed,2026-03-05T22:00:00Z,2026-03-05T23:00:00Z,"INC\n-9",\n'
    bad = "checkout,CHG-9,normal,done,2026-03-09T22:00:00Z,2026-03-09T23:00:00Z,,\n"
    path = write(tmp_path, "changes.csv", CHANGES_CSV + wrapped + bad)
    with pytest.raises(RecordImportError, match=r"changes\.csv: row 7: status: "):
        list(import_records(path, RecordKind.CHANGE, services=SERVICES))
