"""The simulated exchange for one trading account: order validation, matching, books and funds.

Pure and synchronous: no sockets, no clock reads. Time and prices come in through the arguments
(``at``) and two lookups passed at construction — ``instrument_fn(token)`` and
``quote_fn(token, at)``. Every call that changes an order returns the ``OrderEvent`` list the
server pushes on the order-status WebSocket (SPEC §8).

Rules, as the simulator plays them:

* A malformed request raises ``ApiError`` and creates nothing (SPEC §5.1 codes). An unknown
  ``symboltoken``, or one whose symbol/exchange disagree with the request, is ``AB1009``.
* A well-formed order always gets an orderid. Business checks reject it with status
  ``rejected`` and a ``text`` naming the problem: forced rejection (fault hook), after-hours
  (outside 09:15–15:30 IST of the session date; after-market orders are not simulated), an
  index, quantity not a lot multiple, above the freeze quantity, no quote, price or trigger off
  the tick grid or outside the circuit band, a stop trigger already crossed, selling more than
  held (option writing and short selling are not enabled), insufficient funds (BUY value plus a
  charges margin above available cash).
* MARKET orders become LIMIT orders at LTP ± the market-price-protection band (default 5%,
  rounded to the tick, clipped to the circuit), recorded as ordertype ``LIMIT``.
  ``STOPLOSS_MARKET`` orders get the same protected price when triggered.
* A BUY LIMIT fills while its price ≥ best ask, at the ask prices, walking the five levels up to
  the limit; SELL mirrors against bids. Each level's quantity is consumed once per quote instant.
  Orders try to match on placement and on every ``on_market`` call once they are
  ``fill_delay_s`` old. IOC remainders are cancelled after the first attempt. Working orders
  expire (cancelled) at the close.
* Modifying or cancelling an order that is not working raises ``ApiError('AB1013', …)`` with the
  order's status in the message; an invalid modification raises ``ApiError('AB1007', …)`` and
  leaves the order as it was.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

from broker.sim.orders import (
    AB_CODES,
    IST,
    ORDER_TYPES_BY_VARIETY,
    WORKING_STATUSES,
    ApiError,
    SimOrder,
    SimTrade,
    TradedInstrument,
    format_rupees,
    parse_cancel_request,
    parse_modify_request,
    parse_place_request,
)
from broker.sim.portfolio import Portfolio, SimPosition
from market.charges import ChargeSchedule, ChargesError, Fill, Side, compute_charges

SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
#: uuid5 namespace of ``uniqueorderid``s, so the same orderid always gets the same UUID.
ORDER_UUID_NAMESPACE = uuid.UUID("6f1d2c4e-8a3b-5c7d-9e0f-1a2b3c4d5e6f")
DEFAULT_CAPITAL_PAISE = 10_00_000_00  # ₹10,00,000


class Quote(Protocol):
    """A quote at one instant: LTP, best-five depth (best first) and the circuit limits.

    Depth levels are ``(price_paise, quantity, orders)`` tuples or objects with ``price_paise``
    and ``quantity`` attributes (``broker.sim.book.DepthLevel``); empty levels are zeros.
    """

    @property
    def ltp_paise(self) -> int: ...
    @property
    def bids(self) -> Sequence[object]: ...
    @property
    def asks(self) -> Sequence[object]: ...
    @property
    def upper_circuit_paise(self) -> int: ...
    @property
    def lower_circuit_paise(self) -> int: ...


InstrumentFn = Callable[[str], TradedInstrument | None]
QuoteFn = Callable[[str, datetime], Quote | None]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One order-status update: the order record as it stood, and its SPEC §8 code."""

    order_record: dict[str, str]
    ab_code: str
    client_code: str = ""

    def message(self) -> dict[str, object]:
        """The order-status WebSocket message (SPEC §8)."""
        return {
            "user-id": self.client_code,
            "status-code": "200",
            "order-status": self.ab_code,
            "error-message": "",
            "orderData": self.order_record,
        }


@dataclass(frozen=True, slots=True)
class OrderAck:
    """What modifyOrder/cancelOrder answer, plus the events the change caused."""

    orderid: str
    uniqueorderid: str
    events: list[OrderEvent]

    def data(self) -> dict[str, str]:
        """The REST ``data`` payload."""
        return {"orderid": self.orderid, "uniqueorderid": self.uniqueorderid}


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """What placeOrder answers, plus the events the order caused (already rejected, filled…)."""

    script: str
    orderid: str
    uniqueorderid: str
    events: list[OrderEvent]

    def data(self) -> dict[str, str]:
        """The REST ``data`` payload (SPEC §4.3)."""
        return {"script": self.script, "orderid": self.orderid, "uniqueorderid": self.uniqueorderid}


