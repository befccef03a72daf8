"""The ``history`` flow: backfill candles into the warehouse, fetching only what is missing.

For each configured underlying: daily candles over ``[history] daily_years`` and 1-hour and
1-minute candles over ``intraday_months``; the same for INDIA VIX; daily candles of the nearest
future (the volume an index lacks); and 1-minute candles of the current expiries' options at
the ATM strike ± ``[universe] strikes_around_atm`` (ATM from the latest stored close and the
instrument snapshot's chains), preceded by each option's daily candles, whose dates say on
which days the contract traded at all.

Resumable: what is present is read from the warehouse per (symbol, interval, session), only
the missing trading days are requested (grouped into as few requests as the broker's day caps
allow, never re-fetching a stored day), and each request's candles are written as soon as they
arrive. Kill a run halfway and run it again: nothing stored is fetched twice. The one
deliberate exception: sessions of gaps the gaps flow queued (``gaps`` rows with ``action =
"redownload"``) are fetched again, and each such row is then marked ``resolved`` (all its bars
are stored now) or ``unavailable`` (the broker does not have them).

Rate limits: the client's sliding-window limiter spends the account's getCandleData budget
(3/s, 180/min) exactly; a Prefect global concurrency limit (``smartapi-getCandleData``, created
on first use when the Prefect API allows) shares it between workers on other machines or
processes. Without it the flow logs one line and relies on the client's limiter.

Candles are checked before they are stored (``market.candles.check_candles``: high ≥ open and
close, low ≤ both, positive prices, starts on the session grid); refused rows are reported in
a table artifact and never written.

Run it: ``optbot flow history`` (with a progress bar), or in Python
``history_flow(underlyings=["NIFTY"], end_date=date(2026, 11, 19))``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from flows.broker_session import BrokerSession, open_broker_session, retry_if_broker_flaky
from flows.notify import notify_on_failure
from flows.tasks.bar_store import (
    bars_table,
    latest_close,
    redownload_requests,
    settle_redownloads,
    stored_sessions,
    write_bars,
)
from flows.tasks.instrument_snapshot import snapshot_in_force
from flows.tasks.rate_gate import RateGate, shared_rate_gate
from flows.tasks.settings import flow_calendar, flow_warehouse, load_flow_settings
from market.calendar import IST
from market.candles import (
    DAILY,
    CandleProblem,
    SessionCalendar,
    check_candles,
    last_complete_session,
    missing_days,
    missing_days_since_listing,
    missing_traded_days,
    months_back,
    request_ranges,
    session_day,
    years_back,
)
from market.instruments import INDIA_VIX, Instrument, InstrumentIndex
from market.universe import nearest_future, options_around_atm, spot_instrument

if TYPE_CHECKING:
    from broker.smartapi.rest import SmartApiClient
    from warehouse import Warehouse

CANDLE_RATE_LIMIT = "smartapi-getCandleData"
# The published getCandleData budget per account (SPEC §5.4): 3 requests a second.
CANDLE_REQUESTS_PER_SECOND = 3
INTRADAY_INTERVALS = ("1h", "1m")
OPTION_INTERVAL = "1m"
# Tasks in flight at once; the limiter, not this, sets the request pace.
DEFAULT_WORKERS = 4
_REPORTED_PROBLEMS = 200  # bad candles listed in the artifact; the rest are counted

Role = Literal["spot", "vix", "future", "option"]


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """One interval of one instrument over sessions ``first..last``."""

    interval: str
    first: date
    last: date


@dataclass(frozen=True, slots=True)
class BackfillTarget:
    """An instrument and the series to backfill for it, fetched in this order."""

    symbol: str
    token: str
    exchange: str
    role: Role
    series: tuple[SeriesSpec, ...]

    @property
    def is_contract(self) -> bool:
        """A future or an option: it trades only between listing and expiry."""
        return self.role in ("future", "option")


def _target(symbol: str, inst: Instrument, role: Role, specs: list[SeriesSpec]) -> BackfillTarget:
    return BackfillTarget(symbol, inst.token, inst.exchange, role, tuple(specs))


@dataclass(frozen=True)
class HistoryPlan:
    """Which instruments and series a run backfills, from the instrument snapshot in force.

    First the underlyings' daily candles (their latest close places the ATM strike), then
    everything else at once, so the request budget is never idle waiting on one series.
    """

    index: InstrumentIndex
    underlyings: list[str]
    end: date
    daily_first: date
    intraday_first: date

    def _daily(self) -> list[SeriesSpec]:
        return [SeriesSpec(DAILY, self.daily_first, self.end)]

    def _intraday(self, intervals: tuple[str, ...] = INTRADAY_INTERVALS) -> list[SeriesSpec]:
        return [SeriesSpec(interval, self.intraday_first, self.end) for interval in intervals]

    def underlying_daily(self) -> list[BackfillTarget]:
        """Daily candles of each underlying's index or equity."""
        return [
            _target(name, spot_instrument(self.index, name), "spot", self._daily())
            for name in self.underlyings
        ]

    def everything_else(self, *, include_vix: bool, include_futures: bool) -> list[BackfillTarget]:
        """The underlyings' intraday candles, INDIA VIX, and the nearest futures' daily candles."""
        targets = [
            _target(name, spot_instrument(self.index, name), "spot", self._intraday())
            for name in self.underlyings
        ]
        if include_vix:
            vix = self.index.index_instrument(INDIA_VIX)
            targets.append(_target(INDIA_VIX, vix, "vix", self._daily() + self._intraday()))
        for name in self.underlyings if include_futures else ():
            future = nearest_future(self.index, name, self.end)
            if future is not None:
                targets.append(_target(future.symbol, future, "future", self._daily()))
        return targets

    def options(self, wh: Warehouse, strikes_each_side: int, logger: Any) -> list[BackfillTarget]:
        """The current expiries' calls and puts around each underlying's latest stored close;
        each option's daily candles first (they tell on which days it traded), then 1-minute."""
        specs = self._daily() + self._intraday((OPTION_INTERVAL,))
        targets: list[BackfillTarget] = []
        for name in self.underlyings:
            close = latest_close(wh, name, self.end)
            if close is None:
                logger.warning(
                    "%s: no close stored up to %s; its options are skipped", name, self.end
                )
                continue
            price_paise = int(close * 100)
            for leg in options_around_atm(
                self.index, name, price_paise, self.end, strikes_each_side
            ):
                targets.append(_target(leg.symbol, leg, "option", specs))
        return targets


