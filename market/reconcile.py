"""End-of-day reconciliation: the journal's view of the day against the broker's books.

Both sides are put in one shape, a :class:`Ledger` (orders, fills, positions), and
:func:`reconcile` lists one :class:`Check` per thing compared. A check whose status is
``break`` is a mismatch a person must look at before the next session opens positions:

* ``missing_order``      the journal sent an order the broker's order book does not hold
* ``unknown_order``      the broker holds an order the journal never sent
* ``duplicate_order``    the broker holds two orders carrying one intent id (ordertag)
* ``missing_fill``       an order's filled quantity differs: one side lacks a fill
* ``quantity_mismatch``  an order's quantity, or an instrument's net position, differs
* ``pnl_mismatch``       realised P&L differs by more than the tolerance
* ``unreadable_journal`` a journal record could not be read

In every check ``expected`` is what the journal says and ``actual`` what the broker says.
Money is integer paise; realised P&L is computed exactly (fractions) and rounded half away
from zero only at the end.

The journal arrives as the streaming worker's events (kind, key, time, JSON payload); see
:func:`journal_from_events` for the record contract.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from market.charges import ChargeBreakdown, ChargeSchedule, Fill, Side, compute_charges

__all__ = [
    "FILL_KIND",
    "INTENT_KIND",
    "ORDER_KIND",
    "UNSENT_STATUSES",
    "BreakKind",
    "Check",
    "CheckStatus",
    "DayPnl",
    "JournalEvent",
    "Ledger",
    "LedgerFill",
    "LedgerOrder",
    "LedgerPosition",
    "Reconciliation",
    "day_pnl",
    "journal_from_events",
    "order_charges",
    "positions_from_fills",
    "realised_pnl_paise",
    "reconcile",
    "rupees_to_paise",
]

INTENT_KIND = "intent"
ORDER_KIND = "order"
FILL_KIND = "fill"

# An intent whose order never reached the broker: its absence from the order book is expected.
UNSENT_STATUSES = frozenset({"", "unsent"})

_SIDES = ("BUY", "SELL")


class BreakKind(StrEnum):
    """What kind of mismatch a break is."""

    MISSING_ORDER = "missing_order"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_ORDER = "duplicate_order"
    MISSING_FILL = "missing_fill"
    QUANTITY_MISMATCH = "quantity_mismatch"
    PNL_MISMATCH = "pnl_mismatch"
    UNREADABLE_JOURNAL = "unreadable_journal"


class CheckStatus(StrEnum):
    """Outcome of one comparison."""

    OK = "ok"
    BREAK = "break"
    NOTE = "note"  # worth reading, not a reason to halt


@dataclass(frozen=True, slots=True)
class LedgerOrder:
    """One order as one side saw it. ``order_id`` is empty when the journal never learnt it."""

    order_id: str
    tag: str  # our intent id, sent as the broker's ordertag; empty for orders placed elsewhere
    exchange: str
    symbol: str
    side: str
    quantity: int
    status: str  # lower-case broker vocabulary; "unsent" for an intent that never left

    @property
    def label(self) -> str:
        """How a person recognises the order in a report."""
        name = self.order_id or f"intent {self.tag}"
        return f"{name} ({self.side} {self.quantity} {self.symbol})"


@dataclass(frozen=True, slots=True)
class LedgerFill:
    """One execution of an order, at ``price_paise`` per unit."""

    order_id: str
    fill_id: str
    exchange: str
    symbol: str
    side: str
    quantity: int
    price_paise: int

    def __post_init__(self) -> None:
        if self.side not in _SIDES:
            raise ValueError(f"fill side must be BUY or SELL, got {self.side!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError(f"fill quantity must be an int, got {self.quantity!r}")
        if self.quantity <= 0:
            raise ValueError(f"fill quantity must be positive, got {self.quantity}")
        if isinstance(self.price_paise, bool) or not isinstance(self.price_paise, int):
            raise ValueError(f"fill price must be int paise, got {self.price_paise!r}")
        if self.price_paise < 0:
            raise ValueError(f"fill price must not be negative, got {self.price_paise}")

    @property
    def value_paise(self) -> int:
        """Premium value of the fill."""
        return self.price_paise * self.quantity


@dataclass(frozen=True, slots=True)
class LedgerPosition:
    """Net quantity held in one instrument (bought − sold)."""

    exchange: str
    symbol: str
    net_quantity: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """One side's day: orders, fills and positions (None: derive positions from the fills)."""

    orders: tuple[LedgerOrder, ...] = ()
    fills: tuple[LedgerFill, ...] = ()
    positions: tuple[LedgerPosition, ...] | None = None

    def net_positions(self) -> dict[tuple[str, str], int]:
        """``(exchange, symbol) → net quantity``, from the positions or else the fills."""
        if self.positions is None:
            return {
                (p.exchange, p.symbol): p.net_quantity for p in positions_from_fills(self.fills)
            }
        net: dict[tuple[str, str], int] = defaultdict(int)
        for position in self.positions:
            net[(position.exchange, position.symbol)] += position.net_quantity
        return dict(net)


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison; ``expected`` is the journal's figure, ``actual`` the broker's."""

    name: str
    status: CheckStatus
    expected: str = ""
    actual: str = ""
    detail: str = ""
    kind: BreakKind | None = None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Every check made, and realised P&L as each side computes it."""

    checks: tuple[Check, ...]
    journal_pnl_paise: int
    broker_pnl_paise: int

    @property
    def breaks(self) -> tuple[Check, ...]:
        """The checks that must stop the next session from opening positions."""
        return tuple(c for c in self.checks if c.status is CheckStatus.BREAK)

    @property
    def clean(self) -> bool:
        """True when nothing broke."""
        return not self.breaks


