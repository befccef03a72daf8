"""Session grid, candle checks and missing-range arithmetic (market.candles)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.calendar import default_calendar
from market.candles import (
    DAILY,
    IST,
    DayRange,
    bar_starts,
    check_candles,
    expected_bars,
    last_complete_session,
    missing_days,
    missing_days_since_listing,
    missing_traded_days,
    months_back,
    present_days,
    request_ranges,
    trading_days,
    years_back,
)

CAL = default_calendar()
THURSDAY = date(2026, 11, 19)
REPUBLIC_DAY = date(2026, 1, 26)  # an NSE holiday (a Monday)
MUHURAT_2025 = date(2025, 10, 21)  # special session 13:45-14:45


@dataclass(frozen=True)
class Bar:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 0


def ist(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=IST)


def bar(start: datetime, o: str = "100", h: str = "101", lo: str = "99", c: str = "100.5") -> Bar:
    return Bar(start, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), 10)


# --------------------------------------------------------------------------- grid


def test_regular_day_grid() -> None:
    # 09:15-15:30 is 375 minutes: 375 one-minute bars, 375/15 = 25 fifteen-minute bars, and
    # ceil(375/60) = 7 hourly bars starting 09:15 ... 15:15 (the last one 15 minutes long).
    assert expected_bars(THURSDAY, "1m", CAL) == 375
    assert expected_bars(THURSDAY, "15m", CAL) == 25
    hours = bar_starts(THURSDAY, "1h", CAL)
    assert [s.strftime("%H:%M") for s in hours] == [
        "09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"
    ]  # fmt: skip
    minutes = bar_starts(THURSDAY, "1m", CAL)
    assert minutes[0] == ist(THURSDAY, 9, 15) and minutes[-1] == ist(THURSDAY, 15, 29)


def test_daily_grid_is_midnight_of_trading_days_only() -> None:
    assert bar_starts(THURSDAY, DAILY, CAL) == [ist(THURSDAY, 0, 0)]
    assert bar_starts(REPUBLIC_DAY, DAILY, CAL) == []
    assert bar_starts(date(2026, 11, 21), "1m", CAL) == []  # a Saturday


def test_special_session_grid_starts_at_its_own_open() -> None:
    # Muhurat 2025: one hour from 13:45, so 60 one-minute bars and one hourly bar at 13:45.
    assert expected_bars(MUHURAT_2025, "1m", CAL) == 60
    assert bar_starts(MUHURAT_2025, "1h", CAL) == [ist(MUHURAT_2025, 13, 45)]


def test_unknown_interval_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: 1m"):
        bar_starts(THURSDAY, "2h", CAL)


# --------------------------------------------------------------------------- candle checks


def test_check_candles_keeps_sound_bars_and_reports_each_bad_one() -> None:
    rows = [
        bar(ist(THURSDAY, 9, 15)),  # fine
        bar(ist(THURSDAY, 9, 16), h="99.5"),  # high below the open (100)
        bar(ist(THURSDAY, 9, 17), lo="100.6"),  # low above the close (100.5)
        bar(ist(THURSDAY, 9, 18), o="0"),  # non-positive price
        bar(ist(THURSDAY, 9, 18) + timedelta(seconds=30)),  # off the minute grid
        bar(ist(THURSDAY, 15, 30)),  # after the close
        bar(ist(REPUBLIC_DAY, 10, 0)),  # a holiday
        bar(ist(THURSDAY, 9, 15)),  # duplicate start
        replace(bar(ist(THURSDAY, 9, 19)), volume=-1),
    ]
    result = check_candles(rows, "1m", CAL)
    assert result.good == (rows[0],)
    reasons = {p.index: p.reason for p in result.problems}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "high 99.5" in reasons[1]
    assert "low 100.6" in reasons[2]
    assert "positive" in reasons[3]
    assert "off the 1m session grid" in reasons[4]
    assert "15:30 IST is off" in reasons[5]
    assert "not an NSE trading day" in reasons[6]
    assert "same start" in reasons[7]
    assert "negative" in reasons[8]


def test_check_candles_accepts_the_hourly_grid_and_daily_midnights() -> None:
    hourly = [bar(s) for s in bar_starts(THURSDAY, "1h", CAL)]
    assert check_candles(hourly, "1h", CAL).good == tuple(hourly)
    late = bar(ist(THURSDAY, 9, 30))
    assert check_candles([late], "1h", CAL).problems[0].index == 0
    daily = bar(ist(THURSDAY, 0, 0))
    # the same instant expressed in UTC is the same candle
    assert check_candles([daily, bar(ist(THURSDAY - timedelta(days=1), 0, 0))], DAILY, CAL).good


prices = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999"), places=2)


@settings(max_examples=200, deadline=None)
@given(
    o=prices,
    c=prices,
    up=st.decimals(min_value=0, max_value=100, places=2),
    down=st.decimals(min_value=0, max_value=100, places=2),
    minute=st.integers(0, 374),
)
def test_any_consistent_bar_on_the_grid_is_kept(
    o: Decimal, c: Decimal, up: Decimal, down: Decimal, minute: int
) -> None:
    low = max(Decimal("0.01"), min(o, c) - down)
    start = ist(THURSDAY, 9, 15) + timedelta(minutes=minute)
    candle = Bar(start, o, max(o, c) + up, low, c, 5)
    assert check_candles([candle], "1m", CAL).good == (candle,)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 400),
            prices,
            prices,
            prices,
            prices,
        ),
        max_size=30,
    )
)
def test_every_candle_is_either_kept_sound_or_reported(
    raw: list[tuple[int, Decimal, Decimal, Decimal, Decimal]],
) -> None:
    rows = [
        Bar(ist(THURSDAY, 9, 15) + timedelta(minutes=m), o, h, lo, c, 1) for m, o, h, lo, c in raw
    ]
    result = check_candles(rows, "1m", CAL)
    assert len(result.good) + len(result.problems) == len(rows)
    grid = set(bar_starts(THURSDAY, "1m", CAL))
    for kept in result.good:
        assert kept.high >= max(kept.open, kept.close)
        assert kept.low <= min(kept.open, kept.close)
        assert kept.start in grid
    assert len({kept.start for kept in result.good}) == len(result.good)


# --------------------------------------------------------------------------- days and ranges


def test_missing_days_skip_weekends_holidays_and_present_days() -> None:
    # 2026-01-23 (Fri) .. 2026-01-28 (Wed): trading days 23, 27, 28 (24-25 weekend, 26 holiday).
    assert trading_days(date(2026, 1, 23), date(2026, 1, 28), CAL) == [
        date(2026, 1, 23),
        date(2026, 1, 27),
        date(2026, 1, 28),
    ]
    present = present_days([ist(date(2026, 1, 27), 9, 15), ist(date(2026, 1, 27), 15, 29)])
    assert missing_days(date(2026, 1, 23), date(2026, 1, 28), present, CAL) == [
        date(2026, 1, 23),
        date(2026, 1, 28),
    ]


def test_request_ranges_bridge_weekends_but_never_a_present_day() -> None:
    days = [date(2026, 1, 23), date(2026, 1, 27), date(2026, 1, 29), date(2026, 1, 30)]
    # 23 -> 27 follow each other in the trading calendar (weekend + holiday between);
    # 28 is present (not listed), so 29 starts a new range.
    assert request_ranges(days, CAL, 30) == [
        DayRange(date(2026, 1, 23), date(2026, 1, 27)),
        DayRange(date(2026, 1, 29), date(2026, 1, 30)),
    ]


def test_request_ranges_respect_the_calendar_day_cap() -> None:
    # Oct 2026 to 19 Nov, 1m cap 30 calendar days: 1..30 Oct, then 2..19 Nov (31 Oct is a
    # Saturday; the first range may not reach 31 days).
    days = missing_days(date(2026, 10, 1), THURSDAY, [], CAL)
    ranges = request_ranges(days, CAL, 30)
    assert ranges == [
        DayRange(date(2026, 10, 1), date(2026, 10, 30)),
        DayRange(date(2026, 11, 2), THURSDAY),
    ]
    assert ranges[0].start() == ist(date(2026, 10, 1), 0, 0)
    assert ranges[0].end() == ist(date(2026, 10, 30), 23, 59)


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 8, 1)),
    length=st.integers(0, 120),
    present_mask=st.lists(st.booleans(), min_size=0, max_size=120),
    cap=st.integers(1, 60),
)
def test_request_ranges_fetch_exactly_the_missing_days(
    start: date, length: int, present_mask: list[bool], cap: int
) -> None:
    end = start + timedelta(days=length)
    all_days = trading_days(start, end, CAL)
    present = {d for d, flag in zip(all_days, present_mask, strict=False) if flag}
    missing = missing_days(start, end, present, CAL)
    ranges = request_ranges(missing, CAL, cap)
    fetched = [d for r in ranges for d in r.days(CAL)]
    assert fetched == missing  # every missing day once, no present day, in order
    assert all(r.calendar_days <= cap for r in ranges)
    for before, after in pairwise(ranges):
        # adjacent ranges could not have been one: a present day between, or the cap
        between = CAL.next_trading_day(before.last)
        assert between in present or (after.last - before.first).days + 1 > cap


def test_last_complete_session() -> None:
    friday = date(2026, 11, 20)
    assert last_complete_session(ist(friday, 15, 44), CAL) == THURSDAY
    assert last_complete_session(ist(friday, 15, 45), CAL) == friday
    assert last_complete_session(ist(date(2026, 11, 22), 12, 0), CAL) == friday  # Sunday
    with pytest.raises(ValueError, match="no time zone"):
        last_complete_session(datetime(2026, 11, 20, 16, 0), CAL)


def test_look_back_arithmetic() -> None:
    assert months_back(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert months_back(date(2026, 1, 15), 1) == date(2025, 12, 15)
    assert years_back(date(2028, 2, 29), 2) == date(2026, 2, 28)


@settings(max_examples=200, deadline=None)
@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), n=st.integers(0, 60))
def test_months_back_moves_exactly_n_months(day: date, n: int) -> None:
    earlier = months_back(day, n)
    assert (day.year * 12 + day.month) - (earlier.year * 12 + earlier.month) == n
    assert earlier.day <= day.day and earlier <= day


def test_a_contracts_daily_series_starts_at_its_first_traded_session() -> None:
    first, last = date(2026, 11, 2), THURSDAY
    # nothing stored yet: every session is wanted (the contract's start is unknown)
    assert missing_days_since_listing(first, last, [], CAL) == trading_days(first, last, CAL)
    # listed on 12 Nov: the sessions before are not gaps, the 17th is
    stored = [d for d in trading_days(date(2026, 11, 12), last, CAL) if d != date(2026, 11, 17)]
    assert missing_days_since_listing(first, last, stored, CAL) == [date(2026, 11, 17)]


def test_intraday_days_of_a_contract_are_its_traded_days_only() -> None:
    traded = [date(2026, 11, 12), date(2026, 11, 13), date(2026, 11, 16), date(2026, 11, 30)]
    present = [date(2026, 11, 13)]
    assert missing_traded_days(date(2026, 11, 1), THURSDAY, traded, present) == [
        date(2026, 11, 12),
        date(2026, 11, 16),
    ]
