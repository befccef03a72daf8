"""The categorise flow on daily bars fetched from the simulator."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest

from flows.tasks.bar_store import bars_table as store_table
from market.calendar import IST
from market.categorise import (
    Category,
    FuturesDay,
    Reason,
    Thresholds,
    categorise,
    nearest_contract_volume,
    parse_reason,
)
from warehouse import Warehouse

if TYPE_CHECKING:
    from broker.sim.server import SimServer

SIM_DAY = date(2026, 11, 20)  # the simulator's session (in progress: daily bars end the day before)
LAST_BAR = date(2026, 11, 19)


def write_config(tmp_path: Path, sim: SimServer, underlyings: list[str]) -> Path:
    port = sim.rest_url.rsplit(":", 1)[1]
    names = ", ".join(f'"{n}"' for n in underlyings)
    path = tmp_path / "optbot.toml"
    path.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n'
        f'[sim]\nhost = "127.0.0.1"\nport = {port}\n'
        f"[universe]\nunderlyings = [{names}]\n"
    )
    return path


def fetch_daily(config: Path, instruments: list[tuple[str, str]], first: date) -> list[list[Any]]:
    from flows.broker_session import broker_session
    from optbot.config import load_settings

    session = broker_session(load_settings(config, env={}))
    start = datetime(first.year, first.month, first.day, tzinfo=IST)
    end = datetime(SIM_DAY.year, SIM_DAY.month, SIM_DAY.day, 15, 30, tzinfo=IST)

    async def work(client: Any) -> list[list[Any]]:
        return [await client.candles(ex, token, "1d", start, end) for ex, token in instruments]

    return session.run(work)


def bars_table(symbol: str, token: str, exchange: str, candles: list[Any]) -> pa.Table:
    return store_table(candles, symbol=symbol, token=token, exchange=exchange)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, sim_server: SimServer) -> dict[str, Any]:
    """A snapshot for NIFTY, SBIN and RELIANCE; NIFTY and SBIN daily bars for two years,
    RELIANCE's only until 2026-11-09 (stale); no futures bars yet."""
    from flows.instruments import instruments_flow

    tmp = tmp_path_factory.mktemp("categorise")
    config = write_config(tmp, sim_server, ["NIFTY", "SBIN", "RELIANCE"])
    instruments_flow(as_of=SIM_DAY, config_path=str(config))
    wh = Warehouse(tmp / "data")
    spot = {
        r["name"]: r
        for r in wh.query(
            "SELECT name, symbol, token, exchange FROM instruments "
            "WHERE instrument_type IN ('AMXIDX', '') AND name IN ('NIFTY', 'SBIN', 'RELIANCE')"
        ).to_pylist()
    }
    nifty, sbin, reliance = fetch_daily(
        config,
        [(spot[n]["exchange"], spot[n]["token"]) for n in ("NIFTY", "SBIN", "RELIANCE")],
        date(2024, 11, 1),
    )
    # the index under its F&O name, the stock under its cash symbol (SBIN-EQ)
    wh.write("bars", bars_table("NIFTY", spot["NIFTY"]["token"], "NSE", nifty), interval="1d")
    wh.write(
        "bars",
        bars_table(spot["SBIN"]["symbol"], spot["SBIN"]["token"], "NSE", sbin),
        interval="1d",
    )
    stale = [c for c in reliance if c.start.date() <= date(2026, 11, 9)]
    wh.write(
        "bars",
        bars_table(spot["RELIANCE"]["symbol"], spot["RELIANCE"]["token"], "NSE", stale),
        interval="1d",
    )
    return {"config": config, "wh": wh, "nifty": nifty, "sbin": sbin, "spot": spot}


def arrays(candles: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([float(c.high) for c in candles]),
        np.array([float(c.low) for c in candles]),
        np.array([float(c.close) for c in candles]),
    )


