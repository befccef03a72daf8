"""Charges on NSE options trades: golden cases worked by hand, schedule validation, properties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.charges import (
    Basis,
    ChargeBreakdown,
    ChargeSchedule,
    ChargeScheduleError,
    DateBeforeScheduleError,
    Fill,
    Side,
    compute_charges,
    net_pnl,
)

D = Decimal
SCHEDULE = ChargeSchedule.load_default()
BROKERAGE = D("20")

# The CLI example: buy 75 @ ₹100 (₹7,500) and sell 75 @ ₹120 (₹9,000).
ROUND_TRIP = (Fill(Side.BUY, D("100"), 75), Fill(Side.SELL, D("120"), 75))


def breakdown(*figures: str) -> ChargeBreakdown:
    """brokerage, stt, exchange_txn, sebi, stamp_duty, gst, total as rupee strings."""
    return ChargeBreakdown(*(D(f) for f in figures))


# --- golden cases ------------------------------------------------------------------


def test_round_trip_2025_06_10_matches_hand_figures() -> None:
    # brokerage 2 orders × 20                      = 40.00
    # STT 0.1% × 9,000                             = 9.00
    # exchange 0.03503% × 16,500 = 5.779950        → 5.78
    # SEBI 16,500 × 10 / 1e7 = 0.0165              → 0.02
    # stamp 0.003% × 7,500 = 0.225                 → 0.23 (half up)
    # GST 18% × (40 + 5.78 + 0.02) = 18% × 45.80 = 8.244 → 8.24
    # total 40 + 9 + 5.78 + 0.02 + 0.23 + 8.24     = 63.27
    got = compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert got == breakdown("40.00", "9.00", "5.78", "0.02", "0.23", "8.24", "63.27")


def test_last_day_of_old_rates_2024_09_30() -> None:
    # STT 0.0625% × 9,000 = 5.625                  → 5.63 (half up; banker's would give 5.62)
    # exchange 0.0495% × 16,500 = 8.1675           → 8.17
    # SEBI 0.0165 → 0.02; stamp 0.225 → 0.23
    # GST 18% × (40 + 8.17 + 0.02) = 18% × 48.19 = 8.6742 → 8.67
    # total 40 + 5.63 + 8.17 + 0.02 + 0.23 + 8.67  = 62.72
    got = compute_charges(ROUND_TRIP, date(2024, 9, 30), SCHEDULE, BROKERAGE)
    assert got == breakdown("40.00", "5.63", "8.17", "0.02", "0.23", "8.67", "62.72")


def test_first_day_of_new_rates_2024_10_01() -> None:
    # STT and exchange switch together: same figures as 2025-06-10 (total 63.27).
    got = compute_charges(ROUND_TRIP, date(2024, 10, 1), SCHEDULE, BROKERAGE)
    assert got == breakdown("40.00", "9.00", "5.78", "0.02", "0.23", "8.24", "63.27")


def test_stt_at_published_rate_from_2026_04_01() -> None:
    # STT 0.15% × 9,000 = 13.50; everything else as on 2025-06-10
    # total 40 + 13.50 + 5.78 + 0.02 + 0.23 + 8.24 = 67.77
    got = compute_charges(ROUND_TRIP, date(2026, 4, 1), SCHEDULE, BROKERAGE)
    assert got == breakdown("40.00", "13.50", "5.78", "0.02", "0.23", "8.24", "67.77")
    day_before = compute_charges(ROUND_TRIP, date(2026, 3, 31), SCHEDULE, BROKERAGE)
    assert day_before.stt == D("9.00")


def test_buy_only_pays_no_stt() -> None:
    # buy 75 @ 100 = 7,500; one order → brokerage 20.00
    # exchange 0.03503% × 7,500 = 2.62725          → 2.63
    # SEBI 7,500 × 1e-6 = 0.0075                   → 0.01
    # stamp 0.003% × 7,500 = 0.225                 → 0.23
    # GST 18% × (20 + 2.63 + 0.01) = 18% × 22.64 = 4.0752 → 4.08
    # total 20 + 0 + 2.63 + 0.01 + 0.23 + 4.08     = 26.95
    got = compute_charges(ROUND_TRIP[:1], date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert got == breakdown("20.00", "0.00", "2.63", "0.01", "0.23", "4.08", "26.95")


def test_sell_only_pays_no_stamp_duty() -> None:
    # sell 75 @ 120 = 9,000; brokerage 20.00; STT 9.00
    # exchange 0.03503% × 9,000 = 3.1527           → 3.15
    # SEBI 0.009 → 0.01; stamp 0
    # GST 18% × (20 + 3.15 + 0.01) = 18% × 23.16 = 4.1688 → 4.17
    # total 20 + 9 + 3.15 + 0.01 + 0 + 4.17        = 36.33
    got = compute_charges(ROUND_TRIP[1:], date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert got == breakdown("20.00", "9.00", "3.15", "0.01", "0.00", "4.17", "36.33")


def test_custom_brokerage() -> None:
    # ₹15.50 per order × 2 = 31.00
    # GST 18% × (31 + 5.78 + 0.02) = 18% × 36.80 = 6.624 → 6.62
    # total 31 + 9 + 5.78 + 0.02 + 0.23 + 6.62     = 52.65
    got = compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, D("15.50"))
    assert got == breakdown("31.00", "9.00", "5.78", "0.02", "0.23", "6.62", "52.65")


def test_zero_brokerage_still_pays_gst_on_exchange_and_sebi() -> None:
    # GST 18% × (0 + 5.78 + 0.02) = 1.044 → 1.04
    # total 0 + 9 + 5.78 + 0.02 + 0.23 + 1.04      = 16.07
    got = compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, D("0"))
    assert got == breakdown("0.00", "9.00", "5.78", "0.02", "0.23", "1.04", "16.07")


def test_gst_is_taken_on_rounded_components() -> None:
    # sell 1 @ 71.40: exchange 0.03503% × 71.40 = 0.02501142 → 0.03; SEBI 0.0000714 → 0.00
    # GST on rounded: 18% × (20 + 0.03 + 0.00) = 3.6054 → 3.61
    # (on unrounded it would be 18% × 20.0250828... = 3.6045... → 3.60)
    # STT 0.1% × 71.40 = 0.0714 → 0.07; total 20 + 0.07 + 0.03 + 0 + 0 + 3.61 = 23.71
    fills = [Fill(Side.SELL, D("71.40"), 1)]
    got = compute_charges(fills, date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert got == breakdown("20.00", "0.07", "0.03", "0.00", "0.00", "3.61", "23.71")


def test_orders_override_counts_one_order_filled_in_parts() -> None:
    # One buy order of 75 filled as 50 + 25 and one sell order: 2 orders, not 3.
    # Premium totals are unchanged, so every other figure matches the round trip.
    fills = [
        Fill(Side.BUY, D("100"), 50),
        Fill(Side.BUY, D("100"), 25),
        Fill(Side.SELL, D("120"), 75),
    ]
    as_parts = compute_charges(fills, date(2025, 6, 10), SCHEDULE, BROKERAGE)
    as_orders = compute_charges(fills, date(2025, 6, 10), SCHEDULE, BROKERAGE, orders=2)
    assert as_parts.brokerage == D("60.00")
    assert as_orders == breakdown("40.00", "9.00", "5.78", "0.02", "0.23", "8.24", "63.27")


def test_net_pnl_of_round_trip() -> None:
    # gross 9,000 − 7,500 = 1,500; net 1,500 − 63.27 = 1,436.73
    pnl = net_pnl(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert pnl.gross == D("1500")
    assert pnl.charges.total == D("63.27")
    assert pnl.net == D("1436.73")


def test_net_pnl_of_losing_trade_is_negative() -> None:
    # buy 75 @ 120, sell 75 @ 100: gross −1,500; STT 0.1% × 7,500 = 7.50,
    # exchange 5.78, SEBI 0.02, stamp 0.003% × 9,000 = 0.27, GST 8.24, brokerage 40
    # total 40 + 7.50 + 5.78 + 0.02 + 0.27 + 8.24 = 61.81; net −1,500 − 61.81 = −1,561.81
    fills = [Fill(Side.BUY, D("120"), 75), Fill(Side.SELL, D("100"), 75)]
    pnl = net_pnl(fills, date(2025, 6, 10), SCHEDULE, BROKERAGE)
    assert pnl.gross == D("-1500")
    assert pnl.charges.total == D("61.81")
    assert pnl.net == D("-1561.81")


def test_as_strings_has_exact_two_decimal_rupees() -> None:
    got = compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, BROKERAGE).as_strings()
    assert got == {
        "brokerage": "40.00",
        "stt": "9.00",
        "exchange_txn": "5.78",
        "sebi": "0.02",
        "stamp_duty": "0.23",
        "gst": "8.24",
        "total": "63.27",
    }


# --- the shipped schedule -----------------------------------------------------------


def test_rates_on_picks_entry_in_force() -> None:
    assert SCHEDULE.rates_on(date(2024, 9, 30)).stt.percent == D("0.0625")
    assert SCHEDULE.rates_on(date(2024, 10, 1)).stt.percent == D("0.1")
    assert SCHEDULE.rates_on(date(2026, 3, 31)).stt.percent == D("0.1")
    assert SCHEDULE.rates_on(date(2026, 4, 1)).stt.percent == D("0.15")
    assert SCHEDULE.rates_on(date(2024, 9, 30)).exchange_txn.percent == D("0.0495")
    assert SCHEDULE.rates_on(date(2024, 10, 1)).exchange_txn.percent == D("0.03503")
    rates = SCHEDULE.rates_on(date(2025, 6, 10))
    assert rates.sebi.rate == D("0.000001")  # ₹10 per crore
    assert rates.stamp_duty.rate == D("0.00003")
    assert rates.stamp_duty.basis is Basis.BUY_PREMIUM
    assert rates.gst.rate == D("0.18")
    assert rates.gst.basis is Basis.TAXABLE


def test_every_entry_names_a_source_and_stt_2026_says_as_published() -> None:
    for name in ("stt", "exchange_txn", "sebi", "stamp_duty", "gst"):
        assert all(entry.source.strip() for entry in SCHEDULE.entries(name))
    assert "as published" in SCHEDULE.entries("stt")[-1].source
    assert SCHEDULE.default_brokerage_per_order == D("20")


def test_date_before_schedule_names_the_date() -> None:
    with pytest.raises(DateBeforeScheduleError, match="2020-01-15") as info:
        SCHEDULE.rates_on(date(2020, 1, 15))
    assert info.value.starts_on == SCHEDULE.starts_on
    with pytest.raises(DateBeforeScheduleError, match="2020-01-15"):
        compute_charges(ROUND_TRIP, date(2020, 1, 15), SCHEDULE, BROKERAGE)


def test_first_day_of_schedule_is_covered() -> None:
    assert SCHEDULE.rates_on(SCHEDULE.starts_on).on == SCHEDULE.starts_on


def test_fill_rejects_float_negative_and_zero_quantity() -> None:
    with pytest.raises(ValueError, match="Decimal"):
        Fill(Side.BUY, 100.0, 75)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        Fill(Side.BUY, D("-1"), 75)
    with pytest.raises(ValueError, match="positive"):
        Fill(Side.BUY, D("1"), 0)


def test_compute_rejects_negative_brokerage_and_orders() -> None:
    with pytest.raises(ValueError, match="brokerage_per_order"):
        compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, D("-1"))
    with pytest.raises(ValueError, match="orders"):
        compute_charges(ROUND_TRIP, date(2025, 6, 10), SCHEDULE, BROKERAGE, orders=-1)


# --- schedule validation -------------------------------------------------------------

_VALID = """
[brokerage]
per_order = "20"
source = "test"

