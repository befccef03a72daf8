"""Gap detection, actions, interpolation and ranking (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.calendar import IST, default_calendar
from market.gaps import (
    INTERPOLATE_BELOW_MINUTES,
    Gap,
    GapAction,
    InstrumentKind,
    bar_grid,
    classify_symbol,
    contract_expiry,
    day_runs,
    find_gaps,
    future_contract,
    gap_action,
    gap_score,
    interpolate_gap,
    last_completed_session,
    sessions_age,
    trading_days,
)

CAL = default_calendar()
MON, TUE, WED = date(2025, 11, 17), date(2025, 11, 18), date(2025, 11, 19)
FRI, NEXT_MON = date(2025, 11, 21), date(2025, 11, 24)
SPLIT_DAY = date(2024, 3, 2)  # DR drill: 09:15-10:00 and 11:30-12:30
MUHURAT = date(2025, 10, 21)  # 13:45-14:45 only


def ist(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def minutes_of(day: date) -> list[datetime]:
    return CAL.trading_minutes(day)


def test_grid_of_a_regular_day() -> None:
    # 09:15-15:30 is 375 minutes: 375 one-minute, 75 five-minute, 25 fifteen-minute bars, and
    # 7 hourly bars (09:15, 10:15, ..., 15:15) of which the last lasts 15 minutes.
    assert len(bar_grid(CAL, [MON], "1m")) == 375
    assert len(bar_grid(CAL, [MON], "5m")) == 75
    assert len(bar_grid(CAL, [MON], "15m")) == 25
    hourly = bar_grid(CAL, [MON], "1h")
    assert len(hourly) == 7
    assert int(hourly.end_us[-1] - hourly.start_us[-1]) == 15 * 60_000_000
    assert len(bar_grid(CAL, [MON, TUE], "1d")) == 2
    with pytest.raises(ValueError, match="interval '2m'"):
        bar_grid(CAL, [MON], "2m")


def test_grid_follows_special_sessions() -> None:
    assert len(bar_grid(CAL, [MUHURAT], "1m")) == 60
    # split day: 45 + 60 minutes; hourly bars 09:15-10:00 (45 min) and 11:30-12:30
    assert len(bar_grid(CAL, [SPLIT_DAY], "1m")) == 105
    hourly = bar_grid(CAL, [SPLIT_DAY], "1h")
    lengths = [
        int(e - s) // 60_000_000 for s, e in zip(hourly.start_us, hourly.end_us, strict=True)
    ]
    assert lengths == [45, 60]


def test_trading_days_skip_weekends_and_holidays() -> None:
    assert trading_days(CAL, FRI, NEXT_MON) == [FRI, NEXT_MON]
    # 2025-10-22 (Diwali Balipratipada) is a holiday; 2025-10-21 trades only the Muhurat hour
    assert trading_days(CAL, date(2025, 10, 21), date(2025, 10, 23)) == [
        date(2025, 10, 21),
        date(2025, 10, 23),
    ]


def test_intraday_gaps_are_runs_within_a_session() -> None:
    grid = bar_grid(CAL, [MON], "1m")
    removed = {ist(MON, 10, 0), ist(MON, 10, 1), ist(MON, 10, 2), ist(MON, 14, 0)}
    present = [m for m in minutes_of(MON) if m not in removed]
    gaps = find_gaps("NIFTY", grid, present)
    assert gaps == [
        Gap("NIFTY", "1m", MON, ist(MON, 10, 0), ist(MON, 10, 3), 3, 3),
        Gap("NIFTY", "1m", MON, ist(MON, 14, 0), ist(MON, 14, 1), 1, 1),
    ]
    assert gaps[0].start.tzinfo is UTC  # stored as UTC: 10:00 IST is 04:30 UTC
    assert gaps[0].start == datetime(2025, 11, 17, 4, 30, tzinfo=UTC)


def test_gaps_never_span_sessions_or_windows() -> None:
    grid = bar_grid(CAL, [MON, TUE], "1m")
    present = minutes_of(MON)[:-1] + minutes_of(TUE)[1:]  # drop 15:29 Mon and 09:15 Tue
    gaps = find_gaps("NIFTY", grid, present)
    assert [(g.session_date, g.bars) for g in gaps] == [(MON, 1), (TUE, 1)]
    split = bar_grid(CAL, [SPLIT_DAY], "1m")
    present = [m for m in minutes_of(SPLIT_DAY) if m not in (ist(SPLIT_DAY, 9, 59),)]
    present = [m for m in present if m != ist(SPLIT_DAY, 11, 30)]
    assert [g.bars for g in find_gaps("NIFTY", split, present)] == [1, 1]


def test_whole_missing_day_is_one_gap_of_375_minutes() -> None:
    grid = bar_grid(CAL, [MON, TUE, WED], "1m")
    present = minutes_of(MON) + minutes_of(WED)
    (gap,) = find_gaps("SBIN-EQ", grid, present)
    assert (gap.session_date, gap.bars, gap.minutes) == (TUE, 375, 375)
    assert (gap.start, gap.end) == (ist(TUE, 9, 15), ist(TUE, 15, 30))


def test_hourly_gap_at_the_close_counts_15_minutes() -> None:
    grid = bar_grid(CAL, [MON], "1h")
    present = [ist(MON, h, 15) for h in range(9, 15)]  # 15:15 missing
    (gap,) = find_gaps("NIFTY", grid, present)
    assert (gap.bars, gap.minutes, gap.end) == (1, 15, ist(MON, 15, 30))


def test_daily_gaps_span_consecutive_trading_days() -> None:
    days = trading_days(CAL, date(2025, 11, 17), date(2025, 11, 26))
    grid = bar_grid(CAL, days, "1d")
    # daily candles are stamped 00:00 IST; Fri 21 and Mon 24 missing are ONE run (weekend)
    present = [ist(d, 0, 0) for d in days if d not in (FRI, NEXT_MON)]
    (gap,) = find_gaps("NIFTY", grid, present)
    assert (gap.session_date, gap.bars, gap.minutes) == (FRI, 2, 750)
    assert (gap.start, gap.end) == (ist(FRI, 9, 15), ist(NEXT_MON, 15, 30))


def test_find_gaps_limits_to_the_symbols_days() -> None:
    grid = bar_grid(CAL, [MON, TUE, WED], "1m")
    # an option listed on Tuesday: Monday is not a gap, Tuesday 10:00 is
    present = [m for m in minutes_of(TUE) + minutes_of(WED) if m != ist(TUE, 10, 0)]
    gaps = find_gaps("NIFTY25NOV2525000CE", grid, present, first=TUE, last=WED)
    assert [(g.session_date, g.bars) for g in gaps] == [(TUE, 1)]
    assert grid.slot_range(TUE, WED) is not None
    assert grid.slot_range(date(2025, 11, 22), date(2025, 11, 23)) is None


def test_classify_symbol() -> None:
    assert classify_symbol("NIFTY25NOV2525000CE") is InstrumentKind.OPTION
    assert classify_symbol("BANKNIFTY30DEC2551500.5PE") is InstrumentKind.OPTION
    assert classify_symbol("NIFTYNXT5025NOV25FUT") is InstrumentKind.FUTURE
    assert classify_symbol("NIFTY", underlyings={"NIFTY"}) is InstrumentKind.UNDERLYING
    assert classify_symbol("SBIN-EQ") is InstrumentKind.UNDERLYING
    # unknown symbols are never taken for underlyings (they could be options)
    assert classify_symbol("NIFTY") is InstrumentKind.OTHER
    # the master's instrument type wins over the symbol's shape
    assert classify_symbol("Nifty 50", instrument_type="AMXIDX") is InstrumentKind.UNDERLYING
    assert classify_symbol("NIFTY", instrument_type="OPTIDX") is InstrumentKind.OPTION
    assert classify_symbol("X", instrument_type="FUTSTK") is InstrumentKind.FUTURE
    assert classify_symbol("X", instrument_type="XYZ") is InstrumentKind.OTHER


def test_contract_expiry() -> None:
    assert contract_expiry("NIFTY25NOV2525000CE") == date(2025, 11, 25)
    assert contract_expiry("M&M30DEC25FUT") == date(2025, 12, 30)
    assert contract_expiry("NIFTY") is None
    assert contract_expiry("NIFTY31FEB25FUT") is None
    assert future_contract("NIFTYNXT5025NOV25FUT") == ("NIFTYNXT50", date(2025, 11, 25))
    assert future_contract("NIFTY25NOV2525000CE") is None
    assert future_contract("NIFTY31FEB25FUT") is None


def one_minute_gap(minutes: int, interval: str = "1m") -> Gap:
    start = ist(MON, 10, 0)
    return Gap("S", interval, MON, start, start + timedelta(minutes=minutes), minutes, minutes)


@pytest.mark.parametrize(
    "kind", [InstrumentKind.OPTION, InstrumentKind.FUTURE, InstrumentKind.OTHER]
)
@pytest.mark.parametrize("minutes", [1, 2, 4])
def test_options_futures_and_unknowns_are_never_interpolated(
    kind: InstrumentKind, minutes: int
) -> None:
    # DESIGN safety invariant 7: option prices are never interpolated.
    gap = one_minute_gap(minutes)
    assert gap_action(gap, kind, bounded=True) is GapAction.REDOWNLOAD
    with pytest.raises(ValueError, match="may not be interpolated"):
        interpolate_gap(gap, kind, 10_000, 10_100)


def test_only_short_bounded_minute_gaps_of_underlyings_are_interpolated() -> None:
    under = InstrumentKind.UNDERLYING
    assert INTERPOLATE_BELOW_MINUTES == 5
    assert gap_action(one_minute_gap(4), under, bounded=True) is GapAction.INTERPOLATED
    assert gap_action(one_minute_gap(5), under, bounded=True) is GapAction.REDOWNLOAD
    assert gap_action(one_minute_gap(4), under, bounded=False) is GapAction.REDOWNLOAD
    assert gap_action(one_minute_gap(5, "5m"), under, bounded=True) is GapAction.REDOWNLOAD


def test_interpolation_golden() -> None:
    # 100.00 → 103.00 over 3 minutes: points 10000, 10100, 10200, 10300 paise.
    bars = interpolate_gap(one_minute_gap(3), InstrumentKind.UNDERLYING, 10_000, 10_300)
    assert [(b.open_paise, b.high_paise, b.low_paise, b.close_paise) for b in bars] == [
        (10_000, 10_100, 10_000, 10_100),
        (10_100, 10_200, 10_100, 10_200),
        (10_200, 10_300, 10_200, 10_300),
    ]
    assert [b.start for b in bars] == [ist(MON, 10, m) for m in range(3)]
    # 2 paise over 4 minutes: exact points 0, 0.5, 1, 1.5, 2 → rounded half up 0, 1, 1, 2, 2
    bars = interpolate_gap(one_minute_gap(4), InstrumentKind.UNDERLYING, 500, 502)
    assert [b.close_paise for b in bars] == [501, 501, 502, 502]
    # falling: 10.00 → 9.97 over 3: points 1000, 999, 998, 997
    bars = interpolate_gap(one_minute_gap(3), InstrumentKind.UNDERLYING, 1000, 997)
    assert [(b.high_paise, b.low_paise) for b in bars] == [(1000, 999), (999, 998), (998, 997)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 10**7), st.integers(1, 10**7))
def test_interpolated_bars_join_up(n: int, before: int, after: int) -> None:
    bars = interpolate_gap(one_minute_gap(n), InstrumentKind.UNDERLYING, before, after)
    assert len(bars) == n
    assert bars[0].open_paise == before and bars[-1].close_paise == after
    for a, b in itertools.pairwise(bars):
        assert b.open_paise == a.close_paise
    for bar in bars:
        assert bar.low_paise <= min(bar.open_paise, bar.close_paise)
        assert bar.high_paise >= max(bar.open_paise, bar.close_paise)
        assert min(before, after) <= bar.low_paise <= bar.high_paise <= max(before, after)


def test_gap_score_golden_and_order() -> None:
    # underlying, latest session, 1 minute: 300 + 50 * 0.5^0 + 7 * log2(2) = 357
    assert gap_score(InstrumentKind.UNDERLYING, 1, 0) == pytest.approx(357.0)
    # option, 10 sessions old, 15 minutes: 100 + 25 + 7 * log2(16) = 153
    assert gap_score(InstrumentKind.OPTION, 15, 10) == pytest.approx(153.0)
    # a whole session is capped at 49: 200 + 12.5 + 49
    assert gap_score(InstrumentKind.FUTURE, 375, 20) == pytest.approx(261.5)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 100_000), st.integers(0, 2_000), st.integers(0, 100_000), st.integers(0, 2_000)
)
def test_gap_score_ranks_kind_then_recency_and_length(
    minutes_a: int, age_a: int, minutes_b: int, age_b: int
) -> None:
    order = [
        InstrumentKind.UNDERLYING,
        InstrumentKind.FUTURE,
        InstrumentKind.OPTION,
        InstrumentKind.OTHER,
    ]
    for better, worse in itertools.pairwise(order):
        assert gap_score(better, minutes_a, age_a) > gap_score(worse, minutes_b, age_b)
    kind = InstrumentKind.OPTION
    if age_a < age_b:
        assert gap_score(kind, minutes_a, age_a) >= gap_score(kind, minutes_a, age_b)
        if age_b <= 300:  # beyond that the recency term is below float resolution at 100
            assert gap_score(kind, minutes_a, age_a) > gap_score(kind, minutes_a, age_b)
    if minutes_a < minutes_b:
        assert gap_score(kind, minutes_a, age_a) <= gap_score(kind, minutes_b, age_a)


def test_sessions_age() -> None:
    days = [MON, TUE, WED]
    assert [sessions_age(days, d) for d in days] == [2, 1, 0]
    assert sessions_age(days, date(2025, 11, 1)) == 2
    assert sessions_age([], MON) == 0


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 2 * 375 - 1), max_size=120))
def test_gaps_cover_exactly_the_missing_bars(removed: set[int]) -> None:
    grid = bar_grid(CAL, [MON, TUE], "1m")
    everything = minutes_of(MON) + minutes_of(TUE)
    present = [m for i, m in enumerate(everything) if i not in removed]
    gaps = find_gaps("NIFTY", grid, present)
    covered: list[datetime] = []
    for gap in gaps:
        assert gap.minutes == gap.bars == (gap.end - gap.start) // timedelta(minutes=1)
        assert gap.start.astimezone(IST).date() == gap.session_date
        covered.extend(gap.start + k * timedelta(minutes=1) for k in range(gap.bars))
    assert sorted(covered) == sorted(everything[i] for i in removed)
    starts = [g.start for g in gaps]
    assert starts == sorted(starts)
    # runs are maximal: two gaps never touch
    for a, b in itertools.pairwise(gaps):
        assert b.start > a.end or b.session_date != a.session_date


def test_last_completed_session() -> None:
    # Friday 15:29 IST: Friday is still open, so Thursday; at 15:30 Friday has closed.
    assert last_completed_session(CAL, ist(FRI, 15, 29)) == date(2025, 11, 20)
    assert last_completed_session(CAL, ist(FRI, 15, 30)) == FRI
    # over the weekend and on Monday morning: Friday
    assert last_completed_session(CAL, ist(date(2025, 11, 23), 12, 0)) == FRI
    assert last_completed_session(CAL, ist(NEXT_MON, 9, 0)) == FRI
    # the Muhurat hour closes at 14:45; the next day (2025-10-22) is a holiday
    assert last_completed_session(CAL, ist(date(2025, 10, 22), 12, 0)) == MUHURAT
    with pytest.raises(ValueError, match="aware"):
        last_completed_session(CAL, datetime(2025, 11, 21, 16, 0))


def test_day_runs() -> None:
    days = trading_days(CAL, MON, date(2025, 11, 25))  # Mon 17 .. Tue 25, weekend skipped
    keep = {MON, TUE, FRI, NEXT_MON, date(2025, 11, 25)}  # Wed and Thu missing
    assert day_runs(days, keep) == [(MON, TUE), (FRI, date(2025, 11, 25))]
    assert day_runs(days, set()) == []
    assert day_runs(days, set(days)) == [(MON, date(2025, 11, 25))]
