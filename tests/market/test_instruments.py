"""Instrument master: parsing, validation, option chains, strikes and expiries."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.instruments import (
    INDIA_VIX,
    AmbiguousInstrument,
    Instrument,
    InstrumentIndex,
    InstrumentNotFound,
    MasterFormatError,
    OptionChain,
    OptionType,
    Problem,
    atm_strike,
    days_to_expiry,
    effective_expiry,
    format_master_expiry,
    monthly_expiries,
    nearest_expiry,
    option_chains,
    parse_master,
    parse_master_expiry,
    parse_master_json,
    strike_step,
    strike_window,
    trading_days_to_expiry,
    validate_master,
)

SAMPLE = Path(__file__).parent / "data" / "scrip_master_sample.json"

DEC09 = date(2025, 12, 9)
DEC16 = date(2025, 12, 16)
DEC30 = date(2025, 12, 30)
JAN27 = date(2026, 1, 27)


@dataclass(frozen=True)
class FakeCalendar:
    """Weekends plus an explicit holiday set."""

    holidays: frozenset[date] = frozenset()

    def is_trading_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def previous_trading_day(self, d: date) -> date:
        d -= timedelta(days=1)
        while not self.is_trading_day(d):
            d -= timedelta(days=1)
        return d


@pytest.fixture(scope="module")
def sample() -> tuple[Instrument, ...]:
    result = parse_master_json(SAMPLE.read_bytes())
    assert result.problems == ()
    return result.instruments


@pytest.fixture(scope="module")
def index(sample: tuple[Instrument, ...]) -> InstrumentIndex:
    return InstrumentIndex(sample)


@pytest.fixture(scope="module")
def nifty_weekly(index: InstrumentIndex) -> OptionChain:
    return index.option_chains("NIFTY")[DEC09]


def row(**overrides: object) -> dict[str, object]:
    """A valid NIFTY option row; overrides make it bad."""
    base: dict[str, object] = {
        "token": "35001",
        "symbol": "NIFTY26DEC2424000CE",
        "name": "NIFTY",
        "expiry": "26DEC2024",
        "strike": "2400000.000000",
        "lotsize": "75",
        "instrumenttype": "OPTIDX",
        "exch_seg": "NFO",
        "tick_size": "5.000000",
    }
    base.update(overrides)
    return base


# --- parsing ---------------------------------------------------------------------------------


def test_sample_parses_every_row(sample: tuple[Instrument, ...]) -> None:
    rows = json.loads(SAMPLE.read_bytes())
    assert len(sample) == len(rows) == 61


def test_golden_option_row(index: InstrumentIndex) -> None:
    call = index.by_token("40003")
    # strike "2580000.000000" is rupees x 100 = paise: 25800 rupees; tick "5.000000" = 5 paise.
    assert call == Instrument(
        token="40003",
        symbol="NIFTY09DEC2525800CE",
        name="NIFTY",
        exchange="NFO",
        instrument_type="OPTIDX",
        expiry=DEC09,
        strike_paise=2_580_000,
        option_type=OptionType.CE,
        lot_size=75,
        tick_paise=5,
    )
    assert call.strike == Decimal("25800")
    assert call.tick == Decimal("0.05")
    assert call.is_option and call.is_derivative and not call.is_future and not call.is_index
    assert index.by_token("40004").option_type is OptionType.PE


def test_lot_size_comes_from_the_file(index: InstrumentIndex) -> None:
    # Same underlying, two lot sizes in one master: nothing is a constant.
    assert index.option("NIFTY", DEC30, 2_600_000, OptionType.CE).lot_size == 75
    assert index.option("NIFTY", JAN27, 2_600_000, OptionType.CE).lot_size == 65
    assert index.option("BANKNIFTY", DEC30, 5_910_000, OptionType.PE).lot_size == 35
    assert index.by_symbol("ITC30DEC25405CE").lot_size == 1600


def test_half_rupee_stock_strike_is_exact(index: InstrumentIndex) -> None:
    itc = index.by_symbol("ITC30DEC25402.5CE")
    # "40250.000000" paise = 402.50 rupees
    assert itc.strike_paise == 40_250
    assert itc.strike == Decimal("402.5")


def test_future_index_and_equity_rows(index: InstrumentIndex) -> None:
    fut = index.by_symbol("NIFTY30DEC25FUT")
    assert (fut.expiry, fut.strike_paise, fut.option_type, fut.tick_paise) == (
        DEC30,
        None,
        None,
        10,
    )
    assert fut.is_future and not fut.is_option
    assert index.by_symbol("BANKNIFTY30DEC25FUT").tick == Decimal("0.20")

    vix = index.by_token("99926017")
    assert (vix.symbol, vix.name, vix.exchange, vix.instrument_type) == (
        "India VIX",
        "INDIA VIX",
        "NSE",
        "AMXIDX",
    )
    assert vix.is_index and vix.expiry is None and vix.strike_paise is None
    assert (vix.lot_size, vix.tick_paise) == (1, 0)

    sbin = index.by_symbol("SBIN-EQ")
    assert (sbin.instrument_type, sbin.expiry, sbin.strike, sbin.lot_size) == ("", None, None, 1)


def test_currency_strikes_are_scaled_by_ten_million() -> None:
    usd = row(
        symbol="USDINR26DEC2483.25CE",
        name="USDINR",
        strike="832500000.000000",
        lotsize="1",
        instrumenttype="OPTCUR",
        exch_seg="CDS",
        tick_size="25.000000",
    )
    (inst,) = parse_master([usd]).instruments
    # 832500000 / 10^7 = 83.25 rupees = 8325 paise
    assert inst.strike_paise == 8_325


@pytest.mark.parametrize(
    ("bad", "field", "reason_part"),
    [
        (row(expiry="31FEB2026"), "expiry", "no such calendar date"),
        (row(expiry="2024-12-26"), "expiry", "DDMMMYYYY"),
        (row(expiry="26XYZ2024"), "expiry", "unknown month"),
        (row(expiry=""), "expiry", "needs an expiry"),
        (row(strike="abc"), "strike", "not a number"),
        (row(strike="NaN"), "strike", "finite"),
        (row(strike="2400012.500000"), "strike", "whole number of paise"),
        (row(strike="-1.000000"), "strike", "positive"),
        (row(lotsize="0"), "lotsize", "positive"),
        (row(lotsize="-75"), "lotsize", "whole number"),
        (row(lotsize="75.5"), "lotsize", "whole number"),
        (row(tick_size="-5.000000"), "tick_size", "positive"),
        (row(tick_size="0.000000"), "tick_size", "positive"),
        (row(tick_size="0.500000"), "tick_size", "whole number of paise"),
        (row(symbol="NIFTY26DEC2424000XX"), "symbol", "CE or PE"),
        (row(symbol=""), "symbol", "empty"),
        (row(token=""), "token", "empty"),
        (row(exch_seg=""), "exch_seg", "empty"),
        (row(name=""), "name", "underlying"),
        (row(lotsize=75), "lotsize", "not a string"),
        ({k: v for k, v in row().items() if k != "tick_size"}, "tick_size", "missing"),
    ],
)
def test_bad_row_is_reported_and_skipped(bad: object, field: str, reason_part: str) -> None:
    good_before = row(token="1", symbol="NIFTY26DEC2424000PE")
    good_after = row(token="2", symbol="NIFTY26DEC2424100CE", strike="2410000.000000")
    result = parse_master([good_before, bad, good_after])  # type: ignore[list-item]
    assert [i.token for i in result.instruments] == ["1", "2"]
    (problem,) = result.problems
    assert problem.row == 1
    assert problem.field == field
    assert reason_part in problem.reason
    assert "row 1" in str(problem)


def test_problem_names_token_and_bad_value() -> None:
    (problem,) = parse_master([row(token="777", expiry="30FEB2025")]).problems
    assert problem == Problem(0, "777", "expiry", "30FEB2025", "no such calendar date")


def test_non_object_row_is_a_problem() -> None:
    result = parse_master_json(b'[["not", "a", "record"], ' + json.dumps(row()).encode() + b"]")
    assert len(result.instruments) == 1
    assert result.problems[0].row == 0
    assert "not an object" in result.problems[0].reason


def test_lower_case_month_is_tolerated() -> None:
    (inst,) = parse_master([row(expiry="26Dec2024")]).instruments
    assert inst.expiry == date(2024, 12, 26)


@pytest.mark.parametrize("data", [b"{not json", b'{"token": "1"}', b'"text"'])
def test_unreadable_master_raises(data: bytes) -> None:
    with pytest.raises(MasterFormatError):
        parse_master_json(data)


def test_expiry_text_round_trip() -> None:
    assert parse_master_expiry("26DEC2024") == date(2024, 12, 26)
    assert format_master_expiry(date(2026, 1, 6)) == "06JAN2026"
    with pytest.raises(ValueError, match="31APR2025"):
        parse_master_expiry("31APR2025")


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_expiry_format_parse_round_trip(d: date) -> None:
    assert parse_master_expiry(format_master_expiry(d)) == d


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**10))
def test_strike_text_scales_to_paise_exactly(paise: int) -> None:
    (inst,) = parse_master([row(strike=f"{paise}.000000")]).instruments
    assert inst.strike_paise == paise
    assert inst.strike == Decimal(paise) / 100


# --- chains and strikes ----------------------------------------------------------------------


def test_chains_by_expiry(index: InstrumentIndex, nifty_weekly: OptionChain) -> None:
    assert list(index.option_chains("NIFTY")) == [DEC09, DEC16, DEC30, JAN27]
    assert nifty_weekly.strikes == tuple(
        r * 100 for r in (25700, 25800, 25850, 25900, 25950, 26000, 26050, 26100, 26200, 26400)
    )
    assert nifty_weekly.call(2_600_000).symbol == "NIFTY09DEC2526000CE"
    assert nifty_weekly.put(2_600_000).symbol == "NIFTY09DEC2526000PE"
    assert nifty_weekly.lot_size == 75
    assert len(list(nifty_weekly.instruments())) == 20
    with pytest.raises(InstrumentNotFound, match="26025"):
        nifty_weekly.call(2_602_500)


def test_option_chains_free_function_matches_index(
    sample: tuple[Instrument, ...], index: InstrumentIndex
) -> None:
    assert option_chains(sample, "BANKNIFTY") == index.option_chains("BANKNIFTY")
    assert option_chains(sample, "NOSUCH") == {}


def test_chain_on_two_exchanges_needs_an_exchange(sample: tuple[Instrument, ...]) -> None:
    twin = replace(sample[-1], exchange="BFO", token="9")
    with pytest.raises(AmbiguousInstrument, match="BFO, NFO"):
        option_chains([*sample, twin], "ITC")
    assert len(option_chains([*sample, twin], "ITC", exchange="BFO")[DEC30].strikes) == 1


def test_strike_step_is_the_commonest_gap(nifty_weekly: OptionChain) -> None:
    # gaps: 100, 50 x6, 100, 200 -> mode 50 rupees, despite the wider far strikes
    assert strike_step(nifty_weekly) == 5_000
    # gaps 100 and 200 once each: tie goes to the smaller
    assert strike_step([100, 200, 400]) == 100
    # gaps 250 x3 (ITC 400, 402.5, 405, 407.5)
    assert strike_step([40_000, 40_250, 40_500, 40_750]) == 250
    with pytest.raises(ValueError, match="two"):
        strike_step([100])


def test_atm_strike(nifty_weekly: OptionChain) -> None:
    assert atm_strike(nifty_weekly, 2_600_000) == 2_600_000  # exactly on a strike
    assert atm_strike(nifty_weekly, 2_592_500) == 2_590_000  # halfway 25900/25950 -> lower
    assert atm_strike(nifty_weekly, 2_592_501) == 2_595_000  # a paisa above halfway -> upper
    assert atm_strike(nifty_weekly, 2_630_000) == 2_620_000  # halfway 26200/26400 -> lower
    assert atm_strike(nifty_weekly, 2_500_000) == 2_570_000  # below the chain -> lowest
    assert atm_strike(nifty_weekly, 2_800_000) == 2_640_000  # above the chain -> highest
    with pytest.raises(ValueError):
        atm_strike([], 100)
    with pytest.raises(ValueError, match="sorted"):
        atm_strike([300, 200], 250)


def test_strike_window(nifty_weekly: OptionChain) -> None:
    r = 100
    assert strike_window(nifty_weekly, 2_600_000, 2) == [
        25900 * r,
        25950 * r,
        26000 * r,
        26050 * r,
        26100 * r,
    ]
    assert strike_window(nifty_weekly, 2_600_000, 0) == [26000 * r]
    # ATM is the lowest strike: the window slides up instead of shrinking
    assert strike_window(nifty_weekly, 2_000_000, 2) == [
        25700 * r,
        25800 * r,
        25850 * r,
        25900 * r,
        25950 * r,
    ]
    # ATM is the highest strike: the window slides down
    assert strike_window(nifty_weekly, 3_000_000, 1) == [26100 * r, 26200 * r, 26400 * r]
    assert strike_window(nifty_weekly, 2_600_000, 50) == list(nifty_weekly.strikes)
    with pytest.raises(ValueError, match="-1"):
        strike_window(nifty_weekly, 2_600_000, -1)


strike_lists = st.lists(
    st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=40, unique=True
).map(sorted)
prices = st.integers(min_value=-1_000_000, max_value=6_000_000)


@settings(max_examples=300, deadline=None)
@given(strike_lists, prices)
def test_atm_is_a_listed_strike_and_none_is_nearer(strikes: list[int], price: int) -> None:
    atm = atm_strike(strikes, price)
    assert atm in strikes
    distance = abs(atm - price)
    assert all(abs(s - price) >= distance for s in strikes)
    # ties resolve to the lower strike
    assert all(s >= atm for s in strikes if abs(s - price) == distance)


@settings(max_examples=300, deadline=None)
@given(strike_lists, prices, st.integers(min_value=0, max_value=25))
def test_window_has_full_width_and_contains_atm(strikes: list[int], price: int, n: int) -> None:
    window = strike_window(strikes, price, n)
    assert len(window) == min(2 * n + 1, len(strikes))
    assert atm_strike(strikes, price) in window
    start = strikes.index(window[0])
    assert window == strikes[start : start + len(window)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5_000_000), min_size=2, max_size=40, unique=True).map(sorted))
def test_strike_step_is_a_most_frequent_gap(strikes: list[int]) -> None:
    gaps = [b - a for a, b in pairwise(strikes)]
    step = strike_step(strikes)
    top = max(gaps.count(g) for g in gaps)
    assert gaps.count(step) == top
    assert step == min(g for g in gaps if gaps.count(g) == top)


# --- expiries --------------------------------------------------------------------------------


def test_weekly_and_monthly_expiry(index: InstrumentIndex) -> None:
    # NIFTY expiries: 09 DEC, 16 DEC, 30 DEC (last in December), 27 JAN (last in January)
    assert nearest_expiry(index, "NIFTY", date(2025, 12, 10), "weekly") == DEC16
    assert nearest_expiry(index, "NIFTY", date(2025, 12, 10), "monthly") == DEC30
    assert nearest_expiry(index, "NIFTY", DEC09, "weekly") == DEC09  # expiry day itself counts
    assert nearest_expiry(index, "NIFTY", DEC09, "monthly") == DEC30
    assert nearest_expiry(index, "NIFTY", date(2025, 12, 31), "weekly") == JAN27
    assert nearest_expiry(index, "NIFTY", date(2025, 12, 31), "monthly") == JAN27
    assert nearest_expiry(index, "BANKNIFTY", DEC09, "weekly") == DEC30
    with pytest.raises(InstrumentNotFound, match="2026-01-28"):
        nearest_expiry(index, "NIFTY", date(2026, 1, 28), "weekly")
    with pytest.raises(ValueError, match="fortnightly"):
        nearest_expiry(index, "NIFTY", DEC09, "fortnightly")  # type: ignore[arg-type]


def test_nearest_expiry_accepts_instruments_or_chains(
    sample: tuple[Instrument, ...], index: InstrumentIndex
) -> None:
    today = date(2025, 12, 10)
    chains = index.option_chains("NIFTY")
    for source in (sample, chains):
        assert nearest_expiry(source, "NIFTY", today, "weekly") == DEC16
        assert nearest_expiry(source, "NIFTY", today, "monthly") == DEC30


def test_monthly_expiries_pick_the_last_of_each_month() -> None:
    listed = [DEC16, DEC09, JAN27, DEC30, date(2026, 1, 6)]
    assert monthly_expiries(listed) == [DEC30, JAN27]


def test_holiday_expiry_moves_to_previous_trading_day() -> None:
    calendar = FakeCalendar(frozenset({DEC30, date(2025, 12, 29)}))
    # Tue 30 and Mon 29 are holidays; Sat 27 and Sun 28 are weekend -> Fri 26 Dec
    assert effective_expiry(DEC30, calendar) == date(2025, 12, 26)
    assert effective_expiry(DEC16, calendar) == DEC16


def test_days_to_expiry_calendar_and_trading() -> None:
    calendar = FakeCalendar(frozenset({date(2025, 12, 25), DEC30}))
    today = date(2025, 12, 24)  # Wednesday
    # expiry Tue 30 Dec is a holiday -> Mon 29 Dec; 29 - 24 = 5 calendar days
    assert days_to_expiry(DEC30, today, calendar) == 5
    # trading days in (24, 29]: 25 holiday, 26 Fri yes, 27/28 weekend, 29 Mon yes -> 2
    assert trading_days_to_expiry(DEC30, today, calendar) == 2
    assert days_to_expiry(DEC16, DEC16, calendar) == 0
    assert trading_days_to_expiry(DEC16, DEC16, calendar) == 0
    # after expiry: 16 Dec -> 18 Dec is two calendar days and two trading days (17, 18) late
    assert days_to_expiry(DEC16, date(2025, 12, 18), calendar) == -2
    assert trading_days_to_expiry(DEC16, date(2025, 12, 18), calendar) == -2


# --- validation ------------------------------------------------------------------------------


def test_sample_master_is_valid(sample: tuple[Instrument, ...]) -> None:
    # includes the irregular far strikes of the 09 DEC chain and ITC's 2.50 rupee strikes
    assert validate_master(sample, FakeCalendar()) == []


def test_off_grid_strike_is_caught(
    sample: tuple[Instrument, ...], nifty_weekly: OptionChain
) -> None:
    stray = replace(
        nifty_weekly.call(2_590_000),
        token="49999",
        symbol="NIFTY09DEC2525930CE",
        strike_paise=2_593_000,
    )
    (problem,) = validate_master([*sample, stray], FakeCalendar())
    assert (problem.token, problem.field) == ("49999", "strike")
    assert "grid" in problem.reason and "NIFTY 09DEC2025" in problem.reason


def test_fine_near_strikes_outnumbered_by_wide_ones_are_on_grid() -> None:
    # 100-rupee strikes 25000..26000 plus 25450 and 25550: gaps 100 x8, 50 x4
    rupees = sorted([*range(25_000, 26_001, 100), 25_450, 25_550])
    chain = [
        Instrument(
            str(i), f"X{r}CE", "NIFTY", "NFO", "OPTIDX", DEC30, r * 100, OptionType.CE, 65, 5
        )
        for i, r in enumerate(rupees)
    ]
    assert strike_step([r * 100 for r in rupees]) == 10_000
    assert validate_master(chain, FakeCalendar()) == []


def test_duplicate_token_zero_lot_and_bad_tick_are_caught(
    sample: tuple[Instrument, ...], index: InstrumentIndex
) -> None:
    fut = index.by_symbol("NIFTY27JAN26FUT")
    dup = replace(fut, symbol="NIFTY24FEB26FUT", expiry=date(2026, 2, 24))
    zero_lot = replace(fut, token="50001", symbol="NIFTY31MAR26FUT", expiry=date(2026, 3, 31))
    zero_lot = replace(zero_lot, lot_size=0)
    no_tick = replace(index.by_symbol("SBIN-EQ"), token="3046", symbol="SBIN-BE", tick_paise=0)
    problems = validate_master([*sample, dup, zero_lot, no_tick], FakeCalendar())
    found = {(p.token, p.field) for p in problems}
    assert found == {("52002", "token"), ("50001", "lotsize"), ("3046", "tick_size")}
    assert any("duplicate token on NFO" in p.reason for p in problems)


def test_same_token_on_another_exchange_is_not_a_duplicate(
    sample: tuple[Instrument, ...], index: InstrumentIndex
) -> None:
    bse = replace(index.by_symbol("SBIN-EQ"), exchange="BSE", symbol="SBIN")
    assert validate_master([*sample, bse], FakeCalendar()) == []


def test_holiday_expiry_reported_once_per_underlying(sample: tuple[Instrument, ...]) -> None:
    calendar = FakeCalendar(frozenset({DEC30}))
    problems = validate_master(sample, calendar)
    # 30 DEC: NIFTY (future + 6 options), BANKNIFTY (future + 6), ITC (8 options)
    assert sorted((p.field, p.value, p.reason.split()[0]) for p in problems) == [
        ("expiry", "30DEC2025", "BANKNIFTY"),
        ("expiry", "30DEC2025", "ITC"),
        ("expiry", "30DEC2025", "NIFTY"),
    ]
    assert any("(7 contracts)" in p.reason for p in problems)


def test_duplicate_contract_and_mixed_lots_are_caught(
    sample: tuple[Instrument, ...], index: InstrumentIndex
) -> None:
    twin = replace(index.by_symbol("NIFTY16DEC2526000CE"), token="48888")
    odd_lot = replace(
        index.by_symbol("NIFTY16DEC2526100CE"),
        token="47777",
        symbol="NIFTY16DEC2526200CE",
        strike_paise=2_620_000,
        lot_size=65,
    )
    problems = validate_master([*sample, twin, odd_lot], FakeCalendar())
    assert {(p.token, p.field) for p in problems} == {("48888", "symbol"), ("47777", "lotsize")}


# --- lookups ---------------------------------------------------------------------------------


def test_index_instruments(index: InstrumentIndex) -> None:
    assert index.index_instrument("NIFTY").symbol == "Nifty 50"
    assert index.index_instrument("BANKNIFTY").token == "99926009"
    assert index.index_instrument(INDIA_VIX).token == "99926017"
    assert index.index_instrument("India VIX").token == "99926017"  # by display symbol
    assert index.index_instrument("SENSEX").exchange == "BSE"
    with pytest.raises(InstrumentNotFound, match="FINNIFTY"):
        index.index_instrument("FINNIFTY")


def test_index_found_by_name_when_token_is_unknown() -> None:
    other = Instrument("123", "Nifty IT", "NIFTY IT", "NSE", "AMXIDX", None, None, None, 1, 0)
    assert InstrumentIndex([other]).index_instrument("nifty it") is other


def test_futures_sorted_by_expiry(sample: tuple[Instrument, ...]) -> None:
    # reversed master order must not matter
    idx = InstrumentIndex(reversed(sample))
    assert [f.symbol for f in idx.futures("NIFTY")] == ["NIFTY30DEC25FUT", "NIFTY27JAN26FUT"]
    assert idx.futures("SBIN") == []


def test_lookups(index: InstrumentIndex) -> None:
    assert len(index) == 61
    assert index.contract("NIFTY", JAN27).symbol == "NIFTY27JAN26FUT"
    assert index.option("NIFTY", DEC16, 2_590_000, OptionType.PE).token == "40022"
    assert index.expiries("NIFTY") == [DEC09, DEC16, DEC30, JAN27]
    assert index.underlyings() == ["BANKNIFTY", "ITC", "NIFTY"]
    assert len(index.options("ITC")) == 8
    with pytest.raises(InstrumentNotFound):
        index.by_token("1")
    with pytest.raises(InstrumentNotFound, match="on BSE"):
        index.by_symbol("SBIN-EQ", exchange="BSE")


def test_token_on_two_exchanges_needs_an_exchange(index: InstrumentIndex) -> None:
    nse = index.by_symbol("SBIN-EQ")
    bse = replace(nse, exchange="BSE", symbol="SBIN")
    idx = InstrumentIndex([nse, bse])
    with pytest.raises(AmbiguousInstrument, match="BSE:SBIN"):
        idx.by_token("3045")
    assert idx.by_token("3045", exchange="BSE") is bse
