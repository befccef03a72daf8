"""NSE calendar: golden days from the published NSE holiday lists, phases, overrides."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.calendar import (
    IST,
    CalendarOverrideError,
    CalendarOverrides,
    NseCalendar,
    SessionKind,
    SessionPhase,
    SpecialSession,
    UncoveredYearWarning,
    default_calendar,
)

D = dt.date

# NSE trading holidays 2026 (equity & derivatives) as published by the exchange,
# including the late-added 2026-01-15 Maharashtra municipal election closure.
NSE_HOLIDAYS_2026 = [
    D(2026, 1, 15),
    D(2026, 1, 26),
    D(2026, 3, 3),
    D(2026, 3, 26),
    D(2026, 3, 31),
    D(2026, 4, 3),
    D(2026, 4, 14),
    D(2026, 5, 1),
    D(2026, 5, 28),
    D(2026, 6, 26),
    D(2026, 9, 14),
    D(2026, 10, 2),
    D(2026, 10, 20),
    D(2026, 11, 10),
    D(2026, 11, 24),
    D(2026, 12, 25),
]


@pytest.fixture(scope="module")
def cal() -> NseCalendar:
    return default_calendar()


def ist(day: dt.date, hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST)


@pytest.fixture(autouse=True)
def _covered_years_do_not_warn(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests not about coverage must not trip the uncovered-year warning."""
    with warnings.catch_warnings():
        if "uncovered" not in request.node.name:
            warnings.simplefilter("error", UncoveredYearWarning)
        yield


# --- trading days -------------------------------------------------------------


def test_2026_holidays_match_the_published_nse_list(cal: NseCalendar) -> None:
    assert cal.holidays(2026) == NSE_HOLIDAYS_2026


def test_republic_day_2026_is_closed_all_day(cal: NseCalendar) -> None:
    republic_day = D(2026, 1, 26)
    assert not cal.is_trading_day(republic_day)
    assert cal.trading_minutes(republic_day) == []
    assert cal.session_bounds(republic_day) is None
    assert cal.session_phase(ist(republic_day, 10, 0)) is SessionPhase.CLOSED


def test_friday_2026_11_20_trades_and_the_weekend_after_does_not(cal: NseCalendar) -> None:
    assert D(2026, 11, 20).weekday() == 4  # a Friday, not on the 2026 list
    assert cal.is_trading_day(D(2026, 11, 20))
    assert not cal.is_trading_day(D(2026, 11, 21))  # Saturday
    assert not cal.is_trading_day(D(2026, 11, 22))  # Sunday
    assert cal.is_trading_day(D(2026, 11, 23))


def test_date_methods_reject_a_datetime(cal: NseCalendar) -> None:
    # A datetime never equals a date, so it would silently miss every holiday.
    with pytest.raises(TypeError, match="2026-01-26"):
        cal.is_trading_day(dt.datetime(2026, 1, 26, 10, 0))


# --- session phases -----------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "phase"),
    [
        (8, 59, 59, SessionPhase.CLOSED),
        (9, 0, 0, SessionPhase.PRE_OPEN),
        (9, 5, 0, SessionPhase.PRE_OPEN),
        (9, 14, 59, SessionPhase.PRE_OPEN),
        (9, 15, 0, SessionPhase.NORMAL),
        (12, 0, 0, SessionPhase.NORMAL),
        (15, 29, 59, SessionPhase.NORMAL),
        (15, 30, 0, SessionPhase.POST_CLOSE),
        (15, 59, 0, SessionPhase.POST_CLOSE),
        (16, 0, 0, SessionPhase.CLOSED),
        (20, 0, 0, SessionPhase.CLOSED),
    ],
)
def test_regular_day_phases(
    cal: NseCalendar, hh: int, mm: int, ss: int, phase: SessionPhase
) -> None:
    assert cal.session_phase(ist(D(2026, 11, 20), hh, mm, ss)) is phase


def test_phase_converts_other_time_zones_to_ist(cal: NseCalendar) -> None:
    # 03:45 UTC + 5:30 = 09:15 IST (open); 09:59 UTC = 15:29 IST; 10:00 UTC = 15:30 IST.
    utc = dt.UTC
    assert cal.session_phase(dt.datetime(2026, 11, 20, 3, 45, tzinfo=utc)) is SessionPhase.NORMAL
    assert cal.session_phase(dt.datetime(2026, 11, 20, 3, 44, tzinfo=utc)) is SessionPhase.PRE_OPEN
    assert cal.session_phase(dt.datetime(2026, 11, 20, 10, 0, tzinfo=utc)) is (
        SessionPhase.POST_CLOSE
    )
    # 19:00 UTC on the 19th is 00:30 IST on Friday the 20th: the IST date decides.
    assert cal.session_phase(dt.datetime(2026, 11, 19, 19, 0, tzinfo=utc)) is SessionPhase.CLOSED


