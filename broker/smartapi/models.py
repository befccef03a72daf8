"""Typed records parsed from SmartAPI responses, tolerant of the broker's format quirks.

SPEC §4.6: one field may arrive as ``"194.00"``, ``194.0``, ``194`` or ``null``; quantities as
strings; blanks where a value is not yet known. Parsers here accept all of those. Money comes
out as integer paise (rounded half-up to the paisa: averages can carry more decimals), except
candle prices, which stay exact ``Decimal`` rupees as sent. Times come out timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock_time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"complete", "rejected", "cancelled", "cancelled after market order"}
)

Record = Mapping[str, Any]

# --------------------------------------------------------------------------- field readers


def text(value: Any) -> str:
    """A field as text: ``None`` → ``""``, numbers as written."""
    if value is None:
        return ""
    if isinstance(value, str):
        # SPEC §1.3 shows the string "null" standing for a missing value.
        stripped = value.strip()
        return "" if stripped.lower() == "null" else stripped
    return str(value)


def decimal_or_none(value: Any) -> Decimal | None:
    """A number sent as a number or a string; None when blank or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, i.e. what the broker wrote.
        return Decimal(repr(value))
    raw = text(value).replace(",", "")
    if not raw:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def to_int(value: Any, default: int = 0) -> int:
    """A quantity: ``"75"``, ``75``, ``"75.0"``; ``default`` when blank."""
    number = decimal_or_none(value)
    if number is None:
        return default
    return int(number.to_integral_value(rounding=ROUND_HALF_UP))


def paise_or_none(value: Any) -> int | None:
    """Rupees (string or number) → integer paise, rounded half-up; None when blank."""
    number = decimal_or_none(value)
    if number is None:
        return None
    return int((number * 100).to_integral_value(rounding=ROUND_HALF_UP))


def paise(value: Any) -> int:
    """Rupees → paise, 0 when blank."""
    result = paise_or_none(value)
    return 0 if result is None else result


def rupees_text(amount_paise: int) -> str:
    """Paise → the broker's request form, rupees with two decimals (``19450`` → ``"194.50"``)."""
    sign = "-" if amount_paise < 0 else ""
    whole, frac = divmod(abs(amount_paise), 100)
    return f"{sign}{whole}.{frac:02d}"


def order_time(value: Any) -> datetime | None:
    """``20-Oct-2020 13:10:59`` (IST) → aware datetime; None when blank or unreadable."""
    raw = text(value)
    if not raw:
        return None
    for fmt in ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    return None


def fill_time(value: Any) -> clock_time | None:
    """Trade-book ``13:27:53`` (IST, no date) → time; None when blank."""
    raw = text(value)
    if not raw:
        return None
    try:
        return clock_time.fromisoformat(raw)
    except ValueError:
        parsed = order_time(raw)
        return parsed.time() if parsed else None


def iso_time(value: Any) -> datetime:
    """``2023-09-06T11:15:00+05:30`` → aware datetime (IST assumed when no offset is given)."""
    raw = text(value)
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=IST)


def _strike_paise(value: Any) -> int | None:
    paise_value = paise_or_none(value)
    return None if paise_value is None or paise_value < 0 else paise_value


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Profile:
    """getProfile: who the session belongs to."""

    client_code: str
    name: str
    email: str
    exchanges: tuple[str, ...]
    products: tuple[str, ...]
    broker_id: str

    @classmethod
    def parse(cls, data: Record) -> Profile:
        """From the getProfile ``data`` object."""
        return cls(
            client_code=text(data.get("clientcode")),
            name=text(data.get("name")),
            email=text(data.get("email")),
            exchanges=_string_list(data.get("exchanges")),
            products=_string_list(data.get("products")),
            broker_id=text(data.get("brokerid")),
        )


def _string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        # Some samples show the list as one string, e.g. "[NSE, BSE]" or "NSE,BSE".
        return tuple(p.strip(" []'\"") for p in value.split(",") if p.strip(" []'\""))
    if isinstance(value, Sequence):
        return tuple(text(item) for item in value if text(item))
    return ()


