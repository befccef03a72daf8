"""The ``reconcile`` flow: after the close, the day's journal against the broker's books.

Steps (each a task, visible in the Prefect UI):

1. read the journal — the streaming worker's ``intent`` / ``order`` / ``fill`` records in
   the ``events`` dataset for the session date and mode (contract:
   :func:`market.reconcile.journal_from_events`);
2. fetch the broker's order book, trade book, positions and funds (SmartAPI REST);
3. compare them (:func:`market.reconcile.reconcile`) and price every executed order with the
   charge schedule in force that day (:func:`market.reconcile.day_pnl`);
4. write the broker's books as the day's record — ``orders``, ``trades``, ``positions``,
   ``charges`` — and every check to ``reconciliation``;
5. report: ``<data>/reports/reconcile-YYYY-MM-DD.md`` plus Markdown and table artifacts;
6. on any break: raise a HALT marker (``<data>/HALT/<id>.json``) that keeps the next session
   from opening positions until ``optbot ack <id>``, and alert a person.

A rerun of the same day rewrites the same records and, for the same breaks, finds the
same HALT id already raised (or acknowledged) and raises nothing new.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.broker_session import open_broker_session, retry_if_broker_flaky
from flows.notify import Alert, notify_on_failure, send_alert
from flows.reports import markdown_table, money, publish_markdown, publish_table, write_report
from flows.tasks.settings import flow_warehouse, load_flow_settings
from flows.trading_days import today_ist
from market.calendar import IST
from market.reconcile import (
    Check,
    CheckStatus,
    DayPnl,
    JournalEvent,
    Ledger,
    LedgerFill,
    LedgerOrder,
    LedgerPosition,
    Reconciliation,
    day_pnl,
    journal_from_events,
    reconcile,
    rupees_to_paise,
)

if TYPE_CHECKING:
    from broker.smartapi.models import Funds, Order, Position, Trade
    from flows.broker_session import BrokerSession
    from optbot.config import Settings
    from warehouse import Warehouse

DEFAULT_PNL_TOLERANCE_PAISE = 100  # ₹1: rounding differences between the two views, no more


@dataclass(frozen=True, slots=True)
class BrokerBooks:
    """The broker's view of the day, as typed records."""

    orders: list[Order]
    trades: list[Trade]
    positions: list[Position]
    funds: Funds | None
    fetched_at: datetime


@dataclass(slots=True)
class ReconcileOutcome:
    """What the flow returns (also the basis of the report)."""

    session_date: date
    mode: str
    clean: bool
    breaks: list[str]
    orders: int
    fills: int
    gross_pnl_paise: int
    charges_paise: int
    net_pnl_paise: int
    halt_id: str | None = None
    halt_new: bool = False
    report: str = ""
    alerts_failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the flow result."""
        return {
            "session_date": self.session_date.isoformat(),
            "mode": self.mode,
            "clean": self.clean,
            "breaks": list(self.breaks),
            "orders": self.orders,
            "fills": self.fills,
            "gross_pnl_paise": self.gross_pnl_paise,
            "charges_paise": self.charges_paise,
            "net_pnl_paise": self.net_pnl_paise,
            "halt_id": self.halt_id,
            "halt_new": self.halt_new,
            "report": self.report,
        }


# --------------------------------------------------------------------------- conversions


def broker_ledger(books: BrokerBooks) -> Ledger:
    """The broker's books in the shape the comparison takes."""
    return Ledger(
        orders=tuple(
            LedgerOrder(o.order_id, o.ordertag, o.exchange, o.symbol, o.side, o.quantity, o.status)
            for o in books.orders
        ),
        fills=tuple(
            LedgerFill(
                t.order_id, t.fill_id, t.exchange, t.symbol, t.side, t.quantity, t.price_paise
            )
            for t in books.trades
            if t.quantity > 0
        ),
        positions=tuple(
            LedgerPosition(p.exchange, p.symbol, p.net_quantity) for p in books.positions
        ),
    )


def _fill_instant(day: date, books: BrokerBooks, trade: Trade, order: Order | None) -> datetime:
    # The trade book gives only the time of day (IST); the session date supplies the rest.
    if trade.fill_time is not None:
        return datetime.combine(day, trade.fill_time, tzinfo=IST).astimezone(UTC)
    if order is not None and order.updated_at is not None:
        return order.updated_at.astimezone(UTC)
    return books.fetched_at


