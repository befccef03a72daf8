"""The instrument master: parsing, validation, option chains, strikes and expiries.

The broker publishes its master as a JSON array of flat records whose values are all strings
(SmartAPI ``OpenAPIScripMaster.json``). Prices in it are scaled: strikes and tick sizes are
rupees x 100 — that is, paise — written with six decimals, except currency (CDS) strikes, which
are rupees x 10^7. Everything here keeps money in integer paise, and lot sizes, tick sizes and
strike steps are read from the data, never assumed: the exchange revises them.

Pure: no I/O and no clock. "Today" is always an argument, and the trading calendar is passed in
as anything that satisfies ``TradingCalendar``.

Errors:

    MasterFormatError (ValueError)    the master as a whole is unreadable
    InstrumentNotFound (LookupError)  nothing matches a lookup
    AmbiguousInstrument (LookupError) several instruments match; name the exchange

A bad *row* is never an exception: it becomes a ``Problem`` and the parse goes on.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise
from operator import itemgetter
from types import MappingProxyType
from typing import Final, Generic, Literal, Protocol, TypeVar


class OptionType(StrEnum):
    """Call or put, as the trading symbol's suffix spells it."""

    CE = "CE"
    PE = "PE"


class TradingCalendar(Protocol):
    """The part of an exchange calendar that expiries need."""

    def is_trading_day(self, d: date) -> bool: ...

    def previous_trading_day(self, d: date) -> date: ...


class MasterFormatError(ValueError):
    """The master as a whole cannot be read (not JSON, or not an array of records)."""


class InstrumentNotFound(LookupError):
    """No listed instrument (or expiry, or strike) matches the lookup."""


class AmbiguousInstrument(LookupError):
    """Several listed instruments match the lookup; narrow it by exchange."""


INDEX_TYPE: Final = "AMXIDX"
INDIA_VIX: Final = "INDIA VIX"

# Underlying name -> (exchange, token) of its index, as the broker lists them. Index rows show a
# display symbol ("Nifty 50") rather than the F&O name, so the token is the reliable link; a name
# missing here is still found by matching the index rows' name or symbol.
INDEX_TOKENS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "NIFTY": ("NSE", "99926000"),
        "BANKNIFTY": ("NSE", "99926009"),
        "NIFTYNXT50": ("NSE", "99926013"),
        INDIA_VIX: ("NSE", "99926017"),
        "FINNIFTY": ("NSE", "99926037"),
        "MIDCPNIFTY": ("NSE", "99926074"),
        "SENSEX": ("BSE", "99919000"),
    }
)

