"""Charges on NSE F&O options trades: brokerage, STT, exchange, SEBI, stamp duty, GST.

The rates live in ``market/data/charges.toml`` as an effective-dated schedule; this
module reads and validates it, picks the rates in force on a trade date and applies
them to fills. Money is ``Decimal`` rupees throughout; quantities are int units.

Errors::

    ChargesError (ValueError)
    ├── ChargeScheduleError      the schedule data is malformed (names the entry)
    └── DateBeforeScheduleError  no rates are recorded for the asked date
"""

from __future__ import annotations

import bisect
import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from importlib import resources

PAISA = Decimal("0.01")
_HUNDRED = Decimal(100)
# Wide enough that no product of price, quantity and rate is ever rounded early.
_PRECISION = 60


class ChargesError(ValueError):
    """Base class for every charges error."""


class ChargeScheduleError(ChargesError):
    """The charge schedule data is malformed."""


class DateBeforeScheduleError(ChargesError):
    """The schedule records no rates for the asked date."""

    def __init__(self, day: date, starts_on: date) -> None:
        super().__init__(
            f"no charge rates recorded for {day.isoformat()}: "
            f"the schedule starts on {starts_on.isoformat()}"
        )
        self.day = day
        self.starts_on = starts_on


class Side(StrEnum):
    """Which side of the market a fill was on."""

    BUY = "BUY"
    SELL = "SELL"


class Basis(StrEnum):
    """What a rate is applied to."""

    SELL_PREMIUM = "sell_premium"
    BUY_PREMIUM = "buy_premium"
    PREMIUM_TURNOVER = "premium_turnover"
    TAXABLE = "taxable"


# Components in breakdown order; each must have at least one entry in the schedule.
COMPONENTS = ("stt", "exchange_txn", "sebi", "stamp_duty", "gst")
_BASES_ALLOWED = {
    "stt": frozenset(Basis) - {Basis.TAXABLE},
    "exchange_txn": frozenset(Basis) - {Basis.TAXABLE},
    "sebi": frozenset(Basis) - {Basis.TAXABLE},
    "stamp_duty": frozenset(Basis) - {Basis.TAXABLE},
    "gst": frozenset({Basis.TAXABLE}),
}


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: ``quantity`` units at ``price`` rupees per unit of premium."""

    side: Side
    price: Decimal
    quantity: int

    def __post_init__(self) -> None:
        if not isinstance(self.price, Decimal) or not self.price.is_finite():
            raise ValueError(f"fill price must be a finite Decimal, got {self.price!r}")
        if self.price < 0:
            raise ValueError(f"fill price must not be negative, got {self.price}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError(f"fill quantity must be an int, got {self.quantity!r}")
        if self.quantity <= 0:
            raise ValueError(f"fill quantity must be positive, got {self.quantity}")

    @property
    def value(self) -> Decimal:
        """Premium value of the fill in rupees (price × quantity), exact."""
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One dated rate of one component, as read from the schedule."""

    effective_from: date
    percent: Decimal
    basis: Basis
    source: str

    @property
    def rate(self) -> Decimal:
        """The rate as a fraction (``percent / 100``), exact."""
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return self.percent / _HUNDRED

    def describe(self) -> str:
        """Short human form, e.g. ``0.1% of sell premium``."""
        return f"{self.percent}% of {self.basis.value.replace('_', ' ')}"


@dataclass(frozen=True, slots=True)
class Rates:
    """The rate of every component in force on one day."""

    on: date
    stt: RateEntry
    exchange_txn: RateEntry
    sebi: RateEntry
    stamp_duty: RateEntry
    gst: RateEntry


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    """Charges of a set of fills, each component in rupees rounded to the paisa."""

    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi: Decimal
    stamp_duty: Decimal
    gst: Decimal
    total: Decimal

    def as_strings(self) -> dict[str, str]:
        """Every field as a rupee string with two decimals, e.g. ``{"total": "63.27"}``."""
        return {
            "brokerage": _rupees(self.brokerage),
            "stt": _rupees(self.stt),
            "exchange_txn": _rupees(self.exchange_txn),
            "sebi": _rupees(self.sebi),
            "stamp_duty": _rupees(self.stamp_duty),
            "gst": _rupees(self.gst),
            "total": _rupees(self.total),
        }