def book_tables(day: date, mode: str, books: BrokerBooks, pnl: DayPnl) -> dict[str, Any]:
    """Arrow tables for the orders, trades, positions and charges datasets."""
    import pyarrow as pa

    from warehouse import get_dataset

    as_of = books.fetched_at
    orders = [
        {
            "mode": mode,
            "order_id": o.order_id,
            "unique_order_id": o.unique_order_id or None,
            "intent_id": o.ordertag or None,
            "session_date": day,
            "symbol": o.symbol,
            "token": o.token,
            "exchange": o.exchange,
            "side": o.side,
            "order_type": o.order_type,
            "product": o.product,
            "variety": o.variety or None,
            "quantity": o.quantity,
            "filled_quantity": o.filled_quantity,
            "price_paise": o.price_paise,
            "trigger_price_paise": o.trigger_price_paise,
            "average_price_paise": o.average_price_paise,
            "status": o.status,
            "status_message": o.text or None,
            "placed_at": (o.exchange_time or o.updated_at or as_of).astimezone(UTC),
            "updated_at": (o.updated_at or as_of).astimezone(UTC),
        }
        for o in books.orders
        if o.order_id
    ]
    by_id = {o.order_id: o for o in books.orders}
    trades = [
        {
            "mode": mode,
            "trade_id": t.fill_id or f"{t.order_id}-{index}",
            "order_id": t.order_id,
            "session_date": day,
            "symbol": t.symbol,
            "token": by_id[t.order_id].token if t.order_id in by_id else "",
            "exchange": t.exchange,
            "side": t.side,
            "quantity": t.quantity,
            "price_paise": t.price_paise,
            "filled_at": _fill_instant(day, books, t, by_id.get(t.order_id)),
        }
        for index, t in enumerate(books.trades)
        if t.order_id and t.quantity > 0
    ]
    positions = [
        {
            "mode": mode,
            "session_date": day,
            "symbol": p.symbol,
            "token": p.token,
            "exchange": p.exchange,
            "product": p.product,
            "net_quantity": p.net_quantity,
            "buy_quantity": p.buy_quantity,
            "sell_quantity": p.sell_quantity,
            "buy_value_paise": p.buy_value_paise,
            "sell_value_paise": p.sell_value_paise,
            "realised_pnl_paise": p.realised_pnl_paise,
            "unrealised_pnl_paise": None
            if p.pnl_paise is None
            else p.pnl_paise - p.realised_pnl_paise,
            "ltp_paise": p.ltp_paise,
            "as_of": as_of,
        }
        for p in books.positions
    ]
    charges = [
        {
            "mode": mode,
            "trade_date": day,
            "order_id": order_id,
            "brokerage_paise": rupees_to_paise(c.brokerage),
            "stt_paise": rupees_to_paise(c.stt),
            "exchange_txn_paise": rupees_to_paise(c.exchange_txn),
            "sebi_paise": rupees_to_paise(c.sebi),
            "stamp_duty_paise": rupees_to_paise(c.stamp_duty),
            "gst_paise": rupees_to_paise(c.gst),
            "total_paise": rupees_to_paise(c.total),
        }
        for order_id, c in sorted(pnl.charges_by_order.items())
    ]

    def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=get_dataset(name).schema)

    return {
        "orders": table("orders", orders),
        "trades": table("trades", trades),
        "positions": table("positions", positions),
        "charges": table("charges", charges),
    }


def reconciliation_table(day: date, result: Reconciliation, pnl: DayPnl) -> Any:
    """Every check as a ``reconciliation`` row, plus a ``summary`` row for the day."""
    import pyarrow as pa

    from warehouse import get_dataset

    rows = [
        {
            "session_date": day,
            "check_name": c.name,
            "status": c.status.value,
            "expected": c.expected or None,
            "actual": c.actual or None,
            "detail": f"{c.kind.value}: {c.detail}" if c.kind else (c.detail or None),
        }
        for c in result.checks
    ]
    rows.append(
        {
            "session_date": day,
            "check_name": "summary",
            "status": CheckStatus.OK.value if result.clean else CheckStatus.BREAK.value,
            "expected": None,
            "actual": f"net {money(pnl.net_paise)}",
            "detail": (
                f"{len(result.checks)} checks, {len(result.breaks)} breaks; gross "
                f"{money(pnl.gross_paise)}, charges {money(pnl.charges_paise)}"
            ),
        }
    )
    return pa.Table.from_pylist(rows, schema=get_dataset("reconciliation").schema)


def halt_id_for(day: date, breaks: tuple[Check, ...]) -> str:
    """Same day and same breaks → same id, so a rerun does not raise the halt again."""
    digest = hashlib.sha256()
    for check in sorted(breaks, key=lambda c: c.name):
        digest.update(f"{check.name}\x1f{check.expected}\x1f{check.actual}\x1e".encode())
    return f"reconcile-{day.isoformat()}-{digest.hexdigest()[:8]}"


