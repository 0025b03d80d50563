"""The config models: defaults, parsing, and errors located at the offending field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sla.config import (
    CalendarConfig,
    CapacityThreshold,
    EmbeddedTransportConfig,
    ExporterConfig,
    KafkaTransportConfig,
    ParquetExportConfig,
    ProbeConfig,
    ReceiverAuthConfig,
    S3Config,
    ServiceConfig,
    SlamonConfig,
    TicketGoal,
    TicketPolicy,
    TimeRange,
    Weekday,
    split_host_port,
)

OFFICE_HOURS = {"mon": ["09:00-17:00"]}


def problems(
    model: type[BaseModel], data: dict[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(loc, message) of every error validating `data`; messages without pydantic's prefix."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [
        (
            tuple(error["loc"]),
            str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"],
        )
        for error in caught.value.errors()
    ]


def test_defaults_are_an_embedded_transport_and_local_listeners() -> None:
    config = SlamonConfig()
    assert config.transport == EmbeddedTransportConfig(kind="embedded", topic_prefix="slamon")
    assert (config.exporter.host, config.exporter.port) == ("127.0.0.1", 9464)
    assert (config.receivers.host, config.receivers.port) == ("127.0.0.1", 8088)
    assert config.store.path == "slamon.duckdb"
    assert config.pipeline.max_event_bytes == 262_144
    assert config.services == []


def test_transport_kind_selects_the_model() -> None:
    config = SlamonConfig.model_validate({"transport": {"kind": "kafka", "bootstrap": "a:1,b:2"}})
    assert config.transport == KafkaTransportConfig(bootstrap="a:1,b:2")
    assert problems(SlamonConfig, {"transport": {"kind": "kafka", "bootstrap": "a:1,b"}}) == [
        (("transport", "kafka", "bootstrap"), "invalid address 'b': expected host:port")
    ]


def test_models_are_frozen_and_forbid_unknown_keys() -> None:
    config = SlamonConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.store = config.store  # type: ignore[misc]
    assert problems(SlamonConfig, {"stor": {}}) == [(("stor",), "Extra inputs are not permitted")]


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("127.0.0.1:9464", "127.0.0.1", 9464), ("[::1]:0", "::1", 0), ("metrics:80", "metrics", 80)],
)
def test_listen_addresses_split_into_host_and_port(address: str, host: str, port: int) -> None:
    exporter = ExporterConfig(listen=address)
    assert (exporter.host, exporter.port) == (host, port)


@pytest.mark.parametrize("address", ["localhost", ":80", "host:http", "host:65536"])
def test_bad_listen_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValidationError, match="invalid address"):
        ExporterConfig(listen=address)


def test_probe_targets_need_a_real_port() -> None:
    # Port 0 means "any free port" when listening, but nothing can be probed there.
    with pytest.raises(ValueError, match=r"port must be 1\.\.65535"):
        split_host_port("db:0")


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [("09:00-17:00", 540, 1020), ("0:00-24:00", 0, 1440), ("13:30 - 14:15", 810, 855)],
)
def test_time_range_reads_minutes_since_midnight(text: str, start: int, end: int) -> None:
    time_range = TimeRange.model_validate(text)
    assert (time_range.start, time_range.end) == (start, end)


def test_time_range_prints_and_serialises_as_written() -> None:
    time_range = TimeRange.model_validate("9:00-24:00")
    assert str(time_range) == "09:00-24:00"
    assert time_range.model_dump_json() == '"09:00-24:00"'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9-17", "expected HH:MM-HH:MM"),
        ("09:00-17:60", "no such time 17:60"),
        ("09:00-24:30", "no such time 24:30"),
        ("24:00-24:00", "24:00 may only end a range"),
        ("17:00-09:00", "the end must be after the start"),
        ("09:00-09:00", "the end must be after the start"),
    ],
)
def test_bad_time_ranges_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        TimeRange.model_validate(text)


def test_calendar_sorts_ranges_and_allows_touching_ones() -> None:
    calendar = CalendarConfig.model_validate(
        {"timezone": "Europe/Berlin", "hours": {"fri": ["14:00-18:00", "09:00-14:00"]}}
    )
    assert [str(r) for r in calendar.hours[Weekday.FRI]] == ["09:00-14:00", "14:00-18:00"]


def test_overlapping_ranges_are_reported_at_the_later_one() -> None:
    data = {"timezone": "UTC", "hours": {"mon": ["12:00-18:00", "09:00-12:30"]}}
    # Sorted by start, 12:00-18:00 (item 0) begins before 09:00-12:30 (item 1) has ended.
    assert problems(CalendarConfig, data) == [
        (("hours", "mon", 0), "12:00-18:00 overlaps 09:00-12:30 on mon")
    ]


def test_calendar_needs_working_time_and_a_known_zone() -> None:
    assert problems(CalendarConfig, {"timezone": "Europe/Berln", "hours": {"mon": []}}) == [
        (("timezone",), "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        (("hours",), "a calendar needs at least one working time range"),
    ]
    assert problems(CalendarConfig, {"timezone": "Nowhere", "hours": OFFICE_HOURS}) == [
        (("timezone",), "unknown time zone 'Nowhere' (use an IANA name like Europe/Berlin)")
    ]


def test_probe_durations_parse_and_timeout_may_equal_interval() -> None:
    probe = ProbeConfig.model_validate(
        {"name": "db", "tcp": "db.example:5432", "interval": "1m", "timeout": 60}
    )
    assert (probe.interval, probe.timeout) == (60, 60)
    assert ProbeConfig(name="web", http="https://web.example/").interval == 30


def test_probe_needs_exactly_one_target_and_timeout_within_interval() -> None:
    both = {"name": "p", "http": "http://a/", "tcp": "a:1", "interval": "5s", "timeout": "10s"}
    assert problems(ProbeConfig, both) == [
        (("tcp",), "set http or tcp, not both"),
        (("timeout",), "timeout 10s must not exceed interval 5s"),
    ]
    assert problems(ProbeConfig, {"name": "p"}) == [
        ((), "set one of http (a URL), tcp (host:port) or dns (a host name)")
    ]


@pytest.mark.parametrize("url", ["ftp://a/", "checkout.example/health", "https://"])
def test_probe_http_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="invalid URL"):
        ProbeConfig(name="p", http=url)


def test_capacity_warn_must_be_below_crit_within_ratios() -> None:
    assert problems(CapacityThreshold, {"warn": 0.9, "crit": 0.8}) == [
        (("crit",), "crit (0.8) must be above warn (0.9)")
    ]
    assert [loc for loc, _ in problems(CapacityThreshold, {"warn": 0, "crit": 1.5})] == [
        ("warn",),
        ("crit",),
    ]


def test_receiver_auth_names_exactly_one_environment_variable() -> None:
    assert ReceiverAuthConfig(hmac_secret_env="HOOK_SECRET").token_env is None
    secrets = "token_env, token_file, hmac_secret_env, hmac_secret_file"
    assert problems(ReceiverAuthConfig, {}) == [((), f"set one of {secrets}")]
    assert problems(ReceiverAuthConfig, {"token_env": "A", "hmac_secret_env": "B"}) == [
        (("hmac_secret_env",), f"set only one of {secrets} (also token_env)")
    ]
    [(loc, message)] = problems(ReceiverAuthConfig, {"token_env": "s3cr3t-t0ken"})
    assert loc == ("token_env",)
    assert "not an environment variable name" in message


def test_ticket_goals_parse_durations_and_keep_response_first() -> None:
    policy = TicketPolicy.model_validate({"goals": {"P2": {"response": "1h", "resolution": "1d"}}})
    assert policy.goals["P2"] == TicketGoal(response=3600, resolution=86_400)
    assert policy.calendar == "24x7"
    assert policy.pause.clocks == ["response", "resolution"]
    assert problems(TicketGoal, {"response": "4h", "resolution": "1h"}) == [
        (("response",), "response 4h must not exceed resolution 1h")
    ]
    [(loc, _)] = problems(TicketPolicy, {"goals": {}})
    assert loc == ("goals",)


def service(**fields: Any) -> dict[str, Any]:
    return {"id": "checkout", "name": "Checkout", **fields}


def test_service_ids_are_slugs_and_probe_names_unique() -> None:
    [(loc, message)] = problems(ServiceConfig, service(id="Check Out"))
    assert loc == ("id",)
    assert "invalid service id 'Check Out'" in message
    probes = [{"name": "health", "http": "http://a/"}, {"name": "health", "tcp": "a:1"}]
    assert problems(ServiceConfig, service(probes=probes)) == [
        (("probes", 1, "name"), "duplicate probe name 'health' (also probes[0])")
    ]


def test_credit_bands_are_unique_and_grow_as_availability_falls() -> None:
    bands = [{"below": 99.9, "credit": 10}, {"below": 99.0, "credit": 25}]
    assert len(ServiceConfig.model_validate(service(credits=bands)).credits) == 2
    bad = [
        {"below": 99.9, "credit": 10},
        {"below": 99.0, "credit": 5},
        {"below": 99.9, "credit": 1},
    ]
    assert [loc for loc, _ in problems(ServiceConfig, service(credits=bad))] == [
        ("credits", 1, "credit"),  # 5% below 99.0 is less than 10% below 99.9
        ("credits", 2, "below"),  # 99.9 again
    ]


def test_objectives_parse_durations_and_bound_availability() -> None:
    parsed = ServiceConfig.model_validate(
        service(objectives={"availability": 99.9, "rto": "4h", "rpo": "0s"})
    )
    assert (parsed.objectives.rto, parsed.objectives.rpo) == (4 * 3600, 0)
    assert [
        loc for loc, _ in problems(ServiceConfig, service(objectives={"availability": 101}))
    ] == [("objectives", "availability")]


def test_cross_checks_point_at_the_offending_service_field() -> None:
    data = {
        "calendars": {"office": {"timezone": "UTC", "hours": OFFICE_HOURS}},
        "services": [
            service(service_hours="office"),
            service(
                tickets={"calendar": "ofice", "goals": {"P1": {"response": 1, "resolution": 2}}}
            ),
            service(id="search", name="Search", service_hours="weekdays"),
        ],
    }
    assert problems(SlamonConfig, data) == [
        (("services", 1, "id"), "duplicate service id 'checkout' (also services[0])"),
        (
            ("services", 1, "tickets", "calendar"),
            "unknown calendar 'ofice': use '24x7' or a name under calendars (office)",
        ),
        (
            ("services", 2, "service_hours"),
            "unknown calendar 'weekdays': use '24x7' or a name under calendars (office)",
        ),
    ]


def test_cross_checks_are_reported_with_field_errors() -> None:
    data = {"services": [service(), service(name="")]}
    assert sorted(problems(SlamonConfig, data)) == [
        (("services", 1, "id"), "duplicate service id 'checkout' (also services[0])"),
        (("services", 1, "name"), "String should have at least 1 character"),
    ]


def test_24x7_is_reserved_for_the_built_in_calendar() -> None:
    data = {"calendars": {"24x7": {"timezone": "UTC", "hours": OFFICE_HOURS}}}
    [(loc, message)] = problems(SlamonConfig, data)
    assert loc == ("calendars", "24x7", "[key]")
    assert "built-in" in message


def test_service_lookup_by_id() -> None:
    config = SlamonConfig.model_validate({"services": [service(), service(id="search")]})
    assert config.service("search").id == "search"
    with pytest.raises(KeyError, match="unknown service 'billing'"):
        config.service("billing")


def test_cross_checks_also_apply_to_typed_models() -> None:
    with pytest.raises(ValidationError, match="duplicate service id 'a'"):
        SlamonConfig(services=[ServiceConfig(id="a", name="A"), ServiceConfig(id="a", name="B")])


def test_a_dumped_config_validates_back_to_itself() -> None:
    config = SlamonConfig.model_validate(
        {
            "calendars": {
                "office": {"timezone": "UTC", "hours": {"fri": ["13:00-17:00", "09:00-12:00"]}}
            },
            "services": [
                service(service_hours="office", probes=[{"name": "h", "http": "http://a/"}])
            ],
        }
    )
    assert SlamonConfig.model_validate(config.model_dump()) == config
    assert SlamonConfig.model_validate(config.model_dump(mode="json")) == config


def test_an_s3_export_needs_its_settings_and_one_source_per_key() -> None:
    keys = {"access_key_id_env": "S3_KEY_ID", "secret_access_key_file": "s3-secret"}
    good = ParquetExportConfig.model_validate({"path": "s3://slamon-events/prod", "s3": keys})
    assert good.on_s3 and good.s3 is not None and good.s3.region == "us-east-1"
    assert problems(ParquetExportConfig, {"path": "s3://slamon-events"}) == [
        (("s3",), "an s3:// path needs the s3 settings (keys, endpoint)")
    ]
    assert problems(ParquetExportConfig, {"path": "s3://Upper_Case/x", "s3": keys}) == [
        (("path",), "not s3://<bucket>/<prefix> with a valid bucket")
    ]
    assert problems(ParquetExportConfig, {"path": "exports", "s3": keys}) == [
        (("s3",), "s3 settings apply to s3:// paths only")
    ]
    assert problems(S3Config, {**keys, "access_key_id_file": "id"}) == [
        (("access_key_id_file",), "set only one of access_key_id_env, access_key_id_file")
    ]
    assert problems(S3Config, {**keys, "endpoint": "ftp://minio"}) == [
        (("endpoint",), "String should match pattern '^https?://[^/\\s]+/?$'")
    ]
    assert problems(S3Config, {"access_key_id_env": "S3_KEY_ID"}) == [
        ((), "set one of secret_access_key_env, secret_access_key_file")
    ]
