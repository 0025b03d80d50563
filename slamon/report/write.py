"""`write_report`: the review packs of a month as files, one directory per pack."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.errors import ConfigError
from slamon.compute import render_json
from slamon.report.build import ReviewPack, build_packs
from slamon.report.html import render_html
from slamon.report.pdf import print_pdf
from slamon.report.provenance import PROVENANCE_NAME
from slamon.report.tables import csv_text, json_text, pack_tables

HTML_NAME = "review.html"
PDF_NAME = "review.pdf"
# A directory or file name made of customer or service ids: one plain path component.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _safe_name(name: str, what: str) -> str:
    """`name` when it is one plain path component (not `.`, `..`, no `/`), else ConfigError."""
    if not _SAFE_NAME.fullmatch(name):
        raise ConfigError(f"{what} {name!r} is not a safe file name")
    return name


def _write(path: Path, text: str) -> Path:
    # Bytes, not text mode: the same "\n" line ends on every platform.
    path.write_bytes(text.encode("utf-8"))
    return path


def write_pack(
    pack: ReviewPack, out_dir: Path, *, pdf: bool = True, generated_at: datetime | None = None
) -> list[Path]:
    """Write one pack into `out_dir/<slug>/` and return the files written.

    `provenance.json` says how the figures were computed (`Provenance.to_dict`).
    """
    directory = out_dir / _safe_name(pack.slug, "report directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create {directory}: {exc.strerror}") from None
    tables = pack_tables(pack)
    html = _write(directory / HTML_NAME, render_html(pack, tables, generated_at=generated_at))
    written = [html]
    if pdf:
        written.append(print_pdf(html, directory / PDF_NAME))
    for table in tables.values():
        written.append(_write(directory / f"{table.name}.csv", csv_text(table)))
        written.append(_write(directory / f"{table.name}.json", json_text(table, pack)))
    for name, text in figures_files(pack).items():
        written.append(_write(directory / _safe_name(name, "report file"), text))
    provenance = json.dumps(pack.provenance.to_dict(), indent=2, sort_keys=True) + "\n"
    written.append(_write(directory / PROVENANCE_NAME, provenance))
    return written


def figures_files(pack: ReviewPack) -> dict[str, str]:
    """Each service's month exactly as `slamon compute --from --to --now` prints it, by name."""
    files = {}
    for review in pack.services:
        m = review.month
        text = render_json({review.service.id: m.figures}, m.window, m.figures.at)
        files[f"figures-{review.service.id}.json"] = text
    return files


def write_report(
    config: SlamonConfig,
    store: EventStore,
    *,
    month: str,
    service: str | None = None,
    customer: str | None = None,
    out_dir: Path,
    now: int,
    pdf: bool = True,
    generated_at: datetime | None = None,
) -> list[Path]:
    """Write the review packs of `month` (``YYYY-MM``), as of `now`, under `out_dir`.

    One pack for `service`, one for `customer`, or else one per customer (a service
    without a customer gets its own). Each pack holds the HTML, the PDF (unless `pdf` is
    False), every table as CSV and JSON, and each service's `slamon compute` JSON.
    `generated_at`, when given, is shown in the HTML only.
    """
    packs = build_packs(config, store, month=month, service=service, customer=customer, now=now)
    _refuse_shared_directories(packs)
    return [
        path
        for pack in packs
        for path in write_pack(pack, out_dir, pdf=pdf, generated_at=generated_at)
    ]


def _refuse_shared_directories(packs: list[ReviewPack]) -> None:
    """ConfigError when two packs would write one directory (`a/b` and `a b` are both `a-b`)."""
    scopes: dict[str, str] = {}
    for pack in packs:
        other = scopes.setdefault(pack.slug, pack.scope)
        if other != pack.scope:
            raise ConfigError(
                f"the review packs of {other!r} and {pack.scope!r} would both be written to "
                f"{pack.slug}: rename one of the customers or services"
            )
