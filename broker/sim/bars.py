"""Tick paths and the bars built from them: minute bars from ticks, longer bars from minutes.

Everything is an exact aggregation (bar high = highest tick, volume = sum of trade quantities, OI =
last tick's), so the WebSocket feed and the candle history can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

MINUTE_MS = 60_000

#: getCandleData intervals (SPEC §3.1) → bar length in minutes; ONE_DAY is the whole session.
INTERVAL_MINUTES: dict[str, int] = {
    "ONE_MINUTE": 1,
    "THREE_MINUTE": 3,
    "FIVE_MINUTE": 5,
    "TEN_MINUTE": 10,
    "FIFTEEN_MINUTE": 15,
    "THIRTY_MINUTE": 30,
    "ONE_HOUR": 60,
}
ONE_DAY = "ONE_DAY"
INTERVALS = (*INTERVAL_MINUTES, ONE_DAY)


def epoch_ms(at: datetime) -> int:
    """Epoch milliseconds of an aware instant; ValueError for a naive one."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()!r}: pass an aware datetime")
    return round(at.timestamp() * 1000)


def _empty() -> IntArray:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class TickPath:
    """Every tick of one instrument on one day (int64 arrays of equal length, ascending time).

    ``ts_ms`` is epoch milliseconds; ``ltp_paise`` sits on the instrument's price grid;
    ``last_qty`` is each trade's quantity and ``cum_volume`` its running sum; ``oi`` the open
    interest after the tick (0 for cash and indices).
    """

    ts_ms: IntArray = field(default_factory=_empty)
    ltp_paise: IntArray = field(default_factory=_empty)
    last_qty: IntArray = field(default_factory=_empty)
    cum_volume: IntArray = field(default_factory=_empty)
    oi: IntArray = field(default_factory=_empty)

    def __len__(self) -> int:
        return len(self.ts_ms)

    def index_at(self, at_ms: int) -> int:
        """Index of the last tick at or before ``at_ms`` (-1 if none)."""
        return int(np.searchsorted(self.ts_ms, at_ms, side="right")) - 1


@dataclass(frozen=True, slots=True, eq=False)
class RunningStats:
    """Day-so-far values after each tick: open, high, low, volume-weighted average price."""

    open_paise: int
    high_paise: IntArray
    low_paise: IntArray
    avg_paise: IntArray  # 0 where nothing has traded (indices)


def running_stats(path: TickPath) -> RunningStats:
    """Day-so-far open/high/low/average after each tick of ``path``."""
    if not len(path):
        return RunningStats(0, _empty(), _empty(), _empty())
    high = np.maximum.accumulate(path.ltp_paise)
    low = np.minimum.accumulate(path.ltp_paise)
    turnover = np.cumsum(path.ltp_paise * path.last_qty)
    volume = path.cum_volume
    safe = np.where(volume > 0, volume, 1)
    # Half-up rounding of turnover / volume in integers.
    avg = np.where(volume > 0, (2 * turnover + safe) // (2 * safe), 0)
    return RunningStats(int(path.ltp_paise[0]), high, low, avg.astype(np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """OHLCV bars (paise) with OI at each bar's last tick; ``ts_ms`` is each bar's start and
    ``end_ms`` its end (the instant from which it is complete)."""

    ts_ms: IntArray
    end_ms: IntArray
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    oi: IntArray

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, mask: npt.NDArray[np.bool_]) -> Bars:
        """The bars where ``mask`` holds."""
        return Bars(*(getattr(self, f)[mask] for f in _BAR_FIELDS))


_BAR_FIELDS = ("ts_ms", "end_ms", "open", "high", "low", "close", "volume", "oi")

#: Minute bars are plain ``Bars`` whose bars are one minute long.
MinuteBars = Bars


def empty_bars() -> Bars:
    return Bars(*(_empty() for _ in _BAR_FIELDS))


def minute_bars(path: TickPath, minute_starts_ms: IntArray) -> Bars:
    """Minute bars of ``path`` over the session minutes; every minute must hold a tick."""
    if not len(path):
        return empty_bars()
    starts = np.searchsorted(path.ts_ms, minute_starts_ms, side="left")
    ends = np.append(starts[1:], len(path))
    if np.any(ends <= starts):
        raise ValueError("a session minute has no tick; minute bars would be incomplete")
    price = path.ltp_paise
    return Bars(
        ts_ms=minute_starts_ms.astype(np.int64),
        end_ms=(minute_starts_ms + MINUTE_MS).astype(np.int64),
        open=price[starts],
        high=np.maximum.reduceat(price, starts),
        low=np.minimum.reduceat(price, starts),
        close=price[ends - 1],
        volume=np.add.reduceat(path.last_qty, starts),
        oi=path.oi[ends - 1],
    )


def aggregate(minutes: Bars, bar_minutes: int, day_start_ms: int | None = None) -> Bars:
    """Group consecutive session minutes into bars of ``bar_minutes``, aligned to the first
    minute (the session open); the last bar may be shorter (15:15–15:30 for one hour).

    ``day_start_ms`` given → one bar for the whole session stamped at that instant (ONE_DAY).
    """
    n = len(minutes)
    if n == 0:
        return minutes
    if day_start_ms is not None:
        starts = np.array([0])
        ts = np.array([day_start_ms], dtype=np.int64)
    else:
        offset = (minutes.ts_ms - minutes.ts_ms[0]) // (bar_minutes * MINUTE_MS)
        starts = np.flatnonzero(np.diff(offset, prepend=-1))
        ts = minutes.ts_ms[0] + offset[starts] * bar_minutes * MINUTE_MS
    last = np.append(starts[1:], n) - 1
    return Bars(
        ts_ms=ts,
        end_ms=minutes.end_ms[last],
        open=minutes.open[starts],
        high=np.maximum.reduceat(minutes.high, starts),
        low=np.minimum.reduceat(minutes.low, starts),
        close=minutes.close[last],
        volume=np.add.reduceat(minutes.volume, starts),
        oi=minutes.oi[last],
    )
