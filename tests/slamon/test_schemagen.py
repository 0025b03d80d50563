"""The published JSON Schemas stay in sync with sla.events and accept the documented examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sla.events import EventType, parse_event
from slamon.schemagen import SCHEMA_DIR, main, rendered_schemas, stale_files

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)


def documented_examples() -> list[bytes]:
    """Every ```json block of docs/events.md, as the bytes a producer would send."""
    return [block.encode() for block in JSON_BLOCK.findall(EVENTS_DOC.read_text("utf-8"))]


def validator(name: str) -> Draft202012Validator:
    """A validator for the committed schema file ``name``."""
    schema = json.loads((SCHEMA_DIR / name).read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_committed_schemas_equal_freshly_generated_ones() -> None:
    assert stale_files(SCHEMA_DIR) == [], "run: python -m slamon.schemagen"


def test_there_is_one_schema_per_type_plus_the_envelope() -> None:
    assert sorted(rendered_schemas()) == sorted(
        ["cloudevent.json", *(f"{event_type}.json" for event_type in EventType)]
    )


def test_docs_show_one_example_per_type() -> None:
    types = [json.loads(raw)["type"] for raw in documented_examples()]

    assert sorted(types) == sorted(EventType)


@pytest.mark.parametrize("raw", documented_examples(), ids=lambda raw: json.loads(raw)["type"])
def test_each_documented_example_validates_and_parses(raw: bytes) -> None:
    document = json.loads(raw)

    validator(f"{document['type']}.json").validate(document)
    validator("cloudevent.json").validate(document)
    assert parse_event(raw).type == document["type"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"time": "2026-03-02T09:15:30"}, "does not match"),
        ({"time": "1772442930"}, "does not match"),
        ({"specversion": "0.3"}, "'1.0' was expected"),
        ({"Trace_Parent": "x"}, "does not match"),
        ({"sampledrate": 0.5}, "is not valid under any of the given schemas"),
        ({"data": {"check": "health", "ok": "yes", "latency_ms": 1}}, "'yes' is not of type"),
        ({"data": {"check": "health", "ok": True, "latency_ms": 1, "colour": "green"}}, "colour"),
    ],
)
def test_the_probe_schema_rejects_what_parse_event_rejects(
    change: dict[str, Any], problem: str
) -> None:
    document = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "test/schemas",
        "type": "slamon.probe.v1",
        "time": "2026-03-02T09:15:30Z",
        "subject": "checkout",
        "data": {"check": "health", "ok": True, "latency_ms": 1},
        **change,
    }
    errors = [error.message for error in validator("slamon.probe.v1.json").iter_errors(document)]

    assert any(problem in message for message in errors), errors


def test_check_lists_stale_files_and_a_write_fixes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert "stale: " in capsys.readouterr().err

    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    probe_schema = tmp_path / "slamon.probe.v1.json"
    assert probe_schema.read_bytes().endswith(b"}\n")
    assert json.loads(probe_schema.read_text("utf-8"))["$id"] == "urn:slamon:schema:slamon.probe.v1"

    probe_schema.write_text("{}\n", "utf-8")
    (tmp_path / "slamon.retired.v1.json").write_text("{}\n", "utf-8")
    capsys.readouterr()
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    stale = capsys.readouterr().err
    assert "slamon.probe.v1.json" in stale
    assert "slamon.retired.v1.json" in stale

    assert main(["--dir", str(tmp_path)]) == 0
    assert stale_files(tmp_path) == []
    assert not (tmp_path / "slamon.retired.v1.json").exists()
