"""The NSE trading calendar: trading days, session phases and the one-minute bar grid.

Knowledge comes in layers; on any date a later layer replaces an earlier one:

1. the exchange calendar package (pandas_market_calendars, ``XNSE``): weekday
   holidays and weekday special hours (weekday Muhurat sessions, interruptions);
2. ``market/data/nse_calendar.toml``, maintained with the project: weekend sessions
   (a Sunday Muhurat, Budget-day Saturdays), late-announced holidays, proper names;
3. an optional user override file in the same format, whose *text* the caller reads
   and passes in (this package does no I/O beyond its own data files).

A regular trading day has a pre-open phase 09:00-09:15, the normal market
09:15-15:30 and a post-close phase 15:30-16:00 IST. A date with special sessions
trades only in those windows; the pre-open phase is the 15 minutes before its first
window and the post-close phase the 30 minutes after its last one.

Coverage: holiday data reaches only so far. A year is covered when the exchange
package lists weekday holidays for it (within its current-hours era) or an override
layer declares it under ``[coverage] years``. Outside coverage every weekday would
look open, so any question about such a year emits an ``UncoveredYearWarning``;
callers that must not guess check ``covers(year)`` first.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "IST",
    "NORMAL_CLOSE",
    "NORMAL_OPEN",
    "CalendarOverrideError",
    "CalendarOverrides",
    "NseCalendar",
    "SessionKind",
    "SessionPhase",
    "SpecialSession",
    "UncoveredYearWarning",
    "default_calendar",
]

IST = ZoneInfo("Asia/Kolkata")
NORMAL_OPEN = dt.time(9, 15)
NORMAL_CLOSE = dt.time(15, 30)
PRE_OPEN_LEAD = dt.timedelta(minutes=15)
POST_CLOSE_TAIL = dt.timedelta(minutes=30)
_ONE_MINUTE = dt.timedelta(minutes=1)
_ONE_DAY = dt.timedelta(days=1)
# NSE has never been shut for anything near a year; a longer search means broken data.
_MAX_SEARCH_DAYS = 366
_PACKAGED_OVERRIDES = "nse_calendar.toml"


class SessionPhase(StrEnum):
    """Where an instant falls in the NSE trading day."""

    CLOSED = "closed"
    PRE_OPEN = "pre_open"
    NORMAL = "normal"
    POST_CLOSE = "post_close"


class SessionKind(StrEnum):
    """Why a date trades outside the regular 09:15-15:30 window."""

    MUHURAT = "muhurat"
    EARLY_CLOSE = "early_close"
    LATE_OPEN = "late_open"
    SPECIAL = "special"


class UncoveredYearWarning(UserWarning):
    """A calendar question was asked about a year without holiday data."""


class CalendarOverrideError(ValueError):
    """An override file or mapping is malformed; the message names the entry and value."""


@dataclass(frozen=True, slots=True)
class SpecialSession:
    """One normal-market window on a date with non-regular hours (times are IST)."""

    date: dt.date
    start: dt.time
    end: dt.time
    kind: SessionKind
    note: str = ""
    source: str = ""

    @property
    def opens_at(self) -> dt.datetime:
        """Window start as an aware IST instant."""
        return dt.datetime.combine(self.date, self.start, tzinfo=IST)

    @property
    def closes_at(self) -> dt.datetime:
        """Window end (exclusive) as an aware IST instant."""
        return dt.datetime.combine(self.date, self.end, tzinfo=IST)


@dataclass(frozen=True, slots=True)
class CalendarOverrides:
    """One layer of calendar knowledge: closed dates, special sessions, covered years."""

    holidays: frozenset[dt.date]
    sessions: tuple[SpecialSession, ...]
    covered_years: frozenset[int]
    origin: str = "overrides"

    def __post_init__(self) -> None:
        clash = self.holidays & {s.date for s in self.sessions}
        if clash:
            day = min(clash).isoformat()
            raise CalendarOverrideError(
                f"{self.origin}: {day} is both a holiday and a special session; keep one"
            )
        _check_no_overlap(self.sessions, self.origin)

    @classmethod
    def from_toml(cls, text: str, origin: str = "overrides") -> CalendarOverrides:
        """Parse override TOML text (format in ``market/data/nse_calendar.toml``)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CalendarOverrideError(f"{origin}: not valid TOML: {exc}") from exc
        return cls.from_mapping(data, origin)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "overrides") -> CalendarOverrides:
        """Build a layer from an already parsed override mapping."""
        allowed = ("coverage", "holiday", "special_session")
        for key in data:
            if key not in allowed:
                raise CalendarOverrideError(
                    f"{origin}: unknown section {key!r}; allowed: {', '.join(allowed)}"
                )
        holidays = frozenset(
            _parse_date(entry, f"{origin}: holiday[{i}]", ("date", "note", "source"))
            for i, entry in enumerate(_entries(data, "holiday", origin))
        )
        sessions = tuple(
            sorted(
                (
                    _parse_session(entry, f"{origin}: special_session[{i}]")
                    for i, entry in enumerate(_entries(data, "special_session", origin))
                ),
                key=lambda s: (s.date, s.start),
            )
        )
        return cls(holidays, sessions, _parse_coverage(data.get("coverage"), origin), origin)


