"""Where a pack's figures came from: the config's hash and the store's event watermark."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.errors import SlamonError
from sla.service_levels import rfc3339

log = logging.getLogger(__name__)
T = TypeVar("T")

PROVENANCE_NAME = "provenance.json"
# A watermark that moves while figures are computed is read again this often, then accepted.
WATERMARK_ATTEMPTS = 3

# The engine knows an event at `at` when its time is before `at + 1` (whole seconds).
_WATERMARK = """
SELECT count(*) AS events, epoch_us(max(ingested_at)) AS ingested_us,
       epoch_us(max(time)) AS time_us
FROM events WHERE time < to_timestamp($through + 1)
"""


class PackFileError(SlamonError):
    """A file of a written pack is missing or not what slamon writes."""


def config_sha256(config: SlamonConfig) -> str:
    """SHA-256 of the validated config as sorted compact JSON: YAML layout changes nothing."""
    text = json.dumps(
        config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slamon_version() -> str:
    """The installed slamon's version."""
    try:
        return metadata.version("slamon")
    except metadata.PackageNotFoundError:
        return "unknown"


def rfc3339_us(us: int) -> str:
    """Microseconds as RFC 3339 UTC with six decimals: `ingested_at` keeps microseconds."""
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Watermark:
    """The stored events the figures could see: those whose time is at or before `through`.

    Events after `through` cannot change the figures, so live ingestion leaves the
    watermark of a closed month alone; a late event for the month moves it.
    """

    through: int
    events: int
    max_ingested_at: str | None
    max_event_time: str | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (instants RFC 3339 UTC)."""
        return {
            "through": rfc3339(self.through),
            "events": self.events,
            "max_ingested_at": self.max_ingested_at,
            "max_event_time": self.max_event_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watermark:
        """Read back `to_dict`."""
        through = int(datetime.fromisoformat(data["through"]).timestamp())
        return cls(through, int(data["events"]), data["max_ingested_at"], data["max_event_time"])


def read_watermark(store: EventStore, through: int) -> Watermark:
    """The watermark of the events in `store` known at `through`, by parameterised SQL."""
    events, ingested_us, time_us = store.query(_WATERMARK, {"through": through}).row(0)
    return Watermark(
        through,
        int(events),
        None if ingested_us is None else rfc3339_us(ingested_us),
        None if time_us is None else rfc3339_us(time_us),
    )


def consistently(store: EventStore, through: int, work: Callable[[], T]) -> tuple[T, Watermark]:
    """`work()` and the watermark it saw: read before and after, again if it moved meanwhile.

    The store takes batches while figures are computed; a watermark equal on both sides
    says exactly which events the figures saw.
    """
    before = read_watermark(store, through)
    for _ in range(WATERMARK_ATTEMPTS - 1):
        result = work()
        after = read_watermark(store, through)
        if after == before:
            return result, after
        before = after
    result = work()
    after = read_watermark(store, through)
    if after != before:
        # Late events keep arriving: the late-event check restates what they change.
        log.warning(
            "events up to %s kept arriving while figures were computed; recording the "
            "watermark after the last run",
            rfc3339(through),
        )
    return result, after


@dataclass(frozen=True)
class Provenance:
    """How one pack was computed; `revision` > 0 is a restatement of an earlier pack."""

    config_sha256: str
    watermark: Watermark
    slamon_version: str
    now: int
    revision: int = 0
    restates: str | None = None
    """The directory name of the pack this one restates."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `provenance.json`."""
        return {
            "config_sha256": self.config_sha256,
            "watermark": self.watermark.to_dict(),
            "slamon_version": self.slamon_version,
            "now": rfc3339(self.now),
            "revision": self.revision,
            "restates": self.restates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Read back `to_dict`."""
        return cls(
            config_sha256=data["config_sha256"],
            watermark=Watermark.from_dict(data["watermark"]),
            slamon_version=data["slamon_version"],
            now=int(datetime.fromisoformat(data["now"]).timestamp()),
            revision=int(data.get("revision", 0)),
            restates=data.get("restates"),
        )

    def figures_record(self) -> dict[str, Any]:
        """What every table's JSON carries: no `now`, so a closed month's tables stay
        byte-identical whenever they are written from the same store."""
        return {"config_sha256": self.config_sha256, "watermark": self.watermark.to_dict()}


def read_provenance(directory: Path) -> Provenance | None:
    """The provenance of the pack in `directory`; None for packs written before it existed."""
    path = directory / PROVENANCE_NAME
    if not path.exists():
        return None
    try:
        return Provenance.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise PackFileError(f"{path}: not a slamon provenance record: {exc}") from None