def _ist(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware datetime")
    return at.astimezone(IST)


def _depth(levels: Sequence[object]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for level in levels:
        if isinstance(level, tuple):
            price, quantity = int(level[0]), int(level[1])
        else:
            price, quantity = int(level.price_paise), int(level.quantity)  # type: ignore[attr-defined]
        if price > 0 and quantity > 0:
            out.append((price, quantity))
    return out


def _tick(inst: TradedInstrument) -> int:
    return inst.tick_paise if inst.tick_paise > 0 else 1


def _floor_tick(paise: int, tick: int) -> int:
    return paise // tick * tick


def _ceil_tick(paise: int, tick: int) -> int:
    return -(-paise // tick) * tick


class SimExchange:
    """One account's orders, trades, positions and funds at the simulated exchange."""

    def __init__(
        self,
        instrument_fn: InstrumentFn,
        quote_fn: QuoteFn,
        *,
        capital_paise: int = DEFAULT_CAPITAL_PAISE,
        session_date: date,
        order_id_seq_start: int = 1,
        fill_delay_s: float = 0.0,
        market_protection_bp: int = 500,
    ) -> None:
        if order_id_seq_start < 0 or order_id_seq_start >= 10**9:
            raise ValueError(
                f"order_id_seq_start must be in 0..999999999, got {order_id_seq_start}"
            )
        self._instrument_fn = instrument_fn
        self._quote_fn = quote_fn
        self.session_date = session_date
        #: Orders do not match until they are this many seconds old (fault hook).
        self.fill_delay_s = fill_delay_s
        #: Market-price-protection band in basis points of LTP (500 = 5%).
        self.market_protection_bp = market_protection_bp
        self._portfolio = Portfolio(capital_paise)
        self._next_seq = order_id_seq_start
        self._next_fill = 1
        self._orders: dict[str, SimOrder] = {}
        self._working: dict[str, SimOrder] = {}
        self._by_unique: dict[str, SimOrder] = {}
        self._trades: list[SimTrade] = []
        self._forced_rejections: list[str] = []
        # Depth already consumed at a quote instant: token -> (at, {(side, price): units}).
        self._taken: dict[str, tuple[datetime, dict[tuple[str, int], int]]] = {}
        self._open_at = datetime.combine(session_date, SESSION_OPEN, tzinfo=IST)
        self._close_at = datetime.combine(session_date, SESSION_CLOSE, tzinfo=IST)

    # --- fault hooks ---------------------------------------------------------------------------

    def reject_next(self, n: int, reason: str) -> None:
        """Reject the next ``n`` well-formed orders with ``reason`` as their text."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._forced_rejections.extend([reason] * n)

    # --- order entry ---------------------------------------------------------------------------

    def place(
        self, request: Mapping[str, object], *, client_code: str, at: datetime
    ) -> PlaceResult:
        """Accept a placeOrder body; ``ApiError`` for a malformed one (no order created)."""
        at = _ist(at)
        req = parse_place_request(request)
        inst = self._instrument_fn(req.symboltoken)
        if inst is None:
            raise ApiError("AB1009", f"Symbol Not Found: symboltoken {req.symboltoken!r}")
        if inst.exchange != req.exchange or inst.symbol.upper() != req.tradingsymbol.upper():
            raise ApiError(
                "AB1009",
                f"Symbol Not Found: symboltoken {req.symboltoken} is {inst.symbol} on "
                f"{inst.exchange}, not {req.tradingsymbol} on {req.exchange}",
            )
        seq = self._next_seq
        if seq >= 10**9:
            raise ApiError("AB2001", "Internal Error: order sequence exhausted for the day")
        self._next_seq += 1
        orderid = f"{self.session_date:%y%m%d}{seq:09d}"
        order = SimOrder(
            seq=seq,
            orderid=orderid,
            uniqueorderid=str(uuid.uuid5(ORDER_UUID_NAMESPACE, orderid)),
            exchangeorderid="",
            client_code=client_code,
            instrument=inst,
            variety=req.variety,
            ordertype=req.ordertype,
            transactiontype=req.transactiontype,
            producttype=req.producttype,
            duration=req.duration,
            quantity=req.quantity,
            price_paise=req.price_paise,
            trigger_paise=req.trigger_paise,
            disclosed_qty=req.disclosed_qty,
            ordertag=req.ordertag,
            placed_at=at,
            status="validation pending",
            updated_at=at,
        )
        self._orders[orderid] = order
        self._by_unique[order.uniqueorderid] = order
        reason = self._forced_rejections.pop(0) if self._forced_rejections else None
        if reason is None:
            reason = self._rejection(order, at, replacing=None)
        if reason is not None:
            order.status = "rejected"
            order.text = reason
            events = [self._event(order)]
        else:
            order.exchangeorderid = f"1{seq:015d}"
            order.exch_at = at
            order.status = "trigger pending" if order.variety == "STOPLOSS" else "open"
            self._working[orderid] = order
            events = [self._event(order)]
            if order.status == "open":
                events += self._match(order, at)
        return PlaceResult(inst.symbol, orderid, order.uniqueorderid, events)

    def modify(self, request: Mapping[str, object], *, at: datetime) -> OrderAck:
        """Change price, quantity, order type or duration of a working order."""
        at = _ist(at)
        req = parse_modify_request(request)
        order = self._working_order(req.orderid, "modified")
        if req.variety != order.variety:
            raise ApiError(
                "AB1008",
                f"Invalid Order Variety: order {order.orderid} is {order.variety}, "
                f"not {req.variety}",
            )
        if req.producttype is not None and req.producttype != order.producttype:
            raise ApiError(
                "AB1012",
                f"Invalid Product Type: order {order.orderid} is {order.producttype}; "
                "modify cannot change the product type",
            )
        if req.symboltoken is not None and req.symboltoken != order.instrument.token:
            raise ApiError(
                "AB1007",
                f"Invalid parameters: order {order.orderid} is for symboltoken "
                f"{order.instrument.token}, not {req.symboltoken}",
            )
        ordertype = order.ordertype if req.ordertype is None else req.ordertype
        if ordertype not in ORDER_TYPES_BY_VARIETY[order.variety]:
            raise ApiError(
                "AB1007",
                f"Invalid parameters: ordertype {ordertype} does not go with variety "
                f"{order.variety}",
            )
        if order.status == "open" and order.variety == "STOPLOSS":
            ordertype = order.ordertype  # already triggered: only price and quantity change
        quantity = order.quantity if req.quantity is None else req.quantity
        if quantity <= order.filled_qty:
            raise ApiError(
                "AB1007",
                f"Invalid parameters: quantity {quantity} must exceed the {order.filled_qty} "
                f"already filled on order {order.orderid}",
            )
        price = order.price_paise if req.price_paise is None else req.price_paise
        if ordertype in ("MARKET", "STOPLOSS_MARKET"):
            price = 0 if order.status == "trigger pending" or ordertype == "MARKET" else price
        elif price <= 0:
            raise ApiError("AB1007", f"Invalid parameters: price must be > 0 for {ordertype}")
        trigger = order.trigger_paise if req.trigger_paise is None else req.trigger_paise
        candidate = dataclasses.replace(
            order,
            ordertype=ordertype,
            quantity=quantity,
            price_paise=price,
            trigger_paise=trigger,
            duration=order.duration if req.duration is None else req.duration,
        )
        reason = self._rejection(candidate, at, replacing=order)
        if reason is not None:
            raise ApiError("AB1007", f"order {order.orderid} not modified: {reason}")
        order.ordertype = candidate.ordertype
        order.quantity = candidate.quantity
        order.price_paise = candidate.price_paise
        order.trigger_paise = candidate.trigger_paise
        order.duration = candidate.duration
        order.updated_at = at
        events = [self._event(order, "modified"), self._event(order)]
        if order.status == "open":
            events += self._match(order, at)
        return OrderAck(order.orderid, order.uniqueorderid, events)

    def cancel_request(self, request: Mapping[str, object], *, at: datetime) -> OrderAck:
        """Cancel from a raw cancelOrder body (``variety``, ``orderid``; SPEC §4.4)."""
        variety, orderid = parse_cancel_request(request)
        order = self._orders.get(orderid)
        if order is not None and order.variety != variety:
            raise ApiError(
                "AB1008",
                f"Invalid Order Variety: order {orderid} is {order.variety}, not {variety}",
            )
        return self.cancel(orderid, at)

    def cancel(self, orderid: str, at: datetime) -> OrderAck:
        """Cancel the unfilled rest of a working order."""
        at = _ist(at)
        order = self._working_order(orderid, "cancelled")
        events = [self._finish_cancel(order, at, text="")]
        return OrderAck(order.orderid, order.uniqueorderid, events)

    # --- market --------------------------------------------------------------------------------

    def on_market(self, at: datetime, tokens: Iterable[str] | None = None) -> list[OrderEvent]:
        """Re-check working orders (of ``tokens``, or all) against the quotes at ``at``.

        Triggers stop orders whose trigger the LTP has reached, fills what the depth allows, and
        at or after the close expires every working order.
        """
        at = _ist(at)
        wanted = None if tokens is None else set(tokens)
        chosen = [
            o for o in self._working.values() if wanted is None or o.instrument.token in wanted
        ]
        events: list[OrderEvent] = []
        if at >= self._close_at:
            for order in chosen:
                events.append(
                    self._finish_cancel(order, at, text="DAY order expired at the market close")
                )
            return events
        if at < self._open_at:
            return events
        for order in chosen:
            if order.status == "trigger pending":
                events += self._maybe_trigger(order, at)
            if order.status == "open":
                events += self._match(order, at)
        return events

    # --- books ---------------------------------------------------------------------------------

    def order_book(self) -> list[dict[str, str]]:
        """Every order of the day, oldest first (SPEC §4.5 records)."""
        return [o.record() for o in self._orders.values()]

    def order_details(self, uniqueorderid: str) -> dict[str, str] | None:
        """One order's record by ``uniqueorderid``, or None."""
        order = self._by_unique.get(uniqueorderid)
        return None if order is None else order.record()

    def order(self, orderid: str) -> dict[str, str] | None:
        """One order's record by ``orderid``, or None."""
        found = self._orders.get(orderid)
        return None if found is None else found.record()

    def orders_by_tag(self, ordertag: str) -> list[dict[str, str]]:
        """Records of the orders placed with this ``ordertag`` (idempotent re-send checks)."""
        return [o.record() for o in self._orders.values() if o.ordertag == ordertag]

    def trade_book(self) -> list[dict[str, str]]:
        """Every fill of the day, oldest first."""
        return [t.record() for t in self._trades]

    def positions(self, at: datetime) -> list[dict[str, str]]:
        """Day positions marked to the LTP at ``at`` (last fill price when there is no quote)."""
        at = _ist(at)
        return [p.record(self._mark(p, at)) for p in self._portfolio.positions()]

    def rms(self, at: datetime) -> dict[str, str]:
        """The funds record (SPEC §4.5) with M2M marked at ``at``."""
        at = _ist(at)
        return self._portfolio.rms_record(lambda p: self._mark(p, at), self._blocked_paise())

    # --- internals: validation -----------------------------------------------------------------

    def _working_order(self, orderid: str, verb: str) -> SimOrder:
        order = self._orders.get(orderid)
        if order is None:
            raise ApiError("AB1013", f"Order not found: orderid {orderid!r}")
        if order.status not in WORKING_STATUSES:
            raise ApiError(
                "AB1013",
                f"Order not found among open orders: order {orderid} is {order.status} "
                f"and cannot be {verb}",
            )
        return order

    def _rejection(self, order: SimOrder, at: datetime, replacing: SimOrder | None) -> str | None:
        """Why ``order`` may not work at the exchange, or None. Converts MARKET prices in place.

        ``replacing`` is the live order a modification would replace: its own pending quantity
        and blocked funds do not count against the new version.
        """
        inst = order.instrument
        if not self._open_at <= at < self._close_at:
            return (
                f"after-hours: orders are accepted 09:15–15:30 IST on "
                f"{self.session_date:%d-%b-%Y}, not at {at:%d-%b-%Y %H:%M:%S} IST "
                "(after-market orders are not simulated)"
            )
        if inst.instrument_type == "AMXIDX":
            return f"{inst.symbol} is an index and cannot be traded"
        if inst.lot <= 0 or order.quantity % inst.lot:
            return (
                f"quantity {order.quantity} is not a multiple of the lot size {inst.lot} "
                f"of {inst.symbol}"
            )
        if inst.freeze_qty > 0 and order.quantity > inst.freeze_qty:
            return (
                f"quantity {order.quantity} exceeds the freeze quantity {inst.freeze_qty} "
                f"of {inst.symbol}; split the order"
            )
        quote = self._quote_fn(inst.token, at)
        if quote is None or quote.ltp_paise <= 0:
            return f"no market price for {inst.symbol} at {at:%H:%M:%S} IST"
        tick = _tick(inst)
        lower, upper = quote.lower_circuit_paise, quote.upper_circuit_paise
        if order.ordertype == "MARKET":
            order.ordertype = "LIMIT"
            order.price_paise = self._protected_price(order.is_buy, quote.ltp_paise, tick, quote)
        checked = [("price", order.price_paise)] if order.price_paise else []
        if order.ordertype.startswith("STOPLOSS") and order.status != "open":
            checked.append(("trigger price", order.trigger_paise))
        for label, paise in checked:
            if paise % tick:
                return (
                    f"{label} {format_rupees(paise)} is not a multiple of the tick size "
                    f"{format_rupees(tick)}"
                )
            if upper > 0 and not lower <= paise <= upper:
                return (
                    f"{label} {format_rupees(paise)} is outside the circuit band "
                    f"{format_rupees(lower)}–{format_rupees(upper)}"
                )
        reason = self._stop_rejection(order, quote.ltp_paise)
        if reason is None:
            reason = self._holding_rejection(order, replacing)
        if reason is None:
            reason = self._funds_rejection(order, replacing)
        return reason

    def _stop_rejection(self, order: SimOrder, ltp: int) -> str | None:
        if not order.ordertype.startswith("STOPLOSS") or order.status == "open":
            return None
        trigger = format_rupees(order.trigger_paise)
        if order.is_buy:
            if order.trigger_paise <= ltp:
                return (
                    f"trigger price {trigger} of a stop BUY must be above LTP {format_rupees(ltp)}"
                )
            if order.price_paise and order.price_paise < order.trigger_paise:
                return f"limit price of a stop BUY must be ≥ its trigger price {trigger}"
        else:
            if order.trigger_paise >= ltp:
                return (
                    f"trigger price {trigger} of a stop SELL must be below LTP {format_rupees(ltp)}"
                )
            if order.price_paise and order.price_paise > order.trigger_paise:
                return f"limit price of a stop SELL must be ≤ its trigger price {trigger}"
        return None

    def _holding_rejection(self, order: SimOrder, replacing: SimOrder | None) -> str | None:
        if order.is_buy:
            return None
        inst = order.instrument
        held = self._portfolio.net_qty(inst.token, order.producttype)
        pending = sum(
            o.pending_qty
            for o in self._working.values()
            if o is not replacing
            and not o.is_buy
            and o.instrument.token == inst.token
            and o.producttype == order.producttype
        )
        wanted = order.quantity - order.filled_qty
        if wanted > held - pending:
            return (
                f"short selling is not enabled: SELL {wanted} of {inst.symbol} exceeds the "
                f"{max(held - pending, 0)} held {order.producttype} (net {held}, "
                f"{pending} already on pending sells)"
            )
        return None

    def _funds_rejection(self, order: SimOrder, replacing: SimOrder | None) -> str | None:
        if not order.is_buy:
            return None
        units = order.quantity - order.filled_qty
        value = units * self._block_price(order)
        margin = self._charges_margin_paise(self._block_price(order), units)
        available = self._portfolio.cash_paise() - self._blocked_paise(excluding=replacing)
        if value + margin > available:
            return (
                f"insufficient funds: order value {format_rupees(value)} + charges margin "
                f"{format_rupees(margin)} = {format_rupees(value + margin)} exceeds available "
                f"cash {format_rupees(available)}"
            )
        return None

    def _charges_margin_paise(self, price_paise: int, units: int) -> int:
        """Charges a BUY of ``units`` at ``price_paise`` would attract, rounded up to the paisa."""
        schedule = ChargeSchedule.load_default()
        brokerage = schedule.default_brokerage_per_order
        if price_paise <= 0 or units <= 0:
            return 0
        try:
            fill = Fill(Side.BUY, Decimal(price_paise) / 100, units)
            total = compute_charges([fill], self.session_date, schedule, brokerage).total
        except ChargesError:
            total = brokerage  # session before the recorded schedule: brokerage alone
        return int((total * 100).to_integral_value(rounding=ROUND_CEILING))

    def _block_price(self, order: SimOrder) -> int:
        if order.price_paise > 0:
            return order.price_paise
        # An untriggered SL-M BUY: what its protected price would be at the trigger.
        return self._protected_price(True, order.trigger_paise, _tick(order.instrument), None)

    def _blocked_paise(self, excluding: SimOrder | None = None) -> int:
        return sum(
            o.pending_qty * self._block_price(o)
            for o in self._working.values()
            if o.is_buy and o is not excluding
        )

    def _protected_price(self, is_buy: bool, ltp: int, tick: int, quote: Quote | None) -> int:
        """LTP ± the protection band on the tick grid, inside the circuit when it is known."""
        band = ltp * self.market_protection_bp // 10_000
        if is_buy:
            price = max(_floor_tick(ltp + band, tick), _ceil_tick(ltp, tick))
            return price if quote is None else min(price, quote.upper_circuit_paise)
        price = min(_ceil_tick(ltp - band, tick), _floor_tick(ltp, tick))
        price = max(price, tick)
        return price if quote is None else max(price, quote.lower_circuit_paise)

    # --- internals: matching -------------------------------------------------------------------

    def _maybe_trigger(self, order: SimOrder, at: datetime) -> list[OrderEvent]:
        quote = self._quote_fn(order.instrument.token, at)
        if quote is None or quote.ltp_paise <= 0:
            return []
        ltp = quote.ltp_paise
        hit = ltp >= order.trigger_paise if order.is_buy else ltp <= order.trigger_paise
        if not hit:
            return []
        if order.ordertype == "STOPLOSS_MARKET":
            order.price_paise = self._protected_price(
                order.is_buy, ltp, _tick(order.instrument), quote
            )
        order.status = "open"
        order.updated_at = at
        return [self._event(order)]

    def _match(self, order: SimOrder, at: datetime) -> list[OrderEvent]:
        if (at - order.placed_at).total_seconds() < self.fill_delay_s:
            return []
        inst = order.instrument
        quote = self._quote_fn(inst.token, at)
        events: list[OrderEvent] = []
        if quote is not None:
            side = "ask" if order.is_buy else "bid"
            levels = sorted(_depth(quote.asks if order.is_buy else quote.bids))
            if not order.is_buy:
                levels.reverse()
            taken = self._taken_at(inst.token, at)
            for price, quantity in levels:
                remaining = order.quantity - order.filled_qty
                crosses = price <= order.price_paise if order.is_buy else price >= order.price_paise
                if remaining == 0 or not crosses:
                    break
                size = min(remaining, quantity - taken.get((side, price), 0))
                if size <= 0:
                    continue
                taken[(side, price)] = taken.get((side, price), 0) + size
                events.append(self._fill(order, price, size, at))
        if order.duration == "IOC" and order.status == "open":
            events.append(self._finish_cancel(order, at, text="IOC: unfilled quantity cancelled"))
        return events

    def _taken_at(self, token: str, at: datetime) -> dict[tuple[str, int], int]:
        memo = self._taken.get(token)
        if memo is None or memo[0] != at:
            memo = (at, {})
            self._taken[token] = memo
        return memo[1]

    def _fill(self, order: SimOrder, price: int, size: int, at: datetime) -> OrderEvent:
        trade = SimTrade(
            fillid=f"{self._next_fill:08d}",
            orderid=order.orderid,
            instrument=order.instrument,
            producttype=order.producttype,
            transactiontype=order.transactiontype,
            price_paise=price,
            quantity=size,
            at=at,
        )
        self._next_fill += 1
        self._trades.append(trade)
        self._portfolio.apply(trade)
        order.filled_qty += size
        order.filled_value_paise += trade.value_paise
        order.last_fillid = trade.fillid
        order.last_fill_at = at
        order.updated_at = at
        if order.filled_qty == order.quantity:
            order.status = "complete"
            self._working.pop(order.orderid, None)
        return self._event(order)

    def _finish_cancel(self, order: SimOrder, at: datetime, text: str) -> OrderEvent:
        order.cancelled_qty = order.quantity - order.filled_qty
        order.status = "cancelled"
        order.text = text
        order.updated_at = at
        self._working.pop(order.orderid, None)
        return self._event(order)

    def _mark(self, position: SimPosition, at: datetime) -> int:
        quote = self._quote_fn(position.instrument.token, at)
        if quote is None or quote.ltp_paise <= 0:
            return position.last_fill_paise
        return quote.ltp_paise

    @staticmethod
    def _event(order: SimOrder, status: str | None = None) -> OrderEvent:
        shown = order.status if status is None else status
        return OrderEvent(order.record(shown), AB_CODES[shown], order.client_code)
