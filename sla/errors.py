"""The one exception base of slamon and its precise subclasses."""

from __future__ import annotations


class SlamonError(Exception):
    """Base of every error slamon raises on purpose; the CLI prints these as one line."""


class ConfigError(SlamonError):
    """A configuration file is missing, unparsable or invalid."""


class InvalidEventError(SlamonError):
    """An event failed to parse or validate: ``code`` is a bounded label, ``reason`` human."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class TransportError(SlamonError):
    """The event transport (Kafka or embedded) failed in a way retries did not fix."""


class StoreError(SlamonError):
    """The event store could not be opened, migrated or written."""


class StoreInUseError(StoreError):
    """Another process holds the event store open (DuckDB allows one writer per file)."""