@dataclass(frozen=True, slots=True)
class Funds:
    """getRMS: margin and cash, in paise."""

    net_paise: int
    available_cash_paise: int
    available_intraday_payin_paise: int
    available_limit_margin_paise: int
    collateral_paise: int
    m2m_unrealised_paise: int
    m2m_realised_paise: int
    utilised_debits_paise: int
    utilised_span_paise: int
    utilised_option_premium_paise: int
    utilised_exposure_paise: int

    @classmethod
    def parse(cls, data: Record) -> Funds:
        """From the getRMS ``data`` object."""
        return cls(
            net_paise=paise(data.get("net")),
            available_cash_paise=paise(data.get("availablecash")),
            available_intraday_payin_paise=paise(data.get("availableintradaypayin")),
            available_limit_margin_paise=paise(data.get("availablelimitmargin")),
            collateral_paise=paise(data.get("collateral")),
            m2m_unrealised_paise=paise(data.get("m2munrealized")),
            m2m_realised_paise=paise(data.get("m2mrealized")),
            utilised_debits_paise=paise(data.get("utiliseddebits")),
            utilised_span_paise=paise(data.get("utilisedspan")),
            utilised_option_premium_paise=paise(data.get("utilisedoptionpremium")),
            utilised_exposure_paise=paise(data.get("utilisedexposure")),
        )


@dataclass(frozen=True, slots=True)
class Candle:
    """One getCandleData row; ``start`` is the candle's opening instant (IST offset kept)."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    @classmethod
    def parse(cls, row: Sequence[Any]) -> Candle:
        """From a ``[timestamp, open, high, low, close, volume]`` row; ValueError if malformed."""
        if len(row) < 6:
            raise ValueError(f"candle row has {len(row)} fields, expected 6")
        prices = [decimal_or_none(v) for v in row[1:5]]
        if any(p is None for p in prices):
            raise ValueError("candle row has a blank or non-numeric price")
        o, h, low, c = (p for p in prices if p is not None)
        return cls(iso_time(row[0]), o, h, low, c, to_int(row[5]))


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """One getOIData row."""

    time: datetime
    oi: int

    @classmethod
    def parse(cls, row: Record) -> OpenInterest:
        """From ``{"time": ..., "oi": ...}``."""
        return cls(iso_time(row.get("time")), to_int(row.get("oi")))


@dataclass(frozen=True, slots=True)
class Ltp:
    """getLtpData: last price and the day's OHLC (close = previous close)."""

    exchange: str
    symbol: str
    token: str
    ltp_paise: int
    open_paise: int | None
    high_paise: int | None
    low_paise: int | None
    close_paise: int | None

    @classmethod
    def parse(cls, data: Record) -> Ltp:
        """From the getLtpData ``data`` object."""
        return cls(
            exchange=text(data.get("exchange")),
            symbol=text(data.get("tradingsymbol")),
            token=text(data.get("symboltoken")),
            ltp_paise=paise(data.get("ltp")),
            open_paise=paise_or_none(data.get("open")),
            high_paise=paise_or_none(data.get("high")),
            low_paise=paise_or_none(data.get("low")),
            close_paise=paise_or_none(data.get("close")),
        )


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of the best-five book."""

    price_paise: int
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Quote:
    """One ``fetched`` entry of the quote API (fields beyond LTP are None in thinner modes)."""

    exchange: str
    symbol: str
    token: str
    ltp_paise: int
    open_paise: int | None = None
    high_paise: int | None = None
    low_paise: int | None = None
    close_paise: int | None = None
    volume: int | None = None
    open_interest: int | None = None
    last_trade_qty: int | None = None
    average_price_paise: int | None = None
    upper_circuit_paise: int | None = None
    lower_circuit_paise: int | None = None
    exchange_time: datetime | None = None
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()

    @classmethod
    def parse(cls, data: Record) -> Quote:
        """From one ``fetched`` element (LTP, OHLC or FULL mode)."""
        raw_depth = data.get("depth")
        depth: Mapping[str, Any] = raw_depth if isinstance(raw_depth, Mapping) else {}
        volume = data.get("tradeVolume")
        oi = data.get("opnInterest")
        ltq = data.get("lastTradeQty")
        return cls(
            exchange=text(data.get("exchange")),
            symbol=text(data.get("tradingSymbol")),
            token=text(data.get("symbolToken")),
            ltp_paise=paise(data.get("ltp")),
            open_paise=paise_or_none(data.get("open")),
            high_paise=paise_or_none(data.get("high")),
            low_paise=paise_or_none(data.get("low")),
            close_paise=paise_or_none(data.get("close")),
            volume=None if volume is None else to_int(volume),
            open_interest=None if oi is None else to_int(oi),
            last_trade_qty=None if ltq is None else to_int(ltq),
            average_price_paise=paise_or_none(data.get("avgPrice")),
            upper_circuit_paise=paise_or_none(data.get("upperCircuit")),
            lower_circuit_paise=paise_or_none(data.get("lowerCircuit")),
            exchange_time=order_time(data.get("exchFeedTime")),
            bids=_depth(depth.get("buy")),
            asks=_depth(depth.get("sell")),
        )


def _depth(levels: Any) -> tuple[DepthLevel, ...]:
    if not isinstance(levels, Sequence):
        return ()
    return tuple(
        DepthLevel(paise(lv.get("price")), to_int(lv.get("quantity")), to_int(lv.get("orders")))
        for lv in levels
        if isinstance(lv, Mapping)
    )


@dataclass(frozen=True, slots=True)
class Unfetched:
    """A token the quote API could not return, with the broker's reason."""

    exchange: str
    token: str
    message: str
    error_code: str

    @classmethod
    def parse(cls, data: Record) -> Unfetched:
        """From one ``unfetched`` element."""
        return cls(
            exchange=text(data.get("exchange")),
            token=text(data.get("symbolToken")),
            message=text(data.get("message")),
            error_code=text(data.get("errorCode") or data.get("errorcode")),
        )


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """The quote API's answer for every token asked about."""

    fetched: tuple[Quote, ...] = ()
    unfetched: tuple[Unfetched, ...] = ()

    def by_token(self) -> dict[tuple[str, str], Quote]:
        """``(exchange, token) → Quote``."""
        return {(q.exchange, q.token): q for q in self.fetched}


