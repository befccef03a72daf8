"""The contracts the simulator lists on its session date and their instrument-master records.

Listed: every index (INDIA VIX included) and stock of the universe, the current, next and far
monthly futures, and options on the current and next monthly expiries (NIFTY also the current and
next weekly) with strikes ±20 steps around the session day's open. Expiries are Tuesdays (monthly =
the month's last Tuesday), moved to the previous trading day when that is a holiday. Contracts that
expired before the session date are not listed, so they have no data.

F&O tokens are a stable hash of the trading symbol (CRC-32) folded into six digits; a collision is
resolved by stepping a symbol-derived stride, so tokens do not depend on the seed.
"""

from __future__ import annotations

import calendar as _calendar
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal, Protocol

from broker.sim.universe import UNIVERSE, Underlying
from market.instruments import effective_expiry, format_master_expiry

InstrumentKind = Literal["index", "equity", "future", "option"]
OptionSide = Literal["CE", "PE"]

_SIDES: tuple[OptionSide, ...] = ("CE", "PE")
STRIKES_EACH_SIDE = 20
TUESDAY = 1
_TOKEN_LOW = 35_000
_TOKEN_SPAN = 1_000_000 - _TOKEN_LOW
# How long before expiry a contract starts trading (and so has history).
_MONTHLY_LISTING_DAYS = 95
_WEEKLY_LISTING_DAYS = 35


class ExpiryCalendar(Protocol):
    def is_trading_day(self, d: date) -> bool: ...

    def previous_trading_day(self, d: date) -> date: ...

    def next_trading_day(self, d: date) -> date: ...


