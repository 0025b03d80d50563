"""Every exported service-level series, on a small store whose figures are worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dashboards.build import build_dashboards
from pipeline.exporter import SERVICE_LEVEL_METRICS, ServiceLevelCollector
from pipeline.levels import ServiceLevelView
from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.events import (
    CAPACITY,
    CHANGE,
    CONTINUITY,
    MAINTENANCE,
    OUTAGE,
    PROBE,
    TICKET,
    CloudEvent,
    new_event,
)

# Tuesday 10 March 2026, 12:00 UTC.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOUR = 3600
CONFIG = SlamonConfig.model_validate(
    {
        "calendars": {
            "office": {
                "timezone": "UTC",
                "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            }
        },
        "services": [
            {
                "id": "shop",
                "name": "Shop",
                "service_hours": "office",
                "objectives": {
                    "availability": 99.0,
                    "rto": "4h",
                    "rpo": "15m",
                    "continuity_test_interval": "30d",
                },
                "capacity": {"cpu": {"warn": 0.7, "crit": 0.9}},
                "tickets": {"goals": {"P1": {"response": "1h", "resolution": "4h"}}},
                "credits": [{"below": 99.9, "credit": 10}, {"below": 98.0, "credit": 25}],
            },
            {
                "id": "batch",
                "name": "Batch",
                "objectives": {"continuity_test_interval": "7d"},
            },
        ],
    }
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def at(delta_seconds: int) -> datetime:
    return NOW + timedelta(seconds=delta_seconds)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def event(type_: str, service: str, when: datetime, **data: Any) -> CloudEvent:
    return new_event(type_, service, data, source="test", time=when)


def ticket(ticket_id: str, when: datetime, status: str, **data: Any) -> CloudEvent:
    fields = {"kind": "incident", "priority": "P1", **data}
    return event(TICKET, "shop", when, ticket_id=ticket_id, status=status, **fields)


def change(change_id: str, status: str, end: datetime) -> CloudEvent:
    window = {"start": iso(end - timedelta(hours=1)), "end": iso(end)}
    return event(CHANGE, "shop", end, change_id=change_id, kind="normal", status=status, **window)


def shop_history() -> list[CloudEvent]:
    mar9 = datetime(2026, 3, 9, tzinfo=UTC)
    return [
        # One unplanned outage on Monday 9 March, 10:00-11:00, inside office hours.
        event(OUTAGE, "shop", at(-HOUR), outage_id="INC-1", start=iso(mar9 + timedelta(hours=10)),
              end=iso(mar9 + timedelta(hours=11)), planned=False, impact="full"),
        # T1: answered after 30 min (response met), open for 2 h of its 4 h.
        ticket("T1", at(-2 * HOUR), "new"),
        ticket("T1", at(-90 * 60), "in_progress", responded=True),
        # T2: unanswered for 3.5 h (response breached), resolution 87.5 % used: at risk.
        ticket("T2", at(-3 * HOUR - 30 * 60), "new"),
        # T3: a request unanswered for 50 min of its 1 h: the response clock is at risk.
        ticket("T3", at(-50 * 60), "new", kind="request"),
        # T4: yesterday, answered in 10 min, resolved after 5 h: resolution breached.
        ticket("T4", at(-24 * HOUR), "new"),
        ticket("T4", at(-24 * HOUR + 600), "in_progress", responded=True),
        ticket("T4", at(-19 * HOUR), "resolved"),
        # T5: a priority without a goal, still open.
        ticket("T5", at(-HOUR), "new", priority="urgent-ish"),
        # cpu on web-1 climbs 0.1 an hour; memory has one sample and no host.
        *(
            event(CAPACITY, "shop", at(-k * HOUR), resource="cpu", used=used, capacity=1.0,
                  unit="ratio", host="web-1")
            for k, used in ((3, 0.5), (2, 0.6), (1, 0.7))
        ),
        event(CAPACITY, "shop", at(-600), resource="memory", used=2.0, capacity=8.0, unit="GiB"),
        event(CONTINUITY, "shop", datetime(2026, 2, 20, 2, tzinfo=UTC), test_id="DR-1",
              scenario="restore", invoked_at=iso(datetime(2026, 2, 20, tzinfo=UTC)),
              restored_at=iso(datetime(2026, 2, 20, 2, tzinfo=UTC)),
              data_restored_to=iso(datetime(2026, 2, 19, 23, 50, tzinfo=UTC)), outcome="passed"),
        change("C1", "implemented", datetime(2026, 3, 3, tzinfo=UTC)),
        change("C2", "failed", datetime(2026, 3, 4, tzinfo=UTC)),
        change("C3", "rolled_back", datetime(2026, 3, 5, tzinfo=UTC)),
        change("C4", "implemented", datetime(2026, 3, 6, tzinfo=UTC)),
        change("C0", "failed", datetime(2026, 2, 15, tzinfo=UTC)),
        event(PROBE, "shop", at(-2 * HOUR), check="home", ok=True, latency_ms=5.0,
              cert_expires_at="2026-05-01T00:00:00Z"),
        event(PROBE, "shop", at(-HOUR), check="home", ok=True, latency_ms=5.0,
              cert_expires_at="2026-06-01T00:00:00Z"),
        event(PROBE, "shop", at(-1800), check="home", ok=True, latency_ms=5.0),
        event(PROBE, "shop", at(-1800), check="api", ok=True, latency_ms=5.0),
        # Batch is in maintenance from an hour ago to an hour from now.
        event(MAINTENANCE, "batch", at(-2 * HOUR), window_id="M-1", start=iso(at(-HOUR)),
              end=iso(at(HOUR)), reason="upgrade"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def store() -> EventStore:
    store = EventStore(":memory:")
    store.write_batch(shop_history())
    return store


def scrape(store: EventStore, now: datetime = NOW) -> Samples:
    registry = CollectorRegistry()
    collector = ServiceLevelCollector()
    registry.register(collector)
    collector.update(ServiceLevelView(store, CONFIG).compute(int(now.timestamp())))
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(samples: Samples, name: str, **match: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `match`, keyed by the other labels."""
    wanted = set(match.items())
    return {
        frozenset(labels - wanted): value
        for (metric, labels), value in samples.items()
        if metric == name and wanted <= labels
    }


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def keys(*pairs: dict[str, str]) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(p.items()) for p in pairs}