@dataclass(frozen=True, slots=True)
class DayPnl:
    """Realised P&L of the day: gross, charges and net, in paise."""

    gross_paise: int
    charges_paise: int
    net_paise: int
    charges_by_order: Mapping[str, ChargeBreakdown] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One journal record as stored in the ``events`` dataset."""

    kind: str
    key: str
    ts: datetime
    payload: str  # JSON


# --------------------------------------------------------------------------- money


def _round_half_up(amount: Fraction) -> int:
    """Nearest integer, halves away from zero (like ``Decimal`` ROUND_HALF_UP)."""
    magnitude = abs(amount)
    whole = int(magnitude + Fraction(1, 2))
    return whole if amount >= 0 else -whole


def rupees_to_paise(amount: Decimal) -> int:
    """A rupee amount already rounded to the paisa as int paise; refuses fractions of a paisa."""
    scaled = amount * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} rupees is not a whole number of paise")
    return int(scaled)


def positions_from_fills(fills: Iterable[LedgerFill]) -> list[LedgerPosition]:
    """Net position per instrument implied by the fills, in first-seen order."""
    net: dict[tuple[str, str], int] = {}
    for fill in fills:
        key = (fill.exchange, fill.symbol)
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        net[key] = net.get(key, 0) + signed
    return [LedgerPosition(exchange, symbol, qty) for (exchange, symbol), qty in net.items()]


def realised_pnl_paise(fills: Iterable[LedgerFill]) -> int:
    """Realised P&L of the fills: per instrument, matched quantity × (sell avg − buy avg).

    A flat instrument realises exactly sell value − buy value; an open remainder is not
    realised. Averages are exact fractions; the total is rounded once, half away from zero.
    """
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for fill in fills:
        bucket = totals[(fill.exchange, fill.symbol)]
        offset = 0 if fill.side == "BUY" else 2
        bucket[offset] += fill.quantity
        bucket[offset + 1] += fill.value_paise
    realised = Fraction(0)
    for buy_qty, buy_value, sell_qty, sell_value in totals.values():
        matched = min(buy_qty, sell_qty)
        if matched:
            realised += Fraction(matched * sell_value, sell_qty)
            realised -= Fraction(matched * buy_value, buy_qty)
    return _round_half_up(realised)


def order_charges(
    fills: Sequence[LedgerFill],
    trade_date: date,
    schedule: ChargeSchedule,
    brokerage_per_order: Decimal,
) -> ChargeBreakdown:
    """Charges on one executed order (all its fills), at the rates in force on ``trade_date``."""
    priced = [Fill(Side(f.side), Decimal(f.price_paise) / 100, f.quantity) for f in fills]
    return compute_charges(priced, trade_date, schedule, brokerage_per_order, orders=1)


def day_pnl(
    fills: Sequence[LedgerFill],
    trade_date: date,
    schedule: ChargeSchedule,
    brokerage_per_order: Decimal,
) -> DayPnl:
    """Realised gross P&L, charges per executed order, and net P&L for one day's fills."""
    by_order: dict[str, list[LedgerFill]] = defaultdict(list)
    for fill in fills:
        by_order[fill.order_id].append(fill)
    charges = {
        order_id: order_charges(order_fills, trade_date, schedule, brokerage_per_order)
        for order_id, order_fills in by_order.items()
    }
    gross = realised_pnl_paise(fills)
    total = sum(rupees_to_paise(c.total) for c in charges.values())
    return DayPnl(gross, total, gross - total, charges)


