"""``optbot charges``: what an options trade costs in brokerage, taxes and fees."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from market.charges import ChargeBreakdown, ChargeSchedule, Fill, NetPnl

# IST has had no daylight saving since 1945, so a fixed offset needs no tz database.
_IST = timezone(timedelta(hours=5, minutes=30))

_EXAMPLE = "optbot charges --buy 100 --sell 120 --quantity 75 --date 2025-06-10"


def _fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _parse_rupees(text: str, option: str) -> Decimal:
    """A non-negative rupee amount with at most two decimals (paise)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        _fail(f"{option} {text!r} is not a number; give rupees, e.g. 100 or 99.05")
    if not amount.is_finite():
        _fail(f"{option} {text!r} is not a finite number; give rupees, e.g. 100 or 99.05")
    if amount < 0:
        _fail(f"{option} {text!r} must not be negative")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        _fail(f"{option} {text!r} has more than 2 decimals; amounts are in rupees to the paisa")
    return amount


def _parse_quantity(text: str) -> int:
    try:
        quantity = int(text.strip())
    except ValueError:
        _fail(f"--quantity {text!r} is not a whole number of units, e.g. 75")
    if quantity <= 0:
        _fail(f"--quantity {text!r} must be a positive number of units (lots × lot size)")
    return quantity


def _parse_date(text: str | None, schedule: ChargeSchedule) -> date:
    if text is None:
        return datetime.now(UTC).astimezone(_IST).date()
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        _fail(f"--date {text!r} is not a date; use YYYY-MM-DD, e.g. 2025-06-10")
    if day < schedule.starts_on:
        _fail(
            f"--date {day.isoformat()} is before the charge schedule starts "
            f"({schedule.starts_on.isoformat()}); use that date or later"
        )
    return day


def _inr(amount: Decimal) -> str:
    """Rupees to the paisa with thousands separators, e.g. 7,500.00."""
    return f"{amount.quantize(Decimal('0.01')):,.2f}"


def _print_table(
    fills: list[Fill],
    trade_date: date,
    schedule: ChargeSchedule,
    brokerage_per_order: Decimal,
    breakdown: ChargeBreakdown,
    pnl: NetPnl | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    rates = schedule.rates_on(trade_date)
    legs = ", ".join(f"{f.side.value.lower()} {f.quantity} @ ₹{_inr(f.price)}" for f in fills)
    table = Table(title=f"Charges on {trade_date.isoformat()}: {legs}")
    table.add_column("Charge")
    table.add_column("Rate")
    table.add_column("Amount (₹)", justify="right")
    orders = len(fills)
    table.add_row(
        "Brokerage",
        f"₹{_inr(brokerage_per_order)} × {orders} order{'s' if orders != 1 else ''}",
        _inr(breakdown.brokerage),
    )
    table.add_row("STT", rates.stt.describe(), _inr(breakdown.stt))
    table.add_row("Exchange txn (NSE)", rates.exchange_txn.describe(), _inr(breakdown.exchange_txn))
    table.add_row("SEBI fee", rates.sebi.describe(), _inr(breakdown.sebi))
    table.add_row("Stamp duty", rates.stamp_duty.describe(), _inr(breakdown.stamp_duty))
    table.add_row(
        "GST",
        f"{rates.gst.percent}% of brokerage + exchange txn + SEBI fee",
        _inr(breakdown.gst),
    )
    table.add_section()
    table.add_row("Total charges", "", _inr(breakdown.total), style="bold")
    if pnl is not None:
        table.add_section()
        table.add_row("Gross P&L", "sell value − buy value", _inr(pnl.gross))
        table.add_row("Net P&L", "gross − total charges", _inr(pnl.net), style="bold")
    Console().print(table)


def charges(
    buy: Annotated[
        str | None,
        typer.Option("--buy", metavar="PRICE", help="Buy price per unit in rupees, e.g. 100."),
    ] = None,
    sell: Annotated[
        str | None,
        typer.Option("--sell", metavar="PRICE", help="Sell price per unit in rupees, e.g. 120."),
    ] = None,
    quantity: Annotated[
        str | None,
        typer.Option(
            "--quantity", metavar="UNITS", help="Units per leg (lots × lot size), e.g. 75."
        ),
    ] = None,
    trade_date: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            help="Trade date; rates in force that day. (default: today)",
        ),
    ] = None,
    brokerage: Annotated[
        str | None,
        typer.Option(
            "--brokerage",
            metavar="RUPEES",
            help="Brokerage per executed order. (default: the schedule's broker default)",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the breakdown as JSON strings of rupees.")
    ] = False,
) -> None:
    """Charges (brokerage, STT, exchange, SEBI, stamp duty, GST) on an NSE options trade.

    Each leg given is one executed order of QUANTITY units. With both legs, also
    shows gross and net P&L.

    Example: optbot charges --buy 100 --sell 120 --quantity 75 --date 2025-06-10
    """
    import json

    from market.charges import ChargeSchedule, Fill, Side, compute_charges, net_pnl

    if buy is None and sell is None:
        _fail(f"give --buy PRICE, --sell PRICE or both, e.g. {_EXAMPLE}")
    if quantity is None:
        _fail("--quantity UNITS is required, e.g. --quantity 75")
    units = _parse_quantity(quantity)
    buy_price = None if buy is None else _parse_rupees(buy, "--buy")
    sell_price = None if sell is None else _parse_rupees(sell, "--sell")
    schedule = ChargeSchedule.load_default()
    per_order = (
        schedule.default_brokerage_per_order
        if brokerage is None
        else _parse_rupees(brokerage, "--brokerage")
    )
    day = _parse_date(trade_date, schedule)

    fills: list[Fill] = []
    if buy_price is not None:
        fills.append(Fill(Side.BUY, buy_price, units))
    if sell_price is not None:
        fills.append(Fill(Side.SELL, sell_price, units))

    pnl: NetPnl | None = None
    if buy_price is not None and sell_price is not None:
        pnl = net_pnl(fills, day, schedule, per_order)
        breakdown = pnl.charges
    else:
        breakdown = compute_charges(fills, day, schedule, per_order)

    if as_json:
        print(json.dumps(breakdown.as_strings()))
        return
    _print_table(fills, day, schedule, per_order, breakdown, pnl)


def register(app: typer.Typer) -> None:
    """Add ``optbot charges`` to the root app."""
    app.command(name="charges")(charges)