@dataclass(frozen=True, slots=True)
class SimInstrument:
    """One listed instrument as the simulator knows it (prices in paise)."""

    token: str
    exchange: str  # NSE or NFO
    symbol: str
    name: str
    kind: InstrumentKind
    instrument_type: str  # master ``instrumenttype``: AMXIDX, "", FUTIDX, FUTSTK, OPTIDX, OPTSTK
    expiry: date | None
    strike_paise: int | None
    option_type: OptionSide | None
    lot: int
    tick_paise: int  # as the master states it (0 for indices)
    freeze_qty: int
    underlying_token: str  # the cash/index token the price derives from (itself for underlyings)
    grid_paise: int  # the price grid its ticks sit on (1 paisa for indices)
    listed_from: date | None = None  # first day it traded (derivatives)
    weekly: bool = False  # a weekly (non-monthly) option expiry

    @property
    def is_derivative(self) -> bool:
        return self.kind in ("future", "option")

    def master_record(self) -> dict[str, str]:
        """The SPEC §7 record: every value a string."""
        if self.kind == "option":
            assert self.strike_paise is not None
            strike = f"{self.strike_paise:.6f}"
        elif self.kind == "index":
            strike = "0.000000"
        else:
            strike = "-1.000000"
        return {
            "token": self.token,
            "symbol": self.symbol,
            "name": self.name,
            "expiry": format_master_expiry(self.expiry) if self.expiry else "",
            "strike": strike,
            "lotsize": str(self.lot),
            "instrumenttype": self.instrument_type,
            "exch_seg": self.exchange,
            "tick_size": f"{self.tick_paise:.6f}",
        }


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """The last ``weekday`` (Monday = 0) of a month."""
    last = date(year, month, _calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def monthly_expiries(session_date: date, count: int, cal: ExpiryCalendar) -> list[date]:
    """The first ``count`` monthly expiries on or after the session date (holiday-adjusted)."""
    out: list[date] = []
    year, month = session_date.year, session_date.month
    while len(out) < count:
        expiry = effective_expiry(last_weekday_of_month(year, month, TUESDAY), cal)
        if expiry >= session_date:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def weekly_expiries(session_date: date, count: int, cal: ExpiryCalendar) -> list[date]:
    """The first ``count`` weekly (Tuesday) expiries on or after the session date."""
    out: list[date] = []
    tuesday = session_date - timedelta(days=(session_date.weekday() - TUESDAY) % 7)
    while len(out) < count:
        expiry = effective_expiry(tuesday, cal)
        if expiry >= session_date and expiry not in out:
            out.append(expiry)
        tuesday += timedelta(days=7)
    return out


def _listing_day(expiry: date, weekly: bool, session_date: date, cal: ExpiryCalendar) -> date:
    lead = _WEEKLY_LISTING_DAYS if weekly else _MONTHLY_LISTING_DAYS
    start = expiry - timedelta(days=lead)
    listed = start if cal.is_trading_day(start) else cal.next_trading_day(start)
    return min(listed, session_date)  # whatever is listed today trades today


def _rupees(paise: int) -> str:
    whole, frac = divmod(paise, 100)
    return str(whole) if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")


def _fo_symbol(name: str, expiry: date, tail: str) -> str:
    return f"{name}{expiry.strftime('%d%b%y').upper()}{tail}"


def _underlying_listing(u: Underlying) -> SimInstrument:
    return SimInstrument(
        token=u.token,
        exchange="NSE",
        symbol=u.symbol,
        name=u.name,
        kind="equity" if u.kind == "equity" else "index",
        instrument_type="" if u.kind == "equity" else "AMXIDX",
        expiry=None,
        strike_paise=None,
        option_type=None,
        lot=1,
        tick_paise=u.spot_tick_paise if u.kind == "equity" else 0,
        freeze_qty=0,
        underlying_token=u.token,
        grid_paise=u.spot_tick_paise,
    )


def _derivatives(
    u: Underlying, session_date: date, open_paise: int, cal: ExpiryCalendar
) -> list[SimInstrument]:
    index = u.kind == "index"
    out: list[SimInstrument] = []
    monthlies = monthly_expiries(session_date, 3, cal)
    for expiry in monthlies:
        out.append(
            SimInstrument(
                token="",
                exchange="NFO",
                symbol=_fo_symbol(u.name, expiry, "FUT"),
                name=u.name,
                kind="future",
                instrument_type="FUTIDX" if index else "FUTSTK",
                expiry=expiry,
                strike_paise=None,
                option_type=None,
                lot=u.lot_size,
                tick_paise=u.future_tick_paise,
                freeze_qty=u.freeze_qty,
                underlying_token=u.token,
                grid_paise=u.future_tick_paise,
                listed_from=_listing_day(expiry, False, session_date, cal),
            )
        )
    option_expiries = {e: False for e in monthlies[:2]}
    if u.weekly_options:
        for e in weekly_expiries(session_date, 2, cal):
            option_expiries.setdefault(e, True)
    step = u.strike_step_paise
    atm = (open_paise + step // 2) // step * step
    strikes = [atm + i * step for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1)]
    for expiry, weekly in sorted(option_expiries.items()):
        listed = _listing_day(expiry, weekly, session_date, cal)
        for strike in strikes:
            if strike <= 0:
                continue
            for side in _SIDES:
                out.append(
                    SimInstrument(
                        token="",
                        exchange="NFO",
                        symbol=_fo_symbol(u.name, expiry, f"{_rupees(strike)}{side}"),
                        name=u.name,
                        kind="option",
                        instrument_type="OPTIDX" if index else "OPTSTK",
                        expiry=expiry,
                        strike_paise=strike,
                        option_type=side,
                        lot=u.lot_size,
                        tick_paise=u.option_tick_paise,
                        freeze_qty=u.freeze_qty,
                        underlying_token=u.token,
                        grid_paise=u.option_tick_paise,
                        listed_from=listed,
                        weekly=weekly,
                    )
                )
    return out


def assign_tokens(symbols: Iterable[str], reserved: Iterable[str]) -> dict[str, str]:
    """A stable six-digit token per symbol, avoiding ``reserved`` tokens and each other."""
    taken = set(reserved)
    out: dict[str, str] = {}
    for symbol in sorted(set(symbols)):
        digest = zlib.crc32(symbol.encode())
        slot = digest % _TOKEN_SPAN
        stride = 1 + (digest >> 12) % 9_973
        token = str(_TOKEN_LOW + slot)
        while token in taken:
            slot = (slot + stride) % _TOKEN_SPAN
            token = str(_TOKEN_LOW + slot)
        taken.add(token)
        out[symbol] = token
    return out


def list_instruments(
    session_date: date, session_opens: Mapping[str, int], cal: ExpiryCalendar
) -> list[SimInstrument]:
    """Everything listed on the session date; ``session_opens`` maps underlying token → open."""
    base = [_underlying_listing(u) for u in UNIVERSE]
    derived: list[SimInstrument] = []
    for u in UNIVERSE:
        if u.has_derivatives:
            derived.extend(_derivatives(u, session_date, session_opens[u.token], cal))
    tokens = assign_tokens((i.symbol for i in derived), (i.token for i in base))
    derived = [_with_token(i, tokens[i.symbol]) for i in derived]
    derived.sort(
        key=lambda i: (i.name, i.kind, i.expiry or date.min, i.strike_paise or 0, i.symbol)
    )
    return base + derived


def _with_token(inst: SimInstrument, token: str) -> SimInstrument:
    return replace(inst, token=token)


def master_records(instruments: Sequence[SimInstrument]) -> list[dict[str, str]]:
    """The instrument master (SPEC §7) for these instruments."""
    return [i.master_record() for i in instruments]
