"""Data gaps in bar history: the expected bar grid, gap runs, what to do about each, and ranking.

Expected bars come from the NSE calendar: an N-minute interval has one bar every N minutes from
each normal-market window's open, the last one cut short at the window's close (the 1-hour bar
that starts 15:15 ends 15:30); a daily interval has one bar per trading day. A *gap* is a run
of consecutive expected bars that are missing: intraday runs stay inside one window of one
session, daily runs may span several consecutive trading days.

What happens to a gap (DESIGN safety invariant 7):

* a 1-minute gap of fewer than :data:`INTERPOLATE_BELOW_MINUTES` minutes on an *underlying*
  (index, stock, INDIA VIX) with a real bar on each side may be filled by linear
  interpolation (``interpolated``);
* everything else — any option, any future, anything not known to be an underlying, longer
  gaps, gaps at a session edge — is queued for download again (``redownload``).

Ranking: :func:`gap_score` orders gaps by importance, highest first::

    score = kind weight + recency + length
    kind weight = 300 underlying, 200 future, 100 option, 0 unknown symbol
    recency     = 50 * 0.5 ** (age / 10)        age = sessions between the gap and the
                                                latest session checked (0 = that session)
    length      = min(49, 7 * log2(1 + minutes))

Recency plus length stays below 100, so every underlying gap outranks every future gap, which
outranks every option gap; within a kind, recency halves every ten sessions and length counts
in doublings (1 minute → 7, 15 minutes → 28, a whole session → capped at 49).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAILY",
    "INTERPOLATE_BELOW_MINUTES",
    "INTRADAY_MINUTES",
    "BarGrid",
    "Gap",
    "GapAction",
    "InstrumentKind",
    "InterpolatedBar",
    "SessionCalendar",
    "bar_grid",
    "classify_symbol",
    "contract_expiry",
    "day_runs",
    "find_gaps",
    "future_contract",
    "gap_action",
    "gap_of_run",
    "gap_score",
    "gaps_from_slots",
    "interpolate_gap",
    "last_completed_session",
    "sessions_age",
    "trading_days",
]

DAILY: Final = "1d"
INTRADAY_MINUTES: Final[dict[str, int]] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}
INTERPOLATE_BELOW_MINUTES: Final = 5
_MAX_LOOKBACK_DAYS = 366

_US_PER_MINUTE = 60_000_000
_EPOCH_DAY = date(1970, 1, 1)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
# SmartAPI F&O trading symbols: NAME + DDMONYY + (strike + CE|PE | FUT), e.g. NIFTY25NOV2525000CE.
_EXPIRY = r"^(?P<name>.+?)(?P<d>\d{2})(?P<m>[A-Z]{3})(?P<y>\d{2})"
_OPTION = re.compile(_EXPIRY + r"\d+(?:\.\d+)?(?:CE|PE)$")
_FUTURE = re.compile(_EXPIRY + r"FUT$")
_UNDERLYING_TYPES = frozenset({"AMXIDX", "", "EQ"})


class SessionCalendar(Protocol):
    """The part of ``market.calendar.NseCalendar`` the grid needs."""

    def is_trading_day(self, day: date) -> bool: ...

    def session_windows(self, day: date) -> list[tuple[datetime, datetime]]: ...


class InstrumentKind(StrEnum):
    """What a bar series is of; decides ranking and whether interpolation is allowed."""

    UNDERLYING = "underlying"
    FUTURE = "future"
    OPTION = "option"
    OTHER = "other"


class GapAction(StrEnum):
    """What was (or is to be) done about a gap; the ``action`` column of the gaps dataset."""

    INTERPOLATED = "interpolated"
    REDOWNLOAD = "redownload"
    RESOLVED = "resolved"  # queued earlier, present now
    UNAVAILABLE = "unavailable"  # asked for again, the broker had nothing: not queued again


_KIND_WEIGHT: Final[dict[InstrumentKind, float]] = {
    InstrumentKind.UNDERLYING: 300.0,
    InstrumentKind.FUTURE: 200.0,
    InstrumentKind.OPTION: 100.0,
    InstrumentKind.OTHER: 0.0,
}


def _symbol_date(match: re.Match[str]) -> date | None:
    month = _MONTHS.get(match["m"])
    if month is None:
        return None
    try:
        return date(2000 + int(match["y"]), month, int(match["d"]))
    except ValueError:
        return None


def contract_expiry(symbol: str) -> date | None:
    """Expiry written in a SmartAPI future or option symbol (``NIFTY25NOV25FUT``), else None."""
    match = _OPTION.match(symbol) or _FUTURE.match(symbol)
    return _symbol_date(match) if match else None


def future_contract(symbol: str) -> tuple[str, date] | None:
    """(underlying name, expiry) of a SmartAPI futures symbol, or None for anything else."""
    match = _FUTURE.match(symbol)
    if match is None:
        return None
    expiry = _symbol_date(match)
    return (match["name"], expiry) if expiry is not None else None


def classify_symbol(
    symbol: str,
    *,
    instrument_type: str | None = None,
    underlyings: Collection[str] = (),
) -> InstrumentKind:
    """Kind of a bar series from its master instrument type, else its symbol's shape.

    Only a symbol proven to be an underlying (index or cash type in the master, a configured
    underlying name, or an ``-EQ`` cash symbol) is ever ``UNDERLYING``: anything unknown is
    ``OTHER`` and never interpolated.
    """
    if instrument_type is not None:
        kind = instrument_type.upper()
        if kind.startswith("OPT"):
            return InstrumentKind.OPTION
        if kind.startswith("FUT"):
            return InstrumentKind.FUTURE
        if kind in _UNDERLYING_TYPES:
            return InstrumentKind.UNDERLYING
        return InstrumentKind.OTHER
    if _OPTION.match(symbol):
        return InstrumentKind.OPTION
    if _FUTURE.match(symbol):
        return InstrumentKind.FUTURE
    if symbol in underlyings or symbol.endswith("-EQ"):
        return InstrumentKind.UNDERLYING
    return InstrumentKind.OTHER


def trading_days(calendar: SessionCalendar, first: date, last: date) -> list[date]:
    """Trading days from ``first`` to ``last`` inclusive."""
    days: list[date] = []
    day = first
    while day <= last:
        if calendar.is_trading_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def last_completed_session(calendar: SessionCalendar, now: datetime) -> date:
    """The latest session whose normal market had closed by the aware instant ``now``."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    day = (now.astimezone(UTC) + timedelta(hours=5, minutes=30)).date()  # IST, no DST
    for _ in range(_MAX_LOOKBACK_DAYS):
        windows = calendar.session_windows(day) if calendar.is_trading_day(day) else []
        if windows and windows[-1][1] <= now:
            return day
        day -= timedelta(days=1)
    raise ValueError(f"no trading session within {_MAX_LOOKBACK_DAYS} days before {now}")


