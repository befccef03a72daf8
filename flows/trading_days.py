"""The NSE calendar a flow run uses: the packaged one plus the user's override file, if any."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from market.calendar import IST, NseCalendar, default_calendar

if TYPE_CHECKING:
    from datetime import date

    from optbot.config import Settings


def trading_calendar(settings: Settings) -> NseCalendar:
    """``default_calendar()``, with ``[calendar] overrides_file`` layered on top when set."""
    path = settings.calendar.overrides_file
    if path is None:
        return default_calendar()
    text = path.read_text(encoding="utf-8")
    return NseCalendar.from_overrides(user_toml_text=text, origin=str(path))


def today_ist() -> date:
    """The exchange's calendar date now."""
    return datetime.now(IST).date()
