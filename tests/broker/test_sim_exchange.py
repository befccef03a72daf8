"""The simulated exchange core: validation, matching, books, positions and funds.

Instruments and quotes are small fakes so every figure can be worked out by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.sim.exchange import ORDER_UUID_NAMESPACE, OrderEvent, SimExchange
from broker.sim.orders import IST, ApiError

SESSION = date(2026, 11, 20)
T0 = datetime.combine(SESSION, time(10, 15), tzinfo=IST)
OPT = "40001"
IDX = "99926000"


@dataclass(frozen=True)
class FakeInstrument:
    token: str
    exchange: str
    symbol: str
    name: str
    instrument_type: str
    expiry: date | None
    strike_paise: int | None
    option_type: str | None
    lot: int
    tick_paise: int
    freeze_qty: int


@dataclass(frozen=True)
class FakeQuote:
    ltp_paise: int
    bids: tuple[tuple[int, int, int], ...]
    asks: tuple[tuple[int, int, int], ...]
    upper_circuit_paise: int = 50_000
    lower_circuit_paise: int = 500


INSTRUMENTS = {
    OPT: FakeInstrument(
        OPT,
        "NFO",
        "NIFTY01DEC2626000CE",
        "NIFTY",
        "OPTIDX",
        date(2026, 12, 1),
        2_600_000,
        "CE",
        lot=65,
        tick_paise=5,
        freeze_qty=1_800,
    ),
    IDX: FakeInstrument(
        IDX,
        "NSE",
        "Nifty 50",
        "NIFTY",
        "AMXIDX",
        None,
        None,
        None,
        lot=1,
        tick_paise=0,
        freeze_qty=0,
    ),
}

# LTP ₹120.00; asks 120.05 ×65, 120.10 ×195, 120.20 ×650 …; bids 119.90 ×650 …
BASE_QUOTE = FakeQuote(
    ltp_paise=12_000,
    bids=(
        (11_990, 650, 3),
        (11_980, 1_300, 5),
        (11_970, 650, 2),
        (11_960, 650, 1),
        (11_950, 650, 1),
    ),
    asks=((12_005, 65, 1), (12_010, 195, 3), (12_020, 650, 4), (12_030, 650, 1), (12_040, 650, 1)),
)


class FakeMarket:
    """Quotes that change only when a test says so."""

    def __init__(self) -> None:
        self.quotes: dict[str, FakeQuote] = {OPT: BASE_QUOTE, IDX: replace(BASE_QUOTE)}

    def instrument(self, token: str) -> FakeInstrument | None:
        return INSTRUMENTS.get(token)

    def quote(self, token: str, at: datetime) -> FakeQuote | None:
        return self.quotes.get(token)


def make(capital_paise: int = 10_00_000_00, **kw: object) -> tuple[SimExchange, FakeMarket]:
    market = FakeMarket()
    ex = SimExchange(
        market.instrument, market.quote, capital_paise=capital_paise, session_date=SESSION, **kw
    )
    return ex, market


def body(**over: object) -> dict[str, object]:
    b: dict[str, object] = {
        "variety": "NORMAL",
        "tradingsymbol": "NIFTY01DEC2626000CE",
        "symboltoken": OPT,
        "transactiontype": "BUY",
        "exchange": "NFO",
        "ordertype": "LIMIT",
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": "125.00",
        "quantity": "65",
        "squareoff": "0",
        "stoploss": "0",
    }
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def codes(events: list[OrderEvent]) -> list[str]:
    return [e.ab_code for e in events]


def order_of(ex: SimExchange, orderid: str) -> dict[str, str]:
    record = ex.order(orderid)
    assert record is not None
    return record


# --- matching ----------------------------------------------------------------------------------


def test_crossing_limit_buy_fills_at_the_ask_not_the_limit() -> None:
    ex, _ = make()
    res = ex.place(body(price="125.00"), client_code="C1", at=T0)
    rec = order_of(ex, res.orderid)
    assert rec["status"] == "complete"
    assert rec["averageprice"] == "120.05"  # best ask, below the 125.00 limit
    assert (rec["filledshares"], rec["unfilledshares"]) == ("65", "0")
    assert codes(res.events) == ["AB01", "AB05"]
    [trade] = ex.trade_book()
    # 65 × ₹120.05 = ₹7,803.25
    assert (trade["fillprice"], trade["fillsize"], trade["tradevalue"]) == (
        "120.05",
        "65",
        "7803.25",
    )
    assert trade["orderid"] == res.orderid and trade["filltime"] == "10:15:00"


def test_partial_fill_walks_levels_with_exact_average_then_completes_later() -> None:
    ex, market = make()
    res = ex.place(body(price="120.10", quantity="390"), client_code="C1", at=T0)
    rec = order_of(ex, res.orderid)
    # 65 @ 120.05 + 195 @ 120.10 = 780,325 + 2,341,950 = 3,122,275 paise over 260 units
    # = 12,008.75 paise → ₹120.0875 → "120.09" (half-up)
    assert (rec["status"], rec["filledshares"], rec["unfilledshares"]) == ("open", "260", "130")
    assert rec["averageprice"] == "120.09"
    assert codes(res.events) == ["AB01", "AB01", "AB01"]  # placed, fill 1, fill 2
    assert [t["fillprice"] for t in ex.trade_book()] == ["120.05", "120.10"]

    market.quotes[OPT] = replace(BASE_QUOTE, asks=((12_000, 650, 2),))
    events = ex.on_market(T0 + timedelta(seconds=5))
    rec = order_of(ex, res.orderid)
    # + 130 @ 120.00 = 1,560,000 → 4,682,275 / 390 = 12,005.833… paise → "120.06"
    assert rec["status"] == "complete" and rec["averageprice"] == "120.06"
    assert codes(events) == ["AB05"]
    assert events[0].order_record["filledshares"] == "390"


def test_resting_limit_fills_on_a_later_quote_with_price_improvement() -> None:
    ex, market = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    assert order_of(ex, res.orderid)["status"] == "open"
    assert codes(res.events) == ["AB01"]
    assert ex.on_market(T0 + timedelta(seconds=1)) == []  # ask 120.05 still above 119.00
    assert ex.trade_book() == []

    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=11_850, asks=((11_850, 650, 1),))
    events = ex.on_market(T0 + timedelta(seconds=2), tokens=[OPT])
    assert codes(events) == ["AB05"]
    assert order_of(ex, res.orderid)["averageprice"] == "118.50"


def test_on_market_leaves_other_tokens_alone() -> None:
    ex, market = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    market.quotes[OPT] = replace(BASE_QUOTE, asks=((11_850, 650, 1),))
    assert ex.on_market(T0 + timedelta(seconds=1), tokens=["12345"]) == []
    assert order_of(ex, res.orderid)["status"] == "open"


def test_depth_at_one_instant_is_consumed_once() -> None:
    ex, _ = make()
    first = ex.place(body(price="120.05"), client_code="C1", at=T0)
    second = ex.place(body(price="120.05"), client_code="C1", at=T0)
    assert order_of(ex, first.orderid)["status"] == "complete"
    # The 65 offered at 120.05 went to the first order; the second rests.
    assert order_of(ex, second.orderid)["status"] == "open"
    assert ex.on_market(T0) == []
    assert codes(ex.on_market(T0 + timedelta(seconds=1))) == ["AB05"]  # a fresh quote instant


def test_fill_delay_holds_orders_until_they_are_old_enough() -> None:
    ex, _ = make(fill_delay_s=2.0)
    res = ex.place(body(), client_code="C1", at=T0)
    assert codes(res.events) == ["AB01"]
    assert ex.on_market(T0 + timedelta(seconds=1)) == []
    assert codes(ex.on_market(T0 + timedelta(seconds=2))) == ["AB05"]


def test_ioc_remainder_is_cancelled() -> None:
    ex, _ = make()
    res = ex.place(body(price="120.10", quantity="390", duration="IOC"), client_code="C", at=T0)
    rec = order_of(ex, res.orderid)
    assert (rec["status"], rec["filledshares"], rec["cancelsize"]) == ("cancelled", "260", "130")
    assert codes(res.events) == ["AB01", "AB01", "AB01", "AB02"]


def test_market_order_becomes_protected_limit() -> None:
    ex, market = make()
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=12_030)
    res = ex.place(body(ordertype="MARKET", price="0"), client_code="C1", at=T0)
    rec = order_of(ex, res.orderid)
    # band = 12,030 × 5% = 601.5 → 601 paise; 12,030 + 601 = 12,631 → tick 5 below: 12,630
    assert (rec["ordertype"], rec["price"]) == ("LIMIT", "126.30")
    assert rec["status"] == "complete" and rec["averageprice"] == "120.05"


def test_market_order_price_is_clipped_to_the_circuit() -> None:
    ex, market = make()
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=12_030, upper_circuit_paise=12_500)
    res = ex.place(body(ordertype="MARKET", price="0"), client_code="C1", at=T0)
    assert order_of(ex, res.orderid)["price"] == "125.00"


def test_market_sell_is_protected_below_ltp() -> None:
    ex, market = make()
    ex.place(body(), client_code="C1", at=T0)  # hold 65 first
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=12_030)
    res = ex.place(
        body(transactiontype="SELL", ordertype="MARKET", price=None), client_code="C1", at=T0
    )
    rec = order_of(ex, res.orderid)
    # 12,030 − 601 = 11,429 → tick 5 above: 11,430; fills at the best bid 119.90
    assert rec["price"] == "114.30"
    assert rec["status"] == "complete" and rec["averageprice"] == "119.90"


def test_stop_loss_sell_waits_for_its_trigger() -> None:
    ex, market = make()
    ex.place(body(), client_code="C1", at=T0)
    res = ex.place(
        body(
            variety="STOPLOSS",
            ordertype="STOPLOSS_LIMIT",
            transactiontype="SELL",
            triggerprice="115.00",
            price="114.00",
        ),
        client_code="C1",
        at=T0,
    )
    assert codes(res.events) == ["AB10"]
    assert order_of(ex, res.orderid)["status"] == "trigger pending"
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=11_600, bids=((11_595, 650, 1),))
    assert ex.on_market(T0 + timedelta(seconds=1)) == []
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=11_450, bids=((11_450, 650, 1),))
    events = ex.on_market(T0 + timedelta(seconds=2))
    assert codes(events) == ["AB01", "AB05"]  # triggered, then filled at the bid
    assert order_of(ex, res.orderid)["averageprice"] == "114.50"


def test_stop_buy_with_trigger_below_ltp_is_rejected() -> None:
    ex, _ = make()
    res = ex.place(
        body(variety="STOPLOSS", ordertype="STOPLOSS_LIMIT", triggerprice="110.00", price="111"),
        client_code="C1",
        at=T0,
    )
    rec = order_of(ex, res.orderid)
    assert rec["status"] == "rejected" and "must be above LTP 120.00" in rec["text"]


def test_working_orders_expire_at_the_close() -> None:
    ex, _ = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    events = ex.on_market(datetime.combine(SESSION, time(15, 30), tzinfo=IST))
    assert codes(events) == ["AB02"]
    rec = order_of(ex, res.orderid)
    assert rec["status"] == "cancelled" and "expired" in rec["text"]


@settings(max_examples=60, deadline=None)
@given(
    asks=st.lists(
        st.tuples(st.integers(1, 400), st.integers(1, 20)),
        min_size=1,
        max_size=5,
        unique_by=lambda a: a[0],
    ),
    limit_ticks=st.integers(1, 400),
    lots=st.integers(1, 27),
)
def test_fills_never_exceed_limit_or_visible_depth(
    asks: list[tuple[int, int]], limit_ticks: int, lots: int
) -> None:
    ex, market = make()
    depth = tuple((12_000 + 5 * t, n * 65, 1) for t, n in sorted(asks))
    market.quotes[OPT] = replace(BASE_QUOTE, asks=depth, upper_circuit_paise=20_000)
    limit = 12_000 + 5 * limit_ticks
    res = ex.place(
        body(price=f"{limit // 100}.{limit % 100:02d}", quantity=str(lots * 65)),
        client_code="C1",
        at=T0,
    )
    rec = order_of(ex, res.orderid)
    available = sum(q for p, q, _ in depth if p <= limit)
    filled = int(rec["filledshares"])
    assert filled == min(lots * 65, available)
    assert filled + int(rec["unfilledshares"]) == lots * 65
    trades = ex.trade_book()
    assert sum(int(t["fillsize"]) for t in trades) == filled
    assert all(int(t["fillprice"].replace(".", "")) <= limit for t in trades)


# --- business rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "at", "needle"),
    [
        ({"quantity": "100"}, T0, "not a multiple of the lot size 65"),
        ({"quantity": str(65 * 28)}, T0, "exceeds the freeze quantity 1800"),
        ({"price": "600.00"}, T0, "outside the circuit band 5.00–500.00"),
        ({"price": "120.03"}, T0, "not a multiple of the tick size 0.05"),
        ({}, datetime.combine(SESSION, time(15, 45), tzinfo=IST), "after-hours"),
        ({}, datetime.combine(SESSION, time(9, 14, 59), tzinfo=IST), "after-hours"),
        ({"transactiontype": "SELL"}, T0, "short selling is not enabled"),
        (
            {"symboltoken": IDX, "tradingsymbol": "Nifty 50", "exchange": "NSE", "quantity": "1"},
            T0,
            "is an index",
        ),
    ],
)
def test_business_rejections_create_a_rejected_order(
    over: dict[str, object], at: datetime, needle: str
) -> None:
    ex, _ = make()
    res = ex.place(body(**over), client_code="C1", at=at)
    assert len(res.orderid) == 15
    rec = order_of(ex, res.orderid)
    assert rec["status"] == rec["orderstatus"] == "rejected"
    assert needle in rec["text"]
    assert rec["exchtime"] == "" and rec["exchangeorderid"] == ""
    assert codes(res.events) == ["AB03"]
    assert ex.trade_book() == []


def test_insufficient_funds_counts_a_charges_margin() -> None:
    # BUY 65 @ 120.05 = ₹7,803.25. Charges on 2026-11-20: brokerage 20.00; exchange 0.03503%
    # = 2.733… → 2.73; SEBI 0.0001% = 0.0078 → 0.01; stamp 0.003% = 0.234 → 0.23;
    # GST 18% × (20 + 2.73 + 0.01) = 4.0932 → 4.09; margin = 27.06 → needs ₹7,830.31.
    ex, _ = make(capital_paise=7_810_00)
    res = ex.place(body(price="120.05"), client_code="C1", at=T0)
    rec = order_of(ex, res.orderid)
    assert rec["status"] == "rejected"
    assert "insufficient funds" in rec["text"]
    assert "7803.25 + charges margin 27.06 = 7830.31" in rec["text"]
    assert "available cash 7810.00" in rec["text"]

    ok, _ = make(capital_paise=7_830_31)
    assert (
        order_of(ok, ok.place(body(price="120.05"), client_code="C1", at=T0).orderid)["status"]
        == "complete"
    )


def test_open_buy_orders_block_funds_for_the_next_order() -> None:
    # Each BUY 65 @ 119.00 blocks ₹7,735.00 (+ margin when checked); capital fits one.
    ex, _ = make(capital_paise=9_000_00)
    first = ex.place(body(price="119.00"), client_code="C1", at=T0)
    second = ex.place(body(price="119.00"), client_code="C1", at=T0)
    assert order_of(ex, first.orderid)["status"] == "open"
    assert "available cash 1265.00" in order_of(ex, second.orderid)["text"]  # 9,000 − 7,735


def test_reject_next_forces_rejections_then_stops() -> None:
    ex, _ = make()
    ex.reject_next(2, "RMS: margin check failed")
    results = [ex.place(body(), client_code="C1", at=T0) for _ in range(3)]
    statuses = [order_of(ex, r.orderid)["status"] for r in results]
    assert statuses == ["rejected", "rejected", "complete"]
    assert order_of(ex, results[0].orderid)["text"] == "RMS: margin check failed"


# --- request-shape errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"variety": None}, "AB1008"),
        ({"variety": "AMO"}, "AB1008"),
        ({"variety": "ROBO"}, "AB2002"),
        ({"producttype": "CNC"}, "AB1012"),
        ({"producttype": "DELIVERY"}, "AB1012"),  # not an NFO product
        ({"quantity": None}, "AB1007"),
        ({"quantity": "0"}, "AB1007"),
        ({"quantity": "1.5"}, "AB1007"),
        ({"transactiontype": "HOLD"}, "AB1007"),
        ({"ordertype": "STOPLOSS_LIMIT"}, "AB1007"),  # needs variety STOPLOSS
        ({"duration": "GTC"}, "AB1007"),
        ({"price": "abc"}, "AB1007"),
        ({"price": "0"}, "AB1007"),
        ({"price": "120.005"}, "AB1007"),
        ({"symboltoken": None}, "AB1007"),
        ({"ordertag": "x" * 20}, "AB4008"),
        ({"symboltoken": "99999"}, "AB1009"),
        ({"tradingsymbol": "NIFTY01DEC2626000PE"}, "AB1009"),
    ],
)
def test_malformed_requests_raise_without_creating_an_order(
    over: dict[str, object], code: str
) -> None:
    ex, _ = make()
    with pytest.raises(ApiError) as caught:
        ex.place(body(**over), client_code="C1", at=T0)
    assert caught.value.code == code
    assert ex.order_book() == []


def test_numbers_may_arrive_as_strings_or_numbers() -> None:
    ex, _ = make()
    a = ex.place(body(price="125.5", quantity="65", ordertag="x" * 19), client_code="C", at=T0)
    b = ex.place(body(price=125.5, quantity=65), client_code="C", at=T0)
    assert order_of(ex, a.orderid)["price"] == order_of(ex, b.orderid)["price"] == "125.50"


# --- modify and cancel -------------------------------------------------------------------------


def test_modify_price_of_a_resting_order_then_it_crosses() -> None:
    ex, _ = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    later = T0 + timedelta(seconds=3)
    ack = ex.modify({"variety": "NORMAL", "orderid": res.orderid, "price": "119.50"}, at=later)
    assert codes(ack.events) == ["AB04", "AB01"]
    assert [e.order_record["status"] for e in ack.events] == ["modified", "open"]
    rec = order_of(ex, res.orderid)
    assert rec["price"] == "119.50" and rec["updatetime"] == "20-Nov-2026 10:15:03"
    ack = ex.modify(
        {
            "variety": "NORMAL",
            "orderid": res.orderid,
            "ordertype": "LIMIT",
            "producttype": "INTRADAY",
            "duration": "DAY",
            "price": "121.00",
            "quantity": "65",
            "symboltoken": OPT,
        },
        at=later,
    )
    assert codes(ack.events) == ["AB04", "AB01", "AB05"]
    assert order_of(ex, res.orderid)["averageprice"] == "120.05"


def test_invalid_modification_raises_and_leaves_the_order_alone() -> None:
    ex, _ = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    before = order_of(ex, res.orderid)
    with pytest.raises(ApiError) as caught:
        ex.modify({"variety": "NORMAL", "orderid": res.orderid, "quantity": "100"}, at=T0)
    assert caught.value.code == "AB1007" and "lot size 65" in caught.value.message
    with pytest.raises(ApiError) as caught:
        ex.modify(
            {"variety": "NORMAL", "orderid": res.orderid, "producttype": "CARRYFORWARD"}, at=T0
        )
    assert caught.value.code == "AB1012"
    assert order_of(ex, res.orderid) == before


def test_modify_quantity_must_exceed_what_is_filled() -> None:
    ex, _ = make()
    res = ex.place(body(price="120.10", quantity="390"), client_code="C1", at=T0)  # 260 filled
    with pytest.raises(ApiError, match="already filled"):
        ex.modify({"variety": "NORMAL", "orderid": res.orderid, "quantity": "260"}, at=T0)
    ack = ex.modify({"variety": "NORMAL", "orderid": res.orderid, "quantity": "325"}, at=T0)
    assert ack.events[-1].order_record["unfilledshares"] == "65"


def test_cancel_open_order_and_refuse_terminal_ones() -> None:
    ex, _ = make()
    resting = ex.place(body(price="119.00"), client_code="C1", at=T0)
    ack = ex.cancel(resting.orderid, T0 + timedelta(seconds=1))
    assert codes(ack.events) == ["AB02"]
    assert ack.data() == {"orderid": resting.orderid, "uniqueorderid": resting.uniqueorderid}
    rec = order_of(ex, resting.orderid)
    assert (rec["status"], rec["cancelsize"], rec["filledshares"]) == ("cancelled", "65", "0")

    done = ex.place(body(), client_code="C1", at=T0)
    with pytest.raises(ApiError) as caught:
        ex.cancel(done.orderid, T0)
    assert caught.value.code == "AB1013" and "complete" in caught.value.message
    with pytest.raises(ApiError, match="AB1013"):
        ex.cancel("261120999999999", T0)
    with pytest.raises(ApiError, match="cancelled"):
        ex.modify({"variety": "NORMAL", "orderid": resting.orderid, "price": "119"}, at=T0)


def test_cancel_request_checks_variety() -> None:
    ex, _ = make()
    res = ex.place(body(price="119.00"), client_code="C1", at=T0)
    with pytest.raises(ApiError) as caught:
        ex.cancel_request({"variety": "STOPLOSS", "orderid": res.orderid}, at=T0)
    assert caught.value.code == "AB1008"
    ack = ex.cancel_request({"variety": "NORMAL", "orderid": res.orderid}, at=T0)
    assert ack.events[0].order_record["status"] == "cancelled"


# --- positions and funds -----------------------------------------------------------------------


def test_positions_and_realised_pnl_for_buy_then_sell() -> None:
    ex, market = make()
    ex.place(body(quantity="65"), client_code="C1", at=T0)  # 65 @ 120.05
    market.quotes[OPT] = replace(BASE_QUOTE, asks=((12_100, 650, 1),))
    ex.place(body(quantity="65"), client_code="C1", at=T0 + timedelta(seconds=1))  # 65 @ 121.00
    market.quotes[OPT] = replace(BASE_QUOTE, bids=((12_500, 650, 1),))
    sell = body(transactiontype="SELL", price="124.00", quantity="65")
    ex.place(sell, client_code="C1", at=T0 + timedelta(seconds=2))  # 65 @ 125.00
    market.quotes[OPT] = replace(BASE_QUOTE, ltp_paise=12_600)

    [pos] = ex.positions(T0 + timedelta(seconds=3))
    # bought 780,325 + 786,500 = 1,566,825 paise for 130 → avg 12,052.5 → "120.53"
    assert (pos["buyqty"], pos["buyamount"], pos["buyavgprice"]) == ("130", "15668.25", "120.53")
    assert (pos["sellqty"], pos["sellamount"], pos["sellavgprice"]) == ("65", "8125.00", "125.00")
    assert pos["netqty"] == "65"
    # netvalue = 812,500 − 1,566,825 = −754,325; net price 754,325 / 65 = 11,605
    assert (pos["netvalue"], pos["avgnetprice"]) == ("-7543.25", "116.05")
    # pnl = −754,325 + 65 × 12,600 = 64,675; realised = 65 × (12,500 − 12,052.5) = 29,087.5 → 29,088
    assert (pos["ltp"], pos["pnl"], pos["realised"]) == ("126.00", "646.75", "290.88")
    assert pos["unrealised"] == "355.87"  # 64,675 − 29,088
    assert pos["symbolname"] == "NIFTY" and pos["optiontype"] == "CE"
    assert pos["strikeprice"] == "26000.00" and pos["expirydate"] == "01DEC2026"


def test_rms_after_premium_paid_and_an_open_order() -> None:
    ex, _ = make()
    ex.place(body(), client_code="C1", at=T0)  # paid 65 × 120.05 = ₹7,803.25
    ex.place(body(price="119.00"), client_code="C1", at=T0)  # rests, blocks 65 × 119 = ₹7,735
    rms = ex.rms(T0)
    # 10,00,000 − 7,803.25 − 7,735.00
    assert rms["availablecash"] == rms["net"] == "984461.75"
    assert rms["utilisedoptionpremium"] == "7803.25"
    assert rms["utiliseddebits"] == "15538.25"  # premium + blocked
    assert rms["m2mrealized"] == "0.00"
    assert rms["m2munrealized"] == "-3.25"  # 65 × (120.00 − 120.05)


def test_rms_realised_after_round_trip() -> None:
    ex, market = make()
    ex.place(body(), client_code="C1", at=T0)  # 65 @ 120.05
    market.quotes[OPT] = replace(BASE_QUOTE, bids=((12_500, 650, 1),))
    ex.place(body(transactiontype="SELL", price="125.00"), client_code="C1", at=T0)
    rms = ex.rms(T0)
    # realised 65 × 4.95 = ₹321.75; cash 10,00,000 + 321.75
    assert (rms["m2mrealized"], rms["availablecash"]) == ("321.75", "1000321.75")
    assert rms["utilisedoptionpremium"] == "0.00"


# --- ids, tags, events, determinism ------------------------------------------------------------


def test_order_ids_are_date_plus_sequence_and_uuid5() -> None:
    ex, _ = make(order_id_seq_start=970)
    a = ex.place(body(), client_code="C1", at=T0)
    b = ex.place(body(quantity="7"), client_code="C1", at=T0)  # rejected still takes a number
    assert (a.orderid, b.orderid) == ("261120000000970", "261120000000971")
    assert a.uniqueorderid == str(uuid.uuid5(ORDER_UUID_NAMESPACE, a.orderid))
    assert a.data() == {
        "script": "NIFTY01DEC2626000CE",
        "orderid": a.orderid,
        "uniqueorderid": a.uniqueorderid,
    }
    assert ex.order_details(a.uniqueorderid) == order_of(ex, a.orderid)
    assert ex.order_details("nope") is None
    assert len(order_of(ex, a.orderid)["exchangeorderid"]) == 16


def test_same_script_gives_identical_books() -> None:
    def run() -> tuple[object, ...]:
        ex, market = make()
        ex.place(body(price="120.10", quantity="390", ordertag="i-1"), client_code="C1", at=T0)
        market.quotes[OPT] = replace(BASE_QUOTE, asks=((12_000, 650, 2),))
        ex.on_market(T0 + timedelta(seconds=1))
        ex.place(body(quantity="7"), client_code="C1", at=T0)
        return ex.order_book(), ex.trade_book(), ex.positions(T0), ex.rms(T0)

    assert run() == run()


def test_orders_by_tag_finds_every_attempt() -> None:
    ex, _ = make()
    ex.place(body(ordertag="intent-42"), client_code="C1", at=T0)
    ex.place(body(ordertag="other"), client_code="C1", at=T0)
    ex.place(body(ordertag="intent-42", quantity="7"), client_code="C1", at=T0)
    found = ex.orders_by_tag("intent-42")
    assert [r["status"] for r in found] == ["complete", "rejected"]
    assert ex.orders_by_tag("missing") == []


def test_order_record_fields_and_event_message_shape() -> None:
    ex, _ = make()
    res = ex.place(body(ordertag="t1"), client_code="C77", at=T0)
    rec = order_of(ex, res.orderid)
    assert rec["exchtime"] == rec["updatetime"] == "20-Nov-2026 10:15:00"
    assert (rec["quantity"], rec["lotsize"], rec["price"], rec["triggerprice"]) == (
        "65",
        "65",
        "125.00",
        "0.00",
    )
    assert rec["ordertag"] == "t1" and rec["instrumenttype"] == "OPTIDX"
    assert all(isinstance(v, str) for v in rec.values())
    msg = res.events[-1].message()
    assert msg["user-id"] == "C77" and msg["order-status"] == "AB05"
    assert msg["status-code"] == "200" and msg["orderData"] == rec


def test_empty_books() -> None:
    ex, _ = make()
    assert ex.order_book() == ex.trade_book() == ex.positions(T0) == []
    assert ex.rms(T0)["availablecash"] == "1000000.00"
