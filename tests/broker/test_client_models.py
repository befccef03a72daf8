"""Typed records from SmartAPI replies, the §4.6 quirks, error mapping and candle chunking."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.smartapi.errors import (
    AuthError,
    BrokerUnavailable,
    InvalidRequest,
    NotFound,
    Redactor,
    SessionExpired,
    error_for_code,
)
from broker.smartapi.limits import CANDLE_MAX_DAYS
from broker.smartapi.models import (
    IST,
    Candle,
    Funds,
    Order,
    Position,
    Quote,
    Trade,
    paise,
    paise_or_none,
    rupees_text,
    to_int,
)
from broker.smartapi.rest import OrderRequest, broker_interval, candle_chunks


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("194.50", 19450),
        (194.5, 19450),
        (194, 19400),
        (Decimal("194.5"), 19450),
        ("1,234.05", 123405),
        # Averages may carry more decimals: 123.455 rupees → 12345.5 paise → half-up 12346.
        ("123.455", 12346),
        ("-12.5", -1250),
        (None, None),
        ("", None),
        ("null", None),
        ("abc", None),
    ],
)
def test_paise_accepts_every_spelling(raw: object, expected: int | None) -> None:
    assert paise_or_none(raw) == expected


def test_quantities_and_text() -> None:
    assert to_int("75") == 75
    assert to_int(75.0) == 75
    assert to_int("") == 0
    assert to_int(None, default=1) == 1
    assert rupees_text(19450) == "194.50"
    assert rupees_text(5) == "0.05"
    assert rupees_text(-1250) == "-12.50"


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**12), 10**12))
def test_rupees_text_round_trips(amount: int) -> None:
    assert paise(rupees_text(amount)) == amount


ORDER_BOOK_RECORD = {
    "variety": "NORMAL",
    "ordertype": "LIMIT",
    "producttype": "INTRADAY",
    "duration": "DAY",
    "price": "194.00",
    "triggerprice": "0",
    "quantity": "75",
    "disclosedquantity": "0",
    "tradingsymbol": "NIFTY26DEC2424000CE",
    "transactiontype": "BUY",
    "exchange": "NFO",
    "symboltoken": None,  # the docs sample really has null here
    "ordertag": "I-42",
    "lotsize": "75",
    "cancelsize": "0",
    "averageprice": 193.95,
    "filledshares": "75",
    "unfilledshares": "0",
    "orderid": "231010000000970",
    "text": "",
    "status": "complete",
    "orderstatus": "complete",
    "updatetime": "10-Oct-2023 10:15:03",
    "exchtime": "",
    "uniqueorderid": "05ebf91b-bea4-4a1d-b0f2-4259606570e3",
    "exchangeorderid": "1100000000012345",
}


def test_order_record_with_mixed_types() -> None:
    order = Order.parse(ORDER_BOOK_RECORD)
    assert order.order_id == "231010000000970"
    assert order.price_paise == 19400
    assert order.trigger_price_paise is None  # "0" means no trigger
    assert order.average_price_paise == 19395
    assert (order.quantity, order.filled_quantity, order.lot_size) == (75, 75, 75)
    assert order.token == ""
    assert order.ordertag == "I-42"
    assert order.is_terminal and not order.is_rejected
    assert order.updated_at == datetime(2023, 10, 10, 10, 15, 3, tzinfo=IST)
    assert order.exchange_time is None


def test_rejected_order_keeps_reason() -> None:
    order = Order.parse({**ORDER_BOOK_RECORD, "status": "Rejected", "text": "RMS: funds"})
    assert order.is_rejected
    assert order.text == "RMS: funds"


def test_trade_position_funds() -> None:
    trade = Trade.parse(
        {
            "exchange": "NFO",
            "producttype": "INTRADAY",
            "tradingsymbol": "X",
            "transactiontype": "SELL",
            "fillprice": "120.05",
            "fillsize": "150",
            "tradevalue": "18007.50",
            "orderid": "1",
            "fillid": "F1",
            "filltime": "13:27:53",
        }
    )
    assert (trade.price_paise, trade.quantity, trade.value_paise) == (12005, 150, 1800750)
    assert trade.fill_time == time(13, 27, 53)

    # Bought 150 at 100.00, sold 75 at 110.00 (no "realised" field): realised is
    # 75 × (110.00 − 100.00) = 750.00 rupees = 75000 paise.
    position = Position.parse(
        {
            "exchange": "NFO",
            "symboltoken": "35001",
            "producttype": "INTRADAY",
            "tradingsymbol": "X",
            "buyqty": "150",
            "sellqty": "75",
            "buyamount": "15000.00",
            "sellamount": "8250.00",
            "buyavgprice": "100.00",
            "sellavgprice": "110.00",
            "netqty": "75",
            "ltp": 105.5,
        }
    )
    assert position.net_quantity == 75
    assert position.realised_pnl_paise == 75_000
    assert position.ltp_paise == 10550
    assert position.pnl_paise is None

    funds = Funds.parse({"net": "99500.25", "availablecash": 99500.25, "m2mrealized": None})
    assert funds.net_paise == funds.available_cash_paise == 9_950_025
    assert funds.m2m_realised_paise == 0


def test_quote_full_mode() -> None:
    quote = Quote.parse(
        {
            "exchange": "NSE",
            "tradingSymbol": "SBIN-EQ",
            "symbolToken": "3045",
            "ltp": 571.8,
            "open": 568.2,
            "close": 566.0,
            "tradeVolume": 1000,
            "exchFeedTime": "21-Jun-2023 10:46:10",
            "depth": {
                "buy": [{"price": 571.75, "quantity": 10, "orders": 2}],
                "sell": [{"price": 571.9, "quantity": 5, "orders": 1}],
            },
        }
    )
    assert quote.ltp_paise == 57180
    assert quote.bids[0].price_paise == 57175 and quote.asks[0].quantity == 5
    assert quote.volume == 1000 and quote.open_interest is None
    assert quote.exchange_time == datetime(2023, 6, 21, 10, 46, 10, tzinfo=IST)


def test_candle_row() -> None:
    candle = Candle.parse(["2023-09-06T11:15:00+05:30", 19571.2, 19580, "19560.05", 19575.4, 0])
    assert candle.start == datetime(2023, 9, 6, 11, 15, tzinfo=IST)
    assert candle.open == Decimal("19571.2") and candle.low == Decimal("19560.05")
    with pytest.raises(ValueError):
        Candle.parse(["2023-09-06T11:15:00+05:30", None, 1, 1, 1, 0])


def test_order_request_body_is_all_strings() -> None:
    body = OrderRequest(
        exchange="NFO",
        symbol="NIFTY26DEC2424000CE",
        token="35001",
        side="BUY",
        quantity=75,
        price_paise=19405,
        ordertag="I-1",
    ).body()
    assert body["price"] == "194.05" and body["quantity"] == "75"
    assert body["ordertag"] == "I-1" and "triggerprice" not in body
    assert all(isinstance(v, str) for v in body.values())


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AG8001", SessionExpired),
        ("AB1010", SessionExpired),
        ("AB8051", SessionExpired),
        ("AB1004", BrokerUnavailable),
        ("AB2001", BrokerUnavailable),
        ("AB1013", NotFound),
        ("AB1050", AuthError),
        ("AB4008", InvalidRequest),
        ("AB1007", InvalidRequest),
    ],
)
def test_error_codes_map_to_what_the_caller_should_do(code: str, kind: type) -> None:
    error = error_for_code(code, "x: broker says no")
    assert type(error) is kind
    assert error.code == code
    assert code in str(error)


def test_redactor_blanks_secrets_longest_first() -> None:
    redact = Redactor(["eyJhbGciOiJIUzUxMiJ9.abc", "1234"])
    redact.add("eyJhbGciOiJIUzUxMiJ9.abc.def", None, "")
    out = redact("token eyJhbGciOiJIUzUxMiJ9.abc.def and pin 1234")
    assert out == "token *** and pin ***"


def test_interval_names() -> None:
    assert broker_interval("1m") == "ONE_MINUTE"
    assert broker_interval("one_hour") == "ONE_HOUR"
    with pytest.raises(InvalidRequest, match="2h"):
        broker_interval("2h")


def test_75_days_of_minutes_make_three_chunks() -> None:
    start = datetime(2024, 1, 1, 9, 15, tzinfo=IST)
    end = start + timedelta(days=75)
    chunks = candle_chunks(start, end, CANDLE_MAX_DAYS["ONE_MINUTE"])
    # Dates Jan 1 … Mar 16 (76 dates) in 30-date spans: 30 + 30 + 16.
    assert len(chunks) == 3
    assert chunks[0] == (start, datetime(2024, 1, 30, 23, 59, tzinfo=IST))
    assert chunks[1][0] == datetime(2024, 1, 31, 0, 0, tzinfo=IST)
    assert chunks[-1][1] == end


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(datetime(2020, 1, 1), datetime(2026, 1, 1)),
    minutes=st.integers(0, 900 * 24 * 60),
    cap=st.sampled_from(sorted(set(CANDLE_MAX_DAYS.values()))),
)
def test_chunks_tile_the_range_within_the_cap(start: datetime, minutes: int, cap: int) -> None:
    first = start.replace(second=0, microsecond=0, tzinfo=IST)
    last = first + timedelta(minutes=minutes)
    chunks = candle_chunks(first, last, cap)
    assert chunks[0][0] == first and chunks[-1][1] == last
    for lo, hi in chunks:
        assert lo <= hi
        assert (hi.date() - lo.date()).days <= cap - 1
    for (_, hi), (lo, _) in pairwise(chunks):
        # Consecutive and not overlapping: the next span starts the minute after.
        assert lo - hi == timedelta(minutes=1)
