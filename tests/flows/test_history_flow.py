"""The history flow against the simulator: exact ranges, resumption, faults, the budget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
import pytest

from flows.broker_session import broker_session, run_async
from flows.history import ProgressEvent, history_flow, progress_listener
from flows.tasks.instrument_snapshot import snapshot_in_force, write_snapshot
from flows.tasks.settings import load_flow_settings
from market.calendar import IST, default_calendar
from market.candles import trading_days
from market.instruments import Instrument, parse_master, strike_step
from market.universe import select_universe
from warehouse import Warehouse
from warehouse.schemas import GAPS_SCHEMA

if TYPE_CHECKING:
    from broker.sim.server import SimServer

SESSION = date(2026, 11, 20)  # the sim fixture's session date (its clock starts 09:15)
END = date(2026, 11, 19)  # so the last complete session is the day before
DAILY_FROM = date(2026, 11, 2)
INTRADAY_FROM = date(2026, 11, 16)  # four sessions: 16-19 November
CAL = default_calendar()
DAILY_SESSIONS = len(trading_days(DAILY_FROM, END, CAL))
INTRADAY_SESSIONS = len(trading_days(INTRADAY_FROM, END, CAL))
# 2-19 November 2026: 14 weekdays less Diwali Balipratipada (10 Nov); 16-19 Nov: 4 sessions.
assert (DAILY_SESSIONS, INTRADAY_SESSIONS) == (13, 4)
pytestmark = pytest.mark.filterwarnings("ignore::market.calendar.UncoveredYearWarning")


@pytest.fixture(scope="module")
def nifty_universe(sim_server: SimServer) -> tuple[Instrument, ...]:
    """NIFTY's instruments and INDIA VIX from the simulator's master, as the instruments flow
    keeps them (that flow has tests of its own; here the snapshot is only a starting point)."""
    master = parse_master(httpx.get(sim_server.master_url).json())
    return select_universe(master.instruments, ["NIFTY"], SESSION).kept


@pytest.fixture
def prepare(sim: SimServer, nifty_universe: tuple[Instrument, ...]) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        """A config pointing at the simulator, and the day's instrument snapshot in place."""
        path = folder / "optbot.toml"
        path.write_text(
            f'[data]\ndir = "{folder / "data"}"\n[sim]\nport = {sim.port}\n'
            '[universe]\nunderlyings = ["NIFTY"]\nstrikes_around_atm = 0\n',
            encoding="utf-8",
        )
        write_snapshot(Warehouse(folder / "data"), nifty_universe, SESSION)
        # Log in now, so request counts below hold candle requests only.
        run_async(broker_session(load_flow_settings(str(path))).ensure_login)
        return str(path)

    return make


def backfill(config: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "config_path": config,
        "end_date": END,
        "daily_from": DAILY_FROM,
        "intraday_from": INTRADAY_FROM,
    }
    params.update(overrides)
    return history_flow(**params)


def bar_count(wh: Warehouse, interval: str, symbol: str) -> int:
    table = wh.query(
        f"SELECT count(*) AS n, count(DISTINCT ts) AS d FROM bars_{interval} "
        f"WHERE symbol = '{symbol}'"
    )
    rows, distinct = table["n"][0].as_py(), table["d"][0].as_py()
    assert rows == distinct, f"{symbol} {interval}: {rows - distinct} duplicate bars"
    return int(rows)


def candle_requests(sim: SimServer) -> int:
    """getCandleData requests the simulator has received (its admin state counts them)."""
    return int(sim.state_view()["rest_requests_by_endpoint"].get("getCandleData", 0))


def rest_requests(sim: SimServer) -> int:
    return int(sim.state_view()["rest_requests"])


def expected_counts(symbols: list[str]) -> dict[tuple[str, str], int]:
    """Bars per series for NIFTY, the nearest future and two ATM options (no VIX)."""
    # 1m: 375 bars a session (09:15-15:29); 1h: 7 (09:15 ... 15:15); 1d: one per session.
    out = {
        ("NIFTY", "1d"): DAILY_SESSIONS,
        ("NIFTY", "1h"): 7 * INTRADAY_SESSIONS,
        ("NIFTY", "1m"): 375 * INTRADAY_SESSIONS,
    }
    for symbol in symbols:
        out[(symbol, "1d")] = DAILY_SESSIONS
        if not symbol.endswith("FUT"):
            out[(symbol, "1m")] = 375 * INTRADAY_SESSIONS
    return out