[[stt]]
effective_from = 2024-01-01
rate = "0.0625%"
basis = "sell_premium"
source = "test"

[[stt]]
effective_from = 2024-10-01
rate = "0.1%"
basis = "sell_premium"
source = "test"

[[exchange_txn]]
effective_from = 2024-01-01
rate = "0.0495%"
basis = "premium_turnover"
source = "test"

[[sebi]]
effective_from = 2024-01-01
rate = "0.0001%"
basis = "premium_turnover"
source = "test"

[[stamp_duty]]
effective_from = 2024-01-01
rate = "0.003%"
basis = "buy_premium"
source = "test"

[[gst]]
effective_from = 2024-01-01
rate = "18%"
basis = "taxable"
source = "test"
"""


def test_valid_text_loads() -> None:
    schedule = ChargeSchedule.from_toml(_VALID)
    assert schedule.starts_on == date(2024, 1, 1)
    assert schedule.rates_on(date(2024, 10, 1)).stt.percent == D("0.1")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'rate = "0.1%"',
            'rate = "0.1x%"',
            r"stt\[1\] \(effective_from 2024-10-01\).*not a number",
        ),
        ('rate = "0.1%"', 'rate = "-0.1%"', r"stt\[1\].*must not be negative"),
        ('rate = "0.1%"', "rate = 0.1", r"stt\[1\].*percentage string"),
        ('rate = "0.1%"', 'rate = "0.1"', r"stt\[1\].*percentage string"),
        ("effective_from = 2024-10-01", "effective_from = 2024-01-01", r"stt\[1\].*duplicate"),
        ("effective_from = 2024-10-01", "effective_from = 2023-06-01", r"stt\[1\].*out of order"),
        ("effective_from = 2024-10-01", 'effective_from = "2024-10-01"', r"stt\[1\].*TOML date"),
        ('basis = "taxable"', 'basis = "sell_premium"', r"gst\[0\].*not allowed"),
        ('basis = "buy_premium"', 'basis = "buy_value"', r"stamp_duty\[0\].*unknown basis"),
        ('per_order = "20"', 'per_order = "-5"', r"brokerage.per_order.*negative"),
        ("[[gst]]", "[[gst_typo]]", r"unknown component 'gst_typo'"),
    ],
)
def test_invalid_schedule_names_the_entry(old: str, new: str, message: str) -> None:
    # Replace the last occurrence so edits aimed at stt[1] hit that entry.
    head, _, tail = _VALID.rpartition(old)
    assert head, f"fixture lacks {old!r}"
    with pytest.raises(ChargeScheduleError, match=message):
        ChargeSchedule.from_toml(head + new + tail)


def test_missing_component_is_reported() -> None:
    text = _VALID.split("[[gst]]")[0]
    with pytest.raises(ChargeScheduleError, match="no entries for: gst"):
        ChargeSchedule.from_toml(text)


def test_unparsable_toml_is_reported_with_origin() -> None:
    with pytest.raises(ChargeScheduleError, match=r"my\.toml: not valid TOML"):
        ChargeSchedule.from_toml("[[stt]\n", origin="my.toml")


# --- properties ----------------------------------------------------------------------

_prices = st.decimals(min_value=0, max_value=50_000, places=2, allow_nan=False)
_fills = st.lists(
    st.builds(
        Fill,
        side=st.sampled_from(Side),
        price=_prices,
        quantity=st.integers(min_value=1, max_value=20_000),
    ),
    max_size=6,
)
_days = st.dates(min_value=SCHEDULE.starts_on, max_value=date(2030, 12, 31))
_brokerage = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(fills=_fills, day=_days, per_order=_brokerage)
def test_components_non_negative_paise_and_total_is_their_sum(
    fills: list[Fill], day: date, per_order: Decimal
) -> None:
    got = compute_charges(fills, day, SCHEDULE, per_order)
    parts = [got.brokerage, got.stt, got.exchange_txn, got.sebi, got.stamp_duty, got.gst]
    assert all(part >= 0 for part in parts)
    assert all(part == part.quantize(D("0.01")) for part in parts)
    assert got.total == sum(parts)
    if not any(f.side is Side.SELL for f in fills):
        assert got.stt == 0
    if not any(f.side is Side.BUY for f in fills):
        assert got.stamp_duty == 0


@settings(max_examples=200, deadline=None)
@given(fills=_fills, day=_days, per_order=_brokerage, factor=st.integers(min_value=1, max_value=50))
def test_charges_never_fall_when_quantity_grows(
    fills: list[Fill], day: date, per_order: Decimal, factor: int
) -> None:
    small = compute_charges(fills, day, SCHEDULE, per_order)
    bigger = [Fill(f.side, f.price, f.quantity * factor) for f in fills]
    large = compute_charges(bigger, day, SCHEDULE, per_order)
    assert large.brokerage == small.brokerage  # brokerage is per order, not per unit
    for field in ("stt", "exchange_txn", "sebi", "stamp_duty", "gst", "total"):
        assert getattr(large, field) >= getattr(small, field), field


@settings(max_examples=100, deadline=None)
@given(fills=_fills, day=_days, per_order=_brokerage)
def test_net_is_gross_minus_total(fills: list[Fill], day: date, per_order: Decimal) -> None:
    pnl = net_pnl(fills, day, SCHEDULE, per_order)
    sells = sum((f.price * f.quantity for f in fills if f.side is Side.SELL), D(0))
    buys = sum((f.price * f.quantity for f in fills if f.side is Side.BUY), D(0))
    assert pnl.gross == sells - buys
    assert pnl.net == pnl.gross - pnl.charges.total
