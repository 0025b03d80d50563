"""Import change, continuity and maintenance records from CSV or JSON files (history, exports)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from collectors.import_files import csv_lines, file_kind, json_document, spreadsheet_rows
from collectors.records import RecordKind, record_event, record_events
from sla.errors import InvalidEventError, SlamonError
from sla.events import CloudEvent


class RecordImportError(SlamonError):
    """A record file cannot be read or holds an invalid record; the message names file and row."""


def import_records(
    path: str | Path,
    kind: RecordKind,
    *,
    services: Collection[str],
    received_at: datetime | None = None,
) -> Iterator[CloudEvent]:
    """The events of a `.csv` (header row, a record per row) or `.json` (array) record file.

    Records without `time` get `received_at` (default: when the import starts). The whole
    file is checked before the first event is yielded: RecordImportError names the file, the
    row (CSV) or index (JSON) and the field of the first bad record.
    """
    path = Path(path)
    at = datetime.now(UTC) if received_at is None else received_at
    source = f"import/{path.name}"
    read = _csv_events if file_kind(path, RecordImportError) == "csv" else _json_events
    yield from read(path, kind, services, at, source)


def _csv_events(
    path: Path, kind: RecordKind, services: Collection[str], received_at: datetime, source: str
) -> list[CloudEvent]:
    """One event per data row; the header names the record fields, an empty cell is absent."""
    events = []
    with csv_lines(path, RecordImportError) as lines:
        rows = spreadsheet_rows(lines)
        header = _header(path, kind, next(rows, (1, None))[1])
        for number, row in rows:
            where = f"{path}: row {number}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise RecordImportError(
                    f"{where}: {len(row)} cells but {len(header)} columns in the header"
                )
            record = {name: cell.strip() for name, cell in zip(header, row, strict=False)}
            try:
                event = record_event(
                    kind,
                    {name: cell for name, cell in record.items() if cell},
                    services=services,
                    received_at=received_at,
                    source=source,
                )
            except InvalidEventError as exc:
                raise RecordImportError(f"{where}: {exc.reason}") from None
            events.append(event)
    return events


def _header(path: Path, kind: RecordKind, header: list[str] | None) -> list[str]:
    """The column names, checked against the fields of `kind`."""
    if header is None:
        raise RecordImportError(f"{path}: empty file; expected a header row")
    columns = [name.strip() for name in header]
    expected = ", ".join(kind.fields)
    for index, name in enumerate(columns):
        if name not in kind.fields:
            raise RecordImportError(
                f"{path}: row 1: column {index + 1}: unknown column {name!r} "
                f"(a {kind} record has {expected})"
            )
        if name in columns[:index]:
            raise RecordImportError(f"{path}: row 1: column {index + 1}: duplicate column {name!r}")
    missing = [name for name in kind.required_fields if name not in columns]
    if missing:
        raise RecordImportError(
            f"{path}: row 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )
    return columns


def _json_events(
    path: Path, kind: RecordKind, services: Collection[str], received_at: datetime, source: str
) -> list[CloudEvent]:
    """The events of a JSON array of records (or of one record object)."""
    document = json_document(path, RecordImportError)
    try:
        return record_events(
            kind, document, services=services, received_at=received_at, source=source
        )
    except InvalidEventError as exc:
        raise RecordImportError(f"{path}: {exc.reason}") from None
