"""Ticket history from service desk exports (CSV or JSON) as slamon.ticket.v1 events."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from collectors.import_files import csv_lines, file_kind, json_document, spreadsheet_rows
from collectors.webhooks.payload import FieldError, first_problem
from collectors.webhooks.tickets import TicketRecordMapper
from sla.config import TicketMapping
from sla.errors import ConfigError
from sla.events import CloudEvent

SOURCE = "import/tickets"


class TicketImportError(ConfigError):
    """A ticket export or mapping file is unreadable or holds a bad record (file, row, column)."""


def load_ticket_mapping(path: str | Path) -> TicketMapping:
    """The TicketMapping written in a YAML file; TicketImportError naming the file and field."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        # pyyaml's own text spans several lines with a drawing of the spot.
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise TicketImportError(
            f"{where}: invalid YAML in the ticket mapping: {exc.problem}"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TicketImportError(f"{path}: cannot read the ticket mapping: {exc}") from None
    try:
        return TicketMapping.model_validate({} if document is None else document)
    except ValidationError as exc:
        problem = first_problem(exc, "mapping")
        raise TicketImportError(f"{path}: invalid ticket mapping: {problem}") from None


def import_tickets(
    path: str | Path, mapping: TicketMapping, *, services: Collection[str]
) -> Iterator[CloudEvent]:
    """The ticket events of a `.csv` (header row) or `.json` (array of objects) export.

    With `mapping.summary` unset each record is one change of a ticket (history layout); with
    it set each record is one ticket whose lifecycle timestamps expand into new, responded,
    resolved and closed events (summary layout). The whole file is checked before the first
    event is yielded: TicketImportError names the file, row and column of the first bad record.
    """
    path = Path(path)
    mapper = TicketRecordMapper(mapping, SOURCE, services)
    if file_kind(path, TicketImportError) == "csv":
        yield from _events(path, _csv_records(path, mapping), mapper, "column")
    else:
        yield from _events(path, _json_records(path), mapper, "field")


def _events(
    path: Path,
    records: Iterator[tuple[int, Mapping[str, Any]]],
    mapper: TicketRecordMapper,
    part: str,
) -> list[CloudEvent]:
    """Every event of every record, or TicketImportError at the first record that fails."""
    events: list[CloudEvent] = []
    for row, record in records:
        try:
            if mapper.wanted(record):
                events.extend(mapper.events(record))
        except FieldError as exc:
            raise TicketImportError(
                f"{path}: row {row}, {part} {exc.path!r}: {exc.reason}"
            ) from None
    return events


def _csv_records(path: Path, mapping: TicketMapping) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each data row, by column name, with its row number (the header is row 1)."""
    with csv_lines(path, TicketImportError) as lines:
        rows = spreadsheet_rows(lines)
        header = _checked_header(path, next(rows, (1, None))[1], mapping)
        for number, cells in rows:
            if not cells:
                continue  # a blank row
            # Cells the row lacks are None, as csv.DictReader gives them; extra ones are dropped.
            padded = [*cells, *[None] * (len(header) - len(cells))]
            yield number, dict(zip(header, padded, strict=False))


def _checked_header(path: Path, header: list[str] | None, mapping: TicketMapping) -> list[str]:
    """The header; failing on a mapped required column it lacks, before reading any row."""
    if not header:
        raise TicketImportError(f"{path}: empty file: expected a header row naming the columns")
    required = {
        "ticket_id": mapping.ticket_id,
        "service": mapping.service,
        "priority": mapping.priority,
    }
    if mapping.summary is None:
        required |= {"status": mapping.status, "updated": mapping.updated}
    else:
        required["summary.created"] = mapping.summary.created
    for key, column in required.items():
        if column not in header:
            raise TicketImportError(
                f"{path}: row 1: no column {column!r} (mapped by {key}); "
                f"the columns are {', '.join(map(repr, header))}"
            )
    return header


def _json_records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each object of the top-level array with its 1-based position."""
    document = json_document(path, TicketImportError)
    if not isinstance(document, list):
        raise TicketImportError(f"{path}: expected a JSON array of ticket records")
    for row, record in enumerate(document, start=1):
        if not isinstance(record, dict):
            raise TicketImportError(f"{path}: row {row}: expected an object, got {record!r}")
        yield row, record
