"""Reconciliation of the journal against the broker's books: golden cases and properties."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.charges import ChargeSchedule
from market.reconcile import (
    BreakKind,
    CheckStatus,
    JournalEvent,
    Ledger,
    LedgerFill,
    LedgerOrder,
    LedgerPosition,
    day_pnl,
    journal_from_events,
    realised_pnl_paise,
    reconcile,
    rupees_to_paise,
)

CE = "NIFTY26NOV2524000CE"


def order(order_id: str, tag: str, side: str, quantity: int = 75, status: str = "complete"):
    return LedgerOrder(order_id, tag, "NFO", CE, side, quantity, status)


def fill(order_id: str, fill_id: str, side: str, quantity: int, price_paise: int) -> LedgerFill:
    return LedgerFill(order_id, fill_id, "NFO", CE, side, quantity, price_paise)


# A round trip: buy 75 @ ₹100.00, sell 75 @ ₹120.00 → realised 75 × 2,000 = 150,000 paise.
ORDERS = (order("1", "i-buy", "BUY"), order("2", "i-sell", "SELL"))
FILLS = (fill("1", "f1", "BUY", 75, 10_000), fill("2", "f2", "SELL", 75, 12_000))
JOURNAL = Ledger(ORDERS, FILLS)
BROKER = Ledger(ORDERS, FILLS, (LedgerPosition("NFO", CE, 0),))


def kinds(result) -> list[BreakKind | None]:
    return [c.kind for c in result.breaks]


def by_name(result, name: str):
    return next(c for c in result.checks if c.name == name)


# --- golden cases ------------------------------------------------------------------


def test_matching_journal_and_books_have_no_break() -> None:
    result = reconcile(JOURNAL, BROKER)
    assert result.clean
    assert result.journal_pnl_paise == result.broker_pnl_paise == 150_000
    assert by_name(result, "fills:1").status is CheckStatus.OK
    assert by_name(result, f"position:NFO:{CE}").status is CheckStatus.OK
    assert by_name(result, "pnl:realised").status is CheckStatus.OK


def test_fill_missing_from_the_journal_is_a_break() -> None:
    # The sell filled 50 + 25 at the broker; the journal heard of the 50 only, so it also
    # believes 25 units are still held (net +25 against the broker's 0).
    broker = Ledger(
        ORDERS,
        (FILLS[0], fill("2", "f2", "SELL", 50, 12_000), fill("2", "f3", "SELL", 25, 12_000)),
        (LedgerPosition("NFO", CE, 0),),
    )
    journal = Ledger(ORDERS, (FILLS[0], fill("2", "f2", "SELL", 50, 12_000)))
    result = reconcile(journal, broker)
    missing = by_name(result, "fills:2")
    assert missing.kind is BreakKind.MISSING_FILL
    assert "25 filled units missing from the journal" in missing.detail
    assert by_name(result, f"position:NFO:{CE}").kind is BreakKind.QUANTITY_MISMATCH
    # journal realises 50 × 2,000 = 100,000; broker 75 × 2,000 = 150,000
    assert (result.journal_pnl_paise, result.broker_pnl_paise) == (100_000, 150_000)


def test_fill_missing_at_the_broker_is_a_break() -> None:
    broker = Ledger(ORDERS, FILLS[:1], (LedgerPosition("NFO", CE, 75),))
    result = reconcile(JOURNAL, broker)
    assert "missing from the broker's trade book" in by_name(result, "fills:2").detail
    assert by_name(result, "fills:2").kind is BreakKind.MISSING_FILL


def test_unknown_broker_order_is_a_break() -> None:
    stray = LedgerOrder("3", "", "NFO", CE, "BUY", 75, "open")
    result = reconcile(JOURNAL, Ledger((*ORDERS, stray), FILLS, BROKER.positions))
    assert kinds(result) == [BreakKind.UNKNOWN_ORDER]
    assert by_name(result, "order:3:known").detail.startswith("the broker holds order 3")


def test_quantity_difference_is_a_break() -> None:
    bigger = (order("1", "i-buy", "BUY", quantity=150), ORDERS[1])
    result = reconcile(JOURNAL, Ledger(bigger, FILLS, BROKER.positions))
    check = by_name(result, "order:1:quantity")
    assert check.kind is BreakKind.QUANTITY_MISMATCH
    assert (check.expected, check.actual) == ("75", "150")
    assert kinds(result) == [BreakKind.QUANTITY_MISMATCH]


def test_pnl_beyond_threshold_is_a_break_within_is_not() -> None:
    # Broker sold at ₹120.50, the journal thought ₹120.00: 75 × 50 = 3,750 paise apart.
    broker = Ledger(ORDERS, (FILLS[0], fill("2", "f2", "SELL", 75, 12_050)), BROKER.positions)
    strict = reconcile(JOURNAL, broker, pnl_tolerance_paise=1_000)
    assert kinds(strict) == [BreakKind.PNL_MISMATCH]
    assert strict.broker_pnl_paise - strict.journal_pnl_paise == 3_750
    assert "differs by ₹37.50" in by_name(strict, "pnl:realised").detail
    lenient = reconcile(JOURNAL, broker, pnl_tolerance_paise=3_750)
    assert lenient.clean
    assert by_name(lenient, "fills:2").status is CheckStatus.NOTE  # price differs, noted


def test_order_the_broker_never_received_is_a_break() -> None:
    result = reconcile(JOURNAL, Ledger(ORDERS[:1], FILLS[:1], (LedgerPosition("NFO", CE, 75),)))
    check = by_name(result, "order:2:at_broker")
    assert check.kind is BreakKind.MISSING_ORDER
    # The missing order's fills are not reported a second time.
    assert "fills:2" not in [c.name for c in result.checks]


def test_unsent_intent_is_only_a_note() -> None:
    unsent = LedgerOrder("", "i-late", "NFO", CE, "BUY", 75, "unsent")
    result = reconcile(Ledger((*ORDERS, unsent), FILLS), BROKER)
    assert result.clean
    assert by_name(result, "order:i-late:at_broker").status is CheckStatus.NOTE


def test_order_found_by_tag_when_the_ack_was_lost() -> None:
    lost = LedgerOrder("", "i-buy", "NFO", CE, "BUY", 75, "")
    result = reconcile(Ledger((lost, ORDERS[1]), FILLS), BROKER)
    assert result.clean
    assert by_name(result, "order:1:found_by_tag").status is CheckStatus.NOTE


def test_two_broker_orders_for_one_intent_is_a_break() -> None:
    copy = order("9", "i-buy", "BUY")
    result = reconcile(JOURNAL, Ledger((*ORDERS, copy), FILLS, BROKER.positions))
    assert BreakKind.DUPLICATE_ORDER in kinds(result)
    assert BreakKind.UNKNOWN_ORDER in kinds(result)  # the copy itself


def test_negative_tolerance_refused() -> None:
    with pytest.raises(ValueError, match="pnl_tolerance_paise"):
        reconcile(JOURNAL, BROKER, pnl_tolerance_paise=-1)


# --- P&L and charges ----------------------------------------------------------------


def test_realised_pnl_partial_close_uses_average_prices() -> None:
    # buys 75 @ 100.00 and 75 @ 101.00 → average 100.50; sell 100 @ 102.00
    # realised 100 × (10,200 − 10,050) = 15,000 paise; 50 units stay open
    fills = [
        fill("1", "a", "BUY", 75, 10_000),
        fill("2", "b", "BUY", 75, 10_100),
        fill("3", "c", "SELL", 100, 10_200),
    ]
    assert realised_pnl_paise(fills) == 15_000


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        # 200 − (100 + 101) / 2 = 99.5 → 100 (half away from zero)
        ([("BUY", 1, 100), ("BUY", 1, 101), ("SELL", 1, 200)], 100),
        # 100 − 100.5 = −0.5 → −1
        ([("BUY", 1, 100), ("BUY", 1, 101), ("SELL", 1, 100)], -1),
        # 200 − 302 / 3 = 99.33… → 99
        ([("BUY", 1, 100), ("BUY", 2, 101), ("SELL", 1, 200)], 99),
    ],
)
def test_realised_pnl_rounds_once_half_away_from_zero(fills, expected) -> None:
    ledger = [fill(str(i), str(i), side, qty, px) for i, (side, qty, px) in enumerate(fills)]
    assert realised_pnl_paise(ledger) == expected


def test_day_pnl_charges_each_order_at_its_dates_rates() -> None:
    # 2025-06-10, buy order 75 @ 100 (₹7,500) and sell order 75 @ 120 (₹9,000), ₹20/order.
    # Buy:  brokerage 20; exchange 0.03503% × 7,500 = 2.62725 → 2.63; SEBI 0.0075 → 0.01;
    #       stamp 0.003% × 7,500 = 0.225 → 0.23; GST 18% × 22.64 = 4.0752 → 4.08 ⇒ 26.95
    # Sell: brokerage 20; STT 0.1% × 9,000 = 9.00; exchange 3.1527 → 3.15; SEBI 0.009 → 0.01;
    #       GST 18% × 23.16 = 4.1688 → 4.17 ⇒ 36.33
    # gross 1,500.00 − charges 63.28 = net 1,436.72
    result = day_pnl(FILLS, date(2025, 6, 10), ChargeSchedule.load_default(), Decimal("20"))
    assert result.charges_by_order["1"].total == Decimal("26.95")
    assert result.charges_by_order["2"].total == Decimal("36.33")
    assert (result.gross_paise, result.charges_paise, result.net_paise) == (
        150_000,
        6_328,
        143_672,
    )


def test_rupees_to_paise_refuses_fractions_of_a_paisa() -> None:
    assert rupees_to_paise(Decimal("26.95")) == 2_695
    with pytest.raises(ValueError, match="whole number of paise"):
        rupees_to_paise(Decimal("0.005"))


def test_fill_refuses_float_money() -> None:
    with pytest.raises(ValueError, match="int paise"):
        LedgerFill("1", "f", "NFO", CE, "BUY", 75, 100.5)  # type: ignore[arg-type]


# --- journal records ----------------------------------------------------------------

T0 = datetime(2025, 6, 10, 4, 0, tzinfo=UTC)


def event(kind: str, key: str, minutes: int, **payload) -> JournalEvent:
    payload.setdefault("mode", "paper")
    return JournalEvent(kind, key, T0 + timedelta(minutes=minutes), json.dumps(payload))


def test_journal_from_events_follows_the_contract() -> None:
    events = [
        event(
            "intent",
            "i-buy",
            0,
            intent_id="i-buy",
            exchange="NFO",
            symbol=CE,
            side="BUY",
            quantity=75,
            price_paise=10_000,
        ),
        event("order", "i-buy:1", 1, intent_id="i-buy", status="open", order_id="1"),
        event("order", "i-buy:2", 2, intent_id="i-buy", status="complete", order_id="1"),
        event(
            "fill",
            "1:f1",
            2,
            order_id="1",
            fill_id="f1",
            exchange="NFO",
            symbol=CE,
            side="BUY",
            quantity=75,
            price_paise=10_000,
        ),
        event(
            "fill",
            "1:f1",
            2,
            order_id="1",
            fill_id="f1",
            exchange="NFO",
            symbol=CE,
            side="BUY",
            quantity=75,
            price_paise=10_000,
        ),  # journaled twice
        event(
            "intent",
            "i-live",
            3,
            mode="live",
            intent_id="i-live",
            exchange="NFO",
            symbol=CE,
            side="SELL",
            quantity=75,
        ),
        event("bar", "b1", 3, anything="ignored"),
    ]
    ledger, problems = journal_from_events(events, mode="paper")
    assert problems == []
    assert ledger.orders == (LedgerOrder("1", "i-buy", "NFO", CE, "BUY", 75, "complete"),)
    assert ledger.fills == (fill("1", "f1", "BUY", 75, 10_000),)


def test_journal_intent_without_update_is_unsent() -> None:
    events = [
        event("intent", "i", 0, intent_id="i", exchange="NFO", symbol=CE, side="buy", quantity=75)
    ]
    ledger, _ = journal_from_events(events)
    assert ledger.orders[0].status == "" and ledger.orders[0].order_id == ""
    assert reconcile(ledger, Ledger()).clean


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (JournalEvent("fill", "k", T0, "{not json"), "not JSON"),
        (
            event(
                "fill",
                "k",
                0,
                order_id="1",
                fill_id="f",
                exchange="NFO",
                symbol=CE,
                side="BUY",
                quantity=75,
                price_paise=100.5,
            ),
            "price_paise must be an integer",
        ),
        (event("order", "k", 0, intent_id="ghost", status="open"), "does not hold"),
    ],
)
def test_unreadable_journal_records_are_breaks(bad: JournalEvent, reason: str) -> None:
    _, problems = journal_from_events([bad])
    assert [p.kind for p in problems] == [BreakKind.UNREADABLE_JOURNAL]
    assert reason in problems[0].detail


# --- properties ---------------------------------------------------------------------

fills_strategy = st.lists(
    st.builds(
        lambda i, side, qty, px, sym: LedgerFill(str(i), f"f{i}", "NFO", sym, side, qty, px),
        st.integers(0, 5),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 500),
        st.integers(0, 1_000_000),
        st.sampled_from([CE, "BANKNIFTY26NOV2550000PE"]),
    ),
    max_size=12,
    unique_by=lambda f: f.fill_id,
)


def ledger_from(fills: list[LedgerFill]) -> Ledger:
    first = {}
    for f in fills:
        first.setdefault(f.order_id, f)
    orders = tuple(
        LedgerOrder(oid, f"i{oid}", f.exchange, f.symbol, f.side, 1, "complete")
        for oid, f in first.items()
    )
    return Ledger(orders, tuple(fills))


@settings(max_examples=150, deadline=None)
@given(fills_strategy)
def test_identical_books_never_break(fills: list[LedgerFill]) -> None:
    ledger = ledger_from(fills)
    assert reconcile(ledger, ledger).clean


@settings(max_examples=150, deadline=None)
@given(fills_strategy, st.data())
def test_dropping_a_broker_fill_is_always_caught(fills: list[LedgerFill], data) -> None:
    if not fills:
        return
    gone = data.draw(st.sampled_from(fills))
    journal = ledger_from(fills)
    broker = Ledger(journal.orders, tuple(f for f in fills if f is not gone))
    result = reconcile(journal, broker)
    assert BreakKind.MISSING_FILL in kinds(result)


@settings(max_examples=150, deadline=None)
@given(fills_strategy, st.randoms())
def test_realised_pnl_ignores_fill_order_and_flat_books_realise_cash(fills, rnd) -> None:
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    assert realised_pnl_paise(shuffled) == realised_pnl_paise(fills)
    flat = ledger_from(fills).net_positions()
    if all(net == 0 for net in flat.values()):
        cash = sum(f.value_paise if f.side == "SELL" else -f.value_paise for f in fills)
        assert realised_pnl_paise(fills) == cash