def _money(paise: int) -> str:
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}₹{whole:,}.{part:02d}"


# --------------------------------------------------------------------------- reconcile


def _filled(fills: Iterable[LedgerFill]) -> dict[str, tuple[int, int]]:
    """``order_id → (quantity, value in paise)`` over the fills."""
    sums: dict[str, tuple[int, int]] = {}
    for fill in fills:
        qty, value = sums.get(fill.order_id, (0, 0))
        sums[fill.order_id] = (qty + fill.quantity, value + fill.value_paise)
    return sums


def _fill_text(quantity: int, value_paise: int) -> str:
    if quantity == 0:
        return "no fills"
    return f"{quantity} filled, value {_money(value_paise)}"


def reconcile(journal: Ledger, broker: Ledger, *, pnl_tolerance_paise: int = 0) -> Reconciliation:
    """Compare the journal with the broker's books; every difference is a check."""
    if pnl_tolerance_paise < 0:
        raise ValueError(f"pnl_tolerance_paise must be >= 0, got {pnl_tolerance_paise}")
    checks: list[Check] = []
    by_id = {o.order_id: o for o in broker.orders if o.order_id}
    by_tag: dict[str, list[LedgerOrder]] = defaultdict(list)
    for order in broker.orders:
        if order.tag:
            by_tag[order.tag].append(order)
    for tag, orders in by_tag.items():
        if len(orders) > 1:
            ids = ", ".join(o.order_id for o in orders)
            checks.append(
                Check(
                    f"order:{tag}:copies",
                    CheckStatus.BREAK,
                    "1 order",
                    f"{len(orders)} orders ({ids})",
                    f"intent {tag} reached the broker more than once",
                    BreakKind.DUPLICATE_ORDER,
                )
            )

    matched: set[str] = set()  # broker order ids paired with a journal order
    flagged: set[str] = set()  # order ids whose fills are not compared (already a break)
    for mine in journal.orders:
        theirs = by_id.get(mine.order_id) if mine.order_id else None
        if theirs is None and mine.tag and not mine.order_id:
            theirs = next((o for o in by_tag.get(mine.tag, ()) if o.order_id not in matched), None)
        if theirs is None:
            checks.append(_absent(mine))
            if mine.order_id:
                flagged.add(mine.order_id)
            continue
        matched.add(theirs.order_id)
        name = f"order:{theirs.order_id}"
        if not mine.order_id:
            checks.append(
                Check(
                    f"{name}:found_by_tag",
                    CheckStatus.NOTE,
                    "no order id recorded",
                    theirs.order_id,
                    f"intent {mine.tag} was found in the order book by its ordertag",
                )
            )
        if mine.quantity != theirs.quantity:
            checks.append(
                Check(
                    f"{name}:quantity",
                    CheckStatus.BREAK,
                    str(mine.quantity),
                    str(theirs.quantity),
                    f"order {theirs.label} has another quantity at the broker",
                    BreakKind.QUANTITY_MISMATCH,
                )
            )
        else:
            checks.append(
                Check(f"{name}:quantity", CheckStatus.OK, str(mine.quantity), str(theirs.quantity))
            )

    for theirs in broker.orders:
        if theirs.order_id not in matched:
            flagged.add(theirs.order_id)
            checks.append(
                Check(
                    f"order:{theirs.order_id}:known",
                    CheckStatus.BREAK,
                    "not in the journal",
                    f"{theirs.status or 'unknown status'}",
                    f"the broker holds order {theirs.label}"
                    + (f" tagged {theirs.tag!r}" if theirs.tag else " with no ordertag")
                    + " that the journal never sent",
                    BreakKind.UNKNOWN_ORDER,
                )
            )

    checks.extend(_fill_checks(journal, broker, flagged))
    checks.extend(_position_checks(journal, broker))
    journal_pnl = realised_pnl_paise(journal.fills)
    broker_pnl = realised_pnl_paise(broker.fills)
    gap = abs(journal_pnl - broker_pnl)
    beyond = gap > pnl_tolerance_paise
    checks.append(
        Check(
            "pnl:realised",
            CheckStatus.BREAK if beyond else CheckStatus.OK,
            _money(journal_pnl),
            _money(broker_pnl),
            f"differs by {_money(gap)}; tolerance {_money(pnl_tolerance_paise)}" if gap else "",
            BreakKind.PNL_MISMATCH if beyond else None,
        )
    )
    return Reconciliation(tuple(checks), journal_pnl, broker_pnl)


