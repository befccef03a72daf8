"""The simulator's deterministic market: what traded, when and at what price, for every listed
instrument — the one source the REST app, the candle history and the WebSocket feed all read.

Tick cadence: each underlying (index, stock, INDIA VIX) ticks once a second through the session
(22,500 ticks on a normal day). A future or option is priced at those same instants from its
underlying (and VIX), but trades only at a thinned subset of them — about every other second near
the money and in the busy open and close, rarely far from it — always including the first second
of every minute and the last second of the session, so every minute has a bar and the day's close
is the last second's price. Options are never interpolated: every price is a model price at a tick.

Candles include only complete bars: a bar appears once ``now`` has reached its end, so history
never shows a bar still forming (ONE_DAY appears after the session's close). Nothing after the
session date exists.

``seed`` fixes everything; the random streams are keyed by stable integers (seed, stream, token,
date ordinal), never by Python's salted ``hash``. Per-(token, day) results are kept in LRU caches
bounded by ``cache_mb``; an evicted day is simply recomputed, identically.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from broker.sim.bars import (
    INTERVAL_MINUTES,
    INTERVALS,
    MINUTE_MS,
    ONE_DAY,
    Bars,
    MinuteBars,
    TickPath,
    aggregate,
    empty_bars,
    epoch_ms,
    minute_bars,
)
from broker.sim.book import EMPTY_BOOK, Book, DepthLevel, book_totals, order_book
from broker.sim.cache import ByteBoundedLru
from broker.sim.clock import IST
from broker.sim.master import SimInstrument, list_instruments, master_records
from broker.sim.options import (
    SECONDS_PER_YEAR,
    bs_prices,
    futures_prices,
    smile_vol,
    to_grid,
)
from broker.sim.paths import (
    EPOCH,
    STREAM_OI,
    STREAM_TRADES,
    DailySeries,
    bridge_path,
    build_daily_world,
    crash_shape,
    intraday_shocks,
    stream,
    volume_profile,
)
from broker.sim.quote import DayReference, Quote, price_band
from broker.sim.scenarios import (
    CRASH_BOTTOM,
    CRASH_RECOVERED,
    CRASH_START,
    Scenario,
    scenario_by_name,
)
from broker.sim.tape import Tape, TapeStats, record_tape, tape_stats
from broker.sim.universe import (
    BASE_PRICE_DATE,
    RISK_FREE_RATE,
    VIX_MEAN,
    VIX_TOKEN,
    Underlying,
    underlying_by_name,
    underlying_by_token,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

__all__ = [
    "Bars",
    "Book",
    "DayReference",
    "DepthLevel",
    "MarketModel",
    "MinuteBars",
    "Quote",
    "SimInstrument",
    "TickEvents",
    "TickPath",
]

EXPIRY_CLOSE = time(15, 30)
_NO_LIMIT_MS = 2**62
_VIX_INTRADAY_CORR = -0.7
_MB = 1 << 20


class SimCalendar(Protocol):
    """What the model needs of ``market.calendar.NseCalendar``."""

    def is_trading_day(self, d: date) -> bool: ...

    def next_trading_day(self, d: date) -> date: ...

    def previous_trading_day(self, d: date) -> date: ...

    def trading_minutes(self, d: date) -> list[datetime]: ...


class TickEvents(NamedTuple):
    """Ticks of several tokens merged in time order (ties in the order ``tokens`` was given).

    ``token_index`` points into ``tokens``; the other arrays are per event. ``open/high/low/
    avg_paise`` and the book totals are the day-so-far values after that tick.
    """

    tokens: tuple[str, ...]
    token_index: npt.NDArray[np.int32]
    ts_ms: IntArray
    ltp_paise: IntArray
    last_qty: IntArray
    cum_volume: IntArray
    oi: IntArray
    open_paise: IntArray
    high_paise: IntArray
    low_paise: IntArray
    avg_paise: IntArray
    total_buy_qty: IntArray
    total_sell_qty: IntArray


def _empty_events(tokens: tuple[str, ...]) -> TickEvents:
    e = np.empty(0, dtype=np.int64)
    return TickEvents(tokens, np.empty(0, dtype=np.int32), *([e] * 11))


class MarketModel:
    """A deterministic NSE market for one session date (see the module docstring)."""

    def __init__(
        self,
        *,
        seed: int,
        session_date: date,
        calendar: SimCalendar | None = None,
        scenario: str | None = None,
        history_years: int = 2,
        cache_mb: int = 384,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(history_years, bool) or not isinstance(history_years, int):
            raise ValueError(f"history_years must be an integer, got {history_years!r}")
        if not 1 <= history_years <= 8:
            raise ValueError(f"history_years must be 1..8, got {history_years}")
        if calendar is None:
            from market.calendar import default_calendar

            calendar = default_calendar()
        if session_date <= EPOCH:
            raise ValueError(f"session date {session_date} is before the simulator's history")
        if not calendar.is_trading_day(session_date):
            raise ValueError(f"session date {session_date} is not an NSE trading day")
        self.seed = seed
        self.session_date = session_date
        self.calendar = calendar
        self.scenario: Scenario | None = scenario_by_name(scenario)
        self.history_years = history_years

        world_end = max(session_date, BASE_PRICE_DATE)
        self._days = self._trading_days(EPOCH, world_end)
        self._ordinals = [d.toordinal() for d in self._days]
        world = build_daily_world(seed, self._days)
        self._session_index = self._day_index(session_date)
        if self.scenario is not None:
            world = self._apply_scenario(world, self.scenario)
        self._daily = world

        history_start = max(
            EPOCH, session_date - timedelta(days=round(365.25 * history_years) + 30)
        )
        self.first_day = self._days[bisect.bisect_left(self._days, history_start)]

        opens = {tok: int(s.open_paise[self._session_index]) for tok, s in world.items()}
        self._instruments = list_instruments(session_date, opens, calendar)
        self._by_token = {i.token: i for i in self._instruments}
        self._futures_rank = self._rank_futures()

        self._grids: dict[int, tuple[IntArray, IntArray]] = {}
        self._grid_lock = threading.Lock()
        # A full session of 1,000 option contracts takes ~90 MB of tapes and ~65 MB of stats.
        self._tapes = ByteBoundedLru(cache_mb * _MB // 2)
        self._stats = ByteBoundedLru(cache_mb * _MB // 3)
        self._minutes = ByteBoundedLru(cache_mb * _MB // 8)
        self._day_bars = ByteBoundedLru(cache_mb * _MB // 24)
        self._refs: dict[tuple[str, int], DayReference] = {}

    # --- instruments --------------------------------------------------------------------

    def master_records(self) -> list[dict[str, str]]:
        """The instrument master (SPEC §7): one record per listed instrument, values strings."""
        return master_records(self._instruments)

    def instrument(self, token: str) -> SimInstrument | None:
        """The listed instrument with this token, or None."""
        return self._by_token.get(token)

    def instruments(self) -> Sequence[SimInstrument]:
        """Every listed instrument (indices and stocks first, then F&O contracts)."""
        return tuple(self._instruments)

    def underlying(self, token: str) -> Underlying:
        """The underlying an instrument's price derives from."""
        inst = self._require(token)
        found = underlying_by_token(inst.underlying_token)
        assert found is not None
        return found

    def first_data_day(self, token: str) -> date:
        """The first day with ticks for this instrument (history start or listing day)."""
        inst = self._require(token)
        if inst.listed_from is None:
            return self.first_day
        return max(self.first_day, inst.listed_from)

    def last_data_day(self, token: str) -> date:
        """The last day with ticks: the session date, or the expiry if it comes first."""
        inst = self._require(token)
        if inst.expiry is None:
            return self.session_date
        return min(self.session_date, inst.expiry)

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days in ``[start, end]`` up to the session date."""
        end = min(end, self.session_date)
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return self._days[lo:hi]

    # --- ticks and bars -------------------------------------------------------------------

    def ticks(self, token: str, day: date) -> TickPath:
        """Every tick of ``token`` on ``day``; empty outside its data days or on a holiday."""
        inst = self._require(token)
        if not self._has_data(inst, day):
            return TickPath()
        return self._tape(inst, day).path()

    def minute_bars(self, token: str, day: date) -> MinuteBars:
        """The day's one-minute bars: an exact aggregation of ``ticks(token, day)``."""
        self._require(token)

        def make() -> Bars:
            path = self.ticks(token, day)
            if not len(path):
                return empty_bars()
            return minute_bars(path, self._grid(day)[0])

        return self._minutes.get_or_make((token, day.toordinal()), make)

    def daily_bar(self, token: str, day: date) -> Bars:
        """The day's single session bar (stamped at 00:00 IST), empty when there is no data."""
        self._require(token)

        def make() -> Bars:
            midnight = epoch_ms(datetime.combine(day, time(0), tzinfo=IST))
            return aggregate(self.minute_bars(token, day), 0, day_start_ms=midnight)

        return self._day_bars.get_or_make((token, day.toordinal()), make)

    def bars(
        self, token: str, interval: str, start: datetime, end: datetime, *, now: datetime
    ) -> Bars:
        """Complete bars of ``interval`` whose start lies in ``[start, end]``, as of ``now``.

        ONE_DAY selects by date (``start.date() <= day <= end.date()`` in IST).
        """
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}; allowed: {', '.join(INTERVALS)}")
        self._require(token)
        start_ms, end_ms, now_ms = epoch_ms(start), epoch_ms(end), epoch_ms(now)
        first = max(start.astimezone(IST).date(), self.first_data_day(token))
        last = min(end.astimezone(IST).date(), self.last_data_day(token))
        parts: list[Bars] = []
        for day in self.trading_days(first, last):
            if interval == ONE_DAY:
                bar = self.daily_bar(token, day)
                keep = bar.end_ms <= now_ms
            else:
                bar = aggregate(self.minute_bars(token, day), INTERVAL_MINUTES[interval])
                keep = (bar.ts_ms >= start_ms) & (bar.ts_ms <= end_ms) & (bar.end_ms <= now_ms)
            if len(bar):
                parts.append(bar.take(keep))
        if not parts:
            return empty_bars()
        return Bars(*(np.concatenate([getattr(p, f) for p in parts]) for f in Bars.__slots__))

    def candles(
        self, token: str, interval: str, start: datetime, end: datetime, *, now: datetime
    ) -> list[list[Any]]:
        """getCandleData rows (SPEC §3.1): ``[ISO time +05:30, open, high, low, close, volume]``
        with prices in rupees; only bars complete at ``now`` (see the module docstring)."""
        b = self.bars(token, interval, start, end, now=now)
        return [
            [_iso(int(ts)), o / 100, h / 100, lo / 100, c / 100, int(v)]
            for ts, o, h, lo, c, v in zip(
                b.ts_ms.tolist(),
                b.open.tolist(),
                b.high.tolist(),
                b.low.tolist(),
                b.close.tolist(),
                b.volume.tolist(),
                strict=True,
            )
        ]

    def oi_series(
        self, token: str, interval: str, start: datetime, end: datetime, *, now: datetime
    ) -> list[dict[str, Any]]:
        """getOIData rows (SPEC §3.2): ``{"time": ISO, "oi": int}`` at each complete bar's end."""
        b = self.bars(token, interval, start, end, now=now)
        return [
            {"time": _iso(ts), "oi": oi}
            for ts, oi in zip(b.ts_ms.tolist(), b.oi.tolist(), strict=True)
        ]

    # --- quotes -----------------------------------------------------------------------------

    def reference(self, token: str, day: date) -> DayReference:
        """Previous close, price band and 52-week range (before ``day``) of an instrument."""
        inst = self._require(token)
        key = (token, day.toordinal())
        ref = self._refs.get(key)
        if ref is None:
            ref = self._make_reference(inst, day)
            self._refs[key] = ref
        return ref

    def quote(self, token: str, at: datetime) -> Quote:
        """The instrument's state after its last tick at or before ``at`` (SPEC §3.4 FULL).

        Before the session's first tick it shows the previous session's final state; after the
        session date it holds at the session's close.
        """
        inst = self._require(token)
        at_ms = epoch_ms(at)
        day = at.astimezone(IST).date()
        if day > self.session_date:
            day, at_ms = self.session_date, _NO_LIMIT_MS
        elif not self.calendar.is_trading_day(day):
            day, at_ms = self.calendar.previous_trading_day(day), _NO_LIMIT_MS
        first = self.first_data_day(token)
        day = min(day, self.last_data_day(token))
        while day >= first:
            tape = self._tape(inst, day)
            i = tape.index_at(at_ms)
            if i >= 0:
                return self._quote_at(inst, day, tape, i)
            day, at_ms = self.calendar.previous_trading_day(day), _NO_LIMIT_MS
        return self._untraded_quote(inst, first)

    def book(self, token: str, ts_ms: int, ltp_paise: int) -> Book:
        """Best five bids/asks around a traded price at a tick instant (empty for indices)."""
        inst = self._require(token)
        if inst.kind == "index":
            return EMPTY_BOOK
        day = datetime.fromtimestamp(ts_ms / 1000, IST).date()
        return order_book(
            self.seed,
            int(token),
            ts_ms,
            ltp_paise,
            inst.grid_paise,
            self._book_unit(inst),
            self._liquidity(inst, day),
        )

    # --- the merged feed -------------------------------------------------------------------

    def tick_events(self, tokens: Iterable[str], start: datetime, end: datetime) -> TickEvents:
        """All ticks of ``tokens`` in ``[start, end)``, merged in time order (vectorised)."""
        insts = [self._require(t) for t in tokens]
        toks = tuple(i.token for i in insts)
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        if end_ms <= start_ms or not toks:
            return _empty_events(toks)
        first_day = start.astimezone(IST).date()
        last_day = datetime.fromtimestamp((end_ms - 1) / 1000, IST).date()
        chunks: list[tuple[int, Tape, TapeStats, int, int]] = []
        for day in self.trading_days(first_day, last_day):
            for k, inst in enumerate(insts):
                if not self._has_data(inst, day):
                    continue
                tape = self._tape(inst, day)
                lo, hi = np.searchsorted(tape.ts_ms, (start_ms, end_ms), side="left").tolist()
                if hi > lo:
                    chunks.append((k, tape, self._tape_stats(inst, day), lo, hi))
        if not chunks:
            return _empty_events(toks)
        if len(chunks) == 1:
            order: npt.NDArray[np.intp] | slice = slice(None)
        else:
            ts = np.concatenate([t.ts_ms[lo:hi] for _, t, _, lo, hi in chunks])
            order = np.argsort(ts, kind="stable")  # ties keep the order tokens were given

        def column(name: str) -> IntArray:
            parts = [getattr(t, name)[lo:hi] for _, t, _, lo, hi in chunks]
            out: IntArray = np.concatenate(parts).astype(np.int64, copy=False)[order]
            return out

        def stat(name: str) -> IntArray:
            parts = [getattr(x, name)[lo:hi] for _, _, x, lo, hi in chunks]
            out: IntArray = np.concatenate(parts).astype(np.int64, copy=False)[order]
            return out

        index = np.concatenate([np.full(hi - lo, k, np.int32) for k, _, _, lo, hi in chunks])
        opens = np.concatenate([np.full(hi - lo, t.open, np.int64) for _, t, _, lo, hi in chunks])
        return TickEvents(
            toks,
            index[order],
            column("ts_ms"),
            column("ltp"),
            column("qty"),
            column("cum_volume"),
            column("oi"),
            opens[order],
            stat("high"),
            stat("low"),
            stat("avg"),
            stat("total_buy"),
            stat("total_sell"),
        )

    # --- internals: world -------------------------------------------------------------------

    def _trading_days(self, start: date, end: date) -> list[date]:
        out: list[date] = []
        d = start
        is_trading = self.calendar.is_trading_day
        while d <= end:
            if is_trading(d):
                out.append(d)
            d += timedelta(days=1)
        return out

    def _day_index(self, day: date) -> int:
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        if i == len(self._days) or self._days[i] != day:
            raise ValueError(f"{day} is not a trading day of the simulated world")
        return i

    def _apply_scenario(self, world: dict[str, DailySeries], s: Scenario) -> dict[str, DailySeries]:
        j = self._session_index
        out: dict[str, DailySeries] = {}
        for token, series in world.items():
            u = underlying_by_token(token)
            assert u is not None
            is_vix = token == VIX_TOKEN
            gap = s.vix_gap if is_vix else s.open_gap
            move = s.vix_move if is_vix else s.session_move
            prev = float(series.close_paise[j - 1]) if j else float(series.open_paise[j])
            orig_open = float(series.open_paise[j])
            orig_close = float(series.close_paise[j])
            new_open = prev * math.exp(gap) if gap is not None else orig_open
            new_close = (
                new_open * math.exp(move) if move is not None else new_open * orig_close / orig_open
            )
            opens, closes = series.open_paise.copy(), series.close_paise.copy()
            vols = series.bridge_vol.copy()
            grid = u.spot_tick_paise
            opens[j] = max(grid, round(new_open / grid) * grid)
            closes[j] = max(grid, round(new_close / grid) * grid)
            vols[j] *= s.intraday_vol
            out[token] = DailySeries(series.ordinals, opens, closes, vols, series.regime)
        return out

    def _grid(self, day: date) -> tuple[IntArray, IntArray]:
        """(minute start ms, tick ms) of a trading day: one tick per second of every minute."""
        key = day.toordinal()
        with self._grid_lock:
            hit = self._grids.get(key)
        if hit is not None:
            return hit
        starts = self.calendar.trading_minutes(day)
        first = epoch_ms(starts[0]) if starts else 0
        if starts and starts[-1] - starts[0] == timedelta(minutes=len(starts) - 1):
            minutes = first + np.arange(len(starts), dtype=np.int64) * MINUTE_MS
        else:  # a split session: convert minute by minute
            minutes = np.array([epoch_ms(m) for m in starts], dtype=np.int64)
        seconds = (minutes[:, None] + np.arange(0, MINUTE_MS, 1000, dtype=np.int64)).ravel()
        grid = (minutes, seconds)
        with self._grid_lock:
            self._grids[key] = grid
        return grid

    def _has_data(self, inst: SimInstrument, day: date) -> bool:
        if day < self.first_data_day(inst.token) or day > self.last_data_day(inst.token):
            return False
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        return i < len(self._days) and self._days[i] == day

    def _require(self, token: str) -> SimInstrument:
        inst = self._by_token.get(token)
        if inst is None:
            raise KeyError(f"unknown token {token!r}: not in the simulator's instrument master")
        return inst

    def _rank_futures(self) -> dict[str, int]:
        by_name: dict[str, list[SimInstrument]] = {}
        for i in self._instruments:
            if i.kind == "future":
                by_name.setdefault(i.name, []).append(i)
        rank: dict[str, int] = {}
        for futures in by_name.values():
            for r, f in enumerate(sorted(futures, key=lambda f: f.expiry or date.max)):
                rank[f.token] = r
        return rank

    # --- internals: paths -------------------------------------------------------------------

    def _tape(self, inst: SimInstrument, day: date) -> Tape:
        """The cached tape of a (token, day) that has data."""
        key = (inst.token, day.toordinal())
        return self._tapes.get_or_make(key, lambda: self._record(inst, day))

    def _record(self, inst: SimInstrument, day: date) -> Tape:
        if inst.is_derivative:
            return record_tape(self._derivative_path(inst, day))
        return record_tape(self._underlying_path(inst, day))

    def _tape_stats(self, inst: SimInstrument, day: date) -> TapeStats:
        """The cached day-so-far values of a (token, day) that has data."""

        def make() -> TapeStats:
            tape = self._tape(inst, day)
            if inst.kind == "index":
                zeros = np.zeros(len(tape), dtype=np.int64)
                return tape_stats(tape, zeros, zeros)
            unit, liquidity = self._book_unit(inst), self._liquidity(inst, day)
            buy, sell = book_totals(self.seed, int(inst.token), tape.ts_ms, unit, liquidity)
            return tape_stats(tape, buy, sell)

        return self._stats.get_or_make((inst.token, day.toordinal()), make)

    def _shape(self, token: str, n: int, day: date) -> FloatArray | None:
        s = self.scenario
        if s is None or day != self.session_date or not s.crash_depth:
            return None
        if token == VIX_TOKEN:
            return -crash_shape(n, s.vix_crash_jump, CRASH_START, CRASH_BOTTOM, CRASH_RECOVERED)
        return crash_shape(n, s.crash_depth, CRASH_START, CRASH_BOTTOM, CRASH_RECOVERED)

    def _underlying_path(self, inst: SimInstrument, day: date) -> TickPath:
        u = underlying_by_token(inst.token)
        assert u is not None
        series = self._daily[inst.token]
        j = self._day_index(day)
        _, ts = self._grid(day)
        n = len(ts)
        shocks = intraday_shocks(self.seed, u.key, day, n)
        if inst.token == VIX_TOKEN:
            nifty = intraday_shocks(self.seed, underlying_by_name("NIFTY").key, day, n)
            own = math.sqrt(1.0 - _VIX_INTRADAY_CORR**2)
            shocks = _VIX_INTRADAY_CORR * nifty + own * shocks
        prices = bridge_path(
            shocks,
            int(series.open_paise[j]),
            int(series.close_paise[j]),
            float(series.bridge_vol[j]),
            inst.grid_paise,
            self._shape(inst.token, n, day),
        )
        if u.kind == "equity":
            rng = stream(self.seed, STREAM_TRADES, u.key, day.toordinal())
            per_tick = u.avg_daily_volume / n
            size = per_tick * volume_profile(n) * (0.2 + 1.6 * rng.random(n))
            qty = np.maximum(1, size.astype(np.int64))
        else:
            qty = np.zeros(n, dtype=np.int64)
        return TickPath(ts, prices, qty, np.cumsum(qty), np.zeros(n, dtype=np.int64))

    def _book_unit(self, inst: SimInstrument) -> int:
        """Order size the book is counted in: a lot, or for a stock a typical clip of shares."""
        if inst.kind == "equity":
            return max(1, self.underlying(inst.token).avg_daily_volume // 50_000)
        return inst.lot

    def _liquidity(self, inst: SimInstrument, day: date) -> float:
        """How actively a contract trades, in (0, 1]: 1 = near-month future, ATM option."""
        if inst.kind == "future":
            return (1.0, 0.4, 0.15)[min(self._futures_rank.get(inst.token, 2), 2)]
        if inst.kind != "option":
            return 1.0
        assert inst.strike_paise is not None
        u = self.underlying(inst.token)
        j = self._day_index(day)
        spot = int(self._daily[inst.underlying_token].open_paise[j])
        away = abs(inst.strike_paise - spot) / u.strike_step_paise
        return min(1.0, max(0.03, math.exp(-away / 5.0)))

    def _expiry_close_ms(self, inst: SimInstrument) -> int:
        assert inst.expiry is not None
        return epoch_ms(datetime.combine(inst.expiry, EXPIRY_CLOSE, tzinfo=IST))

    def _model_prices(
        self,
        inst: SimInstrument,
        spot_paise: npt.NDArray[np.integer[Any]],
        vix_paise: npt.NDArray[np.integer[Any]],
        ts_ms: IntArray,
    ) -> IntArray:
        """Futures/option prices (paise on the contract's grid) from spot and VIX at instants."""
        t = (self._expiry_close_ms(inst) - ts_ms) / 1000.0 / SECONDS_PER_YEAR
        spot = spot_paise / 100.0
        if inst.kind == "future":
            return to_grid(futures_prices(spot, t, RISK_FREE_RATE), inst.grid_paise)
        assert inst.strike_paise is not None
        u = self.underlying(inst.token)
        vix_level = vix_paise / 100.0
        if u.kind == "index":
            atm = vix_level / 100.0 * u.vix_iv_factor
        else:
            atm = u.option_vol * np.sqrt(vix_level / VIX_MEAN)
        strike = inst.strike_paise / 100.0
        forward = futures_prices(spot, t, RISK_FREE_RATE)
        vol = smile_vol(atm, forward, strike, t)
        values = bs_prices(inst.option_type == "CE", spot, strike, t, RISK_FREE_RATE, vol)
        return to_grid(values, inst.grid_paise, floor_one_tick=True)

    def _derivative_path(self, inst: SimInstrument, day: date) -> TickPath:
        under = self._tape(self._by_token[inst.underlying_token], day)
        vix = self._tape(self._by_token[VIX_TOKEN], day)
        n = len(under)
        liquidity = self._liquidity(inst, day)
        rng = stream(self.seed, STREAM_TRADES, int(inst.token), day.toordinal())
        profile = volume_profile(n)
        chance = np.minimum((0.02 + 0.45 * liquidity) * profile, 1.0)
        trades = rng.random(n) < chance
        trades[::60] = True  # every session minute opens with a trade
        trades[-1] = True  # and the session's last second trades: the day's close
        idx = np.flatnonzero(trades)
        ts = under.ts_ms[idx]
        prices = self._model_prices(inst, under.ltp[idx], vix.ltp[idx], ts)
        rate = (3.0 + 10.0 * liquidity) if inst.kind == "future" else (0.5 + 12.0 * liquidity)
        lots = 1 + rng.poisson(rate * profile[idx])
        qty = lots.astype(np.int64) * inst.lot
        oi = self._oi_path(inst, day, len(idx), rng)
        return TickPath(ts, prices, qty, np.cumsum(qty), oi)

    def _oi_lots(self, inst: SimInstrument, day: date) -> int:
        """Open interest (lots) at the start of ``day``."""
        assert inst.listed_from is not None
        u = self.underlying(inst.token)
        j = self._day_index(day)
        ref = int(self._daily[inst.underlying_token].close_paise[max(j - 1, 0)])
        if inst.kind == "future":
            liquidity = self._liquidity(inst, day)
            base = 150_000 if u.kind == "index" else 40_000
        else:
            assert inst.strike_paise is not None
            away = abs(inst.strike_paise - ref) / u.strike_step_paise
            liquidity = max(0.02, math.exp(-away / 8.0))
            base = 120_000 if u.kind == "index" else 6_000
        age = (day - inst.listed_from).days
        build_up = min(1.0, (age + 1) / 25.0)
        wobble = 0.9 + 0.2 * stream(self.seed, STREAM_OI, int(inst.token), day.toordinal()).random()
        return max(0, round(base * liquidity * build_up * wobble))

    def _oi_path(
        self, inst: SimInstrument, day: date, n: int, rng: np.random.Generator
    ) -> IntArray:
        start = self._oi_lots(inst, day)
        if day == inst.expiry or day >= self._days[-1]:
            end = start
        else:
            end = self._oi_lots(inst, self.calendar.next_trading_day(day))
        frac = np.linspace(0.0, 1.0, n)
        walk = np.cumsum(rng.standard_normal(n)) * max(1.0, 0.002 * start)
        walk -= frac * walk[-1]
        lots = np.maximum(0, np.rint(start + frac * (end - start) + walk)).astype(np.int64)
        lots[0], lots[-1] = start, end
        out: IntArray = lots * inst.lot
        return out

    # --- internals: quotes ------------------------------------------------------------------

    def _theoretical_closes(self, inst: SimInstrument, days: list[date]) -> IntArray:
        """Model closing prices of a contract on past days, from daily closes (no tick paths)."""
        if not days:
            return np.empty(0, dtype=np.int64)
        idx = np.array([self._day_index(d) for d in days])
        spot = self._daily[inst.underlying_token].close_paise[idx]
        vix = self._daily[VIX_TOKEN].close_paise[idx]
        ts = np.array(
            [epoch_ms(datetime.combine(d, time(15, 29, 59), tzinfo=IST)) for d in days],
            dtype=np.int64,
        )
        return self._model_prices(inst, spot, vix, ts)

    def _close_of(self, inst: SimInstrument, day: date) -> int:
        if not inst.is_derivative:
            return int(self._daily[inst.underlying_token].close_paise[self._day_index(day)])
        if day >= self.first_data_day(inst.token):
            return int(self._tape(inst, day).ltp[-1])
        return int(self._theoretical_closes(inst, [day])[0])

    def _make_reference(self, inst: SimInstrument, day: date) -> DayReference:
        prev_day = self.calendar.previous_trading_day(day)
        if prev_day < EPOCH:
            prev_day = self._days[0]
        prev_close = self._close_of(inst, prev_day)
        year_ago = day - timedelta(days=365)
        if inst.is_derivative:
            assert inst.listed_from is not None
            days = self.trading_days(max(year_ago, inst.listed_from, EPOCH), prev_day)
            closes = self._theoretical_closes(inst, days)
        else:
            lo = bisect.bisect_left(self._days, year_ago)
            hi = bisect.bisect_right(self._days, prev_day)
            closes = self._daily[inst.underlying_token].close_paise[lo:hi]
        closes = np.append(closes, prev_close)
        upper, lower = price_band(inst, prev_close, self._close_of_underlying(inst, prev_day))
        return DayReference(prev_close, upper, lower, int(closes.max()), int(closes.min()))

    def _close_of_underlying(self, inst: SimInstrument, day: date) -> int:
        return int(self._daily[inst.underlying_token].close_paise[self._day_index(day)])

    def _quote_at(self, inst: SimInstrument, day: date, tape: Tape, i: int) -> Quote:
        ref = self.reference(inst.token, day)
        stats = self._tape_stats(inst, day)
        ltp = int(tape.ltp[i])
        ts = int(tape.ts_ms[i])
        high = int(stats.high[i])
        low = int(stats.low[i])
        book = self.book(inst.token, ts, ltp)
        return Quote(
            token=inst.token,
            exchange=inst.exchange,
            symbol=inst.symbol,
            ltp_paise=ltp,
            open_paise=tape.open,
            high_paise=high,
            low_paise=low,
            close_paise=ref.prev_close,
            volume=int(tape.cum_volume[i]),
            avg_paise=int(stats.avg[i]),
            oi=int(tape.oi[i]),
            last_trade_qty=int(tape.qty[i]),
            last_trade_ms=ts,
            total_buy_qty=int(stats.total_buy[i]),
            total_sell_qty=int(stats.total_sell[i]),
            bids=book.bids,
            asks=book.asks,
            upper_circuit_paise=ref.upper_circuit,
            lower_circuit_paise=ref.lower_circuit,
            week52_high_paise=max(ref.week52_high, high),
            week52_low_paise=min(ref.week52_low, low),
        )

    def _untraded_quote(self, inst: SimInstrument, first_day: date) -> Quote:
        ref = self.reference(inst.token, first_day)
        return Quote(
            token=inst.token,
            exchange=inst.exchange,
            symbol=inst.symbol,
            ltp_paise=ref.prev_close,
            open_paise=0,
            high_paise=0,
            low_paise=0,
            close_paise=ref.prev_close,
            volume=0,
            avg_paise=0,
            oi=0,
            last_trade_qty=0,
            last_trade_ms=0,
            total_buy_qty=0,
            total_sell_qty=0,
            bids=EMPTY_BOOK.bids,
            asks=EMPTY_BOOK.asks,
            upper_circuit_paise=ref.upper_circuit,
            lower_circuit_paise=ref.lower_circuit,
            week52_high_paise=ref.week52_high,
            week52_low_paise=ref.week52_low,
        )


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, IST).isoformat()
