"""Candles against the NSE session grid: which bars a day should have, whether fetched bars are
sound, and which trading days are still missing from a series.

Bars start on the session grid: one-minute bars at every minute of the normal market (09:15 to
15:29 on a regular day), N-minute bars every N minutes from the day's first open (so one-hour
bars start 09:15, 10:15, …, 15:15 and the last one is only 15 minutes long), daily bars at
00:00 IST of each trading day. A special session (Muhurat, a split day) keeps the same rule
from its own first open.

Pure: no I/O, no clock. "Now" and the calendar are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

IST: Final = ZoneInfo("Asia/Kolkata")
DAILY: Final = "1d"

# Our interval names and their length in minutes; the daily interval has no fixed length.
INTERVAL_MINUTES: Final[Mapping[str, int]] = MappingProxyType(
    {"1m": 1, "3m": 3, "5m": 5, "10m": 10, "15m": 15, "30m": 30, "1h": 60}
)
INTERVALS: Final = (*INTERVAL_MINUTES, DAILY)

# How long after the close a session's candles are taken to be final at the broker.
SETTLE_AFTER_CLOSE: Final = timedelta(minutes=15)


class SessionCalendar(Protocol):
    """The part of the exchange calendar candle checks need (``market.calendar.NseCalendar``)."""

    def is_trading_day(self, day: date) -> bool: ...

    def next_trading_day(self, day: date) -> date: ...

    def previous_trading_day(self, day: date) -> date: ...

    def session_windows(self, day: date) -> list[tuple[datetime, datetime]]: ...


class Ohlcv(Protocol):
    """One candle as fetched: start instant (aware), prices in rupees, volume in units."""

    @property
    def start(self) -> datetime: ...

    @property
    def open(self) -> Decimal: ...

    @property
    def high(self) -> Decimal: ...

    @property
    def low(self) -> Decimal: ...

    @property
    def close(self) -> Decimal: ...

    @property
    def volume(self) -> int: ...


C = TypeVar("C", bound=Ohlcv)


def check_interval(interval: str) -> str:
    """Return ``interval`` if it is one we know, else raise ValueError listing the allowed."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown candle interval {interval!r}; allowed: {', '.join(INTERVALS)}")
    return interval


def session_day(instant: datetime) -> date:
    """The IST calendar day of an aware instant (a daily candle at 00:00 IST is its session)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone")
    return instant.astimezone(IST).date()


# ---------------------------------------------------------------------------------------------
# The session grid


def bar_starts(day: date, interval: str, calendar: SessionCalendar) -> list[datetime]:
    """Start instants (aware, IST) of every bar ``interval`` has on ``day``; [] when closed.

    An N-minute bar exists wherever its span [start, start + N) overlaps a normal-market
    window, with starts counted from the day's first open.
    """
    check_interval(interval)
    windows = calendar.session_windows(day)
    if not windows:
        return []
    if interval == DAILY:
        return [datetime.combine(day, time(0), tzinfo=IST)]
    step = timedelta(minutes=INTERVAL_MINUTES[interval])
    first_open = windows[0][0]
    starts: list[datetime] = []
    for opens, closes in windows:
        # The first grid point whose bar reaches into this window.
        k = max(0, (opens - first_open - step) // step + 1)
        start = first_open + k * step
        while start < closes:
            if not starts or start > starts[-1]:
                starts.append(start.astimezone(IST))
            start += step
    return starts


def expected_bars(day: date, interval: str, calendar: SessionCalendar) -> int:
    """How many bars ``interval`` has on ``day`` (375 one-minute bars on a regular day)."""
    return len(bar_starts(day, interval, calendar))


# ---------------------------------------------------------------------------------------------
# Checking fetched candles


@dataclass(frozen=True, slots=True)
class CandleProblem:
    """Why one fetched candle was refused; ``index`` is its position in the fetched list."""

    index: int
    start: datetime
    reason: str

    def __str__(self) -> str:
        return f"candle {self.index} at {self.start.isoformat()}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CandleCheck(Generic[C]):
    """Candles fit to keep, and one problem for each candle refused."""

    good: tuple[C, ...]
    problems: tuple[CandleProblem, ...]


def candle_problem(candle: Ohlcv) -> str | None:
    """What is wrong with one candle's prices and volume, or None when they are sound."""
    prices = (candle.open, candle.high, candle.low, candle.close)
    if not all(price.is_finite() and price > 0 for price in prices):
        return "prices must be positive: " + "/".join(str(p) for p in prices)
    if candle.high < max(candle.open, candle.close):
        return f"high {candle.high} is below the open or close"
    if candle.low > min(candle.open, candle.close):
        return f"low {candle.low} is above the open or close"
    if candle.volume < 0:
        return f"volume {candle.volume} is negative"
    return None


def check_candles(candles: Sequence[C], interval: str, calendar: SessionCalendar) -> CandleCheck[C]:
    """Keep the candles that are sound and start on the session grid; report the rest.

    Refused: non-positive prices, a high below the open or close, a low above them, a negative
    volume, a start off the grid of ``interval`` (or on a day NSE did not trade), a naive
    start, and a second candle with the start of an earlier one.
    """
    check_interval(interval)
    grids: dict[date, frozenset[datetime]] = {}
    seen: set[datetime] = set()
    good: list[C] = []
    problems: list[CandleProblem] = []
    for index, candle in enumerate(candles):
        reason = _grid_problem(candle.start, interval, calendar, grids)
        if reason is None:
            reason = candle_problem(candle)
        if reason is None and candle.start in seen:
            reason = "a second candle with the same start"
        if reason is not None:
            problems.append(CandleProblem(index, candle.start, reason))
            continue
        seen.add(candle.start)
        good.append(candle)
    return CandleCheck(tuple(good), tuple(problems))