def _absent(mine: LedgerOrder) -> Check:
    name = f"order:{mine.order_id or mine.tag}:at_broker"
    if not mine.order_id and mine.status in UNSENT_STATUSES:
        return Check(
            name,
            CheckStatus.NOTE,
            "intent recorded, not sent",
            "absent",
            f"intent {mine.tag} never reached the broker",
        )
    return Check(
        name,
        CheckStatus.BREAK,
        mine.status or "sent",
        "absent",
        f"the journal sent order {mine.label} but the broker's order book does not hold it",
        BreakKind.MISSING_ORDER,
    )


def _fill_checks(journal: Ledger, broker: Ledger, flagged: set[str]) -> list[Check]:
    mine = _filled(journal.fills)
    theirs = _filled(broker.fills)
    checks = []
    for order_id in sorted(set(mine) | set(theirs)):
        if order_id in flagged:
            continue
        my_qty, my_value = mine.get(order_id, (0, 0))
        their_qty, their_value = theirs.get(order_id, (0, 0))
        name = f"fills:{order_id}"
        expected, actual = _fill_text(my_qty, my_value), _fill_text(their_qty, their_value)
        if my_qty != their_qty:
            where = "the journal" if my_qty < their_qty else "the broker's trade book"
            checks.append(
                Check(
                    name,
                    CheckStatus.BREAK,
                    expected,
                    actual,
                    f"order {order_id}: {abs(my_qty - their_qty)} filled units missing from "
                    f"{where}",
                    BreakKind.MISSING_FILL,
                )
            )
        elif my_value != their_value:
            checks.append(
                Check(
                    name,
                    CheckStatus.NOTE,
                    expected,
                    actual,
                    f"order {order_id}: same quantity at another price "
                    f"({_money(their_value - my_value)} at the broker); see pnl:realised",
                )
            )
        else:
            checks.append(Check(name, CheckStatus.OK, expected, actual))
    return checks


def _position_checks(journal: Ledger, broker: Ledger) -> list[Check]:
    mine = journal.net_positions()
    theirs = broker.net_positions()
    checks = []
    for exchange, symbol in sorted(set(mine) | set(theirs)):
        my_net = mine.get((exchange, symbol), 0)
        their_net = theirs.get((exchange, symbol), 0)
        name = f"position:{exchange}:{symbol}"
        if my_net != their_net:
            checks.append(
                Check(
                    name,
                    CheckStatus.BREAK,
                    str(my_net),
                    str(their_net),
                    f"net quantity of {symbol} differs by {their_net - my_net}",
                    BreakKind.QUANTITY_MISMATCH,
                )
            )
        else:
            checks.append(Check(name, CheckStatus.OK, str(my_net), str(their_net)))
    return checks


# --------------------------------------------------------------------------- journal