def test_categorise_flow_writes_next_session_categories(
    prepared: dict[str, Any], sim: SimServer
) -> None:
    from flows.categorise import categorise_flow

    wh: Warehouse = prepared["wh"]
    assert (
        wh.query("SELECT count(*) AS n FROM bars_1d WHERE symbol LIKE '%FUT'")["n"][0].as_py() == 0
    )
    result = categorise_flow(config_path=str(prepared["config"]))

    # bars end on Thursday 2026-11-19, so the categories are for Friday's session
    assert (result["as_of"], result["session_date"]) == (LAST_BAR.isoformat(), SIM_DAY.isoformat())
    friday = wh.read("categories", start=SIM_DAY, end=date(2026, 11, 21))
    rows = {r["underlying"]: r for r in friday.to_pylist()}
    assert set(rows) == {"NIFTY", "SBIN", "RELIANCE"}
    assert {r["session_date"] for r in rows.values()} == {SIM_DAY}

    # the index had no futures bars: the flow fetched the listed futures' daily candles
    futures = wh.query(
        "SELECT symbol, ts, volume FROM bars_1d WHERE symbol LIKE 'NIFTY%FUT' ORDER BY ts"
    ).to_pylist()
    assert futures and all(r["volume"] > 0 for r in futures)
    assert not wh.query("SELECT 1 FROM bars_1d WHERE symbol LIKE 'SBIN%FUT'").num_rows

    # NIFTY: the rule applied to the index's bars with the spliced near-month futures volume
    expiries = {
        r["symbol"]: r["expiry"]
        for r in wh.query(
            "SELECT symbol, expiry FROM instruments WHERE instrument_type = 'FUTIDX'"
        ).to_pylist()
    }
    spliced = nearest_contract_volume(
        FuturesDay(r["ts"].astimezone(IST).date(), expiries[r["symbol"]], r["volume"])
        for r in futures
    )
    nifty = prepared["nifty"]
    volume = [spliced.get(c.start.date()) for c in nifty]
    expected = categorise(*arrays(nifty), volume, Thresholds())
    got = rows["NIFTY"]
    assert got["category"] == expected.category.value
    assert got["reason"] == expected.reason_field
    assert got["adx"] == pytest.approx(expected.adx)
    assert got["volume"] == expected.volume and got["volume"] == spliced[LAST_BAR]
    assert parse_reason(got["reason"])[0] is not Reason.NO_VOLUME

    # SBIN (found under SBIN-EQ): its own cash volume
    sbin = prepared["sbin"]
    expected = categorise(*arrays(sbin), [c.volume for c in sbin], Thresholds())
    assert rows["SBIN"]["category"] == expected.category.value
    assert rows["SBIN"]["reason"] == expected.reason_field
    assert rows["SBIN"]["volume_avg"] == pytest.approx(expected.volume_avg)

    # RELIANCE's bars stop on 2026-11-09: no trade, and the reason says why
    assert rows["RELIANCE"]["category"] == Category.NO_TRADE.value
    assert rows["RELIANCE"]["reason"].startswith("stale_data: daily bars end 2026-11-09")
    assert result["categories"] == {n: rows[n]["category"] for n in rows}

    # the futures are stored now: a run without fetching reaches the same verdicts
    again = categorise_flow(config_path=str(prepared["config"]), fetch_futures=False)
    assert again["reasons"] == result["reasons"]


def test_categorise_flow_for_an_earlier_day(prepared: dict[str, Any], sim: SimServer) -> None:
    from flows.categorise import categorise_flow

    wh: Warehouse = prepared["wh"]
    as_of = date(2026, 11, 13)  # a Friday: the next session is Monday 2026-11-16
    result = categorise_flow(
        config_path=str(prepared["config"]), as_of=as_of, underlyings=["SBIN", "BANKNIFTY"]
    )
    assert result["session_date"] == "2026-11-16"
    monday = wh.read("categories", start=date(2026, 11, 16), end=date(2026, 11, 17))
    rows = {r["underlying"]: r for r in monday.to_pylist()}
    sbin = [c for c in prepared["sbin"] if c.start.date() <= as_of]
    expected = categorise(*arrays(sbin), [c.volume for c in sbin], Thresholds())
    assert rows["SBIN"]["reason"] == expected.reason_field
    assert rows["SBIN"]["session_date"] == date(2026, 11, 16)
    # an underlying with no daily bars at all is no trade, never a guess
    assert rows["BANKNIFTY"]["category"] == "NO_TRADE"
    assert rows["BANKNIFTY"]["reason"].startswith("stale_data: daily bars end nowhere")


def test_futures_fetch_survives_a_flaky_broker(tmp_path: Path, sim: SimServer) -> None:
    from flows.categorise import categorise_flow
    from flows.instruments import instruments_flow

    config = write_config(tmp_path, sim, ["NIFTY"])
    instruments_flow(as_of=SIM_DAY, config_path=str(config))
    wh = Warehouse(tmp_path / "data")
    (nifty,) = fetch_daily(config, [("NSE", "99926000")], date(2025, 6, 2))
    wh.write("bars", bars_table("NIFTY", "99926000", "NSE", nifty), interval="1d")

    sim.set_faults("ratelimit=0.3,http5xx=0.2")
    result = categorise_flow(config_path=str(config))
    sim.clear_faults()

    # every futures candle arrived despite refusals and 5xx: the volume test could run
    reason = parse_reason(result["reasons"]["NIFTY"])[0]
    assert reason not in (Reason.NO_VOLUME, Reason.SHORT_HISTORY, Reason.STALE_DATA)
    futures = wh.query("SELECT count(DISTINCT ts) AS n FROM bars_1d WHERE symbol LIKE '%FUT'")
    assert futures["n"][0].as_py() >= Thresholds().volume_lookback + 1
