"""Instrument master: streamed download from the simulator, parse, validate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from broker.smartapi.config import SmartApiConfig
from broker.smartapi.errors import MasterUnusable
from broker.smartapi.instruments import download_master, fetch_master, parse_master
from market.calendar import default_calendar
from market.instruments import InstrumentIndex


def _config(sim: Any) -> SmartApiConfig:
    return SmartApiConfig(master_url=sim.master_url, backoff_initial_s=0.05, backoff_max_s=0.1)


def test_master_download_parse_and_validate(sim: Any, tmp_path: Path) -> None:
    destination = tmp_path / "master" / "OpenAPIScripMaster.json"
    master = asyncio.run(
        fetch_master(sim.master_url, destination, default_calendar(), config=_config(sim))
    )
    assert destination.is_file()
    assert [p.name for p in destination.parent.iterdir()] == [destination.name]  # no temp left
    assert master.source is not None and master.source.size == destination.stat().st_size
    rows = json.loads(destination.read_bytes())
    assert len(master.instruments) + len(master.row_problems) == len(rows)
    assert not master.row_problems  # the simulator's master is clean
    index = InstrumentIndex(master.instruments)
    nifty = index.by_token("99926000", "NSE")
    assert nifty.is_index and nifty.underlying == "NIFTY"
    options = index.options("NIFTY")
    assert options and all(o.lot_size > 0 and o.tick_paise > 0 for o in options)
    assert len(index) == len({(r["exch_seg"], r["token"]) for r in rows})


def test_master_server_error_is_retried(sim: Any, tmp_path: Path) -> None:
    calls: list[float] = []

    async def backoff(seconds: float) -> None:
        calls.append(seconds)
        sim.clear_faults()
        await asyncio.sleep(seconds)

    sim.set_faults("http5xx=1")
    try:
        download = asyncio.run(
            download_master(sim.master_url, tmp_path / "m.json", config=_config(sim), sleep=backoff)
        )
    finally:
        sim.clear_faults()
    assert len(calls) == 1
    assert download.size > 1000 and len(download.sha256) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_file_that_is_not_a_master_is_unusable() -> None:
    with pytest.raises(MasterUnusable, match="JSON"):
        parse_master(b"<html>maintenance</html>", default_calendar())
    with pytest.raises(MasterUnusable, match="array"):
        parse_master(b'{"token": "1"}', default_calendar())
    with pytest.raises(MasterUnusable, match="no usable rows"):
        parse_master(b'[{"token": "1"}]', default_calendar())


def test_bad_rows_are_reported_not_fatal() -> None:
    good = {
        "token": "3045",
        "symbol": "SBIN-EQ",
        "name": "SBIN",
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": "",
        "exch_seg": "NSE",
        "tick_size": "5.000000",
    }
    bad = {**good, "token": "3046", "lotsize": "many"}
    master = parse_master(json.dumps([good, bad]).encode(), default_calendar())
    assert [i.token for i in master.instruments] == ["3045"]
    assert [p.token for p in master.row_problems] == ["3046"]
