"""Business calendars: local working hours, DST days, holidays, pauses, deadlines, ics holidays."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.calendar import (
    ROUND_THE_CLOCK,
    BusinessCalendar,
    WorkingHours,
    business_seconds,
    calendar_from_config,
    deadline,
    holidays_from_ics,
    local_to_epoch,
    zone,
)
from sla.config import CalendarConfig
from sla.errors import ConfigError
from sla.intervals import Interval

HOUR = 3600
NINE_TO_FIVE = ((540, 1020),)
SPLIT_DAY = ((540, 780), (840, 1080))  # 09:00-13:00 and 14:00-18:00
BERLIN = "Europe/Berlin"
# The domain.md example calendar: Mon-Thu 09-17, Friday split, Christmas Eve and Day off.
OFFICE = BusinessCalendar(
    BERLIN,
    WorkingHours((NINE_TO_FIVE,) * 4 + (SPLIT_DAY, (), ())),
    frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)


def at(text: str) -> int:
    """UTC epoch seconds of an ISO 8601 time with offset."""
    return int(datetime.fromisoformat(text).timestamp())


def sundays(ranges: tuple[tuple[int, int], ...]) -> BusinessCalendar:
    return BusinessCalendar(BERLIN, WorkingHours(((),) * 6 + (ranges,)))


def test_spring_forward_day_is_23_hours_in_local_24h_calendar() -> None:
    # Sun 2026-03-29: local 00:00 CET = Sat 23:00Z, local 24:00 CEST = Sun 22:00Z -> 23 h.
    cal = sundays(((0, 1440),))
    got = cal.working_intervals(at("2026-03-27T00:00Z"), at("2026-04-01T00:00Z"))
    assert got == [Interval(at("2026-03-28T23:00Z"), at("2026-03-29T22:00Z"))]
    assert got[0].seconds == 23 * HOUR


def test_fall_back_day_is_25_hours_in_local_24h_calendar() -> None:
    # Sun 2026-10-25: local 00:00 CEST = Sat 22:00Z, local 24:00 CET = Sun 23:00Z -> 25 h.
    cal = sundays(((0, 1440),))
    assert business_seconds(cal, at("2026-10-23T00:00Z"), at("2026-10-28T00:00Z")) == 25 * HOUR


def test_nine_to_five_stays_eight_hours_on_both_dst_sundays() -> None:
    # 09:00-17:00 never touches the 02:00/03:00 switch: spring 07:00Z-15:00Z, autumn 08:00Z-16:00Z.
    cal = sundays(NINE_TO_FIVE)
    assert cal.working_intervals(at("2026-03-29T00:00Z"), at("2026-03-30T00:00Z")) == [
        Interval(at("2026-03-29T07:00Z"), at("2026-03-29T15:00Z"))
    ]
    assert cal.working_intervals(at("2026-10-25T00:00Z"), at("2026-10-26T00:00Z")) == [
        Interval(at("2026-10-25T08:00Z"), at("2026-10-25T16:00Z"))
    ]


def test_weekday_hours_follow_local_time_across_the_spring_switch() -> None:
    # Fri 27 Mar 09:00 CET = 08:00Z; Mon 30 Mar 09:00 CEST = 07:00Z: the UTC start moves an hour.
    got = OFFICE.working_intervals(at("2026-03-27T00:00Z"), at("2026-03-31T00:00Z"))
    assert [i.start for i in got] == [
        at("2026-03-27T08:00Z"),
        at("2026-03-27T13:00Z"),
        at("2026-03-30T07:00Z"),
    ]
    assert sum(i.seconds for i in got) == 16 * HOUR  # Friday 4 h + 4 h, Monday 8 h


def test_range_starting_in_the_spring_gap_shifts_forward_to_the_switch() -> None:
    # 02:30 does not exist on 29 Mar; it becomes 03:00 CEST (01:00Z). 04:00 CEST is 02:00Z: 1 h.
    cal = sundays(((150, 240),))
    assert cal.working_intervals(at("2026-03-29T00:00Z"), at("2026-03-30T00:00Z")) == [
        Interval(at("2026-03-29T01:00Z"), at("2026-03-29T02:00Z"))
    ]


def test_range_inside_the_spring_gap_is_empty() -> None:
    # 02:10 and 02:50 both shift forward to 03:00: the range has no second that day.
    cal = sundays(((130, 170),))
    assert cal.working_intervals(at("2026-03-29T00:00Z"), at("2026-03-30T00:00Z")) == []


def test_range_starting_in_the_autumn_fold_takes_the_first_occurrence() -> None:
    # 02:30 happens twice on 25 Oct; the first is 02:30 CEST = 00:30Z. 04:00 CET = 03:00Z: 2.5 h.
    cal = sundays(((150, 240),))
    assert cal.working_intervals(at("2026-10-25T00:00Z"), at("2026-10-26T00:00Z")) == [
        Interval(at("2026-10-25T00:30Z"), at("2026-10-25T03:00Z"))
    ]


def test_midnight_that_does_not_exist_shifts_to_one_oclock() -> None:
    # Cuba springs forward at 00:00 -> 01:00 on Sun 2026-03-08; 01:00 CDT (UTC-4) is 05:00Z.
    assert local_to_epoch(zone("America/Havana"), date(2026, 3, 8)) == at("2026-03-08T05:00Z")


def test_holidays_are_removed_on_local_dates() -> None:
    # Week of Mon 21 Dec 2026: Mon-Wed 8 h each; Thu 24 and Fri 25 are holidays -> 24 h.
    week = (at("2026-12-21T00:00+01:00"), at("2026-12-28T00:00+01:00"))
    assert business_seconds(OFFICE, *week) == 24 * HOUR


def test_split_day_has_two_intervals_and_pauses_are_subtracted() -> None:
    # Fri 4 Dec 2026 (CET, UTC+1): 09-13 and 14-18 local = 08-12Z and 13-17Z, 8 h in all.
    day = (at("2026-12-04T00:00+01:00"), at("2026-12-05T00:00+01:00"))
    assert OFFICE.working_intervals(*day) == [
        Interval(at("2026-12-04T08:00Z"), at("2026-12-04T12:00Z")),
        Interval(at("2026-12-04T13:00Z"), at("2026-12-04T17:00Z")),
    ]
    # A pause 12:30-14:30 local removes 12:30-13:00 and 14:00-14:30: 8 h - 1 h = 7 h.
    pause = Interval(at("2026-12-04T12:30+01:00"), at("2026-12-04T14:30+01:00"))
    assert business_seconds(OFFICE, *day, pauses=[pause]) == 7 * HOUR


def test_deadline_carries_over_the_weekend() -> None:
    # Fri 4 Dec 16:00 + 4 h: Friday gives 16-18 (2 h), Monday 7 Dec 09-11 the other 2 h.
    assert deadline(OFFICE, at("2026-12-04T16:00+01:00"), 4 * HOUR) == at("2026-12-07T11:00+01:00")


def test_deadline_is_the_earliest_second_reaching_the_goal() -> None:
    # Fri 09:00 + 4 h ends at 13:00 exactly, not after the lunch break at 14:00; goal 0 = start.
    start = at("2026-12-04T09:00+01:00")
    assert deadline(OFFICE, start, 4 * HOUR) == at("2026-12-04T13:00+01:00")
    assert deadline(OFFICE, start, 0) == start


def test_deadline_skips_pauses_and_holidays() -> None:
    # Wed 23 Dec 16:00 + 3 h: Wed 16-17 (1 h); 24/25 Dec holidays; Sat/Sun closed; a pause
    # on Mon 28 Dec 09:00-10:00, so Monday 10:00 + 2 h = 12:00.
    pause = Interval(at("2026-12-28T09:00+01:00"), at("2026-12-28T10:00+01:00"))
    got = deadline(OFFICE, at("2026-12-23T16:00+01:00"), 3 * HOUR, pauses=[pause])
    assert got == at("2026-12-28T12:00+01:00")


def test_deadline_jumps_a_pause_of_years_quickly() -> None:
    # Paused from 2026 to 2036: the clock resumes Wed 2 Jan 2036 09:00 (a Wednesday), +1 h.
    pause = Interval(at("2026-01-01T00:00Z"), at("2036-01-02T00:00+01:00"))
    got = deadline(OFFICE, at("2026-01-01T00:00Z"), HOUR, pauses=[pause])
    assert got == at("2036-01-02T10:00+01:00")


def test_twenty_four_seven_counts_every_second() -> None:
    start = at("2026-03-29T00:30+01:00")
    assert business_seconds(ROUND_THE_CLOCK, start, start + 90_000) == 90_000
    assert deadline(ROUND_THE_CLOCK, start, 12_345) == start + 12_345


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": [(600, 540)]}, "mon: invalid range 10:00-09:00"),
        ({"tue": [(540, 1441)]}, "invalid range"),
        ({"wed": [(540, 780), (720, 900)]}, "overlap"),
        ({"monday": [(540, 1020)]}, "unknown weekday"),
        ({}, "no working time"),
    ],
)
def test_invalid_working_hours_are_config_errors(
    hours: dict[str, list[tuple[int, int]]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkingHours.from_mapping(hours)


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Europe/Berln"):
        BusinessCalendar("Europe/Berln", WorkingHours.from_mapping({"mon": [(0, 1440)]}))


ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    # Two-day event: DTEND is exclusive, so 24 and 25 Dec.
    "BEGIN:VEVENT\r\nSUMMARY:Christmas\r\nDTSTART;VALUE=DATE:20261224\r\n"
    "DTEND;VALUE=DATE:20261226\r\n"
    "BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nDTSTART:20261201T090000\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    # No DTEND: one day. The SUMMARY is folded over two lines.
    "BEGIN:VEVENT\r\nSUMMARY:New Year\r\n  's Day\r\nDTSTART;VALUE=DATE:20270101\r\nEND:VEVENT\r\n"
    # DURATION of two days: 1 and 2 Apr.
    "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270401\r\nDURATION:P2D\r\nEND:VEVENT\r\n"
    # Cancelled events are no holidays.
    "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270501\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_holidays_from_ics_reads_all_day_events() -> None:
    assert holidays_from_ics(ICS) == {
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2027, 1, 1),
        date(2027, 4, 1),
        date(2027, 4, 2),
    }


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("DTSTART:20261224T090000Z", "line 3: DTSTART '20261224T090000Z' is not an all-day"),
        ("DTSTART;VALUE=DATE:20261224\nRRULE:FREQ=YEARLY", "line 4: recurring events"),
        ("DTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261224", "ends before it starts"),
        ("DTSTART;VALUE=DATE:20261324", "month must be in 1..12"),
        ("SUMMARY:no date", "VEVENT without DTSTART"),
    ],
)
def test_bad_ics_events_are_config_errors_with_line_numbers(event: str, message: str) -> None:
    text = f"BEGIN:VCALENDAR\nBEGIN:VEVENT\n{event}\nEND:VEVENT\nEND:VCALENDAR\n"
    with pytest.raises(ConfigError, match=message):
        holidays_from_ics(text)


def test_unclosed_ics_component_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="BEGIN:VEVENT is never closed"):
        holidays_from_ics("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261224\n")


def test_calendar_from_config_takes_hours_and_holidays() -> None:
    cfg = CalendarConfig.model_validate(
        {
            "timezone": BERLIN,
            "hours": {"fri": ["09:00-13:00", "14:00-18:00"]},
            "holidays": ["2026-12-04"],
        }
    )
    cal = calendar_from_config(cfg)
    assert cal.hours.days[4] == SPLIT_DAY
    assert cal.hours.days[0] == ()
    assert cal.holidays == {date(2026, 12, 4)}


YEAR_2026 = (at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z"))


@given(st.integers(*YEAR_2026), st.integers(0, 40 * 86_400))
def test_deadline_inverts_business_seconds_inside_working_time(start: int, offset: int) -> None:
    # Take t where the second before it is working time: then t is the earliest reaching the count.
    t = start + offset
    if business_seconds(OFFICE, t - 1, t) != 1:
        t = OFFICE.working_intervals(t, t + 14 * 86_400)[0].end
    assert deadline(OFFICE, start, business_seconds(OFFICE, start, t)) == t


@given(st.integers(*YEAR_2026), st.integers(0, 20 * 86_400), st.integers(0, 20 * 86_400))
def test_business_seconds_add_up_over_adjacent_spans(a: int, ab: int, bc: int) -> None:
    assert business_seconds(OFFICE, a, a + ab + bc) == (
        business_seconds(OFFICE, a, a + ab) + business_seconds(OFFICE, a + ab, a + ab + bc)
    )