def test_naive_instant_is_rejected_with_its_value(cal: NseCalendar) -> None:
    with pytest.raises(ValueError, match="2026-11-20T10:00:00"):
        cal.session_phase(dt.datetime(2026, 11, 20, 10, 0))


def test_weekend_is_closed_at_market_hours(cal: NseCalendar) -> None:
    assert cal.session_phase(ist(D(2026, 11, 21), 10, 0)) is SessionPhase.CLOSED


# --- bars ---------------------------------------------------------------------


def test_regular_day_has_375_one_minute_bars(cal: NseCalendar) -> None:
    minutes = cal.trading_minutes(D(2026, 11, 20))
    # 09:15 -> 15:30 is 6 h 15 min = 6 * 60 + 15 = 375 bars, the last starting 15:29.
    assert len(minutes) == 375
    assert minutes[0] == ist(D(2026, 11, 20), 9, 15)
    assert minutes[-1] == ist(D(2026, 11, 20), 15, 29)
    assert all(m.utcoffset() == dt.timedelta(hours=5, minutes=30) for m in minutes)
    assert all(b - a == dt.timedelta(minutes=1) for a, b in pairwise(minutes))


def test_regular_session_bounds(cal: NseCalendar) -> None:
    assert cal.session_bounds(D(2026, 11, 20)) == (
        ist(D(2026, 11, 20), 9, 15),
        ist(D(2026, 11, 20), 15, 30),
    )


# --- special sessions -----------------------------------------------------------


def test_muhurat_2025_is_an_afternoon_hour(cal: NseCalendar) -> None:
    day = D(2025, 10, 21)  # Diwali Laxmi Pujan, a Tuesday
    assert cal.is_trading_day(day)
    assert cal.session_bounds(day) == (ist(day, 13, 45), ist(day, 14, 45))
    minutes = cal.trading_minutes(day)
    # 13:45 -> 14:45 = 60 bars, last one starting 14:44.
    assert len(minutes) == 60
    assert (minutes[0], minutes[-1]) == (ist(day, 13, 45), ist(day, 14, 44))
    assert cal.session_phase(ist(day, 10, 0)) is SessionPhase.CLOSED
    assert cal.session_phase(ist(day, 13, 30)) is SessionPhase.PRE_OPEN
    assert cal.session_phase(ist(day, 13, 45)) is SessionPhase.NORMAL
    assert cal.session_phase(ist(day, 14, 45)) is SessionPhase.POST_CLOSE
    assert cal.session_phase(ist(day, 15, 15)) is SessionPhase.CLOSED
    (session,) = [s for s in cal.special_sessions(2025) if s.date == day]
    assert session.kind is SessionKind.MUHURAT
    assert session.source  # the packaged file names where each session comes from
    assert not cal.is_trading_day(D(2025, 10, 22))  # Diwali Balipratipada


def test_muhurat_2024_evening_session(cal: NseCalendar) -> None:
    day = D(2024, 11, 1)
    assert cal.session_bounds(day) == (ist(day, 18, 0), ist(day, 19, 0))
    assert cal.session_phase(ist(day, 17, 50)) is SessionPhase.PRE_OPEN
    assert cal.session_phase(ist(day, 9, 30)) is SessionPhase.CLOSED


def test_sunday_sessions_from_the_packaged_overrides(cal: NseCalendar) -> None:
    budget = D(2026, 2, 1)  # Union Budget, a Sunday, regular hours
    assert budget.weekday() == 6
    assert cal.is_trading_day(budget)
    assert len(cal.trading_minutes(budget)) == 375
    muhurat = D(2023, 11, 12)  # Sunday Muhurat the exchange package cannot represent
    assert cal.session_bounds(muhurat) == (ist(muhurat, 18, 15), ist(muhurat, 19, 15))


def test_split_drill_day_trades_only_in_its_windows(cal: NseCalendar) -> None:
    day = D(2024, 3, 2)  # DR drill: 09:15-10:00 primary site, 11:30-12:30 DR site
    minutes = cal.trading_minutes(day)
    # 45 + 60 = 105 bars.
    assert len(minutes) == 105
    assert ist(day, 10, 0) not in minutes
    assert ist(day, 11, 30) in minutes
    assert cal.session_bounds(day) == (ist(day, 9, 15), ist(day, 12, 30))
    assert cal.session_phase(ist(day, 10, 15)) is SessionPhase.CLOSED
    assert cal.session_phase(ist(day, 11, 45)) is SessionPhase.NORMAL
    assert cal.session_phase(ist(day, 12, 45)) is SessionPhase.POST_CLOSE