def day_runs(days: Sequence[date], keep: Collection[date]) -> list[tuple[date, date]]:
    """Runs of consecutive entries of ``days`` (sorted sessions) that are in ``keep``."""
    runs: list[tuple[date, date]] = []
    start: date | None = None
    previous: date | None = None
    for day in days:
        if day in keep:
            start = start or day
            previous = day
        elif start is not None and previous is not None:
            runs.append((start, previous))
            start = None
    if start is not None and previous is not None:
        runs.append((start, previous))
    return runs


def sessions_age(days: Sequence[date], day: date) -> int:
    """Sessions from ``day`` to the last of ``days`` (sorted trading days): 0 for the last."""
    if not days:
        return 0
    index = bisect_right(days, day) - 1
    return max(0, len(days) - 1 - max(index, 0))


def _epoch_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True, eq=False)
class BarGrid:
    """Every expected bar of one interval over a run of days, in time order.

    ``key`` is what a stored bar matches on: its start in UTC epoch microseconds for intraday
    intervals, its IST calendar day as days since 1970-01-01 for the daily interval. ``slot``
    numbers the bars and skips one number at every break a gap may not span (between windows
    and sessions, intraday only), so runs of consecutive slots are gaps.
    """

    interval: str
    slot: npt.NDArray[np.int64]
    key: npt.NDArray[np.int64]
    session_day: npt.NDArray[np.int64]  # days since 1970-01-01
    start_us: npt.NDArray[np.int64]
    end_us: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.slot)

    @property
    def daily(self) -> bool:
        """True for the daily interval."""
        return self.interval == DAILY

    def slot_range(self, first: date, last: date) -> tuple[int, int] | None:
        """First and last slot of the sessions ``first``..``last``, or None if there are none."""
        lo = int(np.searchsorted(self.session_day, (first - _EPOCH_DAY).days, side="left"))
        hi = int(np.searchsorted(self.session_day, (last - _EPOCH_DAY).days, side="right"))
        if hi <= lo:
            return None
        return int(self.slot[lo]), int(self.slot[hi - 1])