@dataclass(frozen=True, slots=True)
class OrderAck:
    """placeOrder / modifyOrder / cancelOrder: the broker accepted the request for processing."""

    order_id: str
    unique_order_id: str
    script: str = ""

    @classmethod
    def parse(cls, data: Record) -> OrderAck:
        """From the response ``data`` object."""
        return cls(
            order_id=text(data.get("orderid")),
            unique_order_id=text(data.get("uniqueorderid")),
            script=text(data.get("script")),
        )


@dataclass(frozen=True, slots=True)
class Order:
    """One order-book / order-details record."""

    order_id: str
    unique_order_id: str
    exchange_order_id: str
    ordertag: str
    variety: str
    order_type: str
    product: str
    duration: str
    side: str
    exchange: str
    symbol: str
    token: str
    quantity: int
    filled_quantity: int
    unfilled_quantity: int
    cancelled_quantity: int
    price_paise: int
    trigger_price_paise: int | None
    average_price_paise: int | None
    status: str
    text: str
    updated_at: datetime | None
    exchange_time: datetime | None
    lot_size: int
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """Complete, rejected or cancelled: nothing more will happen to it."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_rejected(self) -> bool:
        """The broker or exchange rejected it."""
        return self.status == "rejected"

    @classmethod
    def parse(cls, data: Record) -> Order:
        """From an order-book or details record."""
        status = text(data.get("status") or data.get("orderstatus")).lower()
        trigger = paise_or_none(data.get("triggerprice"))
        average = paise_or_none(data.get("averageprice"))
        return cls(
            order_id=text(data.get("orderid")),
            unique_order_id=text(data.get("uniqueorderid")),
            exchange_order_id=text(data.get("exchangeorderid")),
            ordertag=text(data.get("ordertag")),
            variety=text(data.get("variety")).upper(),
            order_type=text(data.get("ordertype")).upper(),
            product=text(data.get("producttype")).upper(),
            duration=text(data.get("duration")).upper(),
            side=text(data.get("transactiontype")).upper(),
            exchange=text(data.get("exchange")).upper(),
            symbol=text(data.get("tradingsymbol")),
            token=text(data.get("symboltoken")),
            quantity=to_int(data.get("quantity")),
            filled_quantity=to_int(data.get("filledshares")),
            unfilled_quantity=to_int(data.get("unfilledshares")),
            cancelled_quantity=to_int(data.get("cancelsize")),
            price_paise=paise(data.get("price")),
            trigger_price_paise=trigger or None,
            average_price_paise=average or None,
            status=status,
            text=text(data.get("text")),
            updated_at=order_time(data.get("updatetime")),
            exchange_time=order_time(data.get("exchtime")),
            lot_size=to_int(data.get("lotsize"), default=1),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade-book record (a fill). The broker gives only the time of day."""

    order_id: str
    fill_id: str
    exchange: str
    symbol: str
    product: str
    side: str
    price_paise: int
    quantity: int
    value_paise: int
    fill_time: clock_time | None

    @classmethod
    def parse(cls, data: Record) -> Trade:
        """From a trade-book record."""
        price = paise(data.get("fillprice"))
        quantity = to_int(data.get("fillsize"))
        value = paise_or_none(data.get("tradevalue"))
        return cls(
            order_id=text(data.get("orderid")),
            fill_id=text(data.get("fillid")),
            exchange=text(data.get("exchange")).upper(),
            symbol=text(data.get("tradingsymbol")),
            product=text(data.get("producttype")).upper(),
            side=text(data.get("transactiontype")).upper(),
            price_paise=price,
            quantity=quantity,
            value_paise=price * quantity if value is None else value,
            fill_time=fill_time(data.get("filltime")),
        )