def check_store(wh: Warehouse, expected: dict[tuple[str, str], int]) -> None:
    for (symbol, interval), count in expected.items():
        assert bar_count(wh, interval, symbol) == count, (symbol, interval)


def test_backfill_fetches_exactly_the_ranges_then_nothing_on_a_rerun(
    sim: SimServer, tmp_path: Path, prepare: Callable[[Path], str]
) -> None:
    config = prepare(tmp_path)
    wh = Warehouse(tmp_path / "data")
    events: list[ProgressEvent] = []
    before = candle_requests(sim)
    with progress_listener(events.append):
        first = backfill(config, include_vix=True)
    used = candle_requests(sim) - before

    assert first["complete"] and first["failed"] == [] and first["bad_candles"] == 0
    # NIFTY 1d/1h/1m, VIX 1d/1h/1m, the nearest future's 1d, two options x (1d + 1m): each
    # series is one request (its missing days fit one request's day cap).
    assert first["requests"] == 3 + 3 + 1 + 2 * 2
    assert used == first["requests"]  # as the simulator counted them
    planned = sum(e.requests for e in events if e.kind == "planned")
    assert planned == first["requests"] == sum(1 for e in events if e.kind == "fetched")

    # The options are the call and put at the strike nearest NIFTY's 19 Nov close.
    snapshot = snapshot_in_force(wh, SESSION)
    assert snapshot is not None
    chain = snapshot.index.option_chains("NIFTY")[date(2026, 11, 23)]
    close = wh.query("SELECT close FROM bars_1d WHERE symbol = 'NIFTY' ORDER BY ts DESC LIMIT 1")[
        "close"
    ][0].as_py()
    atm = min(chain.strikes, key=lambda s: (abs(s - round(close * 100)), s))
    assert strike_step(chain) == 5000  # 50-rupee strikes in the simulator
    assert first["options"] == [chain.call(atm).symbol, chain.put(atm).symbol]

    future = next(s for s in first["series"] if s["symbol"].endswith("FUT"))["symbol"]
    expected = expected_counts([future, *first["options"]])
    for (symbol, interval), count in list(expected.items()):
        if symbol == "NIFTY":
            expected[("INDIA VIX", interval)] = count
    check_store(wh, expected)

    # What is stored is what the exchange traded: compare NIFTY's minutes with the simulator.
    start = datetime.combine(INTRADAY_FROM, time(0), tzinfo=IST)
    stop = datetime.combine(END, time(23, 59), tzinfo=IST)
    truth = sim.model.candles("99926000", "ONE_MINUTE", start, stop, now=sim.now())
    stored = wh.read("bars", interval="1m", symbol="NIFTY", columns=["ts", "close"])
    assert [row[4] for row in truth] == stored["close"].to_pylist()
    assert [datetime.fromisoformat(row[0]) for row in truth] == stored["ts"].to_pylist()

    before = rest_requests(sim)
    second = backfill(config, include_vix=True)
    assert second["requests"] == 0 and second["complete"]
    assert rest_requests(sim) == before  # not a single REST call, login included
    check_store(wh, expected)


def test_a_run_killed_halfway_resumes_without_duplicates_or_gaps(
    sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prepare: Callable[[Path], str],
) -> None:
    config = prepare(tmp_path)
    wh = Warehouse(tmp_path / "data")
    original = Warehouse.write
    stored_chunks = 0
    kill_after = 3

    def dies_after_three(self: Warehouse, dataset: str, table: Any, **values: str) -> Any:
        nonlocal stored_chunks
        if dataset == "bars":
            if stored_chunks >= kill_after:
                # the process is gone: nothing more reaches the disk
                raise RuntimeError("killed")
            stored_chunks += 1
        return original(self, dataset, table, **values)

    monkeypatch.setattr(Warehouse, "write", dies_after_three)
    lean = {"include_vix": False, "include_futures": False}
    with pytest.raises(RuntimeError, match="history backfill failed"):
        backfill(config, **lean)
    monkeypatch.setattr(Warehouse, "write", original)
    assert stored_chunks == kill_after

    before = candle_requests(sim)
    resumed = backfill(config, **lean)
    assert resumed["complete"]
    assert candle_requests(sim) - before == resumed["requests"]
    # NIFTY 1d/1h/1m + 2 options x (1d + 1m) = 7 requests in all; the three stored before
    # the kill are not fetched again.
    assert resumed["requests"] == 7 - kill_after
    check_store(wh, expected_counts(resumed["options"]))


