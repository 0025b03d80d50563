"""Loading config files: every problem with file, line, column and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla.config import SlamonConfig, Weekday
from sla.errors import ConfigError
from slamon.configfile import ConfigFileError, ConfigProblem, load_config, parse_config_text

CONFIGS = Path(__file__).parent / "configs"
BAD = CONFIGS / "bad"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def problems_in(path: Path) -> list[tuple[int, int, str, str]]:
    """(line, column, field, message) of every problem loading `path`."""
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


def problems_in_text(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config_text(text, "inline.yaml")
    return [(p.line, p.column, p.field, p.message) for p in caught.value.problems]


# One fixture per class of mistake: where it is (1-based line and column) and what it is.
MISTAKES = [
    (
        "unknown_key.yaml",
        7,
        9,  # the key itself
        "services[0].probes[0].intervall",
        "unknown key 'intervall' (did you mean 'interval'?); "
        "expected one of: name, http, tcp, dns, interval, timeout, jitter, method, headers, "
        "expect_status, expect_body, tls_verify, record, expect",
    ),
    (
        "missing_field.yaml",
        4,
        5,  # the mapping of the second service, which lacks the field
        "services[1].name",
        "required field is missing",
    ),
    (
        "bad_duration.yaml",
        6,
        73,
        "services[0].probes[1].interval",
        "invalid duration '5x': unknown unit 'x' (use s, m, h or d)",
    ),
    (
        "bad_time_range.yaml",
        6,
        13,
        "calendars.office.hours.tue[0]",
        "invalid time range '9am-5pm': expected HH:MM-HH:MM, e.g. 09:00-17:00",
    ),
    (
        "overlapping_intervals.yaml",
        6,
        11,  # 13:00-18:00 starts before 09:00-14:00 has ended
        "calendars.office.hours.fri[0]",
        "13:00-18:00 overlaps 09:00-14:00 on fri",
    ),
    (
        "unknown_timezone.yaml",
        3,
        15,
        "calendars.office.timezone",
        "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
    ),
    (
        "end_before_start.yaml",
        4,
        41,
        "calendars.office.hours.tue[0]",
        "invalid time range '17:00-09:00': the end must be after the start",
    ),
    (
        "unknown_calendar.yaml",
        8,
        20,
        "services[0].service_hours",
        "unknown calendar 'office-paris': use '24x7' or a name under calendars (office-berlin)",
    ),
    (
        "duplicate_service_id.yaml",
        6,
        9,
        "services[2].id",
        "duplicate service id 'checkout' (also services[0])",
    ),
    (
        "duplicate_key.yaml",
        7,
        7,  # the second `availability:`
        "services[0].objectives.availability",
        "duplicate key 'availability' (first at line 5); "
        "YAML would silently keep only this last value",
    ),
    (
        "yaml_syntax.yaml",
        5,
        1,  # the parser only notices the unclosed quote of line 3 at the end of the file
        "",
        "invalid YAML: while scanning a quoted scalar at line 3: found unexpected end of stream",
    ),
    (
        "probe_http_and_tcp.yaml",
        7,
        14,
        "services[0].probes[0].tcp",
        "set http or tcp, not both",
    ),
]


@pytest.mark.parametrize(
    ("name", "line", "column", "field", "message"),
    MISTAKES,
    ids=[mistake[0].removesuffix(".yaml") for mistake in MISTAKES],
)
def test_each_mistake_is_reported_with_line_and_field(
    name: str, line: int, column: int, field: str, message: str
) -> None:
    assert problems_in(BAD / name) == [(line, column, field, message)]


def test_wrong_types_are_reported_in_yaml_words() -> None:
    assert problems_in(BAD / "wrong_type.yaml") == [
        (2, 15, "pipeline.batch_size", "expected an integer, got 'lots'"),
        (6, 13, "services[0].probes", "expected a list, got a mapping"),
    ]


def test_every_problem_is_listed_one_per_line_in_file_order() -> None:
    path = BAD / "many_problems.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    # Field errors and cross-checks (duplicate id, unknown calendar) come together.
    assert str(caught.value).splitlines() == [
        f"{path}:1:19: transport.kind: unknown kind 'kafak': expected one of 'kafka', 'embedded'",
        f"{path}:4:15: calendars.office.timezone: unknown time zone 'Mars/Olympus' "
        "(use an IANA name like Europe/Berlin)",
        f"{path}:10:17: services[0].tickets.calendar: unknown calendar 'offce': use '24x7' "
        "or a name under calendars (office)",
        f"{path}:13:9: services[1].id: duplicate service id 'checkout' (also services[0])",
        f"{path}:16:77: services[1].probes[0].timeout: timeout 30s must not exceed interval 10s",
    ]


def test_the_domain_reference_example_loads() -> None:
    config = load_config(CONFIGS / "good" / "domain.yaml")
    assert config.transport.kind == "kafka"
    assert config.receivers.auth["jira"].token_env == "SLAMON_JIRA_TOKEN"
    office = config.calendars["office-berlin"]
    assert [str(r) for r in office.hours[Weekday.FRI]] == ["09:00-13:00", "14:00-18:00"]
    checkout = config.service("checkout")
    assert checkout.objectives.availability == 99.9
    assert (checkout.objectives.rto, checkout.objectives.rpo) == (4 * 3600, 15 * 60)
    assert checkout.probes[0].interval == 30
    assert checkout.tickets is not None
    assert checkout.tickets.goals["P2"].resolution == 86_400  # 1d: 24 business hours
    assert [(band.below, band.credit) for band in checkout.credits] == [(99.9, 10), (99.0, 25)]


def test_the_minimal_example_loads() -> None:
    config = load_config(EXAMPLES / "minimal.yaml")
    assert config.transport.kind == "embedded"
    [service] = config.services
    assert service.service_hours == "24x7"
    assert service.probes[0].http is not None


def test_missing_unreadable_and_empty_files() -> None:
    missing = BAD / "no-such-file.yaml"
    with pytest.raises(ConfigError, match=f"^{missing}: file not found$"):
        load_config(missing)
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(BAD)  # a directory
    assert problems_in(BAD / "empty.yaml") == [(0, 0, "", "the file holds no configuration")]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("services: [{id: caf\xe9}]\n".encode("latin-1"))
    assert problems_in(path) == [(0, 0, "", "not UTF-8 text (bad byte at offset 19)")]


def test_merge_keys_override_without_duplicate_complaints() -> None:
    text = """\