def test_availability_budget_and_credit_of_the_month(store: EventStore) -> None:
    samples = scrape(store)
    # Office hours of March so far: 2-6 March 5 x 8 h, Monday 9th 8 h, today 09:00-12:00
    # 3 h = 51 h; the outage took 1 h of them.
    agreed = 51 * HOUR
    assert one(samples, "slamon_agreed_service_seconds", service="shop", window="month") == agreed
    assert one(samples, "slamon_downtime_seconds", service="shop", window="month") == HOUR
    ratio = (agreed - HOUR) / agreed  # 98.04 %
    assert one(samples, "slamon_availability_ratio", service="shop", window="month") == ratio
    # Budget 1 % of all March's office hours (22 weekdays x 8 h = 176 h) = 6336 s, 3600 s
    # spent: the whole month's budget, not the 51 h so far.
    remaining = one(samples, "slamon_error_budget_remaining_ratio", service="shop", window="month")
    assert remaining == pytest.approx(1 - 3600 / 6336)
    # 98.04 % is below the 99.9 band but not below 98.0: 10 % credit, for the month only.
    assert series(samples, "slamon_service_credit_ratio", service="shop") == {
        frozenset({("window", "month")}): 0.1
    }
    assert one(samples, "slamon_availability_target_ratio", service="shop") == 0.99
    assert one(samples, "slamon_service_up", service="shop") == 1.0


def test_ticket_compliance_open_and_at_risk(store: EventStore) -> None:
    samples = scrape(store)
    compliance = series(samples, "slamon_ticket_sla_compliance_ratio", service="shop")
    # Incident P1 responses: T1 met, T2 breached while running, T4 met: 2 / 3. Resolutions:
    # T4 breached, T1 and T2 still in flight: 0 / 1. T3's clocks are in flight: no ratio.
    # T5 has no goal. Both windows hold all of them.
    assert compliance == {
        frozenset({("window", w), ("kind", "incident"), ("priority", "P1"), ("clock", c)}): v
        for w in ("month", "30d")
        for c, v in (("response", 2 / 3), ("resolution", 0.0))
    }
    # Running resolution clocks: T1, T2 (incident P1), T3 (request P1), T5 (priority without
    # a goal, counted as `other`); every kind x goal priority is there, 0 when none is open.
    assert series(samples, "slamon_tickets_open", service="shop") == {
        frozenset({("kind", "incident"), ("priority", "P1")}): 2.0,
        frozenset({("kind", "request"), ("priority", "P1")}): 1.0,
        frozenset({("kind", "problem"), ("priority", "P1")}): 0.0,
        frozenset({("kind", "incident"), ("priority", "other")}): 1.0,
    }
    # T2's resolution (3.5 h of 4 h) and T3's response (50 of 60 min) passed 75 %.
    assert series(samples, "slamon_tickets_at_risk", service="shop") == {
        frozenset({("priority", "P1"), ("clock", "resolution")}): 1.0,
        frozenset({("priority", "P1"), ("clock", "response")}): 1.0,
    }
    # A service without a ticket policy has no ticket series at all.
    assert not series(samples, "slamon_tickets_open", service="batch")