def render_report(
    outcome: ReconcileOutcome,
    result: Reconciliation,
    pnl: DayPnl,
    books: BrokerBooks,
) -> str:
    """The day's reconciliation report in Markdown."""
    lines = [f"# Reconciliation {outcome.session_date.isoformat()} ({outcome.mode})", ""]
    if outcome.clean:
        lines.append("**Result: clean** — the journal and the broker's books agree.")
    else:
        lines.append(
            f"**Result: {len(outcome.breaks)} break(s)** — new positions are halted until a "
            f"person has looked: `optbot ack {outcome.halt_id}`."
        )
    lines += ["", "## The day", ""]
    summary = [
        ("orders at the broker", str(outcome.orders)),
        ("fills", str(outcome.fills)),
        ("realised P&L (journal)", money(result.journal_pnl_paise)),
        ("realised P&L (broker)", money(result.broker_pnl_paise)),
        ("charges", money(pnl.charges_paise)),
        ("net P&L (broker fills − charges)", money(pnl.net_paise)),
    ]
    if books.funds is not None:
        summary.append(("available cash", money(books.funds.available_cash_paise)))
    lines += [markdown_table(["", ""], summary), ""]
    breaks = list(result.breaks)
    if breaks:
        lines += [
            "## Breaks",
            "",
            "Journal = what optbot recorded; broker = the broker's books.",
            "",
        ]
        lines.append(
            markdown_table(
                ["check", "kind", "journal", "broker", "why"],
                [
                    (c.name, c.kind.value if c.kind else "", c.expected, c.actual, c.detail)
                    for c in breaks
                ],
            )
        )
        lines.append("")
    notes = [c for c in result.checks if c.status is CheckStatus.NOTE]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"* `{c.name}`: {c.detail}" for c in notes]
        lines.append("")
    if pnl.charges_by_order:
        lines += ["## Charges by order", ""]
        lines.append(
            markdown_table(
                ["order", "brokerage", "STT", "exchange", "SEBI", "stamp", "GST", "total"],
                [
                    (
                        order_id,
                        *(
                            money(rupees_to_paise(v))
                            for v in (
                                c.brokerage,
                                c.stt,
                                c.exchange_txn,
                                c.sebi,
                                c.stamp_duty,
                                c.gst,
                                c.total,
                            )
                        ),
                    )
                    for order_id, c in sorted(pnl.charges_by_order.items())
                ],
            )
        )
        lines.append("")
    ok = sum(1 for c in result.checks if c.status is CheckStatus.OK)
    lines.append(f"{ok} of {len(result.checks)} checks agreed.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- tasks


@task(name="read-journal", cache_policy=NO_CACHE)
def read_journal(wh: Warehouse, day: date, mode: str) -> tuple[Ledger, list[Check]]:
    """The day's journal records from the ``events`` dataset, rebuilt into a ledger."""
    table = wh.read("events", start=day, end=day + timedelta(days=1))
    events = [
        JournalEvent(row["kind"], row["key"], row["ts"], row["payload"])
        for row in table.to_pylist()
    ]
    ledger, problems = journal_from_events(events, mode=mode)
    get_run_logger().info(
        "journal %s (%s): %d events, %d orders, %d fills, %d unreadable",
        day,
        mode,
        len(events),
        len(ledger.orders),
        len(ledger.fills),
        len(problems),
    )
    return ledger, problems


@task(
    name="fetch-broker-books",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[30, 120],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_broker_flaky,
)
def fetch_broker_books(session: BrokerSession) -> BrokerBooks:
    """Order book, trade book, positions and funds, read in one client session."""

    async def fetch(client: Any) -> BrokerBooks:
        orders = await client.order_book()
        trades = await client.trade_book()
        positions = await client.positions()
        funds = await client.funds()
        return BrokerBooks(orders, trades, positions, funds, datetime.now(UTC))

    books = session.run(fetch)
    get_run_logger().info(
        "broker books: %d orders, %d fills, %d positions",
        len(books.orders),
        len(books.trades),
        len(books.positions),
    )
    return books


@task(name="write-day-records", cache_policy=NO_CACHE)
def write_day_records(
    wh: Warehouse, day: date, mode: str, books: BrokerBooks, result: Reconciliation, pnl: DayPnl
) -> dict[str, int]:
    """The broker's books and every check into the warehouse; rows written per dataset."""
    written = {}
    for name, table in book_tables(day, mode, books, pnl).items():
        written[name] = wh.write(name, table).rows_in
    written["reconciliation"] = wh.write(
        "reconciliation", reconciliation_table(day, result, pnl)
    ).rows_in
    return written


@task(name="raise-halt", cache_policy=NO_CACHE)
def raise_reconcile_halt(
    root: Any, day: date, mode: str, breaks: tuple[Check, ...], report: str
) -> tuple[str, bool]:
    """The HALT marker for these breaks; returns (id, newly raised)."""
    from warehouse.halt import raise_halt

    halt_id = halt_id_for(day, breaks)
    halt, new = raise_halt(
        root,
        halt_id=halt_id,
        reason=f"reconciliation of {day.isoformat()} ({mode}) found {len(breaks)} break(s)",
        source="reconcile",
        created_at=datetime.now(UTC),
        details=[
            f"{c.name}: {c.detail} [journal: {c.expected}; broker: {c.actual}]" for c in breaks
        ],
        extra={"session_date": day.isoformat(), "mode": mode, "report": report},
    )
    logger = get_run_logger()
    if new:
        logger.error("HALT %s raised: %s", halt.id, halt.reason)
    else:
        logger.warning("HALT %s already raised earlier (%s)", halt.id, halt.reason)
    return halt.id, new


# --------------------------------------------------------------------------- flow


@flow(name="reconcile", on_failure=[notify_on_failure])
def reconcile_flow(
    session_date: date | None = None,
    mode: str | None = None,
    pnl_tolerance_paise: int = DEFAULT_PNL_TOLERANCE_PAISE,
    brokerage_per_order: Decimal | None = None,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Reconcile a session's journal with the broker; halt new positions on any break.

    ``session_date`` defaults to today (IST); ``mode`` to the configured mode; brokerage to
    ``[charges] brokerage_per_order``.
    """
    from market.charges import ChargeSchedule

    settings: Settings = load_flow_settings(config_path, data_dir)
    day = session_date or today_ist()
    run_mode = mode or settings.mode
    brokerage = (
        brokerage_per_order
        if brokerage_per_order is not None
        else settings.charges.brokerage_per_order
    )
    wh = flow_warehouse(settings)
    journal, problems = read_journal(wh, day, run_mode)
    session = open_broker_session(settings)
    books = fetch_broker_books(session)
    broker = broker_ledger(books)
    result = reconcile(journal, broker, pnl_tolerance_paise=pnl_tolerance_paise)
    if problems:
        result = Reconciliation(
            (*problems, *result.checks), result.journal_pnl_paise, result.broker_pnl_paise
        )
    pnl = day_pnl(broker.fills, day, ChargeSchedule.load_default(), brokerage)
    write_day_records(wh, day, run_mode, books, result, pnl)

    outcome = ReconcileOutcome(
        session_date=day,
        mode=run_mode,
        clean=result.clean,
        breaks=[f"{c.name}: {c.detail}" for c in result.breaks],
        orders=len(books.orders),
        fills=len(broker.fills),
        gross_pnl_paise=pnl.gross_paise,
        charges_paise=pnl.charges_paise,
        net_pnl_paise=pnl.net_paise,
    )
    report_path = settings.data.dir / "reports" / f"reconcile-{day.isoformat()}.md"
    if not result.clean:
        outcome.halt_id, outcome.halt_new = raise_reconcile_halt(
            settings.data.dir, day, run_mode, result.breaks, str(report_path)
        )
    markdown = render_report(outcome, result, pnl, books)
    outcome.report = str(write_report(settings.data.dir, "reconcile", day, markdown))
    publish_markdown("reconcile-report", markdown, f"Reconciliation {day} ({run_mode})")
    publish_table(
        "reconcile-checks",
        [
            {
                "check": c.name,
                "status": c.status.value,
                "journal": c.expected,
                "broker": c.actual,
                "detail": c.detail,
            }
            for c in result.checks
        ],
        f"Reconciliation checks {day}",
    )
    if not result.clean and outcome.halt_new:
        shown = outcome.breaks[:20]
        more = len(outcome.breaks) - len(shown)
        body = "\n".join(f"- {line}" for line in shown)
        if more:
            body += f"\n- … and {more} more"
        outcome.alerts_failed = send_alert(
            Alert(
                subject=(
                    f"reconciliation break on {day.isoformat()}: {len(outcome.breaks)} "
                    f"mismatch(es); new positions halted"
                ),
                body=f"{body}\nClear after review: optbot ack {outcome.halt_id}",
                severity="critical",
                source="reconcile",
                links=(outcome.report,),
            ),
            settings,
        )
    logger = get_run_logger()
    if result.clean:
        logger.info("reconciliation %s clean: net P&L %s", day, money(pnl.net_paise))
    else:
        logger.error(
            "reconciliation %s: %d break(s), HALT %s", day, len(result.breaks), outcome.halt_id
        )
    return outcome.as_dict()