@dataclass(frozen=True, slots=True)
class NetPnl:
    """Gross P&L (sell value − buy value), the charges, and net = gross − total charges."""

    gross: Decimal
    charges: ChargeBreakdown
    net: Decimal


def _rupees(amount: Decimal) -> str:
    return format(amount.quantize(PAISA, rounding=ROUND_HALF_UP), "f")


def to_paisa(amount: Decimal) -> Decimal:
    """Round a rupee amount to the paisa, halves away from zero (ROUND_HALF_UP)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


class ChargeSchedule:
    """Effective-dated rates of every charge component, validated on construction."""

    __slots__ = ("_entries", "_starts", "brokerage_source", "default_brokerage_per_order")

    def __init__(
        self,
        entries: Mapping[str, Sequence[RateEntry]],
        default_brokerage_per_order: Decimal,
        brokerage_source: str,
    ) -> None:
        missing = [name for name in COMPONENTS if not entries.get(name)]
        if missing:
            raise ChargeScheduleError(f"charge schedule has no entries for: {', '.join(missing)}")
        unknown = sorted(set(entries) - set(COMPONENTS))
        if unknown:
            raise ChargeScheduleError(
                f"charge schedule has unknown components: {', '.join(unknown)} "
                f"(allowed: {', '.join(COMPONENTS)})"
            )
        for name in COMPONENTS:
            _check_entries(name, entries[name])
        if default_brokerage_per_order < 0:
            raise ChargeScheduleError(
                f"brokerage.per_order must not be negative, got {default_brokerage_per_order}"
            )
        self._entries = {name: tuple(entries[name]) for name in COMPONENTS}
        self._starts = {
            name: [e.effective_from for e in self._entries[name]] for name in COMPONENTS
        }
        self.default_brokerage_per_order = default_brokerage_per_order
        self.brokerage_source = brokerage_source

    @classmethod
    def load_default(cls) -> ChargeSchedule:
        """The schedule shipped in ``market/data/charges.toml`` (parsed once)."""
        return _default_schedule()

    @classmethod
    def from_toml(cls, text: str, origin: str = "charges.toml") -> ChargeSchedule:
        """Parse and validate a schedule from TOML text; errors start with ``origin``."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ChargeScheduleError(f"{origin}: not valid TOML: {exc}") from exc
        return cls.from_mapping(document, origin)

    @classmethod
    def from_mapping(cls, document: Mapping[str, object], origin: str) -> ChargeSchedule:
        """Build a schedule from an already-parsed TOML document."""
        brokerage = document.get("brokerage")
        if not isinstance(brokerage, Mapping):
            raise ChargeScheduleError(f"{origin}: missing [brokerage] table")
        per_order = _parse_amount(brokerage.get("per_order"), f"{origin}: brokerage.per_order")
        brokerage_source = _require_text(brokerage.get("source"), f"{origin}: brokerage.source")

        entries: dict[str, list[RateEntry]] = {}
        for name, raw_list in document.items():
            if name == "brokerage":
                continue
            if name not in COMPONENTS:
                raise ChargeScheduleError(
                    f"{origin}: unknown component {name!r} (allowed: {', '.join(COMPONENTS)})"
                )
            if not isinstance(raw_list, list):
                raise ChargeScheduleError(f"{origin}: {name} must be an array of [[{name}]] tables")
            entries[name] = [
                _parse_entry(raw, f"{origin}: {name}[{index}]")
                for index, raw in enumerate(raw_list)
            ]
        try:
            return cls(entries, per_order, brokerage_source)
        except ChargeScheduleError as exc:
            raise ChargeScheduleError(f"{origin}: {exc}") from None

    @property
    def starts_on(self) -> date:
        """The first day for which every component has a rate."""
        return max(starts[0] for starts in self._starts.values())

    def entries(self, component: str) -> tuple[RateEntry, ...]:
        """All dated entries of one component, oldest first."""
        return self._entries[component]

    def rates_on(self, day: date) -> Rates:
        """The rates in force on ``day``; raises DateBeforeScheduleError before coverage."""
        if isinstance(day, datetime):
            # A datetime would compare by its date part only by accident; be explicit.
            day = day.date()
        if day < self.starts_on:
            raise DateBeforeScheduleError(day, self.starts_on)
        picked = {
            name: self._entries[name][bisect.bisect_right(self._starts[name], day) - 1]
            for name in COMPONENTS
        }
        return Rates(
            on=day,
            stt=picked["stt"],
            exchange_txn=picked["exchange_txn"],
            sebi=picked["sebi"],
            stamp_duty=picked["stamp_duty"],
            gst=picked["gst"],
        )