def test_interrupted_day_from_the_exchange_package(cal: NseCalendar) -> None:
    day = D(2021, 2, 24)  # halted 11:40-15:45, then traded until 17:00
    # (11:40 - 09:15) + (17:00 - 15:45) = 145 + 75 = 220 bars.
    assert len(cal.trading_minutes(day)) == 220
    assert cal.session_phase(ist(day, 12, 0)) is SessionPhase.CLOSED
    assert cal.session_phase(ist(day, 16, 30)) is SessionPhase.NORMAL


# --- stepping -------------------------------------------------------------------


def test_next_and_previous_across_a_weekend(cal: NseCalendar) -> None:
    assert cal.next_trading_day(D(2026, 11, 20)) == D(2026, 11, 23)
    assert cal.previous_trading_day(D(2026, 11, 23)) == D(2026, 11, 20)
    assert cal.next_trading_day(D(2026, 11, 21)) == D(2026, 11, 23)


def test_next_and_previous_across_a_holiday(cal: NseCalendar) -> None:
    # Fri 23 Jan, weekend, Mon 26 Jan Republic Day -> Tue 27 Jan.
    assert cal.next_trading_day(D(2026, 1, 23)) == D(2026, 1, 27)
    assert cal.previous_trading_day(D(2026, 1, 27)) == D(2026, 1, 23)


def test_stepping_lands_on_a_weekend_session(cal: NseCalendar) -> None:
    assert cal.previous_trading_day(D(2026, 2, 2)) == D(2026, 2, 1)
    assert cal.next_trading_day(D(2026, 1, 30)) == D(2026, 2, 1)


# --- coverage -------------------------------------------------------------------


def test_coverage_comes_from_the_data(cal: NseCalendar) -> None:
    assert cal.covers(2026)
    assert cal.covers(2011)  # first full year of 09:15-15:30 hours
    assert not cal.covers(2010)  # hours changed on 2010-10-18
    assert not cal.covers(2027)


def test_uncovered_year_warns_loudly() -> None:
    cal = default_calendar()
    with pytest.warns(UncoveredYearWarning, match=r"2027.*\[\[holiday\]\]"):
        assert cal.is_trading_day(D(2027, 1, 4))  # still answers: a weekday
    with pytest.warns(UncoveredYearWarning, match="2027"):
        assert cal.holidays(2027) == []
    with pytest.warns(UncoveredYearWarning, match="2027"):
        cal.session_phase(ist(D(2027, 1, 4), 10, 0))
    with pytest.warns(UncoveredYearWarning, match="2027"):
        assert cal.next_trading_day(D(2026, 12, 31)) == D(2027, 1, 1)


def test_uncovered_year_becomes_covered_by_a_user_file() -> None:
    text = """
[coverage]
years = [2027]

[[holiday]]
date = 2027-01-26
note = "Republic Day"
"""
    cal = NseCalendar.from_overrides(user_toml_text=text)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncoveredYearWarning)
        assert cal.covers(2027)
        assert cal.holidays(2027) == [D(2027, 1, 26)]
        assert not cal.is_trading_day(D(2027, 1, 26))


# --- overrides ------------------------------------------------------------------

USER_OVERRIDES = """
[[holiday]]
date = 2026-11-20
note = "late-announced closure"
source = "test"

[[special_session]]
date = 2026-11-21
start = "10:00"
end = "11:00"
kind = "special"
note = "Saturday drill"
"""


def test_user_file_adds_a_holiday_and_a_special_session() -> None:
    base = default_calendar()
    cal = NseCalendar.from_overrides(user_toml_text=USER_OVERRIDES)
    assert not cal.is_trading_day(D(2026, 11, 20))
    assert D(2026, 11, 20) in cal.holidays(2026)
    assert cal.next_trading_day(D(2026, 11, 19)) == D(2026, 11, 21)
    sat = D(2026, 11, 21)
    assert cal.trading_minutes(sat)[0] == ist(sat, 10, 0)
    assert len(cal.trading_minutes(sat)) == 60
    assert cal.session_phase(ist(sat, 9, 50)) is SessionPhase.PRE_OPEN
    assert [s.note for s in cal.special_sessions(2026) if s.date == sat] == ["Saturday drill"]
    # The package-only calendar is untouched.
    assert base.is_trading_day(D(2026, 11, 20))
    assert not base.is_trading_day(sat)


def test_user_holiday_cancels_a_packaged_session_and_a_mapping_works_too() -> None:
    cal = NseCalendar.from_overrides(user_overrides={"holiday": [{"date": D(2026, 2, 1)}]})
    assert not cal.is_trading_day(D(2026, 2, 1))
    assert all(s.date != D(2026, 2, 1) for s in cal.special_sessions(2026))
    # A weekend date is not reported as a weekday holiday.
    assert D(2026, 2, 1) not in cal.holidays(2026)