services:
  - id: checkout
    name: Checkout
    probes:
      - &probe {name: health, http: "http://a/health", interval: 1m, timeout: 10s}
      - {<<: *probe, name: login, http: "http://a/login", timeout: 20s}
"""
    login = parse_config_text(text, "inline.yaml").services[0].probes[1]
    assert (login.name, login.interval, login.timeout) == ("login", 60, 20)


def test_problems_in_merged_values_point_at_the_anchor() -> None:
    text = """\
services:
  - id: checkout
    name: Checkout
    probes:
      - &probe {name: health, http: "http://a/health", interval: 5x}
      - {<<: *probe, name: login}
"""
    message = "invalid duration '5x': unknown unit 'x' (use s, m, h or d)"
    assert problems_in_text(text) == [
        (5, 66, "services[0].probes[0].interval", message),
        (5, 66, "services[0].probes[1].interval", message),
    ]


def test_discriminator_and_key_errors() -> None:
    assert problems_in_text("transport: {topic_prefix: x}\n") == [
        (1, 12, "transport.kind", "required field is missing (one of 'kafka', 'embedded')")
    ]
    assert problems_in_text(
        "calendars:\n  c: {timezone: UTC, hours: {monday: ['09:00-17:00']}}\n"
    ) == [
        (
            2,
            30,  # the key `monday`
            "calendars.c.hours.monday",
            "invalid key: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun', got 'monday'",
        )
    ]


def test_yaml_booleans_as_keys_are_caught() -> None:
    # YAML 1.1 reads an unquoted `yes` as true, which cannot name a resource.
    text = "services: [{id: a, name: A, capacity: {yes: {warn: 0.5, crit: 0.6}}}]\n"
    assert problems_in_text(text) == [
        (1, 40, "services[0].capacity.yes", "invalid key: expected a string, got true")
    ]


def test_other_yaml_errors() -> None:
    assert problems_in_text("- just\n- a list\n") == [(1, 1, "", "expected a mapping, got a list")]
    assert problems_in_text("store: {}\n---\nstore: {}\n") == [
        (
            2,
            1,
            "",
            "invalid YAML: expected a single document in the stream at line 1: "
            "but found another document",
        )
    ]
    assert problems_in_text("store: {path: \x07}\n") == [
        (1, 15, "", "invalid YAML: special characters are not allowed")
    ]


def test_problem_formatting() -> None:
    assert str(ConfigProblem("a.yaml", 3, 7, "store.path", "must not be empty")) == (
        "a.yaml:3:7: store.path: must not be empty"
    )
    assert (
        str(ConfigProblem("a.yaml", 1, 1, "", "invalid YAML: x")) == "a.yaml:1:1: invalid YAML: x"
    )
    assert str(ConfigProblem("a.yaml", 0, 0, "", "file not found")) == "a.yaml: file not found"


def test_a_valid_text_gives_the_typed_config() -> None:
    config = parse_config_text("services: [{id: web, name: Web}]\n", "inline.yaml")
    assert config == SlamonConfig.model_validate({"services": [{"id": "web", "name": "Web"}]})


HOLIDAY_ICS = """BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
UID:xmas@example
DTSTART;VALUE=DATE:20261225
DTEND;VALUE=DATE:20261227
SUMMARY:Christmas
END:VEVENT
END:VCALENDAR
"""

CALENDAR_WITH_ICS = """\
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon: ["09:00-17:00"]}
    holidays: ["2026-12-24"]
    holidays_ics: holidays/berlin.ics