# --------------------------------------------------------------------------- run-time helpers


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Planned requests (``planned``) or one request done (``fetched``), for a progress bar."""

    kind: Literal["planned", "fetched"]
    symbol: str
    interval: str
    requests: int = 0
    rows: int = 0


ProgressListener = Callable[[ProgressEvent], None]
_listeners: list[ProgressListener] = []
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """Receive progress events of history runs in this process while the block runs."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _emit(event: ProgressEvent) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        with contextlib.suppress(Exception):  # a broken display never stops a download
            listener(event)


@contextlib.contextmanager
def rich_progress(console: Any = None) -> Iterator[None]:
    """A rich progress bar of candle requests for ``optbot flow history``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]history[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task("planning", total=0)
        lock = threading.Lock()

        def show(event: ProgressEvent) -> None:
            with lock:
                if event.kind == "planned":
                    total = (bar.tasks[0].total or 0) + event.requests
                    bar.update(job, total=total)
                else:
                    bar.update(job, advance=1, description=f"{event.symbol} {event.interval}")

        with progress_listener(show):
            yield


class RequestBudget:
    """At most ``limit`` candle requests in a run (None: no cap); shared by all tasks."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one request, or return False when the budget is used up."""
        with self._lock:
            if self.limit is not None and self.spent >= self.limit:
                return False
            self.spent += 1
            return True


# --------------------------------------------------------------------------- one target


@dataclass(slots=True)
class SeriesReport:
    """What backfilling one series did."""

    symbol: str
    interval: str
    missing_days: int = 0
    requests: int = 0
    rows: int = 0
    still_missing: int = 0
    problems: list[CandleProblem] = field(default_factory=list)
    stopped_by_budget: bool = False
    gaps_settled: dict[str, int] = field(default_factory=dict)  # queued gaps, by new action