@functools.cache
def _default_schedule() -> ChargeSchedule:
    text = resources.files("market").joinpath("data", "charges.toml").read_text("utf-8")
    return ChargeSchedule.from_toml(text, origin="market/data/charges.toml")


def _check_entries(name: str, entries: Sequence[RateEntry]) -> None:
    for index, entry in enumerate(entries):
        where = f"{name}[{index}] (effective_from {entry.effective_from.isoformat()})"
        if entry.basis not in _BASES_ALLOWED[name]:
            allowed = ", ".join(sorted(b.value for b in _BASES_ALLOWED[name]))
            raise ChargeScheduleError(
                f"{where}: basis {entry.basis.value!r} is not allowed for {name} "
                f"(allowed: {allowed})"
            )
        if entry.percent < 0:
            raise ChargeScheduleError(f"{where}: rate {entry.percent}% must not be negative")
        if index == 0:
            continue
        previous = entries[index - 1].effective_from
        if entry.effective_from == previous:
            raise ChargeScheduleError(
                f"{where}: duplicate effective_from, same as {name}[{index - 1}]"
            )
        if entry.effective_from < previous:
            raise ChargeScheduleError(
                f"{where}: out of order, earlier than {name}[{index - 1}] "
                f"({previous.isoformat()}); list entries oldest first"
            )


def _parse_entry(raw: object, where: str) -> RateEntry:
    if not isinstance(raw, Mapping):
        raise ChargeScheduleError(f"{where}: must be a table")
    effective_from = raw.get("effective_from")
    if isinstance(effective_from, datetime) or not isinstance(effective_from, date):
        raise ChargeScheduleError(
            f"{where}: effective_from must be a bare TOML date like 2024-10-01, "
            f"got {effective_from!r}"
        )
    where = f"{where} (effective_from {effective_from.isoformat()})"
    percent = _parse_percent(raw.get("rate"), where)
    basis = _parse_basis(raw.get("basis"), where)
    source = _require_text(raw.get("source"), f"{where}: source")
    unexpected = sorted(set(raw) - {"effective_from", "rate", "basis", "source"})
    if unexpected:
        raise ChargeScheduleError(f"{where}: unexpected keys: {', '.join(unexpected)}")
    return RateEntry(effective_from=effective_from, percent=percent, basis=basis, source=source)


def _parse_basis(raw: object, where: str) -> Basis:
    for basis in Basis:
        if raw == basis.value:
            return basis
    allowed = ", ".join(b.value for b in Basis)
    raise ChargeScheduleError(f"{where}: unknown basis {raw!r} (allowed: {allowed})")


def _parse_percent(raw: object, where: str) -> Decimal:
    if not isinstance(raw, str) or not raw.strip().endswith("%"):
        raise ChargeScheduleError(
            f'{where}: rate must be a percentage string like "0.1%", got {raw!r}'
        )
    number = _parse_decimal(raw.strip()[:-1].strip(), f"{where}: rate {raw!r}")
    if number < 0:
        raise ChargeScheduleError(f"{where}: rate {raw!r} must not be negative")
    return number