"""


def test_holidays_ics_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "berlin.ics").write_text(HOLIDAY_ICS)
    config_path = tmp_path / "slamon.yaml"
    config_path.write_text(CALENDAR_WITH_ICS)
    calendar = load_config(config_path).calendars["office"]
    # 24 Dec listed in YAML; 25 and 26 Dec from the all-day event (DTEND is exclusive).
    assert [d.isoformat() for d in calendar.holidays] == ["2026-12-24", "2026-12-25", "2026-12-26"]


def test_a_missing_or_broken_holidays_ics_names_the_yaml_line(tmp_path: Path) -> None:
    config_path = tmp_path / "slamon.yaml"
    config_path.write_text(CALENDAR_WITH_ICS)
    with pytest.raises(ConfigFileError) as missing:
        load_config(config_path)
    (problem,) = missing.value.problems
    assert (problem.line, problem.field) == (6, "calendars.office.holidays_ics")
    assert "cannot read" in problem.message and "berlin.ics" in problem.message

    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "berlin.ics").write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\n")
    with pytest.raises(ConfigFileError) as broken:
        load_config(config_path)
    (problem,) = broken.value.problems
    assert problem.line == 6 and "never closed" in problem.message


def test_a_missing_holidays_ics_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    config_path = tmp_path / "slamon.yaml"
    config_path.write_text(CALENDAR_WITH_ICS.replace("Europe/Berlin", "Europe/Berln"))
    with pytest.raises(ConfigFileError) as caught:
        load_config(config_path)
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (3, "calendars.office.timezone"),
        (6, "calendars.office.holidays_ics"),
    ]


def test_every_service_named_outside_services_must_exist_and_is_reported_with_the_rest() -> None:
    text = """\
services:
  - id: checkout
    name: Checkout
    probes: [{name: home, http: "http://checkout/", interval: 0s}]
collectors:
  host: {services: [checkout, nosvc]}
  prometheus:
    url: http://prometheus:9090
    queries: [{service: ghost, name: up, query: up, kind: probe}]
receivers:
  alertmanager:
    label_map: {job: {web: checkout, batch: ghost}}
  tickets:
    jira: {service_map: {CHK: checkout, OLD: retired}}
"""
    listed = "(services: checkout)"
    assert problems_in_text(text) == [
        (4, 63, "services[0].probes[0].interval", "must be greater than 0, got '0s'"),
        (6, 31, "collectors.host.services[1]", f"unknown service 'nosvc' {listed}"),
        (9, 25, "collectors.prometheus.queries[0].service", f"unknown service 'ghost' {listed}"),
        (12, 45, "receivers.alertmanager.label_map.job.batch", f"unknown service 'ghost' {listed}"),
        (14, 46, "receivers.tickets.jira.service_map.OLD", f"unknown service 'retired' {listed}"),
    ]


def test_an_instance_id_kafka_would_refuse_is_reported_and_a_valid_one_kept() -> None:
    assert problems_in_text("pipeline:\n  instance_id: worker 1\n") == [
        (
            2,
            16,
            "pipeline.instance_id",
            "invalid instance id 'worker 1': use up to 249 letters, digits, '.', '_', '-'",
        )
    ]
    assert problems_in_text(f"pipeline:\n  instance_id: {'w' * 250}\n")[0][2:] == (
        "pipeline.instance_id",
        f"invalid instance id {'w' * 250!r}: use up to 249 letters, digits, '.', '_', '-'",
    )
    config = parse_config_text("pipeline:\n  instance_id: pipeline-1.eu_west\n", "inline.yaml")
    assert config.pipeline.instance_id == "pipeline-1.eu_west"
    assert parse_config_text("{}\n", "inline.yaml").pipeline.instance_id is None
