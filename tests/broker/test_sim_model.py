"""The simulator's market model: determinism, exact aggregation, the master, scenarios, the feed."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.sim.bars import INTERVAL_MINUTES
from broker.sim.cache import ByteBoundedLru
from broker.sim.clock import IST, ManualClock, SimClock, default_session_date
from broker.sim.master import assign_tokens
from broker.sim.model import MarketModel, SimInstrument
from broker.sim.options import bs_prices, erf, to_grid
from broker.sim.paths import DOWN, RANGE, UP, regime_of, seed_phase
from broker.sim.universe import UNIVERSE, VIX_TOKEN, tradable, underlying_by_name
from market.calendar import default_calendar
from market.instruments import parse_master, validate_master
from market.pricing import bs_price

# The far-month contracts expire in 2027, a year the packaged holiday data does not cover yet.
pytestmark = pytest.mark.filterwarnings("ignore::market.calendar.UncoveredYearWarning")

SESSION = date(2026, 11, 20)  # a Friday; NIFTY's 24 Nov expiry moves to Monday 23 Nov (holiday)
SEED = 11
NIFTY, BANKNIFTY, SBIN = "99926000", "99926009", "3045"


def ist(d: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm, ss), tzinfo=IST)


@pytest.fixture(scope="module")
def model() -> MarketModel:
    return MarketModel(seed=SEED, session_date=SESSION)


def contracts(
    model: MarketModel, name: str, kind: str, expiry: date | None = None
) -> list[SimInstrument]:
    return [
        i
        for i in model.instruments()
        if i.name == name and i.kind == kind and (expiry is None or i.expiry == expiry)
    ]


def atm_option(model: MarketModel, name: str, side: str = "CE") -> SimInstrument:
    options = [o for o in contracts(model, name, "option") if o.option_type == side]
    expiry = min(o.expiry for o in options if o.expiry)
    spot = int(model.ticks(underlying_by_name(name).token, SESSION).ltp_paise[0])
    near = [o for o in options if o.expiry == expiry]
    return min(near, key=lambda o: abs((o.strike_paise or 0) - spot))


# --- universe and master ------------------------------------------------------------------


def test_universe_facts() -> None:
    by_name = {u.name: u for u in UNIVERSE}
    assert by_name["NIFTY"].token == "99926000" and by_name["NIFTY"].lot_size == 65
    assert by_name["NIFTY"].strike_step_paise == 5_000 and by_name["NIFTY"].weekly_options
    assert by_name["BANKNIFTY"].lot_size == 30 and not by_name["BANKNIFTY"].weekly_options
    assert by_name["FINNIFTY"].token == "99926037" and by_name["FINNIFTY"].lot_size == 60
    assert by_name["INDIA VIX"].token == VIX_TOKEN and by_name["INDIA VIX"].symbol == "India VIX"
    assert by_name["SBIN"].token == "3045" and by_name["SBIN"].symbol == "SBIN-EQ"
    assert len({u.token for u in UNIVERSE}) == len(UNIVERSE)


def test_master_parses_cleanly_and_validates(model: MarketModel) -> None:
    parsed = parse_master(model.master_records())
    assert parsed.problems == ()
    assert len(parsed.instruments) == len(model.instruments())
    assert validate_master(parsed.instruments, default_calendar()) == []
    records = {r["token"]: r for r in model.master_records()}
    assert records["99926017"] == {
        "token": "99926017",
        "symbol": "India VIX",
        "name": "INDIA VIX",
        "expiry": "",
        "strike": "0.000000",
        "lotsize": "1",
        "instrumenttype": "AMXIDX",
        "exch_seg": "NSE",
        "tick_size": "0.000000",
    }
    assert records[SBIN]["tick_size"] == "5.000000" and records[SBIN]["instrumenttype"] == ""


def test_master_lots_steps_and_ticks_come_from_the_universe(model: MarketModel) -> None:
    parsed = parse_master(model.master_records()).instruments
    for inst in parsed:
        if inst.expiry is None:
            continue
        u = underlying_by_name(inst.name)
        assert inst.lot_size == u.lot_size
        if inst.is_option:
            assert inst.tick_paise == u.option_tick_paise
            assert inst.strike_paise is not None and inst.strike_paise % u.strike_step_paise == 0
        else:
            assert inst.tick_paise == u.future_tick_paise
    nifty_futures = [i for i in parsed if i.name == "NIFTY" and i.is_future]
    assert {i.tick_paise for i in nifty_futures} == {10}


def test_listing_expiries(model: MarketModel) -> None:
    cal = default_calendar()
    nifty_expiries = sorted({o.expiry for o in contracts(model, "NIFTY", "option") if o.expiry})
    # 24 Nov 2026 (Guru Nanak Jayanti) is a holiday: that Tuesday's expiry moves to Monday 23rd.
    # Then the next weekly (1 Dec) and the next monthly (29 Dec, December's last Tuesday).
    assert nifty_expiries == [date(2026, 11, 23), date(2026, 12, 1), date(2026, 12, 29)]
    bank = sorted({o.expiry for o in contracts(model, "BANKNIFTY", "option") if o.expiry})
    assert bank == [date(2026, 11, 23), date(2026, 12, 29)]
    futures = sorted(f.expiry for f in contracts(model, "NIFTY", "future") if f.expiry)
    assert futures == [date(2026, 11, 23), date(2026, 12, 29), date(2027, 1, 26)]
    for inst in model.instruments():
        if inst.expiry is not None:
            assert inst.expiry >= SESSION  # nothing expired is listed
            assert cal.is_trading_day(inst.expiry)
            nominal = inst.expiry + timedelta(days=(1 - inst.expiry.weekday()) % 7)
            assert inst.expiry.weekday() == 1 or not cal.is_trading_day(nominal)


def test_strikes_cover_twenty_steps_around_the_open(model: MarketModel) -> None:
    open_paise = int(model.ticks(NIFTY, SESSION).ltp_paise[0])
    strikes = sorted(
        {o.strike_paise for o in contracts(model, "NIFTY", "option", date(2026, 12, 1))}
    )
    assert len(strikes) == 41
    assert strikes[0] <= open_paise - 20 * 5_000 + 2_500
    assert strikes[-1] >= open_paise + 20 * 5_000 - 2_500


def test_tokens_are_stable_and_unique() -> None:
    symbols = [f"NIFTY01DEC26{k}CE" for k in range(20_000, 30_000, 50)]
    first = assign_tokens(symbols, ["3045"])
    again = assign_tokens(list(reversed(symbols)), ["3045"])
    assert first == again
    assert len(set(first.values())) == len(symbols)
    assert all(35_000 <= int(t) < 1_000_000 for t in first.values())
    # A token already taken is stepped over, not reused.
    taken = first[symbols[0]]
    moved = assign_tokens(symbols[:1], [taken])
    assert moved[symbols[0]] != taken


# --- determinism ------------------------------------------------------------------------


def test_same_seed_same_market_different_seed_different(model: MarketModel) -> None:
    twin = MarketModel(seed=SEED, session_date=SESSION)
    other = MarketModel(seed=SEED + 1, session_date=SESSION)
    assert twin.master_records() == model.master_records()
    option = atm_option(model, "NIFTY")
    past = date(2026, 6, 15)
    for token, day in (
        (NIFTY, SESSION),
        (SBIN, past),
        (VIX_TOKEN, SESSION),
        (option.token, SESSION),
    ):
        a, b = model.ticks(token, day), twin.ticks(token, day)
        for field in ("ts_ms", "ltp_paise", "last_qty", "cum_volume", "oi"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(
        model.ticks(NIFTY, past).ltp_paise, other.ticks(NIFTY, past).ltp_paise
    )
    assert model.quote(option.token, ist(SESSION, 11, 0)) == twin.quote(
        option.token, ist(SESSION, 11, 0)
    )


def test_history_does_not_depend_on_the_session_date(model: MarketModel) -> None:
    later = MarketModel(seed=SEED, session_date=date(2026, 11, 27))
    day = date(2026, 9, 8)
    assert np.array_equal(model.ticks(SBIN, day).ltp_paise, later.ticks(SBIN, day).ltp_paise)
    now = ist(date(2026, 11, 27), 16, 0)
    rows = later.candles(NIFTY, "ONE_DAY", ist(day, 0, 0), ist(SESSION, 0, 0), now=now)
    assert rows == model.candles(NIFTY, "ONE_DAY", ist(day, 0, 0), ist(SESSION, 0, 0), now=now)


def test_prices_are_anchored_near_late_2026_levels(model: MarketModel) -> None:
    closes = {t: model.quote(t, ist(SESSION, 15, 30)).ltp_paise for t in (NIFTY, BANKNIFTY)}
    assert 22_000_00 < closes[NIFTY] < 30_000_00
    assert 50_000_00 < closes[BANKNIFTY] < 68_000_00
    assert 6_00 < model.quote(VIX_TOKEN, ist(SESSION, 15, 30)).ltp_paise < 40_00


# --- ticks and bars ----------------------------------------------------------------------


def _minute_bars_by_hand(ts: list[int], px: list[int], qty: list[int], oi: list[int]) -> dict:
    bars: dict[int, list[int]] = {}
    for t, p, q, o in zip(ts, px, qty, oi, strict=True):
        start = t - t % 60_000
        if start not in bars:
            bars[start] = [p, p, p, p, 0, 0]
        bar = bars[start]
        bar[1], bar[2], bar[3] = max(bar[1], p), min(bar[2], p), p
        bar[4] += q
        bar[5] = o
    return bars


@settings(max_examples=12, deadline=None)
@given(pick=st.integers(0, 10_000), back=st.integers(0, 40))
def test_minute_bars_are_exact_aggregations_of_ticks(
    model: MarketModel, pick: int, back: int
) -> None:
    insts = model.instruments()
    inst = insts[pick % len(insts)]
    day = model.trading_days(SESSION - timedelta(days=back), SESSION)[0]
    path = model.ticks(inst.token, day)
    bars = model.minute_bars(inst.token, day)
    if day < model.first_data_day(inst.token):
        assert len(path) == 0 and len(bars) == 0
        return
    assert len(bars) == 375
    by_hand = _minute_bars_by_hand(
        path.ts_ms.tolist(), path.ltp_paise.tolist(), path.last_qty.tolist(), path.oi.tolist()
    )
    assert sorted(by_hand) == bars.ts_ms.tolist()
    for k, start in enumerate(bars.ts_ms.tolist()):
        expected = by_hand[start]
        got = [
            int(bars.open[k]),
            int(bars.high[k]),
            int(bars.low[k]),
            int(bars.close[k]),
            int(bars.volume[k]),
            int(bars.oi[k]),
        ]
        assert got == expected


def test_tick_cadence_and_cumulative_volume(model: MarketModel) -> None:
    path = model.ticks(NIFTY, SESSION)
    assert len(path) == 375 * 60
    assert path.ts_ms[0] == int(ist(SESSION, 9, 15).timestamp() * 1000)
    assert path.ts_ms[-1] == int(ist(SESSION, 15, 29, 59).timestamp() * 1000)
    assert not path.cum_volume.any() and not path.oi.any()  # indices carry no volume or OI
    option = model.ticks(atm_option(model, "NIFTY").token, SESSION)
    assert np.all(np.diff(option.ts_ms) > 0)
    assert set(option.ts_ms.tolist()) <= set(path.ts_ms.tolist())  # derivatives tick on the grid
    assert np.array_equal(option.cum_volume, np.cumsum(option.last_qty))
    assert np.all(option.last_qty % 65 == 0) and np.all(option.oi % 65 == 0)


def test_prices_sit_on_the_tick_grid(model: MarketModel) -> None:
    day = date(2026, 11, 19)
    for inst in model.instruments()[::37]:
        path = model.ticks(inst.token, day)
        assert np.all(path.ltp_paise % inst.grid_paise == 0), inst.symbol
        assert np.all(path.ltp_paise >= max(inst.grid_paise, 1)), inst.symbol


def test_underlying_day_runs_from_open_to_close_of_daily_history(model: MarketModel) -> None:
    day = date(2026, 11, 19)
    nxt = model.ticks(NIFTY, SESSION)
    prev = model.ticks(NIFTY, day)
    assert model.reference(NIFTY, SESSION).prev_close == prev.ltp_paise[-1]
    assert model.quote(NIFTY, ist(SESSION, 9, 15)).ltp_paise == nxt.ltp_paise[0]


def test_u_shaped_volume(model: MarketModel) -> None:
    for token in (SBIN, atm_option(model, "NIFTY").token):
        vol = model.minute_bars(token, SESSION).volume
        first, middle, last = vol[:30].sum(), vol[165:195].sum(), vol[-30:].sum()
        assert first > 1.5 * middle and last > 1.5 * middle


def test_vix_moves_against_the_index(model: MarketModel) -> None:
    now = ist(SESSION, 16, 0)
    start = ist(SESSION - timedelta(days=365), 0, 0)
    nifty = np.array([r[4] for r in model.candles(NIFTY, "ONE_DAY", start, now, now=now)])
    vix = np.array([r[4] for r in model.candles(VIX_TOKEN, "ONE_DAY", start, now, now=now)])
    assert len(nifty) == len(vix) > 240
    daily = np.corrcoef(np.diff(np.log(nifty)), np.diff(np.log(vix)))[0, 1]
    assert daily < -0.3
    assert 8 < np.median(vix) < 20  # mean-reverting around the long-run level
    a = model.minute_bars(NIFTY, SESSION).close.astype(float)
    b = model.minute_bars(VIX_TOKEN, SESSION).close.astype(float)
    assert np.corrcoef(np.diff(np.log(a)), np.diff(np.log(b)))[0, 1] < -0.3


# --- candles -----------------------------------------------------------------------------


def _group_minutes(rows: list[list], minutes: int) -> list[list]:
    """Aggregate 1-minute candle rows into bars of ``minutes`` aligned to 09:15, by hand."""
    buckets: dict[str, list] = {}
    for ts, o, h, lo, c, v in rows:
        t = datetime.fromisoformat(ts)
        since_open = (t.hour * 60 + t.minute) - (9 * 60 + 15)
        start = t - timedelta(minutes=since_open % minutes)
        key = start.isoformat()
        if key not in buckets:
            buckets[key] = [key, o, h, lo, c, v]
        else:
            bar = buckets[key]
            bar[2], bar[3], bar[4], bar[5] = max(bar[2], h), min(bar[3], lo), c, bar[5] + v
    return list(buckets.values())


@pytest.mark.parametrize("token", [NIFTY, SBIN])
def test_candles_are_aggregations_of_one_minute(model: MarketModel, token: str) -> None:
    day = date(2026, 11, 18)
    start, end, now = ist(day, 0, 0), ist(day, 23, 59), ist(SESSION, 12, 0)
    ones = model.candles(token, "ONE_MINUTE", start, end, now=now)
    assert len(ones) == 375
    for interval, minutes in (("FIVE_MINUTE", 5), ("ONE_HOUR", 60), ("TEN_MINUTE", 10)):
        assert model.candles(token, interval, start, end, now=now) == _group_minutes(ones, minutes)
    (daily,) = model.candles(token, "ONE_DAY", start, end, now=now)
    assert daily == [
        "2026-11-18T00:00:00+05:30",
        ones[0][1],
        max(r[2] for r in ones),
        min(r[3] for r in ones),
        ones[-1][4],
        sum(r[5] for r in ones),
    ]


def test_candle_rows_shape_and_grid(model: MarketModel) -> None:
    day = date(2026, 11, 18)
    hours = model.candles(
        NIFTY, "ONE_HOUR", ist(day, 9, 0), ist(day, 16, 0), now=ist(SESSION, 9, 0)
    )
    assert [r[0] for r in hours] == [
        f"2026-11-18T{h:02d}:15:00+05:30" for h in (9, 10, 11, 12, 13, 14, 15)
    ]
    for interval, minutes in INTERVAL_MINUTES.items():
        rows = model.candles(
            SBIN, interval, ist(day, 9, 0), ist(day, 16, 0), now=ist(SESSION, 9, 0)
        )
        assert rows, interval
        for ts, o, h, lo, c, v in rows:
            t = datetime.fromisoformat(ts)
            assert ts.endswith("+05:30")
            assert ((t.hour * 60 + t.minute) - 555) % minutes == 0 and t.second == 0
            assert lo <= min(o, c) <= max(o, c) <= h
            assert isinstance(v, int) and v > 0
            assert round(o * 100) == o * 100 or abs(round(o * 100) - o * 100) < 1e-6


def test_candles_only_show_complete_bars_before_now(model: MarketModel) -> None:
    start, end = ist(SESSION, 9, 15), ist(SESSION, 15, 30)
    now = ist(SESSION, 11, 2, 30)
    ones = model.candles(NIFTY, "ONE_MINUTE", start, end, now=now)
    assert ones[-1][0] == "2026-11-20T11:01:00+05:30"  # 11:02 is still forming
    fives = model.candles(NIFTY, "FIVE_MINUTE", start, end, now=now)
    assert fives[-1][0] == "2026-11-20T10:55:00+05:30"
    hours = model.candles(NIFTY, "ONE_HOUR", start, end, now=now)
    assert [r[0][11:16] for r in hours] == ["09:15"]
    day_start = ist(SESSION, 0, 0)
    assert model.candles(NIFTY, "ONE_DAY", day_start, end, now=ist(SESSION, 15, 29)) == []
    assert len(model.candles(NIFTY, "ONE_DAY", day_start, end, now=ist(SESSION, 15, 30))) == 1
    # The last one-minute close is a tick strictly before now.
    ticks = model.ticks(NIFTY, SESSION)
    before = ticks.ltp_paise[ticks.ts_ms < int(now.timestamp() * 1000) - 30_000]
    assert round(ones[-1][4] * 100) == before[-1]


def test_nothing_after_the_session_date_and_history_window(model: MarketModel) -> None:
    later = ist(SESSION + timedelta(days=10), 0, 0)
    rows = model.candles(NIFTY, "ONE_DAY", ist(SESSION, 0, 0), later, now=later)
    assert [r[0][:10] for r in rows] == ["2026-11-20"]
    assert len(model.ticks(NIFTY, SESSION + timedelta(days=3))) == 0
    first = model.first_data_day(NIFTY)
    assert (SESSION - first).days >= 2 * 365
    assert (
        model.candles(
            NIFTY,
            "ONE_DAY",
            ist(first - timedelta(days=40), 0, 0),
            ist(first - timedelta(days=1), 0, 0),
            now=later,
        )
        == []
    )


def test_option_history_starts_at_listing(model: MarketModel) -> None:
    option = atm_option(model, "NIFTY")
    assert option.listed_from is not None
    assert len(model.ticks(option.token, option.listed_from)) > 0
    before = model.trading_days(option.listed_from - timedelta(days=10), option.listed_from)[0]
    assert len(model.ticks(option.token, before)) == 0


def test_quote_before_listing_shows_the_model_price_untraded(model: MarketModel) -> None:
    option = atm_option(model, "NIFTY")
    assert option.listed_from is not None
    q = model.quote(option.token, ist(option.listed_from - timedelta(days=3), 12, 0))
    ref = model.reference(option.token, option.listed_from)
    assert q.volume == 0 and q.last_trade_ms == 0 and q.open_paise == 0
    assert q.ltp_paise == q.close_paise == ref.prev_close >= 5


def test_a_tiny_cache_gives_the_same_answers(model: MarketModel) -> None:
    small = MarketModel(seed=SEED, session_date=SESSION, cache_mb=1)
    tokens = [o.token for o in contracts(model, "NIFTY", "option")[:40]] + [NIFTY]
    start, end = ist(SESSION, 13, 0), ist(SESSION, 13, 5)
    for _ in range(2):  # the second pass reads whatever survived eviction
        a, b = small.tick_events(tokens, start, end), model.tick_events(tokens, start, end)
        assert all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True))


def test_byte_bounded_lru_evicts_least_recent() -> None:
    cache = ByteBoundedLru(300, weigh=lambda v: 100)
    made: list[str] = []

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    for key in ("a", "b", "c", "a", "d"):  # "a" is refreshed, so "b" is evicted by "d"
        assert cache.get_or_make(key, lambda k=key: make(k)) == key.upper()
    assert len(cache) == 3 and cache.bytes == 300
    cache.get_or_make("b", lambda: make("b"))
    assert made == ["a", "b", "c", "d", "b"]


def test_oi_series_follows_bar_oi(model: MarketModel) -> None:
    token = atm_option(model, "NIFTY").token
    start, end = ist(SESSION, 9, 15), ist(SESSION, 15, 30)
    rows = model.oi_series(token, "THREE_MINUTE", start, end, now=end)
    bars = model.minute_bars(token, SESSION)
    assert len(rows) == 125
    assert rows[0] == {"time": "2026-11-20T09:15:00+05:30", "oi": int(bars.oi[2])}


def test_bad_requests_are_named(model: MarketModel) -> None:
    with pytest.raises(ValueError, match="TWO_HOUR"):
        model.candles(
            NIFTY, "TWO_HOUR", ist(SESSION, 9, 15), ist(SESSION, 10, 0), now=ist(SESSION, 11, 0)
        )
    with pytest.raises(KeyError, match="12345678"):
        model.ticks("12345678", SESSION)
    assert model.instrument("12345678") is None
    with pytest.raises(ValueError, match="naive"):
        model.quote(NIFTY, datetime(2026, 11, 20, 10, 0))
    with pytest.raises(ValueError, match="crash_landing"):
        MarketModel(seed=1, session_date=SESSION, scenario="crash_landing")
    with pytest.raises(ValueError, match="2026-11-21"):
        MarketModel(seed=1, session_date=date(2026, 11, 21))  # a Saturday
    with pytest.raises(ValueError, match="seed"):
        MarketModel(seed=-1, session_date=SESSION)


# --- options and futures -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    spot=st.floats(50, 60_000),
    moneyness=st.floats(0.7, 1.3),
    days=st.floats(0.01, 120),
    vol=st.floats(0.05, 1.0),
    call=st.booleans(),
)
def test_vectorised_black_scholes_matches_market_pricing(
    spot: float, moneyness: float, days: float, vol: float, call: bool
) -> None:
    strike = spot * moneyness
    t = days / 365
    ours = bs_prices(call, np.array([spot]), strike, np.array([t]), 0.065, np.array([vol]))[0]
    ref = bs_price("CE" if call else "PE", spot, strike, t, 0.065, vol)
    assert ours == pytest.approx(ref, rel=1e-8, abs=1e-7 * spot)


def test_erf_accuracy_and_tick_rounding() -> None:
    xs = np.linspace(-7, 7, 20_001)
    assert np.max(np.abs(erf(xs) - np.array([math.erf(x) for x in xs]))) < 1e-10
    # 1.025 rupees = 102.5 paise → half up to 105 on a 5-paise tick; 0.01 floors to one tick.
    assert to_grid(np.array([1.025, 1.024, 0.01]), 5, floor_one_tick=True).tolist() == [105, 100, 5]


def test_put_call_parity_against_futures(model: MarketModel) -> None:
    # Every contract trades in the first second of each minute, so these are simultaneous.
    at = ist(SESSION, 12, 31)
    expiry = date(2026, 12, 29)
    (future,) = contracts(model, "NIFTY", "future", expiry)
    fut = model.quote(future.token, at)
    assert fut.last_trade_ms == int(at.timestamp() * 1000)
    t = (ist(expiry, 15, 30) - at).total_seconds() / (365 * 86_400)
    calls = [o for o in contracts(model, "NIFTY", "option", expiry) if o.option_type == "CE"]
    for call in calls:
        put = next(o for o in model.instruments() if o.symbol == call.symbol[:-2] + "PE")
        assert call.strike_paise is not None
        c, p = model.quote(call.token, at).ltp_paise, model.quote(put.token, at).ltp_paise
        # C − P = (F − K)·e^{−rT}; rounding each price to its tick leaves a few paise.
        parity = (fut.ltp_paise - call.strike_paise) * math.exp(-0.065 * t)
        assert abs((c - p) - parity) <= 20


def test_futures_carry_and_options_floor(model: MarketModel) -> None:
    at = ist(SESSION, 14, 0)
    spot = model.quote(NIFTY, at).ltp_paise
    for future in contracts(model, "NIFTY", "future"):
        assert future.expiry is not None
        t = (ist(future.expiry, 15, 30) - at).total_seconds() / (365 * 86_400)
        assert abs(model.quote(future.token, at).ltp_paise - spot * math.exp(0.065 * t)) <= 5
    far_call = max(
        contracts(model, "NIFTY", "option", date(2026, 11, 23)), key=lambda o: o.strike_paise or 0
    )
    assert model.ticks(far_call.token, SESSION).ltp_paise.min() >= 5


# --- quotes ------------------------------------------------------------------------------


def test_quote_is_the_state_after_the_last_tick(model: MarketModel) -> None:
    option = atm_option(model, "NIFTY", "PE")
    at = ist(SESSION, 13, 7, 31)
    q = model.quote(option.token, at)
    path = model.ticks(option.token, SESSION)
    i = path.index_at(int(at.timestamp() * 1000))
    assert q.ltp_paise == path.ltp_paise[i] and q.volume == path.cum_volume[i]
    assert q.last_trade_qty == path.last_qty[i] and q.oi == path.oi[i]
    assert q.open_paise == path.ltp_paise[0]
    assert q.high_paise == path.ltp_paise[: i + 1].max()
    assert q.low_paise == path.ltp_paise[: i + 1].min()
    turnover = int((path.ltp_paise[: i + 1] * path.last_qty[: i + 1]).sum())
    assert abs(q.avg_paise - turnover / q.volume) <= 0.5
    assert q.close_paise == model.ticks(option.token, date(2026, 11, 19)).ltp_paise[-1]
    assert q.bids[0].price_paise < q.asks[0].price_paise
    assert q.bids[0].price_paise <= q.ltp_paise <= q.asks[0].price_paise
    bid_prices = [lvl.price_paise for lvl in q.bids if lvl.quantity]
    ask_prices = [lvl.price_paise for lvl in q.asks if lvl.quantity]
    assert bid_prices == sorted(bid_prices, reverse=True) and ask_prices == sorted(ask_prices)
    assert all(lvl.quantity % 65 == 0 and lvl.orders >= 1 for lvl in q.bids if lvl.quantity)
    assert q.total_buy_qty >= sum(lvl.quantity for lvl in q.bids)
    assert q.lower_circuit_paise <= q.ltp_paise <= q.upper_circuit_paise
    assert q.week52_low_paise <= q.low_paise and q.week52_high_paise >= q.high_paise


def test_spreads_widen_far_from_the_money(model: MarketModel) -> None:
    def mean_spread(option: SimInstrument) -> float:
        spreads = []
        for minute in range(10, 300, 7):
            q = model.quote(option.token, ist(SESSION, 9, 15) + timedelta(minutes=minute))
            spreads.append(q.asks[0].price_paise - max(q.bids[0].price_paise, 0))
        return float(np.mean(spreads))

    atm = atm_option(model, "NIFTY")
    chain = [o for o in contracts(model, "NIFTY", "option", atm.expiry) if o.option_type == "CE"]
    far = max(chain, key=lambda o: o.strike_paise or 0)
    assert mean_spread(far) > 2 * mean_spread(atm)


def test_index_quote_and_pre_open_quote(model: MarketModel) -> None:
    q = model.quote(NIFTY, ist(SESSION, 10, 0))
    assert q.volume == 0 and q.total_buy_qty == 0 and all(lvl.quantity == 0 for lvl in q.bids)
    pre = model.quote(NIFTY, ist(SESSION, 9, 5))
    prev_day = model.ticks(NIFTY, date(2026, 11, 19))
    assert pre.ltp_paise == prev_day.ltp_paise[-1] == model.reference(NIFTY, SESSION).prev_close
    weekend = model.quote(NIFTY, ist(SESSION + timedelta(days=1), 12, 0))
    assert weekend.ltp_paise == model.ticks(NIFTY, SESSION).ltp_paise[-1]


# --- the merged feed ---------------------------------------------------------------------


def test_tick_events_merge_in_time_order(model: MarketModel) -> None:
    option = atm_option(model, "NIFTY")
    tokens = (NIFTY, option.token, SBIN, VIX_TOKEN)
    start, end = ist(SESSION, 10, 0), ist(SESSION, 10, 3)
    ev = model.tick_events(tokens, start, end)
    assert ev.tokens == tokens
    order = np.lexsort((ev.token_index, ev.ts_ms))
    assert np.array_equal(order, np.arange(len(order)))  # time order, ties in token order
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    for k, token in enumerate(tokens):
        path = model.ticks(token, SESSION)
        inside = (path.ts_ms >= lo) & (path.ts_ms < hi)  # half-open [start, end)
        mine = ev.token_index == k
        assert np.array_equal(ev.ts_ms[mine], path.ts_ms[inside])
        assert np.array_equal(ev.ltp_paise[mine], path.ltp_paise[inside])
        assert np.array_equal(ev.cum_volume[mine], path.cum_volume[inside])
        assert np.array_equal(ev.high_paise[mine], np.maximum.accumulate(path.ltp_paise)[inside])
    assert np.count_nonzero(ev.token_index == 0) == 180
    assert ev.ts_ms.max() < hi and ev.ts_ms.min() >= lo


def test_tick_events_split_windows_add_up(model: MarketModel) -> None:
    tokens = [o.token for o in contracts(model, "BANKNIFTY", "option")[:30]]
    whole = model.tick_events(tokens, ist(SESSION, 9, 15), ist(SESSION, 9, 45))
    parts = [
        model.tick_events(
            tokens,
            ist(SESSION, 9, 15) + timedelta(seconds=s),
            ist(SESSION, 9, 15) + timedelta(seconds=s + 7),
        )
        for s in range(0, 1800, 7)
    ]
    joined = np.concatenate([p.ts_ms for p in parts])
    assert np.array_equal(joined[joined < whole.ts_ms.max() + 1], whole.ts_ms)
    assert len(model.tick_events(tokens, ist(SESSION, 16, 0), ist(SESSION, 17, 0)).ts_ms) == 0


# --- regimes and scenarios ---------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), day=st.dates(date(2018, 1, 1), date(2030, 12, 31)))
def test_universe_always_holds_all_three_regimes(seed: int, day: date) -> None:
    phase = seed_phase(seed)
    regimes = {regime_of(u, phase, day) for u in tradable()}
    assert regimes == {UP, DOWN, RANGE}


def test_adx_sees_trends_both_ways_and_ranges(model: MarketModel) -> None:
    now = ist(SESSION, 16, 0)
    categories = set()
    for u in tradable():
        rows = model.candles(
            u.token, "ONE_DAY", ist(SESSION - timedelta(days=200), 0, 0), now, now=now
        )
        high, low, close = (np.array([r[k] for r in rows]) for k in (2, 3, 4))
        adx = talib.ADX(high, low, close, 14)[-1]
        plus, minus = (
            talib.PLUS_DI(high, low, close, 14)[-1],
            talib.MINUS_DI(high, low, close, 14)[-1],
        )
        if adx >= 25:
            categories.add("up" if plus > minus else "down")
        elif adx < 20:
            categories.add("range")
    assert categories == {"up", "down", "range"}


def _day(m: MarketModel, token: str) -> tuple[int, int, int, int, int]:
    path = m.ticks(token, SESSION)
    prices = path.ltp_paise
    return (
        m.reference(token, SESSION).prev_close,
        int(prices[0]),
        int(prices.max()),
        int(prices.min()),
        int(prices[-1]),
    )


def test_scenarios_change_the_session_day_as_named(model: MarketModel) -> None:
    plain = {t: _day(model, t) for t in (NIFTY, SBIN, VIX_TOKEN)}
    runs = {
        name: MarketModel(seed=SEED, session_date=SESSION, scenario=name)
        for name in ("gap_up", "gap_down", "vix_spike", "flash_crash", "quiet")
    }
    for name, m in runs.items():
        # Only the session day changes.
        prior = date(2026, 11, 19)
        assert np.array_equal(m.ticks(NIFTY, prior).ltp_paise, model.ticks(NIFTY, prior).ltp_paise)
        assert _day(m, NIFTY) != plain[NIFTY], name
    for token in (NIFTY, SBIN):
        prev, open_, *_ = _day(runs["gap_up"], token)
        assert open_ >= prev * 1.02
        prev, open_, *_ = _day(runs["gap_down"], token)
        assert open_ <= prev * 0.98
    prev, open_, high, low, close = _day(runs["vix_spike"], VIX_TOKEN)
    assert close >= 1.4 * prev
    _, n_open, _, _, n_close = _day(runs["vix_spike"], NIFTY)
    assert n_close < n_open
    _, open_, high, low, close = _day(runs["flash_crash"], NIFTY)
    assert low <= open_ * 0.95 and close >= low * 1.03
    _, v_open, v_high, _, _ = _day(runs["flash_crash"], VIX_TOKEN)
    assert v_high >= v_open * 1.25
    prev, open_, high, low, close = _day(runs["quiet"], NIFTY)
    _, _, p_high, p_low, _ = plain[NIFTY]
    assert open_ == prev and (high - low) < 0.005 * open_
    assert (high - low) < (p_high - p_low)


def test_scenario_moves_reach_the_options(model: MarketModel) -> None:
    crash = MarketModel(seed=SEED, session_date=SESSION, scenario="flash_crash")
    put = atm_option(crash, "NIFTY", "PE")
    calm = model.ticks(put.token, SESSION).ltp_paise.max()
    assert crash.ticks(put.token, SESSION).ltp_paise.max() > 2 * calm


# --- clock -------------------------------------------------------------------------------


class FakeWall:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def test_sim_clock_maps_wall_time_and_holds_at_close() -> None:
    wall = FakeWall()
    clock = SimClock(SESSION, speed=60, wall=wall)
    assert clock.now() == ist(SESSION, 9, 15)
    wall.t += 10  # 10 wall seconds at 60× = 10 session minutes
    assert clock.now() == ist(SESSION, 9, 25)
    clock.set_speed(1)
    assert clock.now() == ist(SESSION, 9, 25)  # no jump on a speed change
    wall.t += 30
    assert clock.now() == ist(SESSION, 9, 25, 30)
    wall.t += 86_400
    assert clock.now() == ist(SESSION, 15, 30) and clock.is_closed()
    with pytest.raises(ValueError, match="speed"):
        SimClock(SESSION, speed=0)


def test_manual_clock_and_default_session() -> None:
    clock = ManualClock(SESSION)
    assert clock.now() == ist(SESSION, 9, 15)
    assert clock.advance(90) == ist(SESSION, 9, 16, 30)
    clock.set(time(15, 0))
    assert clock.now() == ist(SESSION, 15, 0)
    with pytest.raises(ValueError):
        clock.advance(-1)
    cal = default_calendar()
    assert default_session_date(date(2026, 11, 22), cal) == SESSION  # Sunday → Friday
    assert default_session_date(SESSION, cal) == SESSION
    assert default_session_date(date(2026, 11, 24), cal) == date(2026, 11, 23)  # holiday


# --- special sessions --------------------------------------------------------------------


def test_muhurat_session_has_its_own_window() -> None:
    m = MarketModel(seed=3, session_date=date(2025, 10, 21))
    bars = m.minute_bars(NIFTY, date(2025, 10, 21))
    assert len(bars) == len(default_calendar().trading_minutes(date(2025, 10, 21)))
    rows = m.candles(
        NIFTY,
        "ONE_HOUR",
        ist(date(2025, 10, 21), 0, 0),
        ist(date(2025, 10, 21), 23, 0),
        now=ist(date(2025, 10, 22), 0, 0),
    )
    first_minute = default_calendar().trading_minutes(date(2025, 10, 21))[0]
    assert rows[0][0] == first_minute.isoformat()
    assert parse_master(m.master_records()).problems == ()


def test_volume_by_kind(model: MarketModel) -> None:
    per_token = defaultdict(int)
    for token in (NIFTY, VIX_TOKEN, SBIN, atm_option(model, "NIFTY").token):
        per_token[token] = int(model.minute_bars(token, SESSION).volume.sum())
    assert per_token[NIFTY] == 0 and per_token[VIX_TOKEN] == 0
    assert per_token[SBIN] > 1_000_000
    assert per_token[atm_option(model, "NIFTY").token] > 0