@dataclass(frozen=True, eq=False, repr=False)
class NseCalendar:
    """Immutable NSE calendar; build with ``from_overrides`` or ``default_calendar()``.

    ``closed_dates`` holds every date a layer closed (weekday holidays, cancelled
    sessions); ``sessions_by_date`` maps dates with non-regular hours to their
    windows in time order. Queries are set and dict look-ups: no pandas per call.
    """

    closed_dates: frozenset[dt.date]
    sessions_by_date: Mapping[dt.date, tuple[SpecialSession, ...]]
    covered_years: frozenset[int]

    @classmethod
    def from_layers(cls, layers: Iterable[CalendarOverrides]) -> NseCalendar:
        """Stack layers in order; on a date, the last layer that mentions it wins."""
        closed: set[dt.date] = set()
        sessions: dict[dt.date, tuple[SpecialSession, ...]] = {}
        covered: set[int] = set()
        for layer in layers:
            for day in layer.holidays:
                closed.add(day)
                sessions.pop(day, None)
            by_date: dict[dt.date, list[SpecialSession]] = {}
            for session in layer.sessions:
                by_date.setdefault(session.date, []).append(session)
            for day, windows in by_date.items():
                sessions[day] = tuple(windows)
                closed.discard(day)
            covered |= layer.covered_years
        return cls(frozenset(closed), MappingProxyType(sessions), frozenset(covered))

    @classmethod
    def from_overrides(
        cls,
        user_toml_text: str | None = None,
        *,
        user_overrides: Mapping[str, Any] | None = None,
        origin: str = "user overrides",
    ) -> NseCalendar:
        """Exchange package + packaged overrides + an optional user layer (text or mapping)."""
        if user_toml_text is not None and user_overrides is not None:
            raise ValueError("pass user_toml_text or user_overrides, not both")
        layers = [_exchange_package_layer(), _packaged_layer()]
        if user_toml_text is not None:
            layers.append(CalendarOverrides.from_toml(user_toml_text, origin))
        elif user_overrides is not None:
            layers.append(CalendarOverrides.from_mapping(user_overrides, origin))
        return cls.from_layers(layers)

    def __repr__(self) -> str:
        years = sorted(self.covered_years)
        span = f"{years[0]}-{years[-1]}" if years else "none"
        return (
            f"NseCalendar(covered={span}, closed_dates={len(self.closed_dates)}, "
            f"special_dates={len(self.sessions_by_date)})"
        )

    # --- coverage ---------------------------------------------------------------

    def covers(self, year: int) -> bool:
        """True when the calendar has holiday data for ``year``."""
        return year in self.covered_years

    def _warn_if_uncovered(self, year: int) -> None:
        if year not in self.covered_years:
            warnings.warn(
                f"NSE holiday data does not cover {year}: every weekday of {year} will be "
                f"reported as a trading day. Add {year}'s holidays as [[holiday]] entries "
                f"to a calendar override file and declare them complete with "
                f"[coverage] years = [{year}].",
                UncoveredYearWarning,
                stacklevel=3,
            )

    # --- days -------------------------------------------------------------------

    def _opens(self, day: dt.date) -> bool:
        if day in self.sessions_by_date:
            return True
        return day.weekday() < 5 and day not in self.closed_dates

    def is_trading_day(self, day: dt.date) -> bool:
        """True when NSE holds any normal-market session on ``day``."""
        _require_date(day)
        self._warn_if_uncovered(day.year)
        return self._opens(day)

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day strictly after ``day``."""
        return self._step(day, _ONE_DAY)

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        return self._step(day, -_ONE_DAY)

    def _step(self, day: dt.date, step: dt.timedelta) -> dt.date:
        _require_date(day)
        candidate = day
        for _ in range(_MAX_SEARCH_DAYS):
            candidate += step
            if self._opens(candidate):
                # An uncovered weekday always looks open, so the scan can only reach
                # uncovered data by landing on it: checking the answer is enough.
                self._warn_if_uncovered(candidate.year)
                return candidate
        raise ValueError(f"no NSE trading day within {_MAX_SEARCH_DAYS} days of {day}")

    def holidays(self, year: int) -> list[dt.date]:
        """Weekday trading holidays of ``year``, in date order."""
        self._warn_if_uncovered(year)
        return sorted(d for d in self.closed_dates if d.year == year and d.weekday() < 5)

    def special_sessions(self, year: int) -> list[SpecialSession]:
        """Non-regular session windows in ``year``, ordered by date and start."""
        self._warn_if_uncovered(year)
        return [
            session
            for day in sorted(d for d in self.sessions_by_date if d.year == year)
            for session in self.sessions_by_date[day]
        ]

    # --- sessions ---------------------------------------------------------------

    def session_windows(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """Normal-market windows of ``day`` as aware IST (open, close) pairs; [] if closed."""
        _require_date(day)
        self._warn_if_uncovered(day.year)
        return self._windows(day)

    def _windows(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        special = self.sessions_by_date.get(day)
        if special is not None:
            return [(s.opens_at, s.closes_at) for s in special]
        if day.weekday() >= 5 or day in self.closed_dates:
            return []
        return [
            (
                dt.datetime.combine(day, NORMAL_OPEN, tzinfo=IST),
                dt.datetime.combine(day, NORMAL_CLOSE, tzinfo=IST),
            )
        ]

    def session_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """Normal-market (open, close) of ``day`` in IST, or None when it does not trade.

        A split day (e.g. a disaster-recovery drill) gives its first open and last close.
        """
        windows = self.session_windows(day)
        if not windows:
            return None
        return windows[0][0], windows[-1][1]

    def trading_minutes(self, day: dt.date) -> list[dt.datetime]:
        """Start instants (aware, IST) of every one-minute bar in the normal market."""
        minutes: list[dt.datetime] = []
        for opens, closes in self.session_windows(day):
            count = (closes - opens) // _ONE_MINUTE
            minutes.extend(opens + i * _ONE_MINUTE for i in range(count))
        return minutes

    def session_phase(self, instant: dt.datetime) -> SessionPhase:
        """Phase of the NSE trading day at an aware instant (intervals are [start, end))."""
        if not isinstance(instant, dt.datetime):
            raise TypeError(f"expected an aware datetime.datetime, got {instant!r}")
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"instant must be timezone-aware, got naive {instant.isoformat()}")
        local = instant.astimezone(IST)
        day = local.date()
        self._warn_if_uncovered(day.year)
        windows = self._windows(day)
        if not windows:
            return SessionPhase.CLOSED
        for opens, closes in windows:
            if opens <= local < closes:
                return SessionPhase.NORMAL
        first_open = windows[0][0]
        if first_open - PRE_OPEN_LEAD <= local < first_open:
            return SessionPhase.PRE_OPEN
        last_close = windows[-1][1]
        if last_close <= local < last_close + POST_CLOSE_TAIL:
            return SessionPhase.POST_CLOSE
        return SessionPhase.CLOSED


@functools.cache
def default_calendar() -> NseCalendar:
    """The calendar from package data only (exchange package + packaged overrides)."""
    return NseCalendar.from_layers([_exchange_package_layer(), _packaged_layer()])


# --- layers --------------------------------------------------------------------


@functools.cache
def _packaged_layer() -> CalendarOverrides:
    text = (resources.files("market") / "data" / _PACKAGED_OVERRIDES).read_text(encoding="utf-8")
    return CalendarOverrides.from_toml(text, f"market/data/{_PACKAGED_OVERRIDES}")


@functools.cache
def _exchange_package_layer() -> CalendarOverrides:
    """Read pandas_market_calendars' XNSE data once into a typed layer.

    This is the only place that touches the untyped package. Coverage: years in which
    it lists at least one weekday holiday, from the first full year of the current
    09:15-15:30 hours (its earlier eras had other hours this calendar does not model).
    """
    import pandas_market_calendars as mcal

    calendar = mcal.get_calendar("XNSE")
    listed = [dt.date.fromisoformat(str(day)[:10]) for day in calendar.holidays().holidays]
    hours_since = max(
        dt.date.fromisoformat(str(changes[-1][0]))
        for changes in (
            calendar.regular_market_times["market_open"],
            calendar.regular_market_times["market_close"],
        )
    )
    first_year = hours_since.year + (0 if hours_since == dt.date(hours_since.year, 1, 1) else 1)
    holidays = frozenset(d for d in listed if d.weekday() < 5 and d.year >= first_year)
    covered = frozenset(d.year for d in holidays)
    if not covered:
        return CalendarOverrides(frozenset(), (), frozenset(), "pandas_market_calendars XNSE")

    schedule = calendar.schedule(
        start_date=f"{first_year}-01-01",
        end_date=f"{max(covered)}-12-31",
        tz="Asia/Kolkata",
        interruptions=True,
    )
    # Only a handful of the ~250 rows a year are irregular: select them in one pass.
    irregular = (
        (schedule["market_open"].dt.time != NORMAL_OPEN)
        | (schedule["market_close"].dt.time != NORMAL_CLOSE)
        | schedule.filter(like="interruption_").notna().any(axis=1)
    )
    sessions: list[SpecialSession] = []
    for row in schedule[irregular].itertuples(index=False):
        row_values: dict[str, Any] = row._asdict()
        opens: dt.datetime = row_values["market_open"].to_pydatetime()
        closes: dt.datetime = row_values["market_close"].to_pydatetime()
        pauses = _interruptions(row_values)
        sessions.extend(_package_sessions(opens.date(), opens.time(), closes.time(), pauses))
    return CalendarOverrides(holidays, tuple(sessions), covered, "pandas_market_calendars XNSE")


def _interruptions(row: Mapping[str, Any]) -> list[tuple[dt.time, dt.time]]:
    pauses: list[tuple[dt.time, dt.time]] = []
    n = 1
    while f"interruption_start_{n}" in row:
        start, end = row[f"interruption_start_{n}"], row[f"interruption_end_{n}"]
        if start == start and end == end:  # NaT is not equal to itself
            pauses.append((start.to_pydatetime().time(), end.to_pydatetime().time()))
        n += 1
    return sorted(pauses)


def _package_sessions(
    day: dt.date, opens: dt.time, closes: dt.time, pauses: list[tuple[dt.time, dt.time]]
) -> list[SpecialSession]:
    if pauses:
        kind, note = SessionKind.SPECIAL, "trading interrupted"
    elif opens == NORMAL_OPEN and closes < NORMAL_CLOSE:
        kind, note = SessionKind.EARLY_CLOSE, "early close"
    elif opens > NORMAL_OPEN and closes == NORMAL_CLOSE:
        kind, note = SessionKind.LATE_OPEN, "late open"
    else:
        kind, note = SessionKind.SPECIAL, "special hours"
    windows: list[tuple[dt.time, dt.time]] = []
    start = opens
    for pause_start, pause_end in pauses:
        windows.append((start, pause_start))
        start = pause_end
    windows.append((start, closes))
    return [
        SpecialSession(day, a, b, kind, note, "pandas_market_calendars XNSE")
        for a, b in windows
        if a < b
    ]


# --- parsing helpers -------------------------------------------------------------


def _require_date(day: object) -> None:
    # datetime is a date subclass but never equal to one: it would miss every holiday.
    if isinstance(day, dt.datetime):
        raise TypeError(
            f"expected a datetime.date, got the datetime {day.isoformat()}; pass .date()"
        )
    if not isinstance(day, dt.date):
        raise TypeError(f"expected a datetime.date, got {day!r}")


def _entries(data: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
        raise CalendarOverrideError(f"{origin}: {key} must be an array of tables ([[{key}]])")
    return list(raw)


def _check_fields(entry: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    for key in entry:
        if key not in allowed:
            raise CalendarOverrideError(
                f"{where}: unknown field {key!r}; allowed: {', '.join(allowed)}"
            )


def _parse_date(entry: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> dt.date:
    _check_fields(entry, where, allowed)
    value = entry.get("date")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarOverrideError(f"{where}: date {value!r} is not a date like 2026-01-26")


def _parse_time(value: object, where: str, field: str) -> dt.time:
    parsed: dt.time | None = None
    if isinstance(value, dt.time):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.time.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is not None or parsed.second or parsed.microsecond:
        raise CalendarOverrideError(
            f'{where}: {field} {value!r} is not a whole-minute IST time like "13:45"'
        )
    return parsed


def _parse_session(entry: Mapping[str, Any], where: str) -> SpecialSession:
    allowed = ("date", "start", "end", "kind", "note", "source")
    day = _parse_date(entry, where, allowed)
    start = _parse_time(entry.get("start"), where, "start")
    end = _parse_time(entry.get("end"), where, "end")
    if end <= start:
        raise CalendarOverrideError(f"{where}: end {end:%H:%M} is not after start {start:%H:%M}")
    kind_text = entry.get("kind", SessionKind.SPECIAL.value)
    try:
        kind = SessionKind(kind_text)
    except ValueError:
        allowed_kinds = ", ".join(k.value for k in SessionKind)
        raise CalendarOverrideError(
            f"{where}: kind {kind_text!r} is not one of {allowed_kinds}"
        ) from None
    texts: dict[str, str] = {}
    for field in ("note", "source"):
        text = entry.get(field, "")
        if not isinstance(text, str):
            raise CalendarOverrideError(f"{where}: {field} {text!r} must be a string")
        texts[field] = text
    return SpecialSession(day, start, end, kind, texts["note"], texts["source"])


def _parse_coverage(raw: object, origin: str) -> frozenset[int]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, Mapping):
        raise CalendarOverrideError(f"{origin}: [coverage] must be a table")
    _check_fields(raw, f"{origin}: [coverage]", ("years",))
    years = raw.get("years", [])
    if not isinstance(years, list) or not all(
        isinstance(y, int) and not isinstance(y, bool) and 1 <= y <= 9998 for y in years
    ):
        raise CalendarOverrideError(
            f"{origin}: [coverage] years {years!r} must be a list of years like [2027]"
        )
    return frozenset(years)


def _check_no_overlap(sessions: tuple[SpecialSession, ...], origin: str) -> None:
    ordered = sorted(sessions, key=lambda s: (s.date, s.start))
    for before, after in pairwise(ordered):
        if before.date == after.date and after.start < before.end:
            raise CalendarOverrideError(
                f"{origin}: special sessions on {after.date} overlap "
                f"({before.start:%H:%M}-{before.end:%H:%M} and "
                f"{after.start:%H:%M}-{after.end:%H:%M})"
            )
