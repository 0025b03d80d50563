"""The files `slamon import` reads: CSV with a header row, or a JSON array of records."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TextIO

from sla.errors import SlamonError

FileKind = Literal["csv", "json"]


def file_kind(path: Path, error: type[SlamonError]) -> FileKind:
    """`csv` or `json` by the suffix of `path`; `error` naming the file for any other."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    raise error(
        f"{path}: cannot import {suffix or 'a file without extension'}: "
        "expected .csv (a header row, a record per row) or .json (an array of records)"
    )


@contextmanager
def csv_lines(path: Path, error: type[SlamonError]) -> Iterator[TextIO]:
    """The text of a CSV file for `csv.reader`; failures to read it become `error`."""
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte order mark.
        with path.open(newline="", encoding="utf-8-sig") as lines:
            yield lines
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise error(f"{path}: not valid CSV: {exc}") from None


def spreadsheet_rows(lines: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record and its row as a spreadsheet numbers it: the header is row 1, a blank
    line is a row, and a cell holding line breaks is still one row (not its lines)."""
    return enumerate(csv.reader(lines), start=1)


def json_document(path: Path, error: type[SlamonError]) -> object:
    """The parsed JSON of `path`; failures to read or parse it become `error`."""
    try:
        document: object = json.loads(path.read_bytes())
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise error(f"{path}: not JSON: {exc}") from None
    return document