def _grid_problem(
    start: datetime,
    interval: str,
    calendar: SessionCalendar,
    grids: dict[date, frozenset[datetime]],
) -> str | None:
    if start.tzinfo is None or start.utcoffset() is None:
        return "start has no time zone"
    day = session_day(start)
    grid = grids.get(day)
    if grid is None:
        grid = grids[day] = frozenset(bar_starts(day, interval, calendar))
    if not grid:
        return f"{day.isoformat()} is not an NSE trading day"
    if start not in grid:
        local = start.astimezone(IST)
        return f"{local:%H:%M} IST is off the {interval} session grid of {day.isoformat()}"
    return None


# ---------------------------------------------------------------------------------------------
# Days and ranges


def trading_days(first: date, last: date, calendar: SessionCalendar) -> list[date]:
    """Every trading day in ``[first, last]``, ascending."""
    days: list[date] = []
    if last < first:
        return days
    day = first if calendar.is_trading_day(first) else calendar.next_trading_day(first)
    while day <= last:
        days.append(day)
        day = calendar.next_trading_day(day)
    return days


def present_days(starts: Iterable[datetime]) -> set[date]:
    """The sessions (IST days) that hold at least one of these bar starts."""
    return {session_day(start) for start in starts}


def missing_days(
    first: date, last: date, present: Iterable[date], calendar: SessionCalendar
) -> list[date]:
    """Trading days in ``[first, last]`` that are not ``present``, ascending."""
    have = set(present)
    return [day for day in trading_days(first, last, calendar) if day not in have]


def missing_days_since_listing(
    first: date, last: date, present: Iterable[date], calendar: SessionCalendar
) -> list[date]:
    """Missing days of a contract's daily series, which starts when the contract first traded.

    Once any daily candle is present, the days before the earliest one are the time before
    the contract listed (a fetch from ``first`` found nothing there), not gaps to fetch again.
    """
    have = {day for day in present if first <= day <= last}
    start = min(have) if have else first
    return missing_days(start, last, have, calendar)


def missing_traded_days(
    first: date, last: date, traded: Iterable[date], present: Iterable[date]
) -> list[date]:
    """Days in ``[first, last]`` on which a contract traded (it has a daily candle) that still
    lack candles of a shorter interval, ascending."""
    have = set(present)
    return sorted({day for day in traded if first <= day <= last and day not in have})


@dataclass(frozen=True, slots=True, order=True)
class DayRange:
    """Consecutive trading days ``first..last`` fetched with one request (inclusive)."""

    first: date
    last: date

    @property
    def calendar_days(self) -> int:
        """Calendar days the range spans, both ends included."""
        return (self.last - self.first).days + 1

    def start(self) -> datetime:
        """00:00 IST of the first day: the request's ``fromdate``."""
        return datetime.combine(self.first, time(0), tzinfo=IST)

    def end(self) -> datetime:
        """23:59 IST of the last day: the request's ``todate``."""
        return datetime.combine(self.last, time(23, 59), tzinfo=IST)

    def days(self, calendar: SessionCalendar) -> list[date]:
        """The trading days in the range."""
        return trading_days(self.first, self.last, calendar)


def request_ranges(
    days: Iterable[date], calendar: SessionCalendar, max_calendar_days: int
) -> list[DayRange]:
    """Group missing trading days into the fewest requests that fetch nothing already present.

    Days that follow one another in the trading calendar (a weekend or a holiday between them
    is fine) share a range, until the range would span more than ``max_calendar_days``
    calendar days (the broker's cap per request for the interval).
    """
    if max_calendar_days < 1:
        raise ValueError(f"max_calendar_days must be at least 1, got {max_calendar_days}")
    ranges: list[DayRange] = []
    first: date | None = None
    last: date | None = None
    for day in sorted(set(days)):
        if (
            first is not None
            and last is not None
            and calendar.next_trading_day(last) == day
            and (day - first).days < max_calendar_days
        ):
            last = day
            continue
        if first is not None and last is not None:
            ranges.append(DayRange(first, last))
        first = last = day
    if first is not None and last is not None:
        ranges.append(DayRange(first, last))
    return ranges


def iter_range_days(ranges: Iterable[DayRange], calendar: SessionCalendar) -> Iterator[date]:
    """Every trading day covered by ``ranges``, in order."""
    for span in ranges:
        yield from span.days(calendar)


def last_complete_session(
    now: datetime, calendar: SessionCalendar, settle: timedelta = SETTLE_AFTER_CLOSE
) -> date:
    """The latest session whose candles are all final at ``now`` (aware).

    Today counts once its last window closed ``settle`` ago; before that, the previous
    trading day.
    """
    local = now.astimezone(IST) if now.tzinfo is not None else None
    if local is None:
        raise ValueError(f"now {now.isoformat()} has no time zone")
    today = local.date()
    windows = calendar.session_windows(today)
    if windows and local >= windows[-1][1] + settle:
        return today
    return calendar.previous_trading_day(today)


# ---------------------------------------------------------------------------------------------
# Look-back arithmetic


def months_back(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier (clamped to the month's last day)."""
    if months < 0:
        raise ValueError(f"months must be zero or more, got {months}")
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, _days_in_month(year, month + 1)))


def years_back(day: date, years: int) -> date:
    """The same date ``years`` earlier (29 February becomes the 28th)."""
    return months_back(day, 12 * years)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