ExpiryKind = Literal["weekly", "monthly"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of the master, typed: prices in paise, dates as dates."""

    token: str
    symbol: str
    name: str
    exchange: str
    instrument_type: str
    expiry: date | None
    strike_paise: int | None
    option_type: OptionType | None
    lot_size: int
    tick_paise: int

    @property
    def is_option(self) -> bool:
        """Index, stock, currency or commodity option."""
        return self.instrument_type.startswith("OPT")

    @property
    def is_future(self) -> bool:
        """Index, stock, currency or commodity future."""
        return self.instrument_type.startswith("FUT")

    @property
    def is_derivative(self) -> bool:
        """A future or an option: has an expiry and an underlying."""
        return self.is_option or self.is_future

    @property
    def is_index(self) -> bool:
        """An index (spot value only, not tradable)."""
        return self.instrument_type == INDEX_TYPE

    @property
    def underlying(self) -> str:
        """The underlying's short name (``NIFTY``, ``SBIN``)."""
        return self.name

    @property
    def strike(self) -> Decimal | None:
        """Strike in rupees, exact."""
        return None if self.strike_paise is None else Decimal(self.strike_paise).scaleb(-2)

    @property
    def tick(self) -> Decimal:
        """Tick size in rupees, exact."""
        return Decimal(self.tick_paise).scaleb(-2)

    @property
    def key(self) -> tuple[str, str]:
        """(exchange, token): tokens are unique only within an exchange."""
        return (self.exchange, self.token)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a master row (``row`` set) or with the parsed set (``row`` None)."""

    row: int | None
    token: str
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = "master" if self.row is None else f"row {self.row}"
        return f"{where} token {self.token or '?'}: {self.field}={self.value!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class MasterParseResult:
    """Instruments from the rows that parsed, and one problem per row that did not."""

    instruments: tuple[Instrument, ...]
    problems: tuple[Problem, ...]


# ---------------------------------------------------------------------------------------------
# Parsing

_MONTHS: Final[Mapping[str, int]] = MappingProxyType(
    {
        m: i
        for i, m in enumerate(
            ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
            start=1,
        )
    }
)
_MONTH_NAMES: Final = tuple(_MONTHS)
_FIELDS: Final = (
    "token",
    "symbol",
    "name",
    "expiry",
    "strike",
    "lotsize",
    "instrumenttype",
    "exch_seg",
    "tick_size",
)
_DERIVATIVE_PREFIXES: Final = ("OPT", "FUT")
_OPTION_SUFFIX: Final[Mapping[str, OptionType]] = MappingProxyType(
    {"CE": OptionType.CE, "PE": OptionType.PE}
)
# Decimal places to shift a master strike by to get paise. CDS strikes are rupees x 10^7.
_STRIKE_SHIFT: Final[Mapping[str, int]] = MappingProxyType({"CDS": -5})


@dataclass(frozen=True, slots=True)
class _Invalid:
    reason: str


def _expiry_or_invalid(text: str) -> date | _Invalid:
    if len(text) != 9 or not text.isascii() or not (text[:2].isdigit() and text[5:].isdigit()):
        return _Invalid("expected DDMMMYYYY, e.g. 26DEC2024")
    month = _MONTHS.get(text[2:5].upper())
    if month is None:
        return _Invalid(f"unknown month {text[2:5]!r}; expected one of JAN..DEC")
    try:
        return date(int(text[5:]), month, int(text[:2]))
    except ValueError:
        return _Invalid("no such calendar date")


def _paise_or_invalid(text: str, shift: int) -> int | _Invalid:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return _Invalid("not a number")
    if not value.is_finite():
        return _Invalid("not a finite number")
    if shift:
        value = value.scaleb(shift)
    whole = value.to_integral_value()
    if value != whole:
        return _Invalid("not a whole number of paise")
    return int(whole)


def _count_or_invalid(text: str) -> int | _Invalid:
    if text.isascii() and text.isdigit():
        return int(text)
    return _Invalid("expected a whole number")


def parse_master_expiry(text: str) -> date:
    """Parse a master expiry such as ``26DEC2024``; raises ValueError with the reason."""
    parsed = _expiry_or_invalid(text)
    if isinstance(parsed, _Invalid):
        raise ValueError(f"bad expiry {text!r}: {parsed.reason}")
    return parsed


def format_master_expiry(expiry: date) -> str:
    """Write an expiry the way the master does: ``26DEC2024``."""
    return f"{expiry.day:02d}{_MONTH_NAMES[expiry.month - 1]}{expiry.year:04d}"


class _RowReader:
    """Turns master rows into instruments, parsing each distinct field text only once."""

    __slots__ = ("_counts", "_expiries", "_strikes", "_ticks")

    def __init__(self) -> None:
        # A real master repeats a few thousand distinct texts across ~150k rows.
        self._expiries: dict[str, date | _Invalid] = {}
        self._ticks: dict[str, int | _Invalid] = {}
        self._strikes: dict[tuple[str, int], int | _Invalid] = {}
        self._counts: dict[str, int | _Invalid] = {}

    def _expiry(self, text: str) -> date | _Invalid:
        hit = self._expiries.get(text)
        if hit is None:
            hit = self._expiries[text] = _expiry_or_invalid(text)
        return hit

    def _tick(self, text: str) -> int | _Invalid:
        hit = self._ticks.get(text)
        if hit is None:
            hit = self._ticks[text] = _paise_or_invalid(text, 0)
        return hit

    def _strike(self, text: str, exchange: str) -> int | _Invalid:
        key = (text, _STRIKE_SHIFT.get(exchange, 0))
        hit = self._strikes.get(key)
        if hit is None:
            hit = self._strikes[key] = _paise_or_invalid(*key)
        return hit

    def _count(self, text: str) -> int | _Invalid:
        hit = self._counts.get(text)
        if hit is None:
            hit = self._counts[text] = _count_or_invalid(text)
        return hit

    def read(self, row: object, index: int) -> Instrument | Problem:
        """The row as an instrument, or the first thing wrong with it."""
        if not isinstance(row, Mapping):
            return Problem(index, "", "", repr(row)[:80], "row is not an object")
        try:
            values = _FETCH_FIELDS(row)
        except KeyError:
            return _shape_problem(row, index)
        if not _ONLY_TEXT.issuperset(map(type, values)):
            return _shape_problem(row, index)
        texts: tuple[str, ...] = values
        token, symbol, name, expiry_text, strike_text, lot_text, kind, exchange, tick_text = texts

        if not token:
            return Problem(index, token, "token", token, "empty token")
        if not symbol:
            return Problem(index, token, "symbol", symbol, "empty trading symbol")
        if not exchange:
            return Problem(index, token, "exch_seg", exchange, "empty exchange")
        is_option = kind.startswith("OPT")
        is_derivative = kind.startswith(_DERIVATIVE_PREFIXES)
        if is_derivative and not name:
            return Problem(index, token, "name", name, "a derivative needs its underlying's name")

        expiry: date | None = None
        if expiry_text:
            parsed_expiry = self._expiry(expiry_text)
            if isinstance(parsed_expiry, _Invalid):
                return Problem(index, token, "expiry", expiry_text, parsed_expiry.reason)
            expiry = parsed_expiry
        elif is_derivative:
            return Problem(index, token, "expiry", expiry_text, "a derivative needs an expiry")

        lot_size = self._count(lot_text)
        if isinstance(lot_size, _Invalid):
            return Problem(index, token, "lotsize", lot_text, lot_size.reason)
        if is_derivative and lot_size <= 0:
            return Problem(index, token, "lotsize", lot_text, "an F&O lot size must be positive")

        tick_paise = self._tick(tick_text)
        if isinstance(tick_paise, _Invalid):
            return Problem(index, token, "tick_size", tick_text, tick_paise.reason)
        if tick_paise < 0 or (is_derivative and tick_paise == 0):
            return Problem(index, token, "tick_size", tick_text, "the tick size must be positive")

        strike_paise: int | None = None
        option_type: OptionType | None = None
        if is_option:
            option_type = _OPTION_SUFFIX.get(symbol[-2:])
            if option_type is None:
                return Problem(
                    index, token, "symbol", symbol, "an option's symbol must end in CE or PE"
                )
            parsed_strike = self._strike(strike_text, exchange)
            if isinstance(parsed_strike, _Invalid):
                return Problem(index, token, "strike", strike_text, parsed_strike.reason)
            if parsed_strike <= 0:
                return Problem(
                    index, token, "strike", strike_text, "an option's strike must be positive"
                )
            strike_paise = parsed_strike

        return Instrument(
            token,
            symbol,
            name,
            exchange,
            kind,
            expiry,
            strike_paise,
            option_type,
            lot_size,
            tick_paise,
        )


# One C-level call fetches all fields of a row; the per-field loop runs only for a bad row.
_FETCH_FIELDS: Final = itemgetter(*_FIELDS)
_ONLY_TEXT: Final = frozenset({str})


def _shape_problem(row: Mapping[object, object], index: int) -> Problem:
    raw_token = row.get("token")
    token = raw_token if isinstance(raw_token, str) else ""
    for field in _FIELDS:
        if field not in row:
            return Problem(index, token, field, "", "missing")
        value = row[field]
        if not isinstance(value, str):
            return Problem(index, token, field, repr(value), "not a string")
    raise AssertionError("a row with every field a string has no shape problem")


def parse_master(records: Iterable[Mapping[str, object]]) -> MasterParseResult:
    """Parse master records; a bad row is reported (its first bad field) and skipped."""
    reader = _RowReader()
    instruments: list[Instrument] = []
    problems: list[Problem] = []
    for index, row in enumerate(records):
        parsed = reader.read(row, index)
        if isinstance(parsed, Instrument):
            instruments.append(parsed)
        else:
            problems.append(parsed)
    return MasterParseResult(tuple(instruments), tuple(problems))


def parse_master_json(data: bytes | str) -> MasterParseResult:
    """Parse the master file's contents; raises MasterFormatError if it is not a JSON array."""
    try:
        records = json.loads(data)
    except ValueError as exc:
        raise MasterFormatError(f"instrument master is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        kind = type(records).__name__
        raise MasterFormatError(f"instrument master must be a JSON array of records, got {kind}")
    return parse_master(records)


# ---------------------------------------------------------------------------------------------
# Option chains and strikes


@dataclass(frozen=True, slots=True)
class OptionChain:
    """All listed calls and puts of one underlying and expiry, keyed by strike in paise."""

    underlying: str
    expiry: date
    exchange: str
    strikes: tuple[int, ...]
    calls: Mapping[int, Instrument]
    puts: Mapping[int, Instrument]

    def leg(self, strike_paise: int, option_type: OptionType) -> Instrument:
        """The call or put at a listed strike; InstrumentNotFound if it is not listed."""
        legs = self.calls if option_type is OptionType.CE else self.puts
        found = legs.get(strike_paise)
        if found is None:
            raise InstrumentNotFound(
                f"{self.underlying} {format_master_expiry(self.expiry)} has no {option_type} at "
                f"strike {Decimal(strike_paise).scaleb(-2)}"
            )
        return found

    def call(self, strike_paise: int) -> Instrument:
        """The CE at a listed strike."""
        return self.leg(strike_paise, OptionType.CE)

    def put(self, strike_paise: int) -> Instrument:
        """The PE at a listed strike."""
        return self.leg(strike_paise, OptionType.PE)

    @property
    def lot_size(self) -> int:
        """The chain's lot size (uniform within an expiry; validate_master checks it)."""
        return next(self.instruments()).lot_size

    def instruments(self) -> Iterator[Instrument]:
        """Every leg, by strike, call before put."""
        for strike in self.strikes:
            for legs in (self.calls, self.puts):
                found = legs.get(strike)
                if found is not None:
                    yield found


def _chain_of(underlying: str, expiry: date, legs: Iterable[Instrument]) -> OptionChain:
    calls: dict[int, Instrument] = {}
    puts: dict[int, Instrument] = {}
    exchange = ""
    for leg in legs:
        if leg.strike_paise is None:
            continue
        side = calls if leg.option_type is OptionType.CE else puts
        # First listed wins; validate_master reports the duplicate.
        side.setdefault(leg.strike_paise, leg)
        exchange = leg.exchange
    strikes = tuple(sorted(calls.keys() | puts.keys()))
    return OptionChain(
        underlying, expiry, exchange, strikes, MappingProxyType(calls), MappingProxyType(puts)
    )


def option_chains(
    instruments: Iterable[Instrument], underlying: str, exchange: str | None = None
) -> dict[date, OptionChain]:
    """The underlying's option chains by expiry (ascending).

    Raises AmbiguousInstrument if the underlying has options on several exchanges and no
    ``exchange`` is given.
    """
    grouped: dict[date, list[Instrument]] = defaultdict(list)
    exchanges: set[str] = set()
    for inst in instruments:
        expiry = inst.expiry
        if (
            expiry is None
            or inst.name != underlying
            or inst.option_type is None
            or inst.strike_paise is None
            or not inst.instrument_type.startswith("OPT")
            or (exchange is not None and inst.exchange != exchange)
        ):
            continue
        grouped[expiry].append(inst)
        exchanges.add(inst.exchange)
    if len(exchanges) > 1:
        listed = ", ".join(sorted(exchanges))
        raise AmbiguousInstrument(
            f"{underlying} options are listed on {listed}; pass exchange= one of them"
        )
    return {expiry: _chain_of(underlying, expiry, grouped[expiry]) for expiry in sorted(grouped)}


def _ladder(strikes: OptionChain | Sequence[int]) -> Sequence[int]:
    if isinstance(strikes, OptionChain):
        return strikes.strikes
    if any(upper <= lower for lower, upper in pairwise(strikes)):
        raise ValueError("strikes must be sorted ascending, without repeats")
    return strikes


def strike_step(chain: OptionChain | Sequence[int]) -> int:
    """The chain's strike step in paise: the commonest gap between adjacent listed strikes.

    The exchange lists far strikes wider apart, so this is the mode of the gaps, not the minimum
    or the first; a tie goes to the smaller gap.
    """
    ladder = _ladder(chain)
    if len(ladder) < 2:
        raise ValueError(f"a strike step needs at least two listed strikes, got {len(ladder)}")
    gaps = Counter(upper - lower for lower, upper in pairwise(ladder))
    return min(gaps, key=lambda gap: (-gaps[gap], gap))


def _atm_index(ladder: Sequence[int], price_paise: int) -> int:
    if not ladder:
        raise ValueError("no listed strikes")
    i = bisect_left(ladder, price_paise)
    if i == 0:
        return 0
    if i == len(ladder):
        return i - 1
    # Exactly halfway resolves to the lower strike, so the choice never depends on luck.
    return i - 1 if price_paise - ladder[i - 1] <= ladder[i] - price_paise else i


def atm_strike(chain: OptionChain | Sequence[int], price_paise: int) -> int:
    """The listed strike nearest the price (paise).

    A price exactly halfway between two listed strikes gets the LOWER one. Beyond either end of
    the chain, the end strike.
    """
    ladder = _ladder(chain)
    return ladder[_atm_index(ladder, price_paise)]


def strike_window(chain: OptionChain | Sequence[int], price_paise: int, n: int) -> list[int]:
    """The ATM strike and n listed strikes either side, ascending.

    Near an end of the chain the window slides inward rather than shrinking, so it always holds
    min(2n + 1, listed strikes) strikes, the ATM strike among them.
    """
    if n < 0:
        raise ValueError(f"window half-width must be zero or more, got {n}")
    ladder = _ladder(chain)
    centre = _atm_index(ladder, price_paise)
    width = min(2 * n + 1, len(ladder))
    start = min(max(centre - n, 0), len(ladder) - width)
    return list(ladder[start : start + width])


# ---------------------------------------------------------------------------------------------
# Expiries


def monthly_expiries(expiries: Iterable[date]) -> list[date]:
    """The last expiry of each calendar month, ascending."""
    last: dict[tuple[int, int], date] = {}
    for expiry in expiries:
        month = (expiry.year, expiry.month)
        if month not in last or expiry > last[month]:
            last[month] = expiry
    return sorted(last.values())


def _expiries_of(
    source: InstrumentIndex | Mapping[date, OptionChain] | Iterable[Instrument], underlying: str
) -> list[date]:
    if isinstance(source, InstrumentIndex):
        return source.expiries(underlying)
    if isinstance(source, Mapping):
        return sorted(e for e, chain in source.items() if chain.underlying == underlying)
    found = {
        inst.expiry
        for inst in source
        if inst.name == underlying and inst.is_derivative and inst.expiry is not None
    }
    return sorted(found)


def nearest_expiry(
    source: InstrumentIndex | Mapping[date, OptionChain] | Iterable[Instrument],
    underlying: str,
    today: date,
    kind: ExpiryKind = "weekly",
) -> date:
    """The underlying's nearest expiry on or after today.

    ``weekly`` is the nearest listed expiry of any kind; ``monthly`` the nearest that is the last
    listed expiry of its calendar month. ``source`` is instruments, an index, or the chains from
    ``option_chains``. InstrumentNotFound if none is listed.
    """
    if kind not in ("weekly", "monthly"):
        raise ValueError(f"expiry kind must be 'weekly' or 'monthly', got {kind!r}")
    listed = _expiries_of(source, underlying)
    candidates = monthly_expiries(listed) if kind == "monthly" else listed
    i = bisect_left(candidates, today)
    if i == len(candidates):
        raise InstrumentNotFound(
            f"no {kind} {underlying} expiry listed on or after {today.isoformat()}"
        )
    return candidates[i]


def effective_expiry(expiry: date, calendar: TradingCalendar) -> date:
    """The day a contract really expires: a holiday expiry moves to the previous trading day."""
    return expiry if calendar.is_trading_day(expiry) else calendar.previous_trading_day(expiry)


def days_to_expiry(expiry: date, today: date, calendar: TradingCalendar) -> int:
    """Calendar days from today to the effective expiry (0 on expiry day, negative after)."""
    return (effective_expiry(expiry, calendar) - today).days


def trading_days_to_expiry(expiry: date, today: date, calendar: TradingCalendar) -> int:
    """Trading days after today up to and including the effective expiry (negative after it)."""
    end = effective_expiry(expiry, calendar)
    if end >= today:
        return _trading_days_after(today, end, calendar)
    return -_trading_days_after(end, today, calendar)


def _trading_days_after(start: date, end: date, calendar: TradingCalendar) -> int:
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        count += calendar.is_trading_day(day)
        day += timedelta(days=1)
    return count


# ---------------------------------------------------------------------------------------------
# Validation


def _grid_unit(ladder: Sequence[int]) -> int:
    # The finest gap the chain lists regularly: seen at least twice and at least a quarter as
    # often as the commonest gap. A chain whose wide far strikes outnumber its near ones keeps
    # its near strikes on-grid, while a lone strike between two grid points is still off it.
    gaps = Counter(upper - lower for lower, upper in pairwise(ladder))
    commonest = max(gaps.values())
    regular = [gap for gap, seen in gaps.items() if seen >= 2 and 4 * seen >= commonest]
    return min(regular) if regular else strike_step(ladder)


def _off_grid(chain: OptionChain) -> list[Problem]:
    if len(chain.strikes) < 3:
        return []
    unit = _grid_unit(chain.strikes)
    residues = Counter(strike % unit for strike in chain.strikes)
    anchor = min(residues, key=lambda r: (-residues[r], r))
    label = f"{chain.underlying} {format_master_expiry(chain.expiry)}"
    return [
        Problem(
            None,
            leg.token,
            "strike",
            str(leg.strike),
            f"off the {Decimal(unit).scaleb(-2)} rupee strike grid of the {label} chain",
        )
        for leg in chain.instruments()
        if leg.strike_paise is not None and leg.strike_paise % unit != anchor
    ]


def _mixed_lots(chain: OptionChain) -> list[Problem]:
    lots = Counter(leg.lot_size for leg in chain.instruments())
    if len(lots) < 2:
        return []
    usual = min(lots, key=lambda lot: (-lots[lot], lot))
    label = f"{chain.underlying} {format_master_expiry(chain.expiry)}"
    return [
        Problem(
            None,
            leg.token,
            "lotsize",
            str(leg.lot_size),
            f"lot size differs from the {label} chain's {usual}",
        )
        for leg in chain.instruments()
        if leg.lot_size != usual
    ]


def validate_master(instruments: Iterable[Instrument], calendar: TradingCalendar) -> list[Problem]:
    """Check a parsed master as a whole; an empty list means it is fit to trade from.

    Catches duplicate tokens (per exchange) and duplicate contracts, non-positive lot or tick
    sizes, derivatives without an expiry, expiries that are not trading days (one problem per
    underlying and expiry), option strikes off their chain's grid, and mixed lot sizes within
    a chain. Problems found here have ``row`` None.
    """
    unique, problems = _without_duplicates(instruments)
    problems.extend(_size_problems(unique))
    problems.extend(_expiry_problems(unique, calendar))
    problems.extend(_chain_problems(unique))
    return problems


def _without_duplicates(
    instruments: Iterable[Instrument],
) -> tuple[list[Instrument], list[Problem]]:
    kept: list[Instrument] = []
    problems: list[Problem] = []
    tokens: dict[tuple[str, str], Instrument] = {}
    contracts: dict[tuple[object, ...], Instrument] = {}
    for inst in instruments:
        first = tokens.setdefault((inst.exchange, inst.token), inst)
        if first is not inst:
            reason = f"duplicate token on {inst.exchange}: {inst.symbol} and {first.symbol}"
            problems.append(Problem(None, inst.token, "token", inst.token, reason))
            continue
        if inst.expiry is not None and inst.instrument_type.startswith(_DERIVATIVE_PREFIXES):
            terms = (
                inst.exchange,
                inst.name,
                inst.instrument_type,
                inst.expiry,
                inst.strike_paise,
                inst.option_type,
            )
            twin = contracts.setdefault(terms, inst)
            if twin is not inst:
                reason = f"same contract as token {twin.token} ({twin.symbol})"
                problems.append(Problem(None, inst.token, "symbol", inst.symbol, reason))
                continue
        kept.append(inst)
    return kept, problems


def _size_problems(instruments: Iterable[Instrument]) -> Iterator[Problem]:
    for inst in instruments:
        if inst.lot_size <= 0:
            yield Problem(None, inst.token, "lotsize", str(inst.lot_size), "lot size not positive")
        # Indices are not traded, so the master gives them no tick.
        if inst.tick_paise <= 0 and inst.instrument_type != INDEX_TYPE:
            yield Problem(None, inst.token, "tick_size", str(inst.tick), "tick size not positive")


def _expiry_problems(
    instruments: Iterable[Instrument], calendar: TradingCalendar
) -> Iterator[Problem]:
    by_expiry: dict[tuple[str, date], list[Instrument]] = defaultdict(list)
    for inst in instruments:
        if not inst.instrument_type.startswith(_DERIVATIVE_PREFIXES):
            continue
        if inst.expiry is None:
            yield Problem(None, inst.token, "expiry", "", "a derivative needs an expiry")
        else:
            by_expiry[(inst.name, inst.expiry)].append(inst)
    trading: dict[date, bool] = {}
    for (name, expiry), contracts in by_expiry.items():
        if expiry not in trading:
            trading[expiry] = calendar.is_trading_day(expiry)
        if not trading[expiry]:
            # One problem per underlying and expiry, not one per contract.
            yield Problem(
                None,
                contracts[0].token,
                "expiry",
                format_master_expiry(expiry),
                f"{name} expiry {expiry.isoformat()} is not a trading day "
                f"({len(contracts)} contracts)",
            )


def _chain_problems(instruments: Iterable[Instrument]) -> Iterator[Problem]:
    chains: dict[tuple[str, str, date], list[Instrument]] = defaultdict(list)
    for inst in instruments:
        if not inst.instrument_type.startswith("OPT") or inst.expiry is None:
            continue
        if inst.option_type is None or inst.strike_paise is None or inst.strike_paise <= 0:
            reason = "an option needs a positive strike and CE/PE"
            yield Problem(None, inst.token, "strike", str(inst.strike), reason)
        else:
            chains[(inst.exchange, inst.name, inst.expiry)].append(inst)
    for (_, name, expiry), legs in chains.items():
        chain = _chain_of(name, expiry, legs)
        yield from _off_grid(chain)
        yield from _mixed_lots(chain)


# ---------------------------------------------------------------------------------------------
# Lookup


def _pick(
    candidates: Sequence[Instrument], exchange: str | None, describe: Callable[[], str]
) -> Instrument:
    if exchange is not None:
        candidates = [c for c in candidates if c.exchange == exchange]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        where = f" on {exchange}" if exchange is not None else ""
        raise InstrumentNotFound(f"no instrument with {describe()}{where}")
    listed = ", ".join(sorted(f"{c.exchange}:{c.symbol} (token {c.token})" for c in candidates))
    raise AmbiguousInstrument(f"{describe()} matches several instruments: {listed}")


_Key = TypeVar("_Key", bound=Hashable)


class _Multimap(Generic[_Key]):
    """Key -> instruments. Nearly every key has one, so only a shared key gets a list."""

    __slots__ = ("_first", "_more")

    def __init__(self) -> None:
        self._first: dict[_Key, Instrument] = {}
        self._more: dict[_Key, list[Instrument]] = {}

    def add(self, key: _Key, inst: Instrument) -> None:
        first = self._first.setdefault(key, inst)
        if first is not inst:
            self._more.setdefault(key, [first]).append(inst)

    def get(self, key: _Key) -> Sequence[Instrument]:
        more = self._more.get(key)
        if more is not None:
            return more
        first = self._first.get(key)
        return () if first is None else (first,)


_ContractKey = tuple[str, date | None, int | None, OptionType | None]


class InstrumentIndex:
    """A parsed master indexed once for fast lookups by token, symbol and contract terms."""

    __slots__ = (
        "_by_contract",
        "_by_symbol",
        "_by_token",
        "_chains",
        "_derivatives",
        "_indices",
        "_instruments",
    )

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._instruments = tuple(instruments)
        self._by_token: _Multimap[str] = _Multimap()
        self._by_symbol: _Multimap[str] = _Multimap()
        self._by_contract: _Multimap[_ContractKey] = _Multimap()
        derivatives: dict[str, list[Instrument]] = defaultdict(list)
        indices: list[Instrument] = []
        for inst in self._instruments:
            self._by_token.add(inst.token, inst)
            self._by_symbol.add(inst.symbol, inst)
            kind = inst.instrument_type
            if kind.startswith(_DERIVATIVE_PREFIXES):
                key = (inst.name, inst.expiry, inst.strike_paise, inst.option_type)
                self._by_contract.add(key, inst)
                derivatives[inst.name].append(inst)
            elif kind == INDEX_TYPE:
                indices.append(inst)
        self._derivatives = dict(derivatives)
        self._indices = tuple(indices)
        self._chains: dict[tuple[str, str | None], dict[date, OptionChain]] = {}

    def __len__(self) -> int:
        return len(self._instruments)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._instruments)

    def by_token(self, token: str, exchange: str | None = None) -> Instrument:
        """The instrument with this token (tokens repeat across exchanges: pass exchange)."""
        return _pick(self._by_token.get(token), exchange, lambda: f"token {token!r}")

    def by_symbol(self, symbol: str, exchange: str | None = None) -> Instrument:
        """The instrument with this trading symbol."""
        return _pick(self._by_symbol.get(symbol), exchange, lambda: f"symbol {symbol!r}")

    def contract(
        self,
        name: str,
        expiry: date,
        strike_paise: int | None = None,
        option_type: OptionType | None = None,
        exchange: str | None = None,
    ) -> Instrument:
        """A derivative by its terms: a future without strike and type, an option with both."""
        key = (name, expiry, strike_paise, option_type)
        return _pick(
            self._by_contract.get(key),
            exchange,
            lambda: "contract " + " ".join(str(part) for part in key if part is not None),
        )

    def option(
        self,
        name: str,
        expiry: date,
        strike_paise: int,
        option_type: OptionType,
        exchange: str | None = None,
    ) -> Instrument:
        """The option with these terms."""
        return self.contract(name, expiry, strike_paise, option_type, exchange)

    def futures(self, underlying: str) -> list[Instrument]:
        """The underlying's futures, nearest expiry first."""
        found = [i for i in self._derivatives.get(underlying, ()) if i.is_future]
        return sorted(found, key=lambda i: (i.expiry or date.max, i.exchange, i.token))

    def options(self, underlying: str) -> list[Instrument]:
        """The underlying's options, in master order."""
        return [i for i in self._derivatives.get(underlying, ()) if i.is_option]

    def expiries(self, underlying: str) -> list[date]:
        """Every listed expiry of the underlying's futures and options, ascending."""
        found = {i.expiry for i in self._derivatives.get(underlying, ()) if i.expiry is not None}
        return sorted(found)

    def option_chains(
        self, underlying: str, exchange: str | None = None
    ) -> dict[date, OptionChain]:
        """The underlying's option chains by expiry (built once, then reused)."""
        key = (underlying, exchange)
        chains = self._chains.get(key)
        if chains is None:
            chains = self._chains[key] = option_chains(
                self.options(underlying), underlying, exchange
            )
        return dict(chains)

    def underlyings(self) -> list[str]:
        """Names of every underlying with listed options, sorted."""
        return sorted(
            name for name, found in self._derivatives.items() if any(i.is_option for i in found)
        )

    def index_instrument(self, name: str) -> Instrument:
        """The index for an underlying (``NIFTY`` -> Nifty 50) or by index symbol/name.

        Known underlyings resolve by their published index token (INDEX_TOKENS); anything else
        by a case-insensitive match on the index rows' name or symbol.
        """
        wanted = name.upper()
        known = INDEX_TOKENS.get(wanted)
        if known is not None:
            exchange, token = known
            for inst in self._by_token.get(token):
                if inst.exchange == exchange and inst.is_index:
                    return inst
        matches = [
            i for i in self._indices if i.name.upper() == wanted or i.symbol.upper() == wanted
        ]
        return _pick(matches, None, lambda: f"index {name!r}")
