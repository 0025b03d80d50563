"""The live service-level view and its Prometheus exposition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from pipeline.exporter import PipelineMetrics, ServiceLevelCollector, target_ratio
from pipeline.levels import ServiceLevelView
from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.events import OUTAGE, PROBE, STATUS, TICKET, new_event

# 10 Mar 2026 12:00 UTC; the month started 9 days and 12 hours earlier.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MONTH_SO_FAR = (9 * 24 + 12) * 3600
CONFIG = SlamonConfig.model_validate(
    {
        "services": [
            {"id": "shop", "name": "Shop", "objectives": {"availability": 99.9}},
            {"id": "idle", "name": "No evidence yet"},
        ]
    }
)


def store_with(*events: Any) -> EventStore:
    store = EventStore(":memory:")
    store.write_batch(list(events))
    return store


def ago(seconds: int) -> datetime:
    return NOW - timedelta(seconds=seconds)


def exposition(levels_store: EventStore) -> str:
    registry = CollectorRegistry()
    collector = ServiceLevelCollector()
    registry.register(collector)
    collector.update(ServiceLevelView(levels_store, CONFIG).compute(int(NOW.timestamp())))
    return generate_latest(registry).decode()


def test_an_ongoing_status_outage_is_downtime_and_service_down() -> None:
    # Down since 1 hour ago (reported by a monitor 2 days ago it was up): 3600 s downtime in
    # both windows, service down now.
    store = store_with(
        new_event(STATUS, "shop", {"state": "up"}, source="am", time=ago(2 * 86_400)),
        new_event(STATUS, "shop", {"state": "down"}, source="am", time=ago(3_600)),
    )
    text = exposition(store)
    assert 'slamon_service_up{service="shop"} 0.0' in text
    assert 'slamon_downtime_seconds{service="shop",window="month"} 3600.0' in text
    assert 'slamon_downtime_seconds{service="shop",window="30d"} 3600.0' in text
    ratio = (MONTH_SO_FAR - 3600) / MONTH_SO_FAR
    assert f'slamon_availability_ratio{{service="shop",window="month"}} {ratio!r}' in text
    # An ongoing outage has no restore time yet, but it is one failure: MTRS = DT / 1.
    assert 'slamon_mtrs_seconds{service="shop",window="month"} 3600.0' in text
    # Budget: 0.1 % of the whole of March (31 days) is 2,678.4 s; 3600 s spent is
    # 1 - 3600/2678.4 left (not 0.1 % of the month so far: docs/metrics.md).
    budget = 1 - 3600 / (31 * 86_400 / 1000)
    remaining = 'slamon_error_budget_remaining_ratio{service="shop",window="month"} '
    assert abs(float(text.split(remaining)[1].split()[0]) - budget) < 1e-12


def test_a_service_without_evidence_exports_only_its_target_and_agreed_time() -> None:
    text = exposition(store_with())
    assert 'slamon_availability_target_ratio{service="shop"} 0.999' in text
    # Whether now is agreed time follows from the config alone (24x7: always).
    idle = [line for line in text.splitlines() if 'service="idle"' in line]
    assert idle == ['slamon_agreed_service_time_active{service="idle"} 1.0']
    assert "slamon_availability_ratio{" not in text
    assert "slamon_service_up{" not in text


def test_a_closed_outage_event_and_probes_make_the_service_up_again() -> None:
    start, end = ago(7_200), ago(5_400)
    data = {"outage_id": "INC-1", "start": start.isoformat(), "end": None}
    closed = {**data, "end": end.isoformat()}
    probe = {"check": "home", "ok": True, "latency_ms": 3.0}
    store = store_with(
        new_event(OUTAGE, "shop", data, source="itsm", time=start),
        new_event(OUTAGE, "shop", closed, source="itsm", time=end),
        new_event(PROBE, "shop", probe, source="probe", time=ago(10)),
    )
    text = exposition(store)
    assert 'slamon_service_up{service="shop"} 1.0' in text
    assert 'slamon_downtime_seconds{service="shop",window="month"} 1800.0' in text
    assert 'slamon_outages{service="shop",window="month"} 1.0' in text


def test_targets_are_exact_decimal_ratios() -> None:
    assert target_ratio(99.9) == 0.999
    assert target_ratio(99.95) == 0.9995
    assert target_ratio(None) is None


def test_pipeline_metrics_expose_every_rejection_reason_from_the_start() -> None:
    registry = CollectorRegistry()
    PipelineMetrics(registry, lambda: {"slamon.probe.v1": 7})
    text = generate_latest(registry).decode()
    assert 'slamon_events_rejected_total{reason="not_json"} 0.0' in text
    assert 'slamon_events_rejected_total{reason="naive_time"} 0.0' in text
    assert 'slamon_events_ingested_total{type="slamon.probe.v1"} 7.0' in text


def test_published_levels_list_only_running_clocks_but_count_every_ticket() -> None:
    # T1 was opened 3 hours ago, answered and resolved 2 hours ago: both its clocks stopped.
    # T2 was opened an hour ago and is still new: both clocks run. The counts see T1; the
    # published clocks are T2's, all the gauges read, not the window's every clock.
    config = SlamonConfig.model_validate(
        {
            "services": [
                {
                    "id": "shop",
                    "name": "Shop",
                    "tickets": {
                        "goals": {"P2": {"response": "4h", "resolution": "1d"}},
                    },
                }
            ]
        }
    )

    def update(ticket_id: str, status: str, seconds_ago: int, **more: Any) -> Any:
        data = {"ticket_id": ticket_id, "kind": "incident", "priority": "P2", "status": status}
        return new_event(TICKET, "shop", data | more, source="itsm", time=ago(seconds_ago))

    store = store_with(
        update("T1", "new", 10_800),
        update("T1", "resolved", 7_200, responded=True),
        update("T2", "new", 3_600),
    )
    (level,) = ServiceLevelView(store, config).compute(int(NOW.timestamp()))
    for figures in level.figures.values():
        assert {(c.ticket_id, c.clock) for c in figures.tickets.clocks} == {
            ("T2", "response"),
            ("T2", "resolution"),
        }
        counts = {(r.clock, r.met, r.in_flight) for r in figures.tickets.compliance}
        assert counts == {("response", 1, 1), ("resolution", 1, 1)}
        assert figures.tickets.mttr_seconds == 3_600


def test_the_month_budget_is_the_whole_months_from_the_first_minutes() -> None:
    # 60 s down, 5 minutes into March. The budget is 0.1 % of all March (2,678.4 s), not of
    # the 5 minutes gone: 1 - 60 / 2,678.4 left, where the month so far would say -199.
    start = datetime(2026, 3, 1, tzinfo=UTC)
    store = store_with(
        new_event(
            STATUS, "shop", {"state": "down"}, source="am", time=start + timedelta(minutes=1)
        ),
        new_event(STATUS, "shop", {"state": "up"}, source="am", time=start + timedelta(minutes=2)),
    )
    now = int((start + timedelta(minutes=5)).timestamp())
    (shop, _) = ServiceLevelView(store, CONFIG).compute(now)
    month = shop.figures["month"]
    assert month.availability is not None and month.error_budget is not None
    assert (month.availability.agreed_seconds, month.availability.downtime_seconds) == (300, 60)
    assert month.error_budget.budget_seconds == 31 * 86_400 * 0.001
    assert month.error_budget.remaining_ratio == 1 - 60 / (31 * 86_400 * 0.001)