def _parse_amount(raw: object, where: str) -> Decimal:
    if not isinstance(raw, str):
        raise ChargeScheduleError(f'{where} must be a rupee amount string like "20", got {raw!r}')
    amount = _parse_decimal(raw.strip(), f"{where} {raw!r}")
    if amount < 0:
        raise ChargeScheduleError(f"{where} {raw!r} must not be negative")
    return amount


def _parse_decimal(text: str, where: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ChargeScheduleError(f"{where} is not a number") from None
    if not number.is_finite():
        raise ChargeScheduleError(f"{where} is not a finite number")
    return number


def _require_text(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ChargeScheduleError(f"{where} must be a non-empty string, got {raw!r}")
    return raw


def compute_charges(
    fills: Sequence[Fill],
    trade_date: date,
    schedule: ChargeSchedule,
    brokerage_per_order: Decimal,
    orders: int | None = None,
) -> ChargeBreakdown:
    """Charges on ``fills`` traded on ``trade_date`` at the rates in force that day.

    ``brokerage = brokerage_per_order × orders``; ``orders`` defaults to one executed
    order per fill (pass it when one order filled in several parts).

    Rounding: each component is computed exactly in Decimal over all the fills
    together, then rounded to the paisa with ROUND_HALF_UP. GST is taken on the
    *rounded* brokerage, exchange transaction charge and SEBI fee, then rounded the
    same way, and the total is the sum of the rounded components. Contract notes
    may round STT to the whole rupee; we keep paise so small trades stay exact.
    """
    if not isinstance(brokerage_per_order, Decimal) or not brokerage_per_order.is_finite():
        raise ValueError(
            f"brokerage_per_order must be a finite Decimal, got {brokerage_per_order!r}"
        )
    if brokerage_per_order < 0:
        raise ValueError(f"brokerage_per_order must not be negative, got {brokerage_per_order}")
    executed = len(fills) if orders is None else orders
    if isinstance(executed, bool) or not isinstance(executed, int) or executed < 0:
        raise ValueError(f"orders must be a non-negative int, got {orders!r}")

    rates = schedule.rates_on(trade_date)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        buy_premium = sum((f.value for f in fills if f.side is Side.BUY), Decimal(0))
        sell_premium = sum((f.value for f in fills if f.side is Side.SELL), Decimal(0))
        bases = {
            Basis.BUY_PREMIUM: buy_premium,
            Basis.SELL_PREMIUM: sell_premium,
            Basis.PREMIUM_TURNOVER: buy_premium + sell_premium,
        }

        def on_premium(entry: RateEntry) -> Decimal:
            return to_paisa(bases[entry.basis] * entry.rate)

        brokerage = to_paisa(brokerage_per_order * executed)
        stt = on_premium(rates.stt)
        exchange_txn = on_premium(rates.exchange_txn)
        sebi = on_premium(rates.sebi)
        stamp_duty = on_premium(rates.stamp_duty)
        gst = to_paisa((brokerage + exchange_txn + sebi) * rates.gst.rate)
        total = brokerage + stt + exchange_txn + sebi + stamp_duty + gst
    return ChargeBreakdown(
        brokerage=brokerage,
        stt=stt,
        exchange_txn=exchange_txn,
        sebi=sebi,
        stamp_duty=stamp_duty,
        gst=gst,
        total=total,
    )


def net_pnl(
    fills: Sequence[Fill],
    trade_date: date,
    schedule: ChargeSchedule,
    brokerage_per_order: Decimal,
    orders: int | None = None,
) -> NetPnl:
    """Gross P&L (sell value − buy value) and net P&L after ``compute_charges``."""
    charges = compute_charges(fills, trade_date, schedule, brokerage_per_order, orders)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        gross = sum(
            (f.value if f.side is Side.SELL else -f.value for f in fills),
            Decimal(0),
        )
        net = gross - charges.total
    return NetPnl(gross=gross, charges=charges, net=net)
