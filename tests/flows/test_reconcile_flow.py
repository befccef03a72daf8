"""The reconcile flow against the simulator: a clean day, then a break that halts until acked."""

from __future__ import annotations

import asyncio
import json
import time as wall
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from broker.smartapi.rest import OrderRequest
from flows.broker_session import broker_session
from flows.reconcile import reconcile_flow
from flows.tasks.settings import load_flow_settings
from optbot.commands.flows import register
from tests.conftest import SIM_SESSION
from tests.flows.conftest import Hook
from warehouse import Warehouse, get_dataset
from warehouse.halt import active_halts, is_halted


def write_config(tmp_path: Path, sim: Any) -> Path:
    """A config pointing the broker at the test simulator and the warehouse at tmp_path."""
    port = urlsplit(sim.rest_url).port
    path = tmp_path / "optbot.toml"
    path.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n\n[sim]\nport = {port}\n\n'
        '[universe]\nunderlyings = ["NIFTY"]\n',
        encoding="utf-8",
    )
    return path


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    return app


def atm_call(sim: Any) -> Any:
    spot = sim.model.quote("99926000", sim.now()).ltp_paise
    calls = [
        i
        for i in sim.model.instruments()
        if i.exchange == "NFO" and i.name == "NIFTY" and i.option_type == "CE" and i.expiry
    ]
    nearest = min(i.expiry for i in calls)
    return min((i for i in calls if i.expiry == nearest), key=lambda i: abs(i.strike_paise - spot))