def journal_from_events(
    events: Iterable[JournalEvent], mode: str | None = None
) -> tuple[Ledger, list[Check]]:
    """Rebuild the day's orders and fills from journal events of one ``mode`` (None: all).

    Record contract (JSON payloads; every payload carries ``"mode"``):

    * ``intent`` (key = intent id): ``intent_id, exchange, symbol, side, quantity`` and
      optionally ``token, price_paise``. Written before the order is sent.
    * ``order`` (key unique per update): ``intent_id, status`` and, once the broker
      acknowledged it, ``order_id``; optionally ``quantity`` when modified. The latest by
      time (then key) is the order's state; ``status = "unsent"`` marks an order that
      provably never left.
    * ``fill`` (key unique per fill, e.g. ``<order_id>:<fill_id>``): ``order_id, fill_id,
      exchange, symbol, side, quantity, price_paise`` (int paise).

    Other kinds are ignored. Unreadable records come back as ``unreadable_journal`` breaks.
    """
    problems: list[Check] = []
    intents: dict[str, dict[str, Any]] = {}
    updates: dict[str, tuple[datetime, str, dict[str, Any]]] = {}
    fills: dict[tuple[str, str], LedgerFill] = {}  # a fill journaled twice counts once
    ordered = sorted(events, key=lambda e: (e.ts, e.kind, e.key))
    for event in ordered:
        if event.kind not in (INTENT_KIND, ORDER_KIND, FILL_KIND):
            continue
        try:
            payload = _payload(event)
            if mode is not None and payload.get("mode") != mode:
                continue
            if event.kind == INTENT_KIND:
                intent_id = _text(payload, "intent_id")
                intents[intent_id] = payload
            elif event.kind == ORDER_KIND:
                intent_id = _text(payload, "intent_id")
                _text(payload, "status", allow_empty=True)
                updates[intent_id] = (event.ts, event.key, payload)
            else:
                fill = _fill(payload)
                fills[(fill.order_id, fill.fill_id)] = fill
        except ValueError as exc:
            problems.append(_unreadable(event, str(exc)))

    orders: list[LedgerOrder] = []
    for intent_id, intent in intents.items():
        try:
            update = updates.pop(intent_id, None)
            state = update[2] if update is not None else {}
            quantity = _int(state, "quantity") if "quantity" in state else _int(intent, "quantity")
            orders.append(
                LedgerOrder(
                    order_id=_text(state, "order_id", allow_empty=True),
                    tag=intent_id,
                    exchange=_text(intent, "exchange"),
                    symbol=_text(intent, "symbol"),
                    side=_side(intent),
                    quantity=quantity,
                    status=_text(state, "status", allow_empty=True).lower(),
                )
            )
        except ValueError as exc:
            problems.append(
                Check(
                    f"journal:intent:{intent_id}",
                    CheckStatus.BREAK,
                    "a readable intent",
                    "unreadable",
                    str(exc),
                    BreakKind.UNREADABLE_JOURNAL,
                )
            )
    for intent_id, (_, key, _) in updates.items():
        problems.append(
            Check(
                f"journal:order:{key}",
                CheckStatus.BREAK,
                f"intent {intent_id}",
                "no such intent",
                f"order record {key} names intent {intent_id}, which the journal does not hold",
                BreakKind.UNREADABLE_JOURNAL,
            )
        )
    return Ledger(tuple(orders), tuple(fills.values())), problems


def _unreadable(event: JournalEvent, reason: str) -> Check:
    return Check(
        f"journal:{event.kind}:{event.key}",
        CheckStatus.BREAK,
        "a readable record",
        "unreadable",
        reason,
        BreakKind.UNREADABLE_JOURNAL,
    )


def _payload(event: JournalEvent) -> dict[str, Any]:
    try:
        payload = json.loads(event.payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON ({exc.msg})") from None
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    return payload


def _text(payload: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = payload.get(name)
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _int(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _side(payload: Mapping[str, Any]) -> str:
    side = _text(payload, "side").upper()
    if side not in _SIDES:
        raise ValueError(f"side must be BUY or SELL, got {payload.get('side')!r}")
    return side


def _fill(payload: Mapping[str, Any]) -> LedgerFill:
    return LedgerFill(
        order_id=_text(payload, "order_id"),
        fill_id=_text(payload, "fill_id"),
        exchange=_text(payload, "exchange"),
        symbol=_text(payload, "symbol"),
        side=_side(payload),
        quantity=_int(payload, "quantity"),
        price_paise=_int(payload, "price_paise"),
    )
