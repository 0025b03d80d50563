"""The per-service assembly: which window availability covers, partial outages, JSON shape."""

from __future__ import annotations

from typing import Any

from sla.availability import Outage
from sla.calendar import Calendars
from sla.config import ServiceConfig
from sla.inputs import ServiceInputs
from sla.intervals import Interval
from sla.service_levels import rfc3339, service_figures

DAY = 86_400
START = 1_790_812_800  # 2026-10-01T00:00:00Z


def figures(service: dict[str, Any], inputs: ServiceInputs, at: int) -> Any:
    config = ServiceConfig.model_validate({"id": "shop", "name": "Shop", **service})
    return service_figures(config, Calendars({}), inputs, Interval(START, START + DAY), at)


def test_availability_covers_the_window_only_up_to_at() -> None:
    # Judged at 06:00: 6 h delivered so far, 30 min of them down. The 18 h still to come
    # are neither agreed nor available yet.
    down = Outage(START + 3_600, START + 5_400)
    result = figures({}, ServiceInputs("shop", (down,), observed=True), START + 6 * 3_600)
    assert result.availability.agreed_seconds == 21_600
    assert result.availability.ratio == (21_600 - 1_800) / 21_600


def test_partial_outages_count_only_when_the_contract_says_so() -> None:
    degraded = Outage(START, START + 3_600, impact="partial")
    inputs = ServiceInputs("shop", (degraded,), observed=True)
    reported_apart = figures({}, inputs, START + DAY).availability
    assert (reported_apart.downtime_seconds, reported_apart.partial_downtime_seconds) == (0, 3_600)
    counted = figures({"objectives": {"count_partial_outages": True}}, inputs, START + DAY)
    assert counted.availability.downtime_seconds == 3_600


def test_a_service_without_evidence_has_no_availability_and_no_credit() -> None:
    result = figures(
        {"objectives": {"availability": 99.9}, "credits": [{"below": 99.9, "credit": 10}]},
        ServiceInputs("shop"),
        START + DAY,
    )
    shape = result.to_dict()
    assert (shape["availability"], shape["error_budget"], shape["credit"]) == (None, None, None)
    assert shape["tickets"] == [] and shape["tickets_at_risk"] == []


def test_instants_are_rfc3339_utc() -> None:
    assert rfc3339(START) == "2026-10-01T00:00:00Z"
    down = Outage(START + 60, START + 120)
    shape = figures({}, ServiceInputs("shop", (down,), observed=True), START + DAY).to_dict()
    (outage,) = shape["availability"]["outage_list"]
    assert (outage["start"], outage["end"]) == ("2026-10-01T00:01:00Z", "2026-10-01T00:02:00Z")


def test_the_error_budget_is_the_whole_windows_even_midway() -> None:
    # 99.9 % of a 24x7 day: 86.4 s of budget for the day. At 01:00 a 10 s outage spends
    # 10/86.4 of it, leaving 1 - 10/86.4; measured against the hour so far (3.6 s) it would
    # wrongly read as overspent.
    blip = Outage(START + 1_000, START + 1_010)
    result = figures(
        {"objectives": {"availability": 99.9}},
        ServiceInputs("shop", (blip,), observed=True),
        START + 3_600,
    )
    assert result.error_budget.budget_seconds == 86.4
    assert abs(result.error_budget.remaining_ratio - (1 - 10 / 86.4)) < 1e-12
    assert result.availability.agreed_seconds == 3_600  # availability itself is to date