def test_capacity_utilization_thresholds_and_exhaustion(store: EventStore) -> None:
    samples = scrape(store)
    assert series(samples, "slamon_capacity_utilization_ratio", service="shop") == {
        frozenset({("resource", "cpu"), ("host", "web-1")}): 0.7,
        # No host: the label is empty, which Prometheus reads as absent.
        frozenset({("resource", "memory"), ("host", "")}): 0.25,
    }
    assert series(samples, "slamon_capacity_threshold_ratio", service="shop") == {
        frozenset({("resource", "cpu"), ("level", "warn")}): 0.7,
        frozenset({("resource", "cpu"), ("level", "crit")}): 0.9,
    }
    # +0.1 an hour from 0.7 an hour ago reaches 1 three hours after that sample: in 2 h.
    # One memory sample has no trend, so no exhaustion.
    assert series(samples, "slamon_capacity_exhaustion_seconds", service="shop") == {
        frozenset({("resource", "cpu"), ("host", "web-1")}): 2.0 * HOUR
    }


def test_continuity_last_test_and_overdue(store: EventStore) -> None:
    samples = scrape(store)
    invoked = datetime(2026, 2, 20, tzinfo=UTC).timestamp()
    assert one(samples, "slamon_continuity_rto_achieved_seconds", service="shop") == 2 * HOUR
    assert one(samples, "slamon_continuity_rpo_achieved_seconds", service="shop") == 600
    assert one(samples, "slamon_continuity_last_test_timestamp_seconds", service="shop") == invoked
    # Next test due 30 days after 20 February: 22 March, not yet.
    assert one(samples, "slamon_continuity_test_overdue", service="shop") == 0.0
    # Never tested with a 7-day interval: overdue at once, and no last test to show.
    assert one(samples, "slamon_continuity_test_overdue", service="batch") == 1.0
    assert not series(samples, "slamon_continuity_last_test_timestamp_seconds", service="batch")


def test_change_success_ratio_per_window(store: EventStore) -> None:
    samples = scrape(store)
    # March: C1, C4 implemented; C2 failed; C3 rolled back: 2 / 4. The 30 days also hold
    # C0 (failed 15 February): 2 / 5.
    assert series(samples, "slamon_change_success_ratio", service="shop") == {
        frozenset({("window", "month")}): 0.5,
        frozenset({("window", "30d")}): 0.4,
    }
    # Batch has no change: the ratio is undefined, so absent rather than NaN.
    assert not series(samples, "slamon_change_success_ratio", service="batch")


def test_agreed_service_time_active(store: EventStore) -> None:
    # Tuesday noon: inside shop's office hours; batch (24x7) is in maintenance.
    noon = scrape(store)
    assert one(noon, "slamon_agreed_service_time_active", service="shop") == 1.0
    assert one(noon, "slamon_agreed_service_time_active", service="batch") == 0.0
    # Tuesday 20:00: office closed; batch's maintenance ended at 13:00.
    evening = scrape(store, NOW + timedelta(hours=8))
    assert one(evening, "slamon_agreed_service_time_active", service="shop") == 0.0
    assert one(evening, "slamon_agreed_service_time_active", service="batch") == 1.0


def test_certificate_expiry_is_the_latest_reported(store: EventStore) -> None:
    samples = scrape(store)
    # The probe an hour ago saw the June certificate; the later one reported none, and the
    # `api` check never did.
    assert series(samples, "slamon_probe_certificate_expiry_timestamp_seconds") == {
        frozenset({("service", "shop"), ("check", "home")}): datetime(
            2026, 6, 1, tzinfo=UTC
        ).timestamp()
    }


def test_every_family_has_help_and_only_bounded_labels(store: EventStore) -> None:
    allowed = {"service", "window", "kind", "priority", "clock", "resource", "host", "level"}
    allowed.add("check")
    for spec in SERVICE_LEVEL_METRICS:
        assert spec.help.endswith("."), spec.name
        assert set(spec.labels) <= allowed, spec.name
    samples = scrape(store)
    assert {name for name, _ in samples} == {spec.name for spec in SERVICE_LEVEL_METRICS}
    windows = {dict(labels).get("window") for _, labels in samples}
    assert windows == {None, "month", "30d"}


def test_the_service_dashboard_lists_every_service_with_or_without_objectives(
    store: EventStore,
) -> None:
    variable = build_dashboards(CONFIG)["service"]["templating"]["list"][0]
    match = re.fullmatch(r"label_values\((\w+),\s*service\)", variable["query"])
    assert match is not None, variable["query"]
    listed = {dict(labels)["service"] for labels in series(scrape(store), match.group(1))}
    # batch has no availability objective, only a continuity interval.
    assert listed == {service.id for service in CONFIG.services} == {"shop", "batch"}
