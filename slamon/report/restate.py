"""Restatements: a closed month's packs written again after late events changed a figure.

The pack that was handed out stays as it is. The restated pack goes next to it as
``<slug>-r<revision>``, and a record under ``restatements/<month>/`` says what changed:
the old and new figures, every differing field, the config hashes and both watermarks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.service_levels import rfc3339
from slamon.report.build import ReviewPack, build_packs, scope_slug, select_scopes
from slamon.report.provenance import PackFileError, Provenance, read_provenance, read_watermark
from slamon.report.tables import json_text, pack_tables
from slamon.report.write import figures_files, write_pack

RESTATEMENTS_DIR = "restatements"
# A record lists at most this many changed fields per pack (an outage more shifts a list).
MAX_CHANGES = 500


@dataclass(frozen=True)
class FieldChange:
    """One value of a pack that reads differently now."""

    field: str
    previous: Any
    current: Any


@dataclass(frozen=True)
class RestatedPack:
    """One pack of the month written again."""

    previous: Path
    restated: ReviewPack
    previous_provenance: Provenance | None
    changes: tuple[FieldChange, ...]

    def headline(self, count: int = 3) -> str:
        """The first few changed month figures, e.g. ``shop availability.downtime_seconds
        1800 -> 3000``: top-level figures of compute's JSON before list items and tables."""
        figures = []
        for c in self.changes:
            name, _, path = c.field.partition(".json.services.")
            if name.startswith("figures-") and path:
                service, _, figure = path.partition(".")
                figures.append((("[" in figure), f"{service} {figure} {c.previous} -> {c.current}"))
        shown = [text for _, text in sorted(figures, key=lambda f: f[0])[:count]]
        more = len(self.changes) - len(shown)
        return ", ".join(shown) + (f" and {more} more fields" if more else "")


@dataclass(frozen=True)
class Restatement:
    """What one restatement of a month wrote."""

    month: str
    record: Path
    packs: tuple[RestatedPack, ...]
    files: tuple[Path, ...]


def latest_revision(out_dir: Path, base_slug: str) -> tuple[Path, int] | None:
    """The directory of the newest revision of a pack and its number; None if never written."""
    if not (out_dir / base_slug).is_dir():
        return None
    revision = 0
    while (out_dir / f"{base_slug}-r{revision + 1}").is_dir():
        revision += 1
    return (out_dir / (base_slug if revision == 0 else f"{base_slug}-r{revision}")), revision


def watermark_moved(
    config: SlamonConfig, store: EventStore, out_dir: Path, month: str
) -> bool | None:
    """Whether events the month's newest packs could see were stored since they were computed.

    None when no written pack of the month records its watermark (packs written before
    provenance existed): then only a recomputation can tell.
    """
    recorded = False
    for scope, _, _ in select_scopes(config, service=None, customer=None):
        found = latest_revision(out_dir, scope_slug(month, scope))
        provenance = None if found is None else read_provenance(found[0])
        if provenance is None:
            continue
        recorded = True
        if read_watermark(store, provenance.watermark.through) != provenance.watermark:
            return True
    return False if recorded else None


def pack_content(pack: ReviewPack) -> dict[str, Any]:
    """Every figure of a pack as its files hold it: compute's JSON and each table's rows."""
    content: dict[str, Any] = {name: json.loads(text) for name, text in figures_files(pack).items()}
    for table in pack_tables(pack).values():
        document = json.loads(json_text(table, pack))
        content[f"{table.name}.json"] = {k: document[k] for k in ("columns", "rows")}
    return content


def written_content(directory: Path, names: set[str]) -> dict[str, Any]:
    """The same content read back from a written pack (files it lacks are left out)."""
    content: dict[str, Any] = {}
    for name in sorted(names | {p.name for p in directory.glob("figures-*.json")}):
        path = directory / name
        if not path.exists():
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise PackFileError(f"{path}: not JSON: {exc}") from None
        if name.startswith("figures-"):
            content[name] = document
        else:
            content[name] = {k: document.get(k) for k in ("columns", "rows")}
    return content


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


_MISSING = object()


def differences(previous: dict[str, Any], current: dict[str, Any]) -> list[FieldChange]:
    """Every leaf that differs, by path (``summary.json.rows[0].downtime_seconds``)."""
    before, after = dict(_leaves(previous, "")), dict(_leaves(current, ""))
    changes = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path, _MISSING), after.get(path, _MISSING)
        if old != new:
            changes.append(
                FieldChange(
                    path, None if old is _MISSING else old, None if new is _MISSING else new
                )
            )
    return changes


def _figures(content: dict[str, Any]) -> dict[str, Any]:
    """The month's figures of each service in a pack's content."""
    return {
        service: figures
        for name, document in content.items()
        if name.startswith("figures-")
        for service, figures in document.get("services", {}).items()
    }


def _record_path(out_dir: Path, month: str, now: int) -> Path:
    directory = out_dir / RESTATEMENTS_DIR / month
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    path, n = directory / f"{stamp}.json", 1
    while path.exists():
        n += 1
        path = directory / f"{stamp}-{n}.json"
    return path


def restate_month(
    config: SlamonConfig, store: EventStore, out_dir: Path, month: str, now: int, *, pdf: bool
) -> Restatement | None:
    """Compute `month` again; write a new revision of every written pack that now differs.

    Returns None when every figure reads as before (nothing is written then).
    """
    restated: list[tuple[RestatedPack, dict[str, Any], dict[str, Any]]] = []
    for pack in build_packs(config, store, month=month, now=now):
        found = latest_revision(out_dir, pack.base_slug)
        if found is None:
            continue  # never handed out: nothing to restate
        directory, revision = found
        current = pack_content(pack)
        previous = written_content(directory, set(current))
        changes = differences(previous, current)
        if changes:
            entry = RestatedPack(
                directory,
                pack.restating(directory.name, revision + 1),
                read_provenance(directory),
                tuple(changes),
            )
            restated.append((entry, previous, current))
    if not restated:
        return None
    files = [p for entry, _, _ in restated for p in write_pack(entry.restated, out_dir, pdf=pdf)]
    record = _record_path(out_dir, month, now)
    document = {
        "month": month,
        "restated_at": rfc3339(now),
        "cause": "events stored after the pack was written changed its figures",
        "config_sha256": restated[0][0].restated.provenance.config_sha256,
        "packs": [_pack_record(entry, previous, current) for entry, previous, current in restated],
    }
    record.write_bytes((json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return Restatement(month, record, tuple(entry for entry, _, _ in restated), tuple(files))


def _pack_record(
    entry: RestatedPack, previous: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    old = entry.previous_provenance
    new = entry.restated.provenance
    return {
        "scope": entry.restated.scope,
        "previous": entry.previous.name,
        "restated": entry.restated.slug,
        "revision": new.revision,
        "previous_provenance": None if old is None else old.to_dict(),
        "provenance": new.to_dict(),
        "watermarks": {
            "previous": None if old is None else old.watermark.to_dict(),
            "current": new.watermark.to_dict(),
        },
        "changed": [c.field for c in entry.changes],
        "changes": [
            {"field": c.field, "previous": c.previous, "current": c.current}
            for c in entry.changes[:MAX_CHANGES]
        ],
        "changes_left_out": max(0, len(entry.changes) - MAX_CHANGES),
        "previous_figures": _figures(previous),
        "figures": _figures(current),
    }