@dataclass(frozen=True, slots=True)
class Position:
    """One getPosition record (the day's net view), money in paise."""

    exchange: str
    token: str
    symbol: str
    product: str
    net_quantity: int
    buy_quantity: int
    sell_quantity: int
    buy_value_paise: int
    sell_value_paise: int
    buy_average_paise: int | None
    sell_average_paise: int | None
    ltp_paise: int | None
    pnl_paise: int | None
    realised_pnl_paise: int
    lot_size: int

    @property
    def is_flat(self) -> bool:
        """No open quantity."""
        return self.net_quantity == 0

    @classmethod
    def parse(cls, data: Record) -> Position:
        """From a getPosition record."""
        buy_qty = to_int(data.get("buyqty"))
        sell_qty = to_int(data.get("sellqty"))
        buy_value = paise(data.get("totalbuyvalue") or data.get("buyamount"))
        sell_value = paise(data.get("totalsellvalue") or data.get("sellamount"))
        buy_avg = paise_or_none(data.get("buyavgprice") or data.get("totalbuyavgprice"))
        sell_avg = paise_or_none(data.get("sellavgprice") or data.get("totalsellavgprice"))
        realised = paise_or_none(data.get("realised"))
        if realised is None:
            # Not in the documented record: the matched quantity at the two average prices.
            matched = min(buy_qty, sell_qty)
            realised = matched * ((sell_avg or 0) - (buy_avg or 0)) if matched else 0
        net = data.get("netqty")
        return cls(
            exchange=text(data.get("exchange")).upper(),
            token=text(data.get("symboltoken")),
            symbol=text(data.get("tradingsymbol")),
            product=text(data.get("producttype")).upper(),
            net_quantity=buy_qty - sell_qty if net is None or text(net) == "" else to_int(net),
            buy_quantity=buy_qty,
            sell_quantity=sell_qty,
            buy_value_paise=buy_value,
            sell_value_paise=sell_value,
            buy_average_paise=buy_avg,
            sell_average_paise=sell_avg,
            ltp_paise=paise_or_none(data.get("ltp")),
            pnl_paise=paise_or_none(data.get("pnl")),
            realised_pnl_paise=realised,
            lot_size=to_int(data.get("lotsize"), default=1),
        )