async def _backfill_series(
    client: SmartApiClient,
    target: BackfillTarget,
    spec: SeriesSpec,
    wh: Warehouse,
    calendar: SessionCalendar,
    budget: RequestBudget,
    gate: RateGate,
) -> SeriesReport:
    from broker.smartapi.limits import CANDLE_MAX_DAYS
    from broker.smartapi.rest import broker_interval

    report = SeriesReport(target.symbol, spec.interval)
    present = stored_sessions(wh, spec.interval, target.symbol, spec.first, spec.last)
    if not target.is_contract:
        wanted = missing_days(spec.first, spec.last, present, calendar)
    elif spec.interval == DAILY:
        wanted = missing_days_since_listing(spec.first, spec.last, present, calendar)
    else:
        traded = stored_sessions(wh, DAILY, target.symbol, spec.first, spec.last)
        wanted = missing_traded_days(spec.first, spec.last, traded, present)
    report.missing_days = len(wanted)
    # Gaps the gaps flow queued for download again: their sessions are fetched once more.
    queued = redownload_requests(wh, target.symbol, spec.interval, spec.first, spec.last)
    wanted = sorted(set(wanted) | {row["session_date"] for row in queued})
    cap = CANDLE_MAX_DAYS[broker_interval(spec.interval)]
    ranges = request_ranges(wanted, calendar, cap)
    _emit(ProgressEvent("planned", target.symbol, spec.interval, requests=len(ranges)))
    fetched_days: set[date] = set()
    requested_days: set[date] = set()
    for span in ranges:
        if not budget.take():
            report.stopped_by_budget = True
            break
        await gate.wait()
        candles = await client.candles(
            target.exchange, target.token, spec.interval, span.start(), span.end()
        )
        report.requests += 1
        days = set(span.days(calendar))
        requested_days |= days
        checked = check_candles(candles, spec.interval, calendar)
        good = [c for c in checked.good if session_day(c.start) in days]
        position = {id(c): i for i, c in enumerate(candles)}
        problems = list(checked.problems) + [
            CandleProblem(position[id(c)], c.start, "outside the requested sessions")
            for c in checked.good
            if session_day(c.start) not in days
        ]
        table = bars_table(good, symbol=target.symbol, token=target.token, exchange=target.exchange)
        report.rows += write_bars(wh, table, spec.interval)
        report.problems.extend(problems)
        fetched_days.update(session_day(c.start) for c in good)
        _emit(ProgressEvent("fetched", target.symbol, spec.interval, requests=1, rows=len(good)))
    refetched = [row for row in queued if row["session_date"] in requested_days]
    if refetched:
        report.gaps_settled = settle_redownloads(wh, refetched, spec.interval, calendar)
    report.still_missing = len(set(wanted) - fetched_days)
    return report


@task(
    name="backfill-candles",
    task_run_name="backfill-{target.symbol}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_broker_flaky,
)
def backfill_candles(
    target: BackfillTarget,
    broker: BrokerSession,
    data_dir: Path,
    calendar: SessionCalendar,
    budget: RequestBudget,
    gate: RateGate,
) -> list[SeriesReport]:
    """Fetch and store the missing candles of one instrument, series by series."""
    from warehouse import Warehouse

    wh = Warehouse(data_dir)

    async def work(client: SmartApiClient) -> list[SeriesReport]:
        reports = []
        for spec in target.series:
            reports.append(await _backfill_series(client, target, spec, wh, calendar, budget, gate))
        return reports

    reports = broker.run(work)
    logger = get_run_logger()
    for report in reports:
        logger.info(
            "%s %s: %d missing sessions, %d requests, %d bars stored%s",
            report.symbol,
            report.interval,
            report.missing_days,
            report.requests,
            report.rows,
            f", {len(report.problems)} bad candles refused" if report.problems else "",
        )
    return reports


# --------------------------------------------------------------------------- report


def _summary_table(reports: list[SeriesReport]) -> list[dict[str, Any]]:
    return [
        {
            "symbol": r.symbol,
            "interval": r.interval,
            "missing_sessions": r.missing_days,
            "requests": r.requests,
            "bars_stored": r.rows,
            "still_missing": r.still_missing,
            "bad_candles": len(r.problems),
        }
        for r in reports
    ]


def _problem_rows(reports: list[SeriesReport]) -> list[dict[str, Any]]:
    rows = [
        {
            "symbol": r.symbol,
            "interval": r.interval,
            "start": p.start.astimezone(IST).isoformat(),
            "reason": p.reason,
        }
        for r in reports
        for p in r.problems
    ]
    return rows[:_REPORTED_PROBLEMS]


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# History backfill to {summary['end_date']}",
        "",
        f"* daily from {summary['daily_from']}, intraday from {summary['intraday_from']}",
        f"* instrument snapshot {summary['snapshot_date']}",
        f"* getCandleData requests: {summary['requests']} "
        f"({summary['rate_limited']} refused for rate and retried)",
        f"* bars stored: {summary['bars_stored']}; bad candles refused: {summary['bad_candles']}",
        f"* complete: {'yes' if summary['complete'] else 'no'}",
    ]
    if summary["stopped_by_budget"]:
        lines.append(f"* stopped at the request budget ({summary['max_requests']}); run again")
    if summary["failed"]:
        lines.append(f"* failed: {', '.join(summary['failed'])}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- flow


def _task_runner() -> Any:
    # Threads, not processes: tasks share the session handle, the budget and the rate gate.
    return ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS)


def _run_targets(
    targets: list[BackfillTarget],
    broker: BrokerSession,
    data_dir: Path,
    calendar: SessionCalendar,
    budget: RequestBudget,
    gate: RateGate,
) -> tuple[list[SeriesReport], list[str]]:
    futures = [
        backfill_candles.submit(target, broker, data_dir, calendar, budget, gate)
        for target in targets
    ]
    wait(futures)
    reports: list[SeriesReport] = []
    failed: list[str] = []
    for target, future in zip(targets, futures, strict=True):
        if future.state.is_completed():
            reports.extend(future.result())
        else:
            failed.append(target.symbol)
            get_run_logger().error(
                "%s: backfill failed (%s)", target.symbol, future.state.message or "no message"
            )
    return reports, failed


