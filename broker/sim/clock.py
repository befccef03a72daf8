"""The simulator's session clock: which instant of the simulated session it is now.

The simulator replays one session day (by default the most recent trading day, so it ticks even
when launched on a weekend). ``SimClock`` maps wall time to session time at a chosen speed and
holds at the close; ``ManualClock`` is driven explicitly by tests and by fast scripted runs.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)


class SessionClock(Protocol):
    """Anything that can say which simulated instant it is."""

    def now(self) -> datetime: ...


class TradingDays(Protocol):
    def is_trading_day(self, d: date) -> bool: ...

    def previous_trading_day(self, d: date) -> date: ...


def default_session_date(today: date, calendar: TradingDays) -> date:
    """The session the simulator replays: today if it is a trading day, else the previous one."""
    if calendar.is_trading_day(today):
        return today
    return calendar.previous_trading_day(today)


def _ist(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST)


class SimClock:
    """Session time = ``start_at`` + (wall time elapsed since ``start_wall``) × ``speed``.

    It holds at ``end_at`` (the close) once reached. ``wall`` is a monotonic seconds source,
    injectable so the mapping can be checked without sleeping.
    """

    def __init__(
        self,
        session_date: date,
        speed: float = 1.0,
        start_wall: float | None = None,
        start_at: time = SESSION_OPEN,
        *,
        end_at: time = SESSION_CLOSE,
        wall: Callable[[], float] = _time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        if end_at <= start_at:
            raise ValueError(f"end_at {end_at} must be after start_at {start_at}")
        self.session_date = session_date
        self._wall = wall
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._anchor_wall = wall() if start_wall is None else start_wall
        self._anchor_session = _ist(session_date, start_at)
        self._end = _ist(session_date, end_at)

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def end(self) -> datetime:
        """The instant at which the clock stops advancing."""
        return self._end

    def now(self) -> datetime:
        """The current session instant (aware, IST), never past the close."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        elapsed = (self._wall() - self._anchor_wall) * self._speed
        at = self._anchor_session + timedelta(seconds=max(0.0, elapsed))
        return min(at, self._end)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on without a jump in session time."""
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        with self._lock:
            self._anchor_session = self._now_locked()
            self._anchor_wall = self._wall()
            self._speed = float(speed)

    def is_closed(self) -> bool:
        """True once the session clock has reached the close."""
        return self.now() >= self._end


class ManualClock:
    """A clock that moves only when told to: ``set`` and ``advance``."""

    def __init__(self, session_date: date, at: time = SESSION_OPEN) -> None:
        self.session_date = session_date
        self._lock = threading.Lock()
        self._now = _ist(session_date, at)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, at: datetime | time) -> None:
        """Jump to an instant (aware datetime) or a time of day on the session date."""
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError(f"naive datetime {at!r}: pass an aware datetime")
            new = at.astimezone(IST)
        else:
            new = _ist(self.session_date, at)
        with self._lock:
            self._now = new

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (>= 0) and return the new instant."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds!r} s)")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now