def _bars_of_day(
    calendar: SessionCalendar, day: date, interval: str
) -> list[list[tuple[datetime, datetime]]]:
    """The day's expected bars, one list per window: [(start, end), ...]."""
    windows = calendar.session_windows(day)
    if interval == DAILY:
        return [[(windows[0][0], windows[-1][1])]] if windows else []
    step = timedelta(minutes=_interval_minutes(interval))
    out: list[list[tuple[datetime, datetime]]] = []
    for opens, closes in windows:
        bars: list[tuple[datetime, datetime]] = []
        start = opens
        while start < closes:
            bars.append((start, min(start + step, closes)))
            start += step
        out.append(bars)
    return out


def _interval_minutes(interval: str) -> int:
    try:
        return INTRADAY_MINUTES[interval]
    except KeyError:
        allowed = ", ".join([*INTRADAY_MINUTES, DAILY])
        raise ValueError(f"interval {interval!r} is not one of {allowed}") from None


def bar_grid(calendar: SessionCalendar, days: Iterable[date], interval: str) -> BarGrid:
    """The expected bars of ``interval`` on each of ``days`` (trading days, ascending)."""
    if interval != DAILY:
        _interval_minutes(interval)
    slots: list[int] = []
    keys: list[int] = []
    session_days: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    slot = 0
    for day in days:
        day_number = (day - _EPOCH_DAY).days
        for window in _bars_of_day(calendar, day, interval):
            for start, end in window:
                start_us = _epoch_us(start)
                slots.append(slot)
                keys.append(day_number if interval == DAILY else start_us)
                session_days.append(day_number)
                starts.append(start_us)
                ends.append(_epoch_us(end))
                slot += 1
            if interval != DAILY:
                slot += 1  # a break: intraday gaps never span windows or sessions

    def arr(values: list[int]) -> npt.NDArray[np.int64]:
        return np.asarray(values, dtype=np.int64)

    return BarGrid(interval, arr(slots), arr(keys), arr(session_days), arr(starts), arr(ends))


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing bars; ``end`` is exclusive (the end of the last missing bar)."""

    symbol: str
    interval: str
    session_date: date  # the first missing bar's session
    start: datetime
    end: datetime
    bars: int
    minutes: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("gap bounds must be timezone-aware")
        if not self.end > self.start:
            raise ValueError(f"gap ends ({self.end}) before it starts ({self.start})")
        if self.bars < 1 or self.minutes < 1:
            raise ValueError("a gap has at least one bar and one minute")


def gaps_from_slots(symbol: str, grid: BarGrid, missing: Iterable[int]) -> list[Gap]:
    """Group missing slot numbers of ``grid`` into gaps (runs of consecutive slots)."""
    slots = sorted(set(missing))
    gaps: list[Gap] = []
    run_start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i] != slots[i - 1] + 1:
            gaps.append(gap_of_run(symbol, grid, slots[run_start], slots[i - 1]))
            run_start = i
    return gaps


def gap_of_run(symbol: str, grid: BarGrid, first_slot: int, last_slot: int) -> Gap:
    """The gap made of grid slots ``first_slot``..``last_slot`` (consecutive, all missing)."""
    lo = int(np.searchsorted(grid.slot, first_slot))
    hi = int(np.searchsorted(grid.slot, last_slot))
    if (
        hi < lo
        or hi >= len(grid)
        or int(grid.slot[lo]) != first_slot
        or int(grid.slot[hi]) != last_slot
        or hi - lo != last_slot - first_slot
    ):
        raise ValueError(f"slots {first_slot}..{last_slot} are not one run of the grid")
    micros = int((grid.end_us[lo : hi + 1] - grid.start_us[lo : hi + 1]).sum())
    return Gap(
        symbol,
        grid.interval,
        _EPOCH_DAY + timedelta(days=int(grid.session_day[lo])),
        _from_us(int(grid.start_us[lo])),
        _from_us(int(grid.end_us[hi])),
        hi - lo + 1,
        micros // _US_PER_MINUTE,
    )


def _present_key(moment: datetime, daily: bool) -> int:
    if daily:
        # the IST calendar day: daily candles are stamped 00:00 IST
        ist = moment.astimezone(UTC) + timedelta(hours=5, minutes=30)
        return (ist.date() - _EPOCH_DAY).days
    return _epoch_us(moment)


def find_gaps(
    symbol: str,
    grid: BarGrid,
    present: Iterable[datetime],
    first: date | None = None,
    last: date | None = None,
) -> list[Gap]:
    """Gaps of one symbol: grid bars (of sessions ``first``..``last``) with no present bar."""
    have = {_present_key(moment, grid.daily) for moment in present}
    days = grid.session_day
    lo = 0 if first is None else bisect_left(days.tolist(), (first - _EPOCH_DAY).days)
    hi = len(grid) if last is None else bisect_right(days.tolist(), (last - _EPOCH_DAY).days)
    missing = [int(grid.slot[i]) for i in range(lo, hi) if int(grid.key[i]) not in have]
    return gaps_from_slots(symbol, grid, missing)


def gap_action(gap: Gap, kind: InstrumentKind, *, bounded: bool) -> GapAction:
    """Interpolate only short 1-minute underlying gaps with a real bar on both sides."""
    if (
        kind is InstrumentKind.UNDERLYING
        and gap.interval == "1m"
        and gap.minutes < INTERPOLATE_BELOW_MINUTES
        and bounded
    ):
        return GapAction.INTERPOLATED
    return GapAction.REDOWNLOAD


@dataclass(frozen=True, slots=True)
class InterpolatedBar:
    """One filled-in minute, prices in paise."""

    start: datetime
    open_paise: int
    high_paise: int
    low_paise: int
    close_paise: int


def _div_round(numerator: int, denominator: int) -> int:
    """Integer division rounding half away from zero."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def interpolate_gap(
    gap: Gap, kind: InstrumentKind, before_close_paise: int, after_open_paise: int
) -> list[InterpolatedBar]:
    """Minute bars on the straight line from the close before the gap to the open after it.

    With n missing minutes the line is cut at n + 1 equally spaced points; bar k opens at
    point k - 1 and closes at point k, so the last one closes at the next real bar's open.
    Raises ValueError for anything :func:`gap_action` would not interpolate.
    """
    if gap_action(gap, kind, bounded=True) is not GapAction.INTERPOLATED:
        raise ValueError(
            f"{gap.symbol} {gap.interval} gap of {gap.minutes} min ({kind.value}) "
            "may not be interpolated"
        )
    n = gap.bars
    p0, p1 = before_close_paise, after_open_paise
    points = [p0 + _div_round((p1 - p0) * j, n) for j in range(n + 1)]
    step = timedelta(minutes=1)
    return [
        InterpolatedBar(
            gap.start + k * step,
            points[k],
            max(points[k], points[k + 1]),
            min(points[k], points[k + 1]),
            points[k + 1],
        )
        for k in range(n)
    ]


def gap_score(kind: InstrumentKind, minutes: int, age_sessions: int) -> float:
    """Importance of a gap (higher first); see the module docstring for the formula."""
    if minutes < 0 or age_sessions < 0:
        raise ValueError(f"minutes ({minutes}) and age ({age_sessions}) must be >= 0")
    recency = 50.0 * math.pow(0.5, age_sessions / 10)
    length = min(49.0, 7.0 * math.log2(1 + minutes))
    return _KIND_WEIGHT[kind] + recency + length