def test_user_session_reopens_a_package_holiday() -> None:
    text = '[[special_session]]\ndate = 2026-01-26\nstart = 09:15:00\nend = "13:00"\n'
    cal = NseCalendar.from_overrides(user_toml_text=text)
    assert cal.is_trading_day(D(2026, 1, 26))
    assert D(2026, 1, 26) not in cal.holidays(2026)
    # 09:15 -> 13:00 = 3 h 45 min = 225 bars.
    assert len(cal.trading_minutes(D(2026, 1, 26))) == 225


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[[special_session]]\ndate = 2026-11-21\nstart = "10:00"\nend = "11:00"\n'
            'kind = "funky"\n',
            "'funky' is not one of muhurat, early_close, late_open, special",
        ),
        (
            '[[special_session]]\ndate = 2026-11-21\nstart = "11:00"\nend = "10:00"\n',
            "end 10:00 is not after start 11:00",
        ),
        (
            '[[special_session]]\ndate = 2026-11-21\nstart = "10:00:30"\nend = "11:00"\n',
            "'10:00:30' is not a whole-minute",
        ),
        ('[[holiday]]\ndate = "2026-13-01"\n', "'2026-13-01' is not a date"),
        ("[[holidays]]\ndate = 2026-11-20\n", "unknown section 'holidays'"),
        ("[[holiday]]\ndate = 2026-11-20\nreason = 'x'\n", "unknown field 'reason'"),
        ("[coverage]\nyears = ['2027']\n", "must be a list of years"),
        ("[[holiday]\n", "not valid TOML"),
        (
            "[[holiday]]\ndate = 2026-11-21\n[[special_session]]\ndate = 2026-11-21\n"
            'start = "10:00"\nend = "11:00"\n',
            "2026-11-21 is both a holiday and a special",
        ),
        (
            '[[special_session]]\ndate = 2026-11-21\nstart = "10:00"\nend = "11:00"\n'
            '[[special_session]]\ndate = 2026-11-21\nstart = "10:30"\nend = "11:30"\n',
            "overlap",
        ),
    ],
)
def test_bad_override_files_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(CalendarOverrideError, match=r"my\.toml") as err:
        NseCalendar.from_overrides(user_toml_text=text, origin="my.toml")
    assert fragment in str(err.value)


def test_packaged_overrides_all_have_sources() -> None:
    cal = default_calendar()
    muhurats = [
        s for y in range(2018, 2027) for s in cal.special_sessions(y) if s.kind == "muhurat"
    ]
    assert [s.date.year for s in muhurats] == [2018, 2019, 2020, 2021, 2022, 2023, 2024, 2025]
    assert all(s.source for s in muhurats)


def test_default_calendar_is_built_once() -> None:
    assert default_calendar() is default_calendar()


# --- layer logic without the exchange package --------------------------------------


def test_later_layer_wins_on_a_date() -> None:
    day = D(2030, 3, 4)  # a Monday
    holiday = CalendarOverrides(frozenset({day}), (), frozenset({2030}), "a")
    session = SpecialSession(day, dt.time(10, 0), dt.time(12, 0), SessionKind.LATE_OPEN)
    reopen = CalendarOverrides(frozenset(), (session,), frozenset(), "b")
    assert not NseCalendar.from_layers([reopen, holiday]).is_trading_day(day)
    assert NseCalendar.from_layers([holiday, reopen]).is_trading_day(day)


# --- properties -------------------------------------------------------------------

dates_2024_2026 = st.dates(min_value=D(2024, 1, 1), max_value=D(2026, 12, 30))


@settings(max_examples=300, deadline=None)
@given(day=dates_2024_2026)
def test_stepping_properties(day: dt.date) -> None:
    cal = default_calendar()
    before = cal.previous_trading_day(day)
    after = cal.next_trading_day(day)
    assert before < day < after
    assert cal.next_trading_day(before) >= day
    assert cal.is_trading_day(after)
    assert cal.is_trading_day(before)
    # Nothing trades strictly between a day and its neighbours except the day itself.
    gap = (after - before).days
    between = [before + dt.timedelta(days=i) for i in range(1, gap)]
    assert all(d == day or not cal.is_trading_day(d) for d in between)


@settings(max_examples=300, deadline=None)
@given(day=dates_2024_2026)
def test_weekend_trades_only_with_a_special_session(day: dt.date) -> None:
    cal = default_calendar()
    if day.weekday() >= 5 and cal.is_trading_day(day):
        assert any(s.date == day for s in cal.special_sessions(day.year))


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2026, 12, 30),
        timezones=st.just(dt.UTC),
    )
)
def test_normal_phase_is_exactly_the_bar_grid(instant: dt.datetime) -> None:
    cal = default_calendar()
    local = instant.astimezone(IST)
    bar_start = local.replace(second=0, microsecond=0)
    in_grid = bar_start in set(cal.trading_minutes(local.date()))
    assert (cal.session_phase(instant) is SessionPhase.NORMAL) == in_grid
