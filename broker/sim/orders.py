"""Orders as the simulated exchange holds them: request parsing, order/trade state, wire records.

``parse_place_request`` and ``parse_modify_request`` turn a raw SmartAPI JSON body (numbers as
strings or numbers, SPEC §4.6) into typed requests, raising ``ApiError`` with the SPEC §5.1 code
for a malformed body. ``SimOrder`` and ``SimTrade`` hold state in integer paise and render the
exact order-book and trade-book records of SPEC §4.5 (quantities and prices as strings).

Errors::

    ApiError (Exception)   a request the REST layer answers with ``status: false`` + ``errorcode``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Protocol
from zoneinfo import ZoneInfo

from market.instruments import format_master_expiry

IST = ZoneInfo("Asia/Kolkata")

VARIETIES = ("NORMAL", "STOPLOSS", "ROBO")
TRANSACTION_TYPES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET")
PRODUCT_TYPES = ("DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO")
DURATIONS = ("DAY", "IOC")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
# Which order types each variety carries (SPEC §4.2: SL and SL-M go with STOPLOSS).
ORDER_TYPES_BY_VARIETY = {
    "NORMAL": ("MARKET", "LIMIT"),
    "STOPLOSS": ("STOPLOSS_LIMIT", "STOPLOSS_MARKET"),
}
# Derivatives segments take overnight/intraday products; cash segments also deliver.
PRODUCT_TYPES_BY_EXCHANGE = {
    "NFO": ("CARRYFORWARD", "INTRADAY", "MARGIN"),
    "BFO": ("CARRYFORWARD", "INTRADAY", "MARGIN"),
    "MCX": ("CARRYFORWARD", "INTRADAY", "MARGIN"),
    "CDS": ("CARRYFORWARD", "INTRADAY", "MARGIN"),
    "NSE": ("DELIVERY", "INTRADAY", "MARGIN"),
    "BSE": ("DELIVERY", "INTRADAY", "MARGIN"),
}
MAX_ORDERTAG_CHARS = 19  # SPEC §4.3: "< 20 chars", else AB4008

# Order-status WebSocket codes (SPEC §8) for the statuses the simulator uses.
AB_CODES = {
    "open": "AB01",
    "cancelled": "AB02",
    "rejected": "AB03",
    "modified": "AB04",
    "complete": "AB05",
    "trigger pending": "AB10",
}
TERMINAL_STATUSES = frozenset({"complete", "rejected", "cancelled"})
WORKING_STATUSES = frozenset({"open", "trigger pending"})


class ApiError(Exception):
    """A request the exchange refuses outright: no order is created or changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TradedInstrument(Protocol):
    """What the exchange needs to know about a contract (``broker.sim.master.SimInstrument``)."""

    @property
    def token(self) -> str: ...
    @property
    def exchange(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def instrument_type(self) -> str: ...
    @property
    def expiry(self) -> date | None: ...
    @property
    def strike_paise(self) -> int | None: ...
    @property
    def option_type(self) -> str | None: ...
    @property
    def lot(self) -> int: ...
    @property
    def tick_paise(self) -> int: ...
    @property
    def freeze_qty(self) -> int: ...


# --- money and time formatting -------------------------------------------------------------------


def format_rupees(paise: int) -> str:
    """Integer paise as a rupee string with two decimals: 19450 → ``"194.50"``."""
    sign = "-" if paise < 0 else ""
    whole, frac = divmod(abs(paise), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_average(total_paise: int, quantity: int) -> str:
    """Average price (total ÷ quantity) in rupees, exact then rounded half-up to the paisa."""
    if quantity == 0:
        return "0.00"
    with localcontext() as ctx:
        ctx.prec = 40
        rupees = Decimal(total_paise) / (Decimal(quantity) * 100)
        return str(rupees.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def format_order_time(at: datetime | None) -> str:
    """``21-Nov-2026 10:15:03`` in IST, or ``""`` when the event has not happened."""
    if at is None:
        return ""
    return at.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S")


def format_fill_time(at: datetime | None) -> str:
    """Trade-book fill time, ``13:27:53`` IST."""
    if at is None:
        return ""
    return at.astimezone(IST).strftime("%H:%M:%S")


def instrument_fields(inst: TradedInstrument) -> dict[str, str]:
    """Contract fields shared by order, trade and position records."""
    is_option = inst.option_type is not None and inst.strike_paise is not None
    return {
        "instrumenttype": inst.instrument_type,
        "strikeprice": format_rupees(inst.strike_paise or 0) if is_option else "-1",
        "optiontype": inst.option_type or "",
        "expirydate": format_master_expiry(inst.expiry) if inst.expiry else "",
    }


# --- request parsing -----------------------------------------------------------------------------


def _text(body: Mapping[str, object], field: str, *, required: bool, code: str = "AB1007") -> str:
    raw = body.get(field)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise ApiError(code, f"Invalid parameters: {field} is missing")
        return ""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise ApiError(code, f"Invalid parameters: {field} must be text, got {raw!r}")
    return str(raw).strip()


def _enum(
    body: Mapping[str, object], field: str, allowed: tuple[str, ...], code: str, label: str
) -> str:
    value = _text(body, field, required=True, code=code).upper()
    if value not in allowed:
        raise ApiError(code, f"{label}: {field} {value!r} is not one of {', '.join(allowed)}")
    return value


def _decimal(raw: object, field: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ApiError("AB1007", f"Invalid parameters: {field} must be a number, got {raw!r}")
    try:
        # str() first so a float arrives as the decimal the sender wrote, not its binary value.
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ApiError(
            "AB1007", f"Invalid parameters: {field} must be a number, got {raw!r}"
        ) from None
    if not value.is_finite():
        raise ApiError("AB1007", f"Invalid parameters: {field} must be finite, got {raw!r}")
    return value


def parse_paise(raw: object, field: str) -> int:
    """A rupee amount (``"194.5"``, ``194.5``, ``"194.50"``) as integer paise; ≥ 0, ≤ 2 decimals."""
    if raw is None or raw == "":
        return 0
    paise = _decimal(raw, field) * 100
    if paise != paise.to_integral_value():
        raise ApiError(
            "AB1007", f"Invalid parameters: {field} {raw!r} has more than 2 decimal places"
        )
    if paise < 0:
        raise ApiError("AB1007", f"Invalid parameters: {field} must not be negative, got {raw!r}")
    return int(paise)


def parse_units(raw: object, field: str, *, required: bool) -> int:
    """A whole number of units (``"75"``, ``75``, ``"75.0"``)."""
    if raw is None or raw == "":
        if required:
            raise ApiError("AB1007", f"Invalid parameters: {field} is missing")
        return 0
    value = _decimal(raw, field)
    if value != value.to_integral_value() or value < 0:
        raise ApiError(
            "AB1007", f"Invalid parameters: {field} must be a whole number ≥ 0, got {raw!r}"
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """A well-formed placeOrder body; prices in paise (0 where not applicable)."""

    variety: str
    tradingsymbol: str
    symboltoken: str
    transactiontype: str
    exchange: str
    ordertype: str
    producttype: str
    duration: str
    quantity: int
    price_paise: int
    trigger_paise: int
    disclosed_qty: int
    ordertag: str


def _check_ordertag(body: Mapping[str, object]) -> str:
    tag = _text(body, "ordertag", required=False)
    if len(tag) > MAX_ORDERTAG_CHARS:
        raise ApiError("AB4008", "ordertag length should be less than 20 characters")
    return tag


def _check_prices(ordertype: str, price_paise: int, trigger_paise: int) -> None:
    if ordertype in ("LIMIT", "STOPLOSS_LIMIT") and price_paise <= 0:
        raise ApiError("AB1007", f"Invalid parameters: price must be > 0 for a {ordertype} order")
    if ordertype.startswith("STOPLOSS") and trigger_paise <= 0:
        raise ApiError(
            "AB1007", f"Invalid parameters: triggerprice must be > 0 for a {ordertype} order"
        )


def parse_place_request(body: Mapping[str, object]) -> PlaceRequest:
    """Validate the shape of a placeOrder body; ``ApiError`` (no order) when it is malformed."""
    variety = _enum(body, "variety", VARIETIES, "AB1008", "Invalid Order Variety")
    if variety == "ROBO":
        raise ApiError("AB2002", "ROBO order is block")
    producttype = _enum(body, "producttype", PRODUCT_TYPES, "AB1012", "Invalid Product Type")
    exchange = _enum(body, "exchange", EXCHANGES, "AB1007", "Invalid parameters")
    if producttype not in PRODUCT_TYPES_BY_EXCHANGE[exchange]:
        raise ApiError(
            "AB1012",
            f"Invalid Product Type: {producttype} is not allowed on {exchange} "
            f"(allowed: {', '.join(PRODUCT_TYPES_BY_EXCHANGE[exchange])})",
        )
    transactiontype = _enum(
        body, "transactiontype", TRANSACTION_TYPES, "AB1007", "Invalid parameters"
    )
    ordertype = _enum(body, "ordertype", ORDER_TYPES, "AB1007", "Invalid parameters")
    if ordertype not in ORDER_TYPES_BY_VARIETY[variety]:
        raise ApiError(
            "AB1007",
            f"Invalid parameters: ordertype {ordertype} does not go with variety {variety} "
            f"(allowed: {', '.join(ORDER_TYPES_BY_VARIETY[variety])})",
        )
    duration = _enum(body, "duration", DURATIONS, "AB1007", "Invalid parameters")
    tradingsymbol = _text(body, "tradingsymbol", required=True)
    symboltoken = _text(body, "symboltoken", required=True)
    quantity = parse_units(body.get("quantity"), "quantity", required=True)
    if quantity <= 0:
        raise ApiError("AB1007", f"Invalid parameters: quantity must be > 0, got {quantity}")
    price_paise = 0 if ordertype == "MARKET" else parse_paise(body.get("price"), "price")
    trigger_paise = (
        parse_paise(body.get("triggerprice"), "triggerprice") if variety == "STOPLOSS" else 0
    )
    if ordertype == "STOPLOSS_MARKET":
        price_paise = 0
    _check_prices(ordertype, price_paise, trigger_paise)
    return PlaceRequest(
        variety=variety,
        tradingsymbol=tradingsymbol,
        symboltoken=symboltoken,
        transactiontype=transactiontype,
        exchange=exchange,
        ordertype=ordertype,
        producttype=producttype,
        duration=duration,
        quantity=quantity,
        price_paise=price_paise,
        trigger_paise=trigger_paise,
        disclosed_qty=parse_units(
            body.get("disclosedquantity"), "disclosedquantity", required=False
        ),
        ordertag=_check_ordertag(body),
    )


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """A well-formed modifyOrder body; ``None`` means "keep the order's current value"."""

    orderid: str
    variety: str
    ordertype: str | None
    quantity: int | None
    price_paise: int | None
    trigger_paise: int | None
    producttype: str | None
    duration: str | None
    symboltoken: str | None


def parse_modify_request(body: Mapping[str, object]) -> ModifyRequest:
    """Validate the shape of a modifyOrder body (SPEC §4.4)."""
    variety = _enum(body, "variety", VARIETIES, "AB1008", "Invalid Order Variety")
    orderid = _text(body, "orderid", required=True)

    def optional_enum(field: str, allowed: tuple[str, ...], code: str, label: str) -> str | None:
        if _text(body, field, required=False, code=code) == "":
            return None
        return _enum(body, field, allowed, code, label)

    ordertype = optional_enum("ordertype", ORDER_TYPES, "AB1007", "Invalid parameters")
    producttype = optional_enum("producttype", PRODUCT_TYPES, "AB1012", "Invalid Product Type")
    duration = optional_enum("duration", DURATIONS, "AB1007", "Invalid parameters")
    raw_qty = body.get("quantity")
    quantity = None if raw_qty in (None, "") else parse_units(raw_qty, "quantity", required=True)
    if quantity is not None and quantity <= 0:
        raise ApiError("AB1007", f"Invalid parameters: quantity must be > 0, got {quantity}")
    raw_price = body.get("price")
    price = None if raw_price in (None, "") else parse_paise(raw_price, "price")
    raw_trigger = body.get("triggerprice")
    trigger = None if raw_trigger in (None, "") else parse_paise(raw_trigger, "triggerprice")
    token = _text(body, "symboltoken", required=False) or None
    return ModifyRequest(
        orderid=orderid,
        variety=variety,
        ordertype=ordertype,
        quantity=quantity,
        price_paise=price,
        trigger_paise=trigger,
        producttype=producttype,
        duration=duration,
        symboltoken=token,
    )


def parse_cancel_request(body: Mapping[str, object]) -> tuple[str, str]:
    """Validate a cancelOrder body; returns ``(variety, orderid)``."""
    variety = _enum(body, "variety", VARIETIES, "AB1008", "Invalid Order Variety")
    return variety, _text(body, "orderid", required=True)


# --- order and trade state -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One execution of one order."""

    fillid: str
    orderid: str
    instrument: TradedInstrument
    producttype: str
    transactiontype: str
    price_paise: int
    quantity: int
    at: datetime

    @property
    def value_paise(self) -> int:
        return self.price_paise * self.quantity

    def record(self) -> dict[str, str]:
        """The trade-book record (SPEC §4.5)."""
        inst = self.instrument
        return {
            "exchange": inst.exchange,
            "producttype": self.producttype,
            "tradingsymbol": inst.symbol,
            **instrument_fields(inst),
            "symbolgroup": "",
            "marketlot": str(inst.lot),
            "precision": "2",
            "multiplier": "-1",
            "tradevalue": format_rupees(self.value_paise),
            "transactiontype": self.transactiontype,
            "fillprice": format_rupees(self.price_paise),
            "fillsize": str(self.quantity),
            "orderid": self.orderid,
            "fillid": self.fillid,
            "filltime": format_fill_time(self.at),
        }


@dataclass(slots=True)
class SimOrder:
    """The exchange's mutable view of one order; money in paise, quantities in units."""

    seq: int
    orderid: str
    uniqueorderid: str
    exchangeorderid: str
    client_code: str
    instrument: TradedInstrument
    variety: str
    ordertype: str
    transactiontype: str
    producttype: str
    duration: str
    quantity: int
    price_paise: int
    trigger_paise: int
    disclosed_qty: int
    ordertag: str
    placed_at: datetime
    status: str = "open"
    text: str = ""
    updated_at: datetime | None = None
    exch_at: datetime | None = None
    filled_qty: int = 0
    filled_value_paise: int = 0
    cancelled_qty: int = 0
    last_fillid: str = ""
    last_fill_at: datetime | None = None

    @property
    def pending_qty(self) -> int:
        """Units still working at the exchange (0 once the order is terminal)."""
        if self.status not in WORKING_STATUSES:
            return 0
        return self.quantity - self.filled_qty

    @property
    def is_buy(self) -> bool:
        return self.transactiontype == "BUY"

    def record(self, status: str | None = None) -> dict[str, str]:
        """The order-book record (SPEC §4.5); ``status`` overrides the shown status."""
        inst = self.instrument
        shown = self.status if status is None else status
        return {
            "variety": self.variety,
            "ordertype": self.ordertype,
            "producttype": self.producttype,
            "duration": self.duration,
            "price": format_rupees(self.price_paise),
            "triggerprice": format_rupees(self.trigger_paise),
            "quantity": str(self.quantity),
            "disclosedquantity": str(self.disclosed_qty),
            "squareoff": "0.00",
            "stoploss": "0.00",
            "trailingstoploss": "0.00",
            "tradingsymbol": inst.symbol,
            "transactiontype": self.transactiontype,
            "exchange": inst.exchange,
            "symboltoken": inst.token,
            "ordertag": self.ordertag,
            **instrument_fields(inst),
            "lotsize": str(inst.lot),
            "cancelsize": str(self.cancelled_qty),
            "averageprice": format_average(self.filled_value_paise, self.filled_qty),
            "filledshares": str(self.filled_qty),
            "unfilledshares": str(self.quantity - self.filled_qty),
            "orderid": self.orderid,
            "text": self.text,
            "status": shown,
            "orderstatus": shown,
            "updatetime": format_order_time(self.updated_at),
            "exchtime": format_order_time(self.exch_at),
            "exchorderupdatetime": format_order_time(
                self.updated_at if self.exch_at is not None else None
            ),
            "fillid": self.last_fillid,
            "filltime": format_fill_time(self.last_fill_at),
            "parentorderid": "",
            "uniqueorderid": self.uniqueorderid,
            "exchangeorderid": self.exchangeorderid,
        }