@flow(name="history", task_runner=_task_runner(), on_failure=[notify_on_failure])
def history_flow(
    underlyings: list[str] | None = None,
    end_date: date | None = None,
    daily_years: int | None = None,
    intraday_months: int | None = None,
    daily_from: date | None = None,
    intraday_from: date | None = None,
    strikes_around_atm: int | None = None,
    include_options: bool = True,
    include_futures: bool = True,
    include_vix: bool = True,
    max_requests: int | None = None,
    shared_rate_limit: bool = True,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Backfill the missing candles of the universe up to ``end_date`` (resumable).

    Defaults come from the configuration: ``underlyings`` from ``[universe]``, the look-back
    from ``[history]`` (``daily_from`` / ``intraday_from`` override it with a first session),
    ``strikes_around_atm`` from ``[universe]``; ``end_date`` is the last complete session.
    ``max_requests`` caps the candle requests of this run (the rest waits for the next one).
    ``shared_rate_limit`` also takes a slot of the Prefect global rate limit per request, so
    workers in other processes share the account's budget.
    """
    logger = get_run_logger()
    settings = load_flow_settings(config_path, data_dir)
    calendar = flow_calendar(settings)
    now = datetime.now(IST)
    end = end_date or last_complete_session(now, calendar)
    daily_first = daily_from or years_back(end, daily_years or settings.history.daily_years)
    intraday_first = intraday_from or months_back(
        end, intraday_months or settings.history.intraday_months
    )
    names = [name.upper() for name in (underlyings or settings.universe.underlyings)]
    n_strikes = (
        settings.universe.strikes_around_atm if strikes_around_atm is None else strikes_around_atm
    )
    wh = flow_warehouse(settings)
    snapshot = snapshot_in_force(wh, max(end, now.date()))
    if snapshot is None:
        raise RuntimeError(
            "no instrument snapshot in the warehouse: run the instruments flow first "
            "(optbot flow instruments)"
        )
    plan = HistoryPlan(snapshot.index, names, end, daily_first, intraday_first)
    first_wave = plan.underlying_daily()
    second_wave = plan.everything_else(include_vix=include_vix, include_futures=include_futures)

    broker = open_broker_session(settings)
    budget = RequestBudget(max_requests)
    data = Path(settings.data.dir)
    gate = (
        shared_rate_gate(CANDLE_RATE_LIMIT, CANDLE_REQUESTS_PER_SECOND, logger)
        if shared_rate_limit
        else RateGate(None)
    )
    try:
        reports, failed = _run_targets(first_wave, broker, data, calendar, budget, gate)
        options = plan.options(wh, n_strikes, logger) if include_options else []
        more, more_failed = _run_targets(
            second_wave + options, broker, data, calendar, budget, gate
        )
    finally:
        gate.close()
    reports += more
    failed += more_failed

    stopped = any(r.stopped_by_budget for r in reports)
    summary: dict[str, Any] = {
        "end_date": end.isoformat(),
        "daily_from": daily_first.isoformat(),
        "intraday_from": intraday_first.isoformat(),
        "snapshot_date": snapshot.snapshot_date.isoformat(),
        "underlyings": names,
        "options": [t.symbol for t in options],
        "requests": sum(r.requests for r in reports),
        "http_replies": broker.counter.requests("getCandleData"),
        "rate_limited": broker.counter.refused_for_rate("getCandleData"),
        "request_span_s": round(broker.counter.span_s("getCandleData"), 3),
        "bars_stored": sum(r.rows for r in reports),
        "bad_candles": sum(len(r.problems) for r in reports),
        "still_missing": sum(r.still_missing for r in reports),
        "gaps_resolved": sum(r.gaps_settled.get("resolved", 0) for r in reports),
        "gaps_unavailable": sum(r.gaps_settled.get("unavailable", 0) for r in reports),
        "stopped_by_budget": stopped,
        "max_requests": max_requests,
        "failed": failed,
        "complete": not failed and not stopped,
        "series": _summary_table(reports),
    }
    create_markdown_artifact(
        markdown=_markdown(summary), key="history-report", description=f"History to {end}"
    )
    create_table_artifact(
        table=summary["series"], key="history-series", description="Requests and bars per series"
    )
    problems = _problem_rows(reports)
    if problems:
        create_table_artifact(
            table=problems, key="history-bad-candles", description="Candles refused, not stored"
        )
    if failed:
        raise RuntimeError(f"history backfill failed for {', '.join(failed)}; run it again")
    return summary
