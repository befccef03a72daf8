"""The gaps flow on bars fetched from the simulator, with holes cut on purpose."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from flows.tasks.bar_store import bars_table as store_table
from market.calendar import IST
from warehouse import Warehouse
from warehouse.schemas import BARS_SCHEMA, GAPS_SCHEMA

if TYPE_CHECKING:
    from broker.sim.server import SimServer

MON, TUE = date(2026, 11, 16), date(2026, 11, 17)  # two sessions before the sim's 2026-11-20


def ist(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def write_config(tmp_path: Path, sim: SimServer) -> Path:
    port = sim.rest_url.rsplit(":", 1)[1]
    path = tmp_path / "optbot.toml"
    path.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n'
        f'[sim]\nhost = "127.0.0.1"\nport = {port}\n'
        '[universe]\nunderlyings = ["NIFTY"]\n'
    )
    return path


def fetch_minutes(config: Path, exchange: str, token: str) -> list[Any]:
    from flows.broker_session import broker_session
    from optbot.config import load_settings

    session = broker_session(load_settings(config, env={}))

    async def work(client: Any) -> list[Any]:
        return await client.candles(exchange, token, "1m", ist(MON, 9, 15), ist(TUE, 15, 29))

    return session.run(work)


def bars_table(symbol: str, token: str, exchange: str, candles: list[Any]) -> pa.Table:
    return store_table(candles, symbol=symbol, token=token, exchange=exchange)


def minutes(day: date, hh: int, mm: int, count: int) -> set[datetime]:
    return {ist(day, hh, mm) + timedelta(minutes=i) for i in range(count)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, sim_server: SimServer) -> dict[str, Any]:
    """A warehouse with NIFTY and one NIFTY option over two sessions, holes cut, and the
    complete bars kept aside."""
    from flows.instruments import instruments_flow

    tmp = tmp_path_factory.mktemp("gaps")
    config = write_config(tmp, sim_server)
    instruments_flow(as_of=date(2026, 11, 20), config_path=str(config))
    wh = Warehouse(tmp / "data")
    option = wh.query(
        "SELECT symbol, token, exchange FROM instruments WHERE name = 'NIFTY' "
        "AND instrument_type = 'OPTIDX' ORDER BY expiry, strike_paise LIMIT 1"
    ).to_pylist()[0]
    nifty = bars_table("NIFTY", "99926000", "NSE", fetch_minutes(config, "NSE", "99926000"))
    opt = bars_table(
        option["symbol"],
        option["token"],
        option["exchange"],
        fetch_minutes(config, option["exchange"], option["token"]),
    )
    assert nifty.num_rows == opt.num_rows == 2 * 375
    holes = {
        "short": minutes(TUE, 10, 0, 3),  # 3 min inside the session: interpolated
        "long": minutes(TUE, 11, 0, 10),  # 10 min: downloaded again
        "edge": minutes(MON, 9, 15, 1),  # at the open, no bar before it: downloaded again
    }
    cut = set().union(*holes.values())
    option_cut = minutes(TUE, 10, 0, 2)  # an option's 2 minutes: never interpolated
    wh.write("bars", _without(nifty, cut), interval="1m")
    wh.write("bars", _without(opt, option_cut), interval="1m")
    return {
        "config": config,
        "wh": wh,
        "nifty": nifty,
        "option": option["symbol"],
        "holes": holes,
        "option_cut": option_cut,
    }


def _without(table: pa.Table, cut: set[datetime]) -> pa.Table:
    keep = [ts.astimezone(IST) not in cut for ts in table["ts"].to_pylist()]
    return table.filter(pa.array(keep))


def _at(table: pa.Table, stamps: set[datetime]) -> pa.Table:
    keep = [ts.astimezone(IST) in stamps for ts in table["ts"].to_pylist()]
    return table.filter(pa.array(keep))


def gap_rows(wh: Warehouse) -> dict[tuple[str, datetime], dict[str, Any]]:
    return {
        (r["symbol"], r["start_ts"].astimezone(IST)): r
        for r in wh.read("gaps", start=MON, end=TUE + timedelta(days=1)).to_pylist()
    }


def test_gaps_flow_fills_queues_and_reports(prepared: dict[str, Any], sim: SimServer) -> None:
    from flows.gaps import gaps_flow

    wh: Warehouse = prepared["wh"]
    holes = prepared["holes"]
    option = prepared["option"]
    result = gaps_flow(config_path=str(prepared["config"]), as_of=TUE, intervals=["1m"])

    assert (result["gaps"], result["interpolated"], result["redownload"]) == (4, 1, 3)
    rows = gap_rows(wh)
    short = rows[("NIFTY", ist(TUE, 10, 0))]
    assert (short["minutes"], short["kind"], short["action"]) == (3, "underlying", "interpolated")
    assert short["end_ts"].astimezone(IST) == ist(TUE, 10, 3)
    assert rows[("NIFTY", ist(TUE, 11, 0))]["action"] == "redownload"
    assert rows[("NIFTY", ist(TUE, 11, 0))]["minutes"] == 10
    assert rows[("NIFTY", ist(MON, 9, 15))]["action"] == "redownload"
    # DESIGN invariant 7: the option's 2-minute hole is queued, never interpolated
    option_gap = rows[(option, ist(TUE, 10, 0))]
    assert (option_gap["kind"], option_gap["action"], option_gap["minutes"]) == (
        "option",
        "redownload",
        2,
    )

    # the short underlying hole now holds bars on the line from 09:59's close to 10:03's open
    filled = _at(wh.read("bars", interval="1m", symbol="NIFTY", start=TUE), holes["short"])
    assert filled.num_rows == 3
    assert filled["interpolated"].to_pylist() == [True] * 3
    assert filled["source"].to_pylist() == ["interpolated"] * 3
    assert filled["volume"].to_pylist() == [0, 0, 0]
    real = prepared["nifty"]
    before = _at(real, {ist(TUE, 9, 59)})["close"][0].as_py()
    after = _at(real, {ist(TUE, 10, 3)})["open"][0].as_py()
    p0, p1 = round(before * 100), round(after * 100)
    expected_closes = [(p0 + (p1 - p0) * k / 3) / 100 for k in (1, 2, 3)]
    assert filled["close"].to_pylist() == pytest.approx(expected_closes, abs=0.006)
    assert filled["open"][0].as_py() == pytest.approx(before, abs=0.006)
    # nothing was invented for the long hole, the edge or the option
    stored = wh.read("bars", interval="1m", symbol="NIFTY", start=MON)
    assert _at(stored, holes["long"] | holes["edge"]).num_rows == 0
    option_bars = wh.read("bars", interval="1m", symbol=option, start=MON)
    assert option_bars.num_rows == 750 - 2
    assert not any(option_bars["interpolated"].to_pylist())

    # the report ranks underlying gaps first, then newer and longer ones
    md = Path(result["report_md"])
    assert md.name == f"gaps-{TUE.isoformat()}.md"
    lines = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    ranked = [line.split(" | ")[2:4] for line in lines if line.split(" | ")[0][2:].isdigit()]
    assert ranked == [
        ["NIFTY", "underlying"],  # 10 min, newest: 300 + 50 + 7·log2(11) = 374.2
        ["NIFTY", "underlying"],  # 3 min, newest:  300 + 50 + 14 = 364
        ["NIFTY", "underlying"],  # 1 min, a session older: 300 + 46.7 + 7 = 353.7
        [option, "option"],  # 100 + 50 + 7·log2(3) = 161.1
    ]
    assert "| 1 | 374.2 | NIFTY |" in md.read_text()
    html_text = Path(result["report_html"]).read_text()
    assert html_text.startswith("<!doctype html>")
    assert html_text.count("<tr class=") == 4 and "<td>" + option + "</td>" in html_text


def test_second_run_marks_redownloaded_gaps_resolved(
    prepared: dict[str, Any], sim: SimServer
) -> None:
    from flows.gaps import gaps_flow

    wh: Warehouse = prepared["wh"]
    # the history flow fetched the long hole again
    wh.write("bars", _at(prepared["nifty"], prepared["holes"]["long"]), interval="1m")
    result = gaps_flow(config_path=str(prepared["config"]), as_of=TUE, intervals=["1m"])

    assert (result["gaps"], result["interpolated"], result["redownload"]) == (2, 0, 2)
    assert result["resolved"] == 1
    rows = gap_rows(wh)
    assert rows[("NIFTY", ist(TUE, 11, 0))]["action"] == "resolved"
    assert rows[("NIFTY", ist(TUE, 10, 0))]["action"] == "interpolated"  # the record stays
    assert rows[("NIFTY", ist(MON, 9, 15))]["action"] == "redownload"
    assert rows[(prepared["option"], ist(TUE, 10, 0))]["action"] == "redownload"


def test_interpolation_can_be_switched_off(tmp_path: Path, sim: SimServer) -> None:
    from flows.gaps import gaps_flow

    config = write_config(tmp_path, sim)
    wh = Warehouse(tmp_path / "data")
    day = TUE
    stamps = [ist(day, 9, 15) + timedelta(minutes=i) for i in range(375) if i not in (30, 31)]
    table = pa.Table.from_pylist(
        [
            {
                "symbol": "NIFTY",
                "token": "99926000",
                "exchange": "NSE",
                "ts": ts.astimezone(UTC),
                "open": 100.0,
                "high": 101.0,
                "low": 99.0,
                "close": 100.0,
                "volume": 0,
                "oi": None,
                "interpolated": False,
                "source": "test",
            }
            for ts in stamps
        ],
        schema=BARS_SCHEMA,
    )
    wh.write("bars", table, interval="1m")
    result = gaps_flow(config_path=str(config), as_of=day, interpolate=False)
    assert result["intervals"] == ["1m"]  # only intervals with stored bars are checked
    assert (result["gaps"], result["interpolated"], result["redownload"]) == (1, 0, 1)
    assert wh.read("bars", interval="1m", symbol="NIFTY").num_rows == 373


def synthetic(symbol: str, stamps: list[datetime], token: str = "1") -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "token": token,
                "exchange": "NFO",
                "ts": ts.astimezone(UTC),
                "open": 50.0,
                "high": 51.0,
                "low": 49.0,
                "close": 50.0,
                "volume": 10,
                "oi": None,
                "interpolated": False,
                "source": "test",
            }
            for ts in stamps
        ],
        schema=BARS_SCHEMA,
    )


def session_minutes(day: date) -> list[datetime]:
    return [ist(day, 9, 15) + timedelta(minutes=i) for i in range(375)]


def test_options_are_checked_only_on_days_they_traded(tmp_path: Path, sim: SimServer) -> None:
    from flows.gaps import gaps_flow

    config = write_config(tmp_path, sim)
    wh = Warehouse(tmp_path / "data")
    wed = date(2026, 11, 18)
    traded, idle = "NIFTY24NOV2626000CE", "NIFTY24NOV2626100CE"
    for symbol in (traded, idle):
        wh.write(
            "bars", synthetic(symbol, session_minutes(MON) + session_minutes(wed)), interval="1m"
        )
    # `traded` has daily bars on Mon and Wed only: it did not trade on Tuesday.
    # `idle` has no daily bars, so nothing says Tuesday was a day off: Tuesday is a gap.
    wh.write("bars", synthetic(traded, [ist(MON, 0, 0), ist(wed, 0, 0)]), interval="1d")
    result = gaps_flow(config_path=str(config), as_of=wed, intervals=["1m"])
    rows = gap_rows(wh)
    assert list(rows) == [(idle, ist(TUE, 9, 15))]
    assert rows[(idle, ist(TUE, 9, 15))]["minutes"] == 375
    assert result["gaps"] == 1


def test_gaps_the_broker_cannot_fill_are_not_queued_again(tmp_path: Path, sim: SimServer) -> None:
    from flows.gaps import gaps_flow

    config = write_config(tmp_path, sim)
    wh = Warehouse(tmp_path / "data")
    option = "NIFTY24NOV2626000PE"
    stamps = session_minutes(TUE)
    wh.write("bars", synthetic(option, stamps[:100] + stamps[101:]), interval="1m")
    first = gaps_flow(config_path=str(config), as_of=TUE, intervals=["1m"])
    assert (first["redownload"], first["unavailable"]) == (1, 0)
    # the history flow asked again, got nothing, and said so (same key, new action)
    row = next(iter(gap_rows(wh).values()))
    wh.write("gaps", pa.Table.from_pylist([{**row, "action": "unavailable"}], schema=GAPS_SCHEMA))

    second = gaps_flow(config_path=str(config), as_of=TUE, intervals=["1m"])
    assert (second["gaps"], second["redownload"], second["unavailable"]) == (1, 0, 1)
    assert next(iter(gap_rows(wh).values()))["action"] == "unavailable"

    # the minute turns up after all: resolved
    wh.write("bars", synthetic(option, [stamps[100]]), interval="1m")
    third = gaps_flow(config_path=str(config), as_of=TUE, intervals=["1m"])
    assert (third["gaps"], third["resolved"]) == (0, 1)
    assert next(iter(gap_rows(wh).values()))["action"] == "resolved"
