"""Availability: outages from probes and statuses, AST, downtime, MTBF/MTRS/MTBSI, error budget."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.availability import (
    ErrorBudget,
    Impact,
    Outage,
    agreed_service_seconds,
    availability,
    burn_rate,
    error_budget,
    outages_from_probe_results,
    outages_from_status_changes,
)
from sla.calendar import ROUND_THE_CLOCK, BusinessCalendar, WorkingHours
from sla.errors import ConfigError, InvalidEventError
from sla.intervals import Interval, InvalidIntervalError
from sla.windows import month_window

HOUR = 3600
BERLIN = "Europe/Berlin"
# Every local day 00:00-24:00 in Berlin: 24x7, but with days that follow the local clock.
BERLIN_24H = BusinessCalendar(BERLIN, WorkingHours((((0, 1440),),) * 7))
# The domain.md office calendar: Mon-Thu 09-17, Friday 09-13 and 14-18, Christmas off.
OFFICE = BusinessCalendar(
    BERLIN,
    WorkingHours((((540, 1020),),) * 4 + (((540, 780), (840, 1080)), (), ())),
    frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)
# Mon 7 Dec 2026, a plain CET office day: 09:00-17:00 local = 08:00-16:00Z.
MONDAY = Interval(
    int(datetime.fromisoformat("2026-12-07T00:00+01:00").timestamp()),
    int(datetime.fromisoformat("2026-12-08T00:00+01:00").timestamp()),
)


def at(text: str) -> int:
    """UTC epoch seconds of an ISO 8601 time with offset."""
    return int(datetime.fromisoformat(text).timestamp())


def monday(hhmm: str) -> int:
    return at(f"2026-12-07T{hhmm}+01:00")


# --- outages from probes -------------------------------------------------------------------


def test_probe_run_opens_at_first_failure_and_closes_at_first_success() -> None:
    # Probes every 30 s. 0,30 fail then 60 ok: a run of 2 < 3 opens nothing. 90,120,150 fail:
    # the third failure confirms the outage, which starts at the first failure (90); 180 ok ends it.
    results = [
        (0, False),
        (30, False),
        (60, True),
        (90, False),
        (120, False),
        (150, False),
        (180, True),
        (210, True),
    ]
    assert outages_from_probe_results(results, failures=3) == [Outage(90, 180, source="probes")]


def test_probe_runs_shorter_than_failures_never_count() -> None:
    results = [(0, False), (30, False), (60, True), (90, False), (120, False)]
    assert outages_from_probe_results(results, failures=3) == []


def test_probe_recoveries_need_consecutive_successes_and_unsorted_input_is_ordered() -> None:
    # Fails at 0,30,60 open at 0. Success at 90 is cut by a failure at 120; successes 150,180
    # are two in a row, so the outage ends at 150 (first success of the closing run).
    results = [
        (180, True),
        (0, False),
        (30, False),
        (60, False),
        (90, True),
        (120, False),
        (150, True),
    ]
    assert outages_from_probe_results(results, failures=3, recoveries=2) == [
        Outage(0, 150, source="probes")
    ]


def test_probe_outage_still_failing_at_the_end_is_ongoing() -> None:
    results = [(0, True), (30, False), (60, False)]
    assert outages_from_probe_results(results, failures=2) == [Outage(30, None, source="probes")]


def test_probe_thresholds_below_one_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="failures and recoveries"):
        outages_from_probe_results([], failures=0)


# --- outages from status changes ------------------------------------------------------------


def test_status_changes_make_full_and_partial_outages_and_repeats_do_not_reopen() -> None:
    # down at 100 (the down at 150 repeats it), degraded 200-300 is a partial outage, down at 400
    # is still going.
    changes = [
        (0, "up"),
        (100, "down"),
        (150, "down"),
        (200, "degraded"),
        (300, "up"),
        (400, "down"),
    ]
    assert outages_from_status_changes(changes) == [
        Outage(100, 200, source="status"),
        Outage(200, 300, impact="partial", source="status"),
        Outage(400, None, source="status"),
    ]


def test_each_monitor_has_its_own_state_and_their_outages_are_unioned() -> None:
    # Alert A is down 0-600 s, alert B 300-3,600 s on the same service. Each is its own state
    # machine; one machine for both would take A's `up` at 600 as the end of the service's
    # outage and drop B's remaining 3,000 s.
    a = outages_from_status_changes([(0, "down"), (600, "up")])
    b = outages_from_status_changes([(300, "down"), (3_600, "up")])
    assert (a, b) == ([Outage(0, 600, source="status")], [Outage(300, 3_600, source="status")])
    day = Interval(0, 86_400)
    result = availability(ROUND_THE_CLOCK, day, [*a, *b], [], now=day.end)
    # The union 0-3,600 s is one outage of 3,600 s.
    assert (result.downtime_seconds, result.outages) == (3_600, 1)


def test_unknown_status_state_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="sideways"):
        outages_from_status_changes([(0, "sideways")])


def test_outage_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(InvalidIntervalError):
        Outage(10, 5)


# --- availability --------------------------------------------------------------------------


def test_mtbf_mtrs_mtbsi_by_hand_on_a_24x7_month() -> None:
    # June 2026 UTC: 30 d = 2,592,000 s; 2 h maintenance -> AST = 2,584,800 s.
    # Outages of 30 min and 90 min -> DT = 7,200 s, N = 2.
    # availability = 2,577,600 / 2,584,800; MTBF = 2,577,600 / 2 = 1,288,800 s;
    # MTRS = 7,200 / 2 = 3,600 s; MTBSI = 2,584,800 / 2 = 1,292,400 s.
    june = month_window("UTC", 2026, 6)
    maintenance = [Interval(at("2026-06-06T01:00Z"), at("2026-06-06T03:00Z"))]
    outages = [
        Outage(at("2026-06-10T12:00Z"), at("2026-06-10T12:30Z"), outage_id="o1"),
        Outage(at("2026-06-20T08:00Z"), at("2026-06-20T09:30Z"), outage_id="o2"),
    ]
    result = availability(ROUND_THE_CLOCK, june, outages, maintenance, now=june.end)
    assert (result.agreed_seconds, result.downtime_seconds, result.outages) == (2_584_800, 7_200, 2)
    assert result.ratio == 2_577_600 / 2_584_800
    assert result.mtbf_seconds == 1_288_800
    assert result.mtrs_seconds == 3_600
    assert result.mtbsi_seconds == 1_292_400


def test_local_24h_calendar_over_the_spring_month_and_an_outage_across_month_end() -> None:
    # March 2026 in Berlin is 31 d - 1 h = 2,674,800 s. An outage 31 Mar 23:00 -> 1 Apr 01:00
    # CEST (2 h) gives 1 h to March and 1 h to April, counted once in each.
    outage = Outage(at("2026-03-31T23:00+02:00"), at("2026-04-01T01:00+02:00"))
    march = month_window(BERLIN, 2026, 3)
    april = month_window(BERLIN, 2026, 4)
    in_march = availability(BERLIN_24H, march, [outage], [], now=april.end)
    in_april = availability(BERLIN_24H, april, [outage], [], now=april.end)
    assert in_march.agreed_seconds == 2_674_800
    assert (in_march.downtime_seconds, in_march.outages) == (HOUR, 1)
    assert (in_april.downtime_seconds, in_april.outages) == (HOUR, 1)
    assert in_march.ratio == (2_674_800 - HOUR) / 2_674_800


def test_autumn_month_agreed_time_is_one_hour_longer() -> None:
    # October 2026 in Berlin: 31 d + 1 h = 2,682,000 s of agreed service time.
    october = month_window(BERLIN, 2026, 10)
    assert availability(BERLIN_24H, october, [], [], now=october.end).agreed_seconds == 2_682_000


def test_outages_across_service_hour_edges_and_the_24x7_figure() -> None:
    # Monday: AST = 09:00-17:00 = 28,800 s. Outage A 16:00-18:30 has 1 h in service hours;
    # outage B 20:00-22:00 has none, so N = 1 and DT = 3,600: ratio = 25,200 / 28,800 = 0.875.
    # The 24x7 figure counts the whole day: 86,400 s with 2.5 h + 2 h = 16,200 s down -> 0.8125.
    a = Outage(monday("16:00"), monday("18:30"), source="probes")
    b = Outage(monday("20:00"), monday("22:00"), source="status", ref="INC-7")
    result = availability(OFFICE, MONDAY, [b, a], [], now=MONDAY.end)
    assert (result.agreed_seconds, result.downtime_seconds, result.outages) == (28_800, 3_600, 1)
    assert result.ratio == 0.875
    assert (result.agreed_seconds_24x7, result.downtime_seconds_24x7) == (86_400, 16_200)
    assert result.ratio_24x7 == 0.8125
    assert (result.mtbf_seconds, result.mtrs_seconds, result.mtbsi_seconds) == (
        25_200,
        3_600,
        28_800,
    )
    # Listed in start order with their whole length in the window and their in-hours part.
    assert [
        (r.duration_seconds, r.service_seconds, r.source, r.ref) for r in result.outage_list
    ] == [
        (9_000, 3_600, "probes", None),
        (7_200, 0, "status", "INC-7"),
    ]


def test_overlapping_outages_from_two_sources_merge_into_one() -> None:
    # Probes see 10:00-10:20, the status feed 10:10-10:40: union 10:00-10:40 = 2,400 s, N = 1.
    outages = [
        Outage(monday("10:00"), monday("10:20"), source="probes"),
        Outage(monday("10:10"), monday("10:40"), source="status"),
    ]
    result = availability(OFFICE, MONDAY, outages, [], now=MONDAY.end)
    assert (result.downtime_seconds, result.outages, result.mtrs_seconds) == (2_400, 1, 2_400)
    assert len(result.outage_list) == 2


def test_one_outage_over_two_service_periods_counts_once() -> None:
    # Fri 4 Dec 12:00 -> 15:00 spans the 13:00-14:00 lunch gap: 1 h + 1 h down, still N = 1.
    friday = Interval(at("2026-12-04T00:00+01:00"), at("2026-12-05T00:00+01:00"))
    outage = Outage(at("2026-12-04T12:00+01:00"), at("2026-12-04T15:00+01:00"))
    result = availability(OFFICE, friday, [outage], [], now=friday.end)
    assert (result.agreed_seconds, result.downtime_seconds, result.outages) == (28_800, 7_200, 1)


def test_maintenance_inside_an_outage_is_neither_agreed_nor_down() -> None:
    # Outage 10:00-12:00 with maintenance 10:30-11:00: AST = 8 h - 0.5 h = 27,000 s,
    # DT = 2 h - 0.5 h = 5,400 s -> ratio = 21,600 / 27,000 = 0.8.
    maintenance = [Interval(monday("10:30"), monday("11:00"))]
    result = availability(
        OFFICE, MONDAY, [Outage(monday("10:00"), monday("12:00"))], maintenance, now=MONDAY.end
    )
    assert (result.agreed_seconds, result.downtime_seconds, result.ratio) == (27_000, 5_400, 0.8)


def test_planned_outage_is_agreed_downtime_like_maintenance() -> None:
    # A planned 1 h outage leaves AST (28,800 - 3,600) and is no downtime; it is still listed.
    planned = Outage(monday("10:00"), monday("11:00"), planned=True, ref="CHG-1")
    result = availability(OFFICE, MONDAY, [planned], [], now=MONDAY.end)
    assert (result.agreed_seconds, result.downtime_seconds, result.outages) == (25_200, 0, 0)
    assert result.outage_list[0].planned


def test_ongoing_outage_runs_until_now_or_the_window_end() -> None:
    # Down since 10:00 and still down: at now = 10:45 that is 2,700 s; at 20:00 the service
    # hours end at 17:00, so 7 h in AST and 10 h in the window (listed with end None).
    ongoing = Outage(monday("10:00"), None)
    early = availability(OFFICE, MONDAY, [ongoing], [], now=monday("10:45"))
    assert early.downtime_seconds == 2_700
    late = availability(OFFICE, MONDAY, [ongoing], [], now=monday("20:00"))
    assert late.downtime_seconds == 7 * HOUR
    assert (late.outage_list[0].end, late.outage_list[0].duration_seconds) == (None, 10 * HOUR)
    # A month window ends before now: the outage is cut at the window end.
    december = month_window(BERLIN, 2026, 12)
    past = availability(
        OFFICE, MONDAY, [Outage(december.end - 60, None)], [], now=december.end + 999
    )
    assert past.outage_list == ()


def test_no_agreed_service_time_gives_no_ratio_and_no_means() -> None:
    # Sat 5 Dec has no office hours: AST = 0, so availability is N/A rather than 0 % or 100 %.
    saturday = Interval(at("2026-12-05T00:00+01:00"), at("2026-12-06T00:00+01:00"))
    outage = Outage(at("2026-12-05T10:00+01:00"), at("2026-12-05T11:00+01:00"))
    result = availability(OFFICE, saturday, [outage], [], now=saturday.end)
    assert (result.agreed_seconds, result.ratio, result.outages) == (0, None, 0)
    assert (result.mtbf_seconds, result.mtrs_seconds, result.mtbsi_seconds) == (None, None, None)
    assert result.ratio_24x7 == 23 / 24  # the 24x7 figure still sees the hour


def test_partial_impact_is_reported_apart_unless_counted() -> None:
    # Degraded 10:00-11:00, fully down 10:30-10:45. Default: DT = 900 s (full only) and the
    # degraded time outside it, 3,600 - 900 = 2,700 s, is partial downtime. Counted: DT = 3,600.
    outages = [
        Outage(monday("10:00"), monday("11:00"), impact="partial", source="status"),
        Outage(monday("10:30"), monday("10:45"), source="probes"),
    ]
    apart = availability(OFFICE, MONDAY, outages, [], now=MONDAY.end)
    assert (apart.downtime_seconds, apart.partial_downtime_seconds, apart.outages) == (
        900,
        2_700,
        1,
    )
    counted = availability(OFFICE, MONDAY, outages, [], now=MONDAY.end, count_partial=True)
    assert (counted.downtime_seconds, counted.outages) == (3_600, 1)


# --- error budget and burn rate -------------------------------------------------------------


def test_error_budget_by_hand() -> None:
    # 99.9 % of a 30-day AST (2,592,000 s) allows 2,592 s; 648 s down leaves 1 - 648/2592 = 0.75.
    assert error_budget(99.9, 2_592_000, 648) == ErrorBudget(2_592.0, 0.75)
    # Overspent budgets go negative: 5,184 s down is 2 budgets, remaining -1.
    assert error_budget(99.9, 2_592_000, 5_184).remaining_ratio == -1.0
    # A 100 % objective has no budget, so no remaining ratio.
    assert error_budget(100, 2_592_000, 0).remaining_ratio is None


def test_burn_rate_is_error_ratio_over_allowed_error() -> None:
    # 1.44 % errors against a 99.9 % objective (0.1 % allowed) burns 14.4x: the SRE page level.
    assert burn_rate(0.0144, 99.9) == pytest.approx(14.4)
    assert burn_rate(0.0, 100) is None
    with pytest.raises(ConfigError, match="objective"):
        burn_rate(0.1, 100.5)


# --- properties ----------------------------------------------------------------------------

DECEMBER = month_window(BERLIN, 2026, 12)
IMPACTS: list[Impact] = ["full", "partial"]
instants = st.integers(DECEMBER.start - 86_400, DECEMBER.end + 86_400)
lengths = st.integers(0, 3 * 86_400)
outage_lists = st.lists(
    st.tuples(instants, st.none() | lengths, st.booleans(), st.sampled_from(IMPACTS)).map(
        lambda t: Outage(t[0], None if t[1] is None else t[0] + t[1], t[2], t[3])
    ),
    max_size=8,
)
maintenance_lists = st.lists(
    st.tuples(instants, lengths).map(lambda p: Interval(p[0], p[0] + p[1])), max_size=4
)
calendars = st.sampled_from([OFFICE, BERLIN_24H, ROUND_THE_CLOCK])


@given(calendars, outage_lists, maintenance_lists, instants, st.booleans())
def test_availability_is_a_ratio_and_downtime_fits_agreed_time(
    cal: BusinessCalendar,
    outages: list[Outage],
    maintenance: list[Interval],
    now: int,
    count_partial: bool,
) -> None:
    result = availability(cal, DECEMBER, outages, maintenance, now, count_partial=count_partial)
    assert 0 <= result.downtime_seconds <= result.agreed_seconds
    assert result.agreed_seconds <= result.agreed_seconds_24x7
    for ratio in (result.ratio, result.ratio_24x7):
        assert ratio is None or 0.0 <= ratio <= 1.0
    assert (result.outages == 0) == (result.downtime_seconds == 0)


@given(calendars, outage_lists, maintenance_lists, instants, st.integers(0, 31 * 86_400))
def test_splitting_the_window_adds_up(
    cal: BusinessCalendar,
    outages: list[Outage],
    maintenance: list[Interval],
    now: int,
    cut: int,
) -> None:
    # Downtime and agreed time of [start, mid) plus [mid, end) equal those of the whole window.
    mid = min(DECEMBER.start + cut, DECEMBER.end)
    whole = availability(cal, DECEMBER, outages, maintenance, now)
    parts = [
        availability(cal, Interval(DECEMBER.start, mid), outages, maintenance, now),
        availability(cal, Interval(mid, DECEMBER.end), outages, maintenance, now),
    ]
    assert whole.downtime_seconds == sum(p.downtime_seconds for p in parts)
    assert whole.agreed_seconds == sum(p.agreed_seconds for p in parts)


@given(calendars, outage_lists, maintenance_lists, instants)
def test_agreed_service_seconds_are_those_availability_counts(
    cal: BusinessCalendar, outages: list[Outage], maintenance: list[Interval], now: int
) -> None:
    # The error budget's agreed time is counted alone; it must be availability's.
    result = availability(cal, DECEMBER, outages, maintenance, now)
    assert agreed_service_seconds(cal, DECEMBER, outages, maintenance, now) == (
        result.agreed_seconds
    )


def test_worked_example_of_docs_formulas_md() -> None:
    # The December 2026 example in docs/formulas.md, step by step:
    # 21 office days x 8 h = 168 h = 604,800 s; maintenance Tue 8 Dec 16:00-18:00 removes the
    # in-hours 16:00-17:00 -> AST = 601,200 s. Outages: Wed 9 Dec 10:00-10:20 (probes) and
    # 10:10-10:40 (status) merge to 2,400 s; Fri 11 Dec 12:30-14:30 is 3,600 s in hours
    # (12:30-13:00, 14:00-14:30); Sat 12 Dec 03:00-05:00 is outside hours.
    # DT = 6,000 s, N = 2, availability = 595,200 / 601,200.
    # 24x7: 31 d = 2,678,400 s - 7,200 s maintenance = 2,671,200 s; DT = 2,400 + 7,200 + 7,200.
    def local(text: str) -> int:
        return at(f"2026-12-{text}+01:00")

    outages = [
        Outage(local("09T10:00"), local("09T10:20"), source="probes"),
        Outage(local("09T10:10"), local("09T10:40"), source="status"),
        Outage(local("11T12:30"), local("11T14:30"), ref="INC-42", outage_id="o-42"),
        Outage(local("12T03:00"), local("12T05:00"), source="probes"),
    ]
    maintenance = [Interval(local("08T16:00"), local("08T18:00"))]
    december = month_window(BERLIN, 2026, 12)
    result = availability(OFFICE, december, outages, maintenance, now=december.end)
    assert (result.agreed_seconds, result.downtime_seconds, result.outages) == (601_200, 6_000, 2)
    assert result.ratio == 595_200 / 601_200
    assert (result.mtbf_seconds, result.mtrs_seconds, result.mtbsi_seconds) == (
        297_600,
        3_000,
        300_600,
    )
    assert (result.agreed_seconds_24x7, result.downtime_seconds_24x7) == (2_671_200, 16_800)
    assert result.ratio_24x7 == 2_654_400 / 2_671_200
    # A 99 % objective allows 6,012 s; 6,000 s are spent, 12 / 6,012 of the budget remains.
    assert error_budget(99, result.agreed_seconds, result.downtime_seconds) == ErrorBudget(
        6_012.0, 12 / 6_012
    )