def test_rate_limit_and_server_faults_still_give_complete_correct_data(
    sim: SimServer, tmp_path: Path, prepare: Callable[[Path], str]
) -> None:
    config = prepare(tmp_path)
    wh = Warehouse(tmp_path / "data")
    sim.reset()  # re-seeds the simulator's fault dice: the same faults on every run
    sim.set_faults("ratelimit=0.15,http5xx=0.1")
    before = candle_requests(sim)
    summary = backfill(config, include_vix=False)
    received = candle_requests(sim) - before
    sim.clear_faults()

    assert summary["complete"]
    assert summary["requests"] == 8
    assert summary["http_replies"] > summary["requests"]  # some replies were faults, retried
    assert received == summary["http_replies"]  # the simulator saw every retry
    assert summary["rate_limited"] > 0
    future = next(s for s in summary["series"] if s["symbol"].endswith("FUT"))["symbol"]
    check_store(wh, expected_counts([future, *summary["options"]]))
    start = datetime.combine(INTRADAY_FROM, time(0), tzinfo=IST)
    stop = datetime.combine(END, time(23, 59), tzinfo=IST)
    truth = sim.model.candles("99926000", "ONE_HOUR", start, stop, now=sim.now())
    stored = wh.read("bars", interval="1h", symbol="NIFTY", columns=["close"])
    assert [row[4] for row in truth] == stored["close"].to_pylist()


def test_the_request_budget_stops_a_run_that_the_next_one_finishes(
    sim: SimServer, tmp_path: Path, prepare: Callable[[Path], str]
) -> None:
    config = prepare(tmp_path)
    only_nifty = {"include_vix": False, "include_futures": False, "include_options": False}
    capped = backfill(config, max_requests=2, **only_nifty)
    assert capped["requests"] == 2
    assert capped["stopped_by_budget"] and not capped["complete"]
    finished = backfill(config, **only_nifty)
    assert finished["requests"] == 1 and finished["complete"]
    check_store(
        Warehouse(tmp_path / "data"),
        {k: v for k, v in expected_counts([]).items() if k[0] == "NIFTY"},
    )


def test_gaps_queued_for_download_are_fetched_again_and_settled(
    sim: SimServer, tmp_path: Path, prepare: Callable[[Path], str]
) -> None:
    config = prepare(tmp_path)
    only_nifty_1m = {
        "include_vix": False,
        "include_futures": False,
        "include_options": False,
        "daily_from": INTRADAY_FROM,
    }
    assert backfill(config, **only_nifty_1m)["complete"]
    wh = Warehouse(tmp_path / "data")
    day = date(2026, 11, 17)

    def gap(start: time, end: time) -> dict[str, Any]:
        begins = datetime.combine(day, start, tzinfo=IST)
        ends = datetime.combine(day, end, tzinfo=IST)
        return {
            "symbol": "NIFTY",
            "interval": "1m",
            "session_date": day,
            "start_ts": begins,
            "end_ts": ends,
            "minutes": int((ends - begins).total_seconds() // 60),
            "kind": "underlying",
            "action": "redownload",
        }

    # 10:00-10:05 the exchange has (it comes back: resolved); 15:30-15:35 is after the close
    # (nothing can come back: unavailable).
    wh.write(
        "gaps",
        pa.Table.from_pylist(
            [gap(time(10), time(10, 5)), gap(time(15, 30), time(15, 35))], schema=GAPS_SCHEMA
        ),
    )
    again = backfill(config, **only_nifty_1m)
    assert again["requests"] == 1  # the one session, for 1m only
    assert (again["gaps_resolved"], again["gaps_unavailable"]) == (1, 1)
    actions = {
        r["start_ts"].astimezone(IST).time(): r["action"] for r in wh.read("gaps").to_pylist()
    }
    assert actions == {time(10): "resolved", time(15, 30): "unavailable"}
    assert bar_count(wh, "1m", "NIFTY") == 375 * INTRADAY_SESSIONS
    assert backfill(config, **only_nifty_1m)["requests"] == 0


def test_history_without_an_instrument_snapshot_says_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "optbot.toml"
    path.write_text(f'[data]\ndir = "{tmp_path / "data"}"\n', encoding="utf-8")
    with pytest.raises(RuntimeError, match="run the instruments flow first"):
        history_flow(config_path=str(path), end_date=END)
