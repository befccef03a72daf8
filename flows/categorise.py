"""The categorise flow: each underlying's category (CE / PE / NO_TRADE) for the next session.

Reads the daily bars of every configured underlying, computes daily ADX(14), +DI, -DI and the
volume test (``market.categorise``), and writes one ``categories`` row per underlying keyed by
the session it is *for*: the next trading day after ``as_of``. The intraday worker reads that
row at 09:00.

An index has no volume of its own, so its volume is the nearest futures contract's daily
volume, spliced across expiries (``market.categorise.nearest_contract_volume``) from the
futures' daily bars in the warehouse. When those do not cover the sessions the volume test
needs, the flow downloads the listed futures' daily candles (contracts in the instrument
snapshot in force) and stores them as ``bars`` (interval 1d) like any other daily bars.

``as_of`` defaults to the latest daily bar among the underlyings, but never later than the last
completed session; an underlying whose bars stop earlier is NO_TRADE with reason
``stale_data``. Underlying bars are looked up under the underlying's name (``NIFTY``), then
under its index or cash symbol from the snapshot (``Nifty 50``, ``SBIN-EQ``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.broker_session import retry_if_broker_flaky
from flows.notify import notify_on_failure
from flows.tasks.bar_store import bars_table, write_bars
from market.calendar import IST, NseCalendar
from market.candles import check_candles
from market.categorise import (
    Category,
    FuturesDay,
    Thresholds,
    Verdict,
    categorise,
    nearest_contract_volume,
    stale_verdict,
)
from market.gaps import future_contract, last_completed_session
from market.instruments import INDEX_TOKENS

if TYPE_CHECKING:
    import pyarrow as pa

    from flows.broker_session import BrokerSession
    from flows.tasks.instrument_snapshot import Snapshot
    from optbot.config import Settings
    from warehouse import Warehouse

DAILY = "1d"
# Daily bars read per underlying: ADX is Wilder-smoothed, so older bars still shape today's
# value a little; 400 sessions (~1.6 years) make the rest negligible.
HISTORY_SESSIONS = 400


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ist_day(moment: datetime) -> date:
    return moment.astimezone(IST).date()


_IST_DAY_SQL = "CAST((epoch_us(ts) + 19800000000) // 86400000000 AS INTEGER)"


@dataclass(frozen=True, slots=True)
class DailySeries:
    """One symbol's daily bars, oldest first (one bar per IST day)."""

    symbol: str
    days: np.ndarray  # datetime64[D], the bars' IST days
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def last_day(self) -> date | None:
        """The last bar's day, or None when there are no bars."""
        return self.days[-1].astype(date) if len(self.days) else None

    def until(self, as_of: date) -> DailySeries:
        """The bars on or before ``as_of``."""
        n = int(np.searchsorted(self.days, np.datetime64(as_of, "D"), "right"))
        return DailySeries(
            self.symbol,
            self.days[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )


def series_by_symbol(table: pa.Table) -> dict[str, DailySeries]:
    """Split rows of ``symbol, day`` (days since 1970-01-01), ``high, low, close, volume``
    sorted by symbol and day into per-symbol series."""
    if table.num_rows == 0:
        return {}
    symbols = table["symbol"].to_numpy(zero_copy_only=False)
    days = table["day"].to_numpy().astype("datetime64[D]")
    high = table["high"].to_numpy()
    low = table["low"].to_numpy()
    close = table["close"].to_numpy()
    volume = table["volume"].to_numpy()
    starts = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    bounds = zip(
        np.concatenate(([0], starts)), np.concatenate((starts, [len(symbols)])), strict=True
    )
    return {
        str(symbols[i]): DailySeries(
            str(symbols[i]), days[i:j], high[i:j], low[i:j], close[i:j], volume[i:j]
        )
        for i, j in bounds
    }


def read_daily_bars(wh: Warehouse, symbols: Sequence[str], since: date) -> pa.Table:
    """Daily bars of ``symbols`` from ``since``: ``symbol, day, high, low, close, volume``."""
    from warehouse.gaps_sql import query_bars

    if not symbols:
        return _empty_daily()
    since_ts = datetime.combine(since, datetime.min.time(), IST).astimezone(UTC)
    names = ", ".join(_quote(s) for s in symbols)
    return query_bars(
        wh,
        DAILY,
        f"SELECT symbol, {_IST_DAY_SQL} AS day, high, low, close, volume FROM bars_1d "
        f"WHERE symbol IN ({names}) AND ts >= TIMESTAMPTZ '{since_ts.isoformat()}' "
        "ORDER BY symbol, ts",
    )


def _empty_daily() -> pa.Table:
    """An empty result of :func:`read_daily_bars`."""
    import pyarrow as pa

    return pa.table(
        {
            "symbol": pa.array([], pa.string()),
            "day": pa.array([], pa.int32()),
            "high": pa.array([], pa.float64()),
            "low": pa.array([], pa.float64()),
            "close": pa.array([], pa.float64()),
            "volume": pa.array([], pa.int64()),
        }
    )


def read_futures_volume(wh: Warehouse, since: date) -> list[tuple[str, date, int]]:
    """Daily volume of every stored futures symbol (``…FUT``) from ``since``."""
    from warehouse.gaps_sql import query_bars

    since_ts = datetime.combine(since, datetime.min.time(), IST).astimezone(UTC)
    rows = query_bars(
        wh,
        DAILY,
        f"SELECT symbol, {_IST_DAY_SQL} AS day, volume FROM bars_1d "
        f"WHERE symbol LIKE '%FUT' AND ts >= TIMESTAMPTZ '{since_ts.isoformat()}'",
    ).to_pylist()
    epoch = date(1970, 1, 1)
    return [(r["symbol"], epoch + timedelta(days=r["day"]), int(r["volume"])) for r in rows]


# --- tasks --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the verdicts are computed from."""

    as_of: date
    series: dict[str, DailySeries]  # by underlying name (whatever symbol it was stored under)
    futures: dict[str, list[FuturesDay]]  # by underlying name, for indices
    indices: frozenset[str]


def _aliases(name: str, snapshot: Snapshot | None) -> list[str]:
    names = [name]
    if snapshot is not None:
        for inst in snapshot.index:
            if inst.name == name and not inst.is_derivative and inst.symbol not in names:
                names.append(inst.symbol)
    if f"{name}-EQ" not in names:
        names.append(f"{name}-EQ")
    return names


def _is_index(name: str, snapshot: Snapshot | None) -> bool:
    if name in INDEX_TOKENS:
        return True
    if snapshot is None:
        return False
    return any(inst.name == name and inst.is_index for inst in snapshot.index)


def _futures_days(
    rows: Sequence[tuple[str, date, int]], indices: frozenset[str], expiries: Mapping[str, date]
) -> dict[str, list[FuturesDay]]:
    out: dict[str, list[FuturesDay]] = {name: [] for name in indices}
    for symbol, day, volume in rows:
        parsed = future_contract(symbol)
        if parsed is None or parsed[0] not in indices:
            continue
        out[parsed[0]].append(FuturesDay(day, expiries.get(symbol, parsed[1]), volume))
    return out


def gather_inputs(
    wh: Warehouse,
    calendar: NseCalendar,
    underlyings: Sequence[str],
    as_of: date | None,
    snapshot: Snapshot | None,
) -> Inputs:
    """Daily bars of the underlyings and of index futures, and the day they are judged on."""
    latest_session = last_completed_session(calendar, datetime.now(UTC))
    horizon = as_of or latest_session
    since = horizon - timedelta(days=HISTORY_SESSIONS * 7 // 5 + 30)
    aliases = {name: _aliases(name, snapshot) for name in underlyings}
    indices = frozenset(name for name in underlyings if _is_index(name, snapshot))
    stored = series_by_symbol(
        read_daily_bars(wh, [a for names in aliases.values() for a in names], since)
    )
    series: dict[str, DailySeries] = {}
    for name, names in aliases.items():
        for alias in names:
            if alias in stored:
                series[name] = stored[alias].until(horizon)
                break
    if as_of is None:
        ends = [s.last_day for s in series.values() if s.last_day is not None]
        as_of = max(ends) if ends else latest_session
    expiries = {
        inst.symbol: inst.expiry
        for inst in (snapshot.index if snapshot is not None else ())
        if inst.is_future and inst.expiry is not None
    }
    futures = _futures_days(read_futures_volume(wh, since) if indices else [], indices, expiries)
    return Inputs(as_of, series, futures, indices)


@task(name="categorise-read-bars", cache_policy=NO_CACHE, persist_result=False)
def load_inputs(
    wh: Warehouse,
    calendar: NseCalendar,
    underlyings: Sequence[str],
    as_of: date | None,
    snapshot: Snapshot | None,
) -> Inputs:
    """Task: :func:`gather_inputs`."""
    return gather_inputs(wh, calendar, underlyings, as_of, snapshot)


def volume_sessions(calendar: NseCalendar, as_of: date, count: int) -> list[date]:
    """The ``count`` trading days ending with ``as_of`` (oldest first)."""
    days = [as_of]
    while len(days) < count:
        days.append(calendar.previous_trading_day(days[-1]))
    return days[::-1]


@task(
    name="categorise-fetch-futures",
    cache_policy=NO_CACHE,
    persist_result=False,
    # the client already retries single requests; this is for a whole fetch the broker failed
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_broker_flaky,
)
def fetch_futures_bars(
    wh: Warehouse,
    broker: BrokerSession,
    snapshot: Snapshot,
    names: Sequence[str],
    first: date,
    as_of: date,
    calendar: NseCalendar,
) -> int:
    """Download the listed futures' daily candles from ``first`` to ``as_of``; store them.

    The candles pass the same check as the history flow's (``market.candles.check_candles``)
    and are stored through the same helpers; refused ones are logged, never stored.
    """
    contracts = [
        inst
        for name in names
        for inst in snapshot.index.futures(name)
        if inst.expiry is not None and inst.expiry >= first
    ]
    start = datetime.combine(first, datetime.min.time(), IST)
    end = datetime.combine(as_of, datetime.max.time().replace(microsecond=0), IST)

    async def work(client: Any) -> list[tuple[Any, list[Any]]]:
        out = []
        for inst in contracts:
            out.append((inst, await client.candles(inst.exchange, inst.token, DAILY, start, end)))
        return out

    logger = get_run_logger()
    stored = 0
    for inst, candles in broker.run(work):
        checked = check_candles([c for c in candles if _ist_day(c.start) <= as_of], DAILY, calendar)
        for problem in checked.problems:
            logger.warning("%s daily candle refused: %s", inst.symbol, problem)
        table = bars_table(
            checked.good, symbol=inst.symbol, token=inst.token, exchange=inst.exchange
        )
        stored += write_bars(wh, table, DAILY)
    logger.info(
        "futures daily candles: %d rows for %d contracts of %s",
        stored,
        len(contracts),
        ", ".join(names),
    )
    return stored


def verdict_for(
    name: str, inputs: Inputs, thresholds: Thresholds, sessions: Sequence[date]
) -> Verdict:
    """One underlying's verdict from the loaded inputs."""
    series = inputs.series.get(name)
    last = series.last_day if series is not None else None
    if series is None or last is None:
        return stale_verdict(None, inputs.as_of)
    if last < inputs.as_of:
        return stale_verdict(last, inputs.as_of)
    own = [int(v) for v in series.volume]
    recent = own[-len(sessions) :]
    volume: list[int | None] | None
    if name in inputs.indices or (recent and not any(recent)):
        spliced = nearest_contract_volume(inputs.futures.get(name, []))
        volume = [spliced.get(day) for day in series.days.astype(date)]
    else:
        volume = list(own)
    return categorise(series.high, series.low, series.close, volume, thresholds)


@task(name="categorise-write", cache_policy=NO_CACHE, persist_result=False)
def write_categories(wh: Warehouse, session_date: date, verdicts: Mapping[str, Verdict]) -> int:
    """One ``categories`` row per underlying for ``session_date``."""
    import pyarrow as pa

    from warehouse.schemas import CATEGORIES_SCHEMA

    rows = [
        {
            "session_date": session_date,
            "underlying": name,
            "category": v.category.value,
            "adx": v.adx,
            "plus_di": v.plus_di,
            "minus_di": v.minus_di,
            "volume": v.volume,
            "volume_avg": v.volume_avg,
            "reason": v.reason_field,
        }
        for name, v in sorted(verdicts.items())
    ]
    wh.write("categories", pa.Table.from_pylist(rows, schema=CATEGORIES_SCHEMA))
    return len(rows)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def render_summary(session_date: date, as_of: date, verdicts: Mapping[str, Verdict]) -> str:
    """Markdown for the artifact: the categories and why."""
    lines = [
        f"# Categories for {session_date.isoformat()} (daily bars up to {as_of.isoformat()})",
        "",
        "| underlying | category | ADX | +DI | -DI | volume | avg | reason |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in sorted(verdicts.items()):
        volume = "—" if v.volume is None else f"{v.volume:,}"
        average = "—" if v.volume_avg is None else f"{v.volume_avg:,.0f}"
        reason = v.reason_field.replace("|", "\\|")
        lines.append(
            f"| {name} | **{v.category.value}** | {_num(v.adx)} | {_num(v.plus_di)} | "
            f"{_num(v.minus_di)} | {volume} | {average} | {reason} |"
        )
    return "\n".join(lines) + "\n"


# --- the flow -----------------------------------------------------------------------------


def thresholds_from(settings: Settings) -> Thresholds:
    """The ``[categorise]`` thresholds; the daily ADX period is 14."""
    c = settings.categorise
    return Thresholds(
        adx_trend=c.adx_trend,
        adx_no_trend=c.adx_no_trend,
        di_band=c.di_band,
        volume_lookback=c.volume_lookback,
        period=14,
    )


@flow(name="categorise", log_prints=False, on_failure=[notify_on_failure])
def categorise_flow(
    config_path: str | None = None,
    data_dir: str | None = None,
    as_of: date | None = None,
    underlyings: list[str] | None = None,
    fetch_futures: bool = True,
) -> dict[str, Any]:
    """Categorise every underlying for the session after ``as_of`` and store the result.

    ``as_of``: the last daily bar to use (default: the latest stored, at most the last
    completed session). ``underlyings``: default ``[universe] underlyings``.
    ``fetch_futures``: download index futures' daily candles when the warehouse lacks them.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from flows.tasks.instrument_snapshot import snapshot_in_force
    from flows.tasks.settings import flow_warehouse, load_flow_settings
    from flows.trading_days import today_ist, trading_calendar

    log = get_run_logger()
    settings = load_flow_settings(config_path, data_dir)
    wh = flow_warehouse(settings)
    calendar = trading_calendar(settings)
    names = list(dict.fromkeys(n.upper() for n in (underlyings or settings.universe.underlyings)))
    thresholds = thresholds_from(settings)
    # Futures of an earlier day are found in the snapshot of that day, else the latest one.
    snapshot = snapshot_in_force(wh, as_of or today_ist()) or snapshot_in_force(wh, today_ist())

    inputs = load_inputs(wh, calendar, names, as_of, snapshot)
    sessions = volume_sessions(calendar, inputs.as_of, thresholds.volume_lookback + 1)
    short = [
        name
        for name in sorted(inputs.indices)
        if not _covers(inputs.futures.get(name, []), sessions)
    ]
    if short and fetch_futures:
        if snapshot is None:
            log.warning("no instrument snapshot: cannot find futures of %s", ", ".join(short))
        else:
            from flows.broker_session import open_broker_session

            broker = open_broker_session(settings)
            fetch_futures_bars(wh, broker, snapshot, short, sessions[0], inputs.as_of, calendar)
            inputs = load_inputs(wh, calendar, names, inputs.as_of, snapshot)

    verdicts = {name: verdict_for(name, inputs, thresholds, sessions) for name in names}
    session_date = calendar.next_trading_day(inputs.as_of)
    write_categories(wh, session_date, verdicts)

    markdown = render_summary(session_date, inputs.as_of, verdicts)
    create_markdown_artifact(
        markdown=markdown, key="categories", description=f"Categories for {session_date}"
    )
    create_table_artifact(
        table=[
            {"underlying": n, "category": v.category.value, "reason": v.reason_field}
            for n, v in sorted(verdicts.items())
        ],
        key="categories-table",
        description=f"Categories for {session_date}",
    )
    counts = {c.value: sum(1 for v in verdicts.values() if v.category is c) for c in Category}
    log.info(
        "categories for %s (bars to %s): %s",
        session_date,
        inputs.as_of,
        ", ".join(f"{n} {v.category.value}" for n, v in sorted(verdicts.items())),
    )
    return {
        "session_date": session_date.isoformat(),
        "as_of": inputs.as_of.isoformat(),
        "ce": counts["CE"],
        "pe": counts["PE"],
        "no_trade": counts["NO_TRADE"],
        "categories": {n: v.category.value for n, v in sorted(verdicts.items())},
        "reasons": {n: v.reason_field for n, v in sorted(verdicts.items())},
    }


def _covers(rows: Sequence[FuturesDay], sessions: Sequence[date]) -> bool:
    have = nearest_contract_volume(rows)
    return all(day in have for day in sessions)