class Desk:
    """Places orders on the simulator through the flows' broker session."""

    def __init__(self, settings: Any, option: Any) -> None:
        self.session = broker_session(settings)
        self.option = option

    def place(self, side: str, tag: str, *, marketable: bool = True) -> Any:
        option = self.option

        async def go(client: Any) -> Any:
            quote = (await client.quote([("NFO", option.token)])).fetched[0]
            tick = option.tick_paise
            if marketable:
                price = (
                    quote.asks[0].price_paise + 2 * tick
                    if side == "BUY"
                    else quote.bids[0].price_paise - 2 * tick
                )
            else:  # far from the market, inside the circuit band: it rests
                price = max(quote.lower_circuit_paise or tick, quote.bids[0].price_paise * 6 // 10)
                price += -price % tick
            ack = await client.place_order(
                OrderRequest(
                    "NFO", option.symbol, option.token, side, option.lot, price, ordertag=tag
                )
            )
            deadline = wall.monotonic() + 10
            wanted = {"complete"} if marketable else {"open"}
            await asyncio.sleep(0.2)  # a matching pass runs every 50 ms
            while True:
                order = {o.order_id: o for o in await client.order_book()}[ack.order_id]
                if order.status in wanted or wall.monotonic() > deadline:
                    break
            if not marketable:
                return order, []
            trades = [t for t in await client.trade_book() if t.order_id == ack.order_id]
            return order, trades

        return self.session.run(go)


def journal_rows(order: Any, trades: list[Any], at: datetime, tag: str) -> list[dict[str, Any]]:
    """The streaming worker's journal records for one order, per the reconcile contract."""
    base = {"mode": "paper", "intent_id": tag}
    rows = [
        (
            "intent",
            tag,
            {
                **base,
                "exchange": order.exchange,
                "symbol": order.symbol,
                "side": order.side,
                "quantity": order.quantity,
                "price_paise": order.price_paise,
            },
        ),
        ("order", f"{tag}:1", {**base, "order_id": order.order_id, "status": order.status}),
    ]
    rows += [
        (
            "fill",
            f"{t.order_id}:{t.fill_id}",
            {
                "mode": "paper",
                "order_id": t.order_id,
                "fill_id": t.fill_id,
                "exchange": t.exchange,
                "symbol": t.symbol,
                "side": t.side,
                "quantity": t.quantity,
                "price_paise": t.price_paise,
            },
        )
        for t in trades
    ]
    return [
        {"ts": at + timedelta(seconds=i), "kind": k, "key": key, "payload": json.dumps(p)}
        for i, (k, key, p) in enumerate(rows)
    ]


def write_journal(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    wh.write("events", pa.Table.from_pylist(rows, schema=get_dataset("events").schema))


@pytest.fixture
def trading_sim(sim: Any) -> Any:
    sim.reset()  # a fresh exchange: no orders from other tests
    sim.set_clock(at="10:30")
    return sim


def test_clean_day_then_break_halts_until_acknowledged(
    trading_sim: Any, tmp_path: Path, hook: Hook
) -> None:
    sim = trading_sim
    config = write_config(tmp_path, sim)
    with config.open("a", encoding="utf-8") as extra:
        extra.write(f'\n[notify]\nwebhook_url = "{hook.url}"\n')
    settings = load_flow_settings(str(config))
    data = settings.data.dir
    wh = Warehouse(data)
    desk = Desk(settings, atm_call(sim))
    at = datetime.combine(SIM_SESSION, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)

    bought, buy_fills = desk.place("BUY", "I-BUY-1")
    sold, sell_fills = desk.place("SELL", "I-SELL-1")
    assert bought.status == sold.status == "complete"
    write_journal(
        wh,
        journal_rows(bought, buy_fills, at, "I-BUY-1")
        + journal_rows(sold, sell_fills, at + timedelta(minutes=5), "I-SELL-1"),
    )

    clean = reconcile_flow(session_date=SIM_SESSION, config_path=str(config))
    assert clean["clean"] is True and clean["breaks"] == []
    assert clean["halt_id"] is None and not is_halted(data)
    # The broker's books became the day's record.
    orders = wh.read("orders").to_pylist()
    assert {o["order_id"] for o in orders} == {bought.order_id, sold.order_id}
    assert {o["intent_id"] for o in orders} == {"I-BUY-1", "I-SELL-1"}
    trades = wh.read("trades").to_pylist()
    assert sum(t["quantity"] for t in trades) == 2 * desk.option.lot
    charges = {c["order_id"]: c for c in wh.read("charges").to_pylist()}
    assert set(charges) == {bought.order_id, sold.order_id}
    assert charges[sold.order_id]["stt_paise"] > 0 == charges[bought.order_id]["stt_paise"]
    assert all(c["brokerage_paise"] == 2_000 for c in charges.values())  # ₹20 per order
    gross = sum(t.price_paise * t.quantity for t in sell_fills) - sum(
        t.price_paise * t.quantity for t in buy_fills
    )
    total_charges = sum(c["total_paise"] for c in charges.values())
    assert clean["gross_pnl_paise"] == gross
    assert clean["net_pnl_paise"] == gross - total_charges
    summary = {r["check_name"]: r for r in wh.read("reconciliation").to_pylist()}["summary"]
    assert summary["status"] == "ok"
    report = Path(clean["report"])
    assert report == data / "reports" / f"reconcile-{SIM_SESSION.isoformat()}.md"
    assert "**Result: clean**" in report.read_text("utf-8")
    assert hook.bodies == []  # a clean day alerts nobody

    # An order placed behind optbot's back: the journal never sent it.
    stray, _ = desk.place("BUY", "MANUAL", marketable=False)
    broken = reconcile_flow(session_date=SIM_SESSION, config_path=str(config))
    assert broken["clean"] is False
    assert broken["breaks"] == [
        f"order:{stray.order_id}:known: the broker holds order {stray.order_id} "
        f"(BUY {stray.quantity} {stray.symbol}) tagged 'MANUAL' that the journal never sent"
    ]
    halt_id = broken["halt_id"]
    assert broken["halt_new"] is True
    assert [h.id for h in active_halts(data)] == [halt_id]
    marker = json.loads((data / "HALT" / f"{halt_id}.json").read_text("utf-8"))
    assert marker["source"] == "reconcile" and "1 break" in marker["reason"]
    text = Path(broken["report"]).read_text("utf-8")
    assert "unknown_order" in text and f"optbot ack {halt_id}" in text
    # A person is told through the webhook: what broke and how to clear the HALT.
    (alert,) = hook.bodies
    assert alert["source"] == "reconcile" and alert["severity"] == "critical"
    assert alert["subject"].startswith(f"reconciliation break on {SIM_SESSION.isoformat()}")
    assert broken["breaks"][0] in alert["body"]
    assert f"optbot ack {halt_id}" in alert["body"]
    assert alert["links"] == [broken["report"]]

    # The same breaks again: the same halt, not a second one.
    again = reconcile_flow(session_date=SIM_SESSION, config_path=str(config))
    assert again["halt_id"] == halt_id and again["halt_new"] is False
    assert len(active_halts(data)) == 1
    assert len(hook.bodies) == 1  # the same HALT is not alerted twice

    runner = CliRunner()
    status = runner.invoke(cli(), ["status", "--data-dir", str(data)])
    assert status.exit_code == 0 and f"optbot ack {halt_id}" in status.output
    wrong = runner.invoke(cli(), ["ack", "reconcile-nope", "--data-dir", str(data)])
    assert wrong.exit_code == 2 and halt_id in wrong.output
    acked = runner.invoke(cli(), ["ack", halt_id, "--by", "tester", "--data-dir", str(data)])
    assert acked.exit_code == 0, acked.output
    assert "no HALT remains" in acked.output
    assert not is_halted(data)
    assert (data / "HALT" / "acknowledged" / f"{halt_id}.json").is_file()
    after = runner.invoke(cli(), ["status", "--data-dir", str(data)])
    assert "HALT: none active" in after.output


def test_fill_the_journal_missed_is_a_break(trading_sim: Any, tmp_path: Path) -> None:
    sim = trading_sim
    config = write_config(tmp_path, sim)
    settings = load_flow_settings(str(config))
    wh = Warehouse(settings.data.dir)
    desk = Desk(settings, atm_call(sim))
    at = datetime.combine(SIM_SESSION, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    bought, fills = desk.place("BUY", "I-BUY-2")
    assert sum(f.quantity for f in fills) == bought.quantity  # the broker did fill it
    write_journal(wh, journal_rows(bought, [], at, "I-BUY-2"))  # the fill never journaled

    result = reconcile_flow(session_date=SIM_SESSION, config_path=str(config))
    assert not result["clean"]
    names = [line.split(": ", 1)[0] for line in result["breaks"]]
    assert f"fills:{bought.order_id}" in names
    assert f"position:NFO:{bought.symbol}" in names
    halt = active_halts(settings.data.dir)
    assert [h.id for h in halt] == [result["halt_id"]]
    assert any("missing from the journal" in line for line in halt[0].details)


def test_session_date_defaults_are_validated() -> None:
    # A date parameter given as text is coerced by Prefect's parameter validation.
    parameters = reconcile_flow.validate_parameters({"session_date": "2026-11-20"})
    assert parameters["session_date"] == date(2026, 11, 20)
