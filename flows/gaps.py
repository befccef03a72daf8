"""The gaps flow: find missing bars, fill the few that may be filled, queue the rest, report.

For every bar interval with data, each stored symbol is checked against the calendar's expected
bars (``market.gaps``) inside the history window — underlyings and futures up to the last
completed session, options only between their own first and last bars (they enter and leave
the ATM window). Missing bars are found in DuckDB (``warehouse.gaps_sql``).

Then, per gap (DESIGN safety invariant 7):

* 1-minute underlying gaps under 5 minutes with a real bar on each side are filled by linear
  interpolation; the new bars carry ``interpolated = true`` and ``source = "interpolated"``;
* all others — every option and future gap included — are queued for download again.

The ``gaps`` dataset records each gap with its ``action``: ``interpolated``, ``redownload``,
``unavailable`` or ``resolved``. The contract with the history flow: a ``redownload`` row asks
for candles of ``symbol`` at ``interval`` over [``start_ts``, ``end_ts``) (UTC, end exclusive)
again. If the broker returns nothing there, the history flow may rewrite the row (same key)
with ``action = "unavailable"``; the gaps flow then keeps reporting it but does not queue it
again. The next gaps run marks a ``redownload`` or ``unavailable`` row ``resolved`` once the
bars are there. ``kind`` is the instrument kind (``underlying``, ``future``, ``option``,
``other``). An option is checked only on days it traded at all (days with a daily bar, when
it has daily bars).

The report, ranked by ``market.gaps.gap_score``, goes to ``<data>/reports/gaps-<as_of>.md`` and
``.html`` and to a Prefect Markdown artifact.
"""

from __future__ import annotations

import contextlib
import html
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.notify import notify_on_failure
from market.calendar import IST, NseCalendar
from market.gaps import (
    DAILY,
    Gap,
    GapAction,
    InstrumentKind,
    bar_grid,
    classify_symbol,
    contract_expiry,
    day_runs,
    gap_action,
    gap_of_run,
    gap_score,
    interpolate_gap,
    last_completed_session,
    sessions_age,
    trading_days,
)
from market.instruments import INDEX_TOKENS, INDIA_VIX

if TYPE_CHECKING:
    from warehouse import Warehouse

REPORT_NAME = "gaps"
REPORT_ROWS = 200  # rows of the ranked table in the report; the dataset holds all of them
_ONE_MINUTE = timedelta(minutes=1)


# --- context ------------------------------------------------------------------------------


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clipped to the month's end)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in range(day.day, 0, -1):
        with contextlib.suppress(ValueError):
            return date(year, month, candidate)
    raise AssertionError("unreachable: every month has a first day")


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """What the gap rules need to know about a stored symbol."""

    kind: InstrumentKind
    expiry: date | None = None


@task(name="gaps-symbol-kinds", cache_policy=NO_CACHE, persist_result=False)
def symbol_kinds(wh: Warehouse, underlyings: Sequence[str]) -> dict[str, SymbolInfo]:
    """Instrument kind (and expiry) of every symbol any instrument snapshot has listed."""
    from warehouse import QueryError

    try:
        rows = wh.query(
            "SELECT symbol, arg_max(instrument_type, snapshot_date) AS instrument_type, "
            "arg_max(expiry, snapshot_date) AS expiry FROM instruments GROUP BY symbol"
        ).to_pylist()
    except QueryError:
        rows = []
    known = set(underlyings) | {INDIA_VIX}
    out: dict[str, SymbolInfo] = {}
    for row in rows:
        kind = classify_symbol(row["symbol"], instrument_type=row["instrument_type"])
        out[row["symbol"]] = SymbolInfo(kind, row["expiry"])
    for name in known:
        out.setdefault(name, SymbolInfo(InstrumentKind.UNDERLYING))
    return out


def info_of(symbol: str, kinds: Mapping[str, SymbolInfo], underlyings: Sequence[str]) -> SymbolInfo:
    """A symbol's info from the snapshots, else from its shape."""
    found = kinds.get(symbol)
    if found is not None:
        return found
    kind = classify_symbol(symbol, underlyings=[*underlyings, INDIA_VIX, *INDEX_TOKENS])
    return SymbolInfo(kind, contract_expiry(symbol))


# --- detection ----------------------------------------------------------------------------


@dataclass(slots=True)
class IntervalCheck:
    """One interval's gaps and what was checked."""

    interval: str
    window_start: date
    symbols: int
    gaps: list[Gap] = field(default_factory=list)


def _ist_day(moment: datetime) -> date:
    return moment.astimezone(IST).date()


def traded_days(wh: Warehouse, symbols: Sequence[str]) -> dict[str, set[date]]:
    """Days with a daily bar, for those of ``symbols`` that have daily bars at all."""
    from warehouse.gaps_sql import query_bars

    if not symbols:
        return {}
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in symbols)
    rows = query_bars(
        wh,
        DAILY,
        "SELECT symbol, CAST((epoch_us(ts) + 19800000000) // 86400000000 AS INTEGER) AS day "
        f"FROM bars_1d WHERE symbol IN ({names})",
    ).to_pylist()
    epoch = date(1970, 1, 1)
    out: dict[str, set[date]] = {}
    for row in rows:
        out.setdefault(row["symbol"], set()).add(epoch + timedelta(days=row["day"]))
    return out


def find_interval_gaps(
    wh: Warehouse,
    calendar: NseCalendar,
    interval: str,
    window_start: date,
    as_of: date,
    kinds: Mapping[str, SymbolInfo],
    underlyings: Sequence[str],
) -> IntervalCheck:
    """Missing bars of one interval for every stored symbol, as gap runs."""
    from warehouse.gaps_sql import bar_coverage, missing_runs

    coverage = bar_coverage(wh, interval).to_pylist()
    days = trading_days(calendar, window_start, as_of)
    check = IntervalCheck(interval, window_start, len(coverage))
    if not days or not coverage:
        return check
    grid = bar_grid(calendar, days, interval)
    infos = {row["symbol"]: info_of(row["symbol"], kinds, underlyings) for row in coverage}
    traded = (
        traded_days(wh, [s for s, i in infos.items() if i.kind is InstrumentKind.OPTION])
        if interval != DAILY
        else {}
    )
    ranges: list[tuple[str, int, int]] = []
    for row in coverage:
        symbol = row["symbol"]
        info = infos[symbol]
        first = max(window_start, _ist_day(row["first_ts"]))
        own_last = _ist_day(row["last_ts"])
        if info.kind is InstrumentKind.OPTION or info.kind is InstrumentKind.OTHER:
            last = own_last  # options leave the ATM window: only holes inside their own span
        elif info.kind is InstrumentKind.FUTURE and info.expiry is not None:
            last = info.expiry
        elif info.kind is InstrumentKind.FUTURE:
            last = own_last
        else:
            last = as_of
        last = min(last, as_of)
        if symbol in traded:
            # an option's daily bars say on which days it traded at all: only those count
            spans = day_runs([d for d in days if first <= d <= last], traded[symbol])
        else:
            spans = [(first, last)]
        for span_first, span_last in spans:
            slots = grid.slot_range(span_first, span_last)
            if slots is not None:
                ranges.append((symbol, *slots))
    runs = missing_runs(wh, grid, ranges).to_pylist()
    check.gaps = [gap_of_run(r["symbol"], grid, r["first_slot"], r["last_slot"]) for r in runs]
    return check


@task(name="gaps-detect", cache_policy=NO_CACHE, persist_result=False)
def detect_gaps(
    wh: Warehouse,
    calendar: NseCalendar,
    interval: str,
    window_start: date,
    as_of: date,
    kinds: Mapping[str, SymbolInfo],
    underlyings: Sequence[str],
) -> IntervalCheck:
    """Task: :func:`find_interval_gaps`, logged."""
    check = find_interval_gaps(wh, calendar, interval, window_start, as_of, kinds, underlyings)
    get_run_logger().info(
        "%s: %d symbols checked from %s to %s, %d gaps",
        interval,
        check.symbols,
        window_start,
        as_of,
        len(check.gaps),
    )
    return check


# --- filling ------------------------------------------------------------------------------


def _paise(rupees: float) -> int:
    return round(rupees * 100)


@task(name="gaps-interpolate", cache_policy=NO_CACHE, persist_result=False)
def fill_small_gaps(
    wh: Warehouse, gaps: Sequence[Gap], infos: Mapping[str, SymbolInfo]
) -> dict[GapKey, GapAction]:
    """Interpolate the gaps the rules allow; every other gap is queued for download."""
    import pyarrow as pa

    from warehouse.gaps_sql import bars_at
    from warehouse.schemas import BARS_SCHEMA

    actions = {_key(g): GapAction.REDOWNLOAD for g in gaps}
    candidates = [
        g
        for g in gaps
        if gap_action(g, infos[g.symbol].kind, bounded=True) is GapAction.INTERPOLATED
    ]
    if not candidates:
        return actions
    wanted = [(g.symbol, g.start - _ONE_MINUTE) for g in candidates]
    wanted += [(g.symbol, g.end) for g in candidates]
    neighbours = {
        (row["symbol"], row["ts"].astimezone(UTC)): row
        for row in bars_at(wh, "1m", wanted).to_pylist()
    }
    rows: list[dict[str, Any]] = []
    for gap in candidates:
        before = neighbours.get((gap.symbol, gap.start - _ONE_MINUTE))
        after = neighbours.get((gap.symbol, gap.end))
        # A neighbour from another session (the gap touches the open or the close) or an
        # invented one does not bound the gap: queue it instead.
        bounded = (
            before is not None
            and after is not None
            and _ist_day(before["ts"]) == gap.session_date == _ist_day(after["ts"])
            and not before["interpolated"]
            and not after["interpolated"]
        )
        if not bounded or before is None or after is None:
            continue
        bars = interpolate_gap(
            gap, infos[gap.symbol].kind, _paise(before["close"]), _paise(after["open"])
        )
        for bar in bars:
            rows.append(
                {
                    "symbol": gap.symbol,
                    "token": before["token"],
                    "exchange": before["exchange"],
                    "ts": bar.start,
                    "open": bar.open_paise / 100,
                    "high": bar.high_paise / 100,
                    "low": bar.low_paise / 100,
                    "close": bar.close_paise / 100,
                    "volume": 0,  # no trade is invented
                    "oi": None,
                    "interpolated": True,
                    "source": "interpolated",
                }
            )
        actions[_key(gap)] = GapAction.INTERPOLATED
    if rows:
        wh.write("bars", pa.Table.from_pylist(rows, schema=BARS_SCHEMA), interval="1m")
        get_run_logger().info("interpolated %d minute bars in %d gaps", len(rows), len(candidates))
    return actions


def _key(gap: Gap) -> GapKey:
    return gap.symbol, gap.interval, gap.start.astimezone(UTC)


# --- recording ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankedGap:
    """A gap with its kind, action and score, as reported."""

    gap: Gap
    kind: InstrumentKind
    action: GapAction
    score: float


GapKey = tuple[str, str, datetime]  # symbol, interval, start (UTC)


@task(name="gaps-previous", cache_policy=NO_CACHE, persist_result=False)
def previous_gaps(
    wh: Warehouse, checks: Sequence[IntervalCheck], as_of: date
) -> dict[GapKey, dict[str, Any]]:
    """Rows earlier runs recorded inside this run's windows, by key."""
    out: dict[GapKey, dict[str, Any]] = {}
    for check in checks:
        stored = wh.read("gaps", start=check.window_start, end=as_of + timedelta(days=1))
        for row in stored.to_pylist():
            if row["interval"] == check.interval:
                out[(row["symbol"], row["interval"], row["start_ts"].astimezone(UTC))] = row
    return out


def carry_over(
    actions: Mapping[GapKey, GapAction], previous: Mapping[GapKey, Mapping[str, Any]]
) -> dict[GapKey, GapAction]:
    """Keep ``unavailable`` (set by the history flow) on gaps that are still there."""
    out = dict(actions)
    for key, action in actions.items():
        before = previous.get(key)
        gone = before is not None and before["action"] == GapAction.UNAVAILABLE.value
        if action is GapAction.REDOWNLOAD and gone:
            out[key] = GapAction.UNAVAILABLE
    return out


@task(name="gaps-record", cache_policy=NO_CACHE, persist_result=False)
def record_gaps(
    wh: Warehouse,
    ranked: Sequence[RankedGap],
    previous: Mapping[GapKey, Mapping[str, Any]],
) -> int:
    """Write the gaps dataset; earlier gaps that are no longer missing become ``resolved``.

    Returns the number of rows marked resolved.
    """
    import pyarrow as pa

    from warehouse.schemas import GAPS_SCHEMA

    rows = [
        {
            "symbol": r.gap.symbol,
            "interval": r.gap.interval,
            "session_date": r.gap.session_date,
            "start_ts": r.gap.start.astimezone(UTC),
            "end_ts": r.gap.end.astimezone(UTC),
            "minutes": r.gap.minutes,
            "kind": r.kind.value,
            "action": r.action.value,
        }
        for r in ranked
    ]
    found = {_key(r.gap) for r in ranked}
    still_open = (GapAction.REDOWNLOAD.value, GapAction.UNAVAILABLE.value)
    resolved = [
        {**row, "action": GapAction.RESOLVED.value}
        for key, row in previous.items()
        if key not in found and row["action"] in still_open
    ]
    rows += resolved
    if rows:
        wh.write("gaps", pa.Table.from_pylist(rows, schema=GAPS_SCHEMA))
    return len(resolved)


# --- report -------------------------------------------------------------------------------


def rank_gaps(
    gaps: Sequence[Gap],
    infos: Mapping[str, SymbolInfo],
    actions: Mapping[GapKey, GapAction],
    sessions: Sequence[date],
) -> list[RankedGap]:
    """Score every gap and sort, most important first."""
    ranked = [
        RankedGap(
            gap,
            infos[gap.symbol].kind,
            actions.get(_key(gap), GapAction.REDOWNLOAD),
            gap_score(
                infos[gap.symbol].kind, gap.minutes, sessions_age(sessions, gap.session_date)
            ),
        )
        for gap in gaps
    ]
    ranked.sort(key=lambda r: (-r.score, r.gap.symbol, r.gap.interval, r.gap.start))
    return ranked


_HEADERS = ("#", "score", "symbol", "kind", "interval", "session", "from", "to", "min", "action")


def _cells(rank: int, r: RankedGap) -> list[str]:
    start, end = r.gap.start.astimezone(IST), r.gap.end.astimezone(IST)
    same_day = start.date() == end.date()
    return [
        str(rank),
        f"{r.score:.1f}",
        r.gap.symbol,
        r.kind.value,
        r.gap.interval,
        r.gap.session_date.isoformat(),
        start.strftime("%H:%M"),
        end.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M"),
        str(r.gap.minutes),
        r.action.value,
    ]


@dataclass(frozen=True, slots=True)
class GapsSummary:
    """Counts for the report head and the flow's return value."""

    as_of: date
    intervals: tuple[str, ...]
    symbols: int
    gaps: int
    missing_minutes: int
    interpolated: int
    redownload: int
    resolved: int
    unavailable: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for the flow's return and logs)."""
        return {
            "as_of": self.as_of.isoformat(),
            "intervals": list(self.intervals),
            "symbols": self.symbols,
            "gaps": self.gaps,
            "missing_minutes": self.missing_minutes,
            "interpolated": self.interpolated,
            "redownload": self.redownload,
            "resolved": self.resolved,
            "unavailable": self.unavailable,
        }


_SCORE_NOTE = (
    "Ranked by score = kind (underlying 300, future 200, option 100, other 0) + recency "
    "(50 × 0.5^(sessions ago / 10)) + length (min(49, 7 × log2(1 + minutes))): every "
    "underlying gap first, then newer before older and longer before shorter."
)


def render_markdown(
    summary: GapsSummary, ranked: Sequence[RankedGap], checks: Sequence[IntervalCheck]
) -> str:
    """The report as Markdown."""
    lines = [
        f"# Data gaps up to {summary.as_of.isoformat()}",
        "",
        f"{summary.gaps} gaps ({summary.missing_minutes:,} minutes of bars) in "
        f"{summary.symbols} symbol series: {summary.interpolated} interpolated, "
        f"{summary.redownload} queued for download, {summary.unavailable} not available from "
        f"the broker, {summary.resolved} earlier ones resolved.",
        "",
        "| interval | checked from | symbols | gaps |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c.interval} | {c.window_start.isoformat()} | {c.symbols} | {len(c.gaps)} |"
        for c in checks
    ]
    lines += ["", _SCORE_NOTE, ""]
    if not ranked:
        lines.append("No gaps: every expected bar is present.")
        return "\n".join(lines) + "\n"
    lines.append("| " + " | ".join(_HEADERS) + " |")
    lines.append("|" + "|".join("---" for _ in _HEADERS) + "|")
    for i, r in enumerate(ranked[:REPORT_ROWS], 1):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(i, r)) + " |")
    if len(ranked) > REPORT_ROWS:
        lines += ["", f"… and {len(ranked) - REPORT_ROWS} more in the `gaps` dataset."]
    lines.append("")
    lines.append("Times are IST; `to` is exclusive.")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4}
td.num{text-align:right}
tr.underlying td{background:#fff4e5}
tr.future td{background:#f3f0ff}
span.redownload{color:#b00020;font-weight:600}
span.interpolated{color:#1b7f3b}
span.resolved{color:#666}
span.unavailable{color:#8a6d00}
p.note{color:#555;max-width:60rem}
"""


def render_html(
    summary: GapsSummary, ranked: Sequence[RankedGap], checks: Sequence[IntervalCheck]
) -> str:
    """The report as a standalone HTML page."""
    e = html.escape
    head = (
        f"<p>{summary.gaps} gaps ({summary.missing_minutes:,} minutes of bars) in "
        f"{summary.symbols} symbol series: <span class=interpolated>{summary.interpolated} "
        f"interpolated</span>, <span class=redownload>{summary.redownload} queued for "
        f"download</span>, {summary.unavailable} not available from the broker, "
        f"<span class=resolved>{summary.resolved} earlier ones resolved</span>.</p>"
    )
    checked = "".join(
        f"<tr><td>{e(c.interval)}</td><td>{c.window_start.isoformat()}</td>"
        f"<td class=num>{c.symbols}</td><td class=num>{len(c.gaps)}</td></tr>"
        for c in checks
    )
    body = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Data gaps up to {summary.as_of.isoformat()}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Data gaps up to {summary.as_of.isoformat()}</h1>",
        head,
        "<table><tr><th>interval</th><th>checked from</th><th>symbols</th><th>gaps</th></tr>",
        checked,
        "</table>",
        f'<p class="note">{e(_SCORE_NOTE)} Times are IST; "to" is exclusive.</p>',
    ]
    if ranked:
        body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in _HEADERS) + "</tr>")
        for i, r in enumerate(ranked[:REPORT_ROWS], 1):
            cells = _cells(i, r)
            tds = [
                f"<td class=num>{e(c)}</td>" if j in (0, 1, 8) else f"<td>{e(c)}</td>"
                for j, c in enumerate(cells[:-1])
            ]
            tds.append(f"<td><span class={r.action.value}>{e(cells[-1])}</span></td>")
            body.append(f"<tr class={r.kind.value}>" + "".join(tds) + "</tr>")
        body.append("</table>")
        if len(ranked) > REPORT_ROWS:
            body.append(f"<p>… and {len(ranked) - REPORT_ROWS} more in the gaps dataset.</p>")
    else:
        body.append("<p>No gaps: every expected bar is present.</p>")
    body.append("</body></html>")
    return "\n".join(body) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


@task(name="gaps-report", cache_policy=NO_CACHE, persist_result=False)
def publish_report(
    root: Path,
    summary: GapsSummary,
    ranked: Sequence[RankedGap],
    checks: Sequence[IntervalCheck],
) -> tuple[Path, Path]:
    """Write the Markdown and HTML reports and the Prefect artifact."""
    from prefect.artifacts import create_markdown_artifact

    markdown = render_markdown(summary, ranked, checks)
    stem = Path(root) / "reports" / f"{REPORT_NAME}-{summary.as_of.isoformat()}"
    md_path, html_path = stem.with_suffix(".md"), stem.with_suffix(".html")
    _write_text_atomic(md_path, markdown)
    _write_text_atomic(html_path, render_html(summary, ranked, checks))
    create_markdown_artifact(
        markdown=markdown,
        key="gaps-report",
        description=f"Data gaps up to {summary.as_of.isoformat()}",
    )
    return md_path, html_path


# --- the flow -----------------------------------------------------------------------------


@flow(name="gaps", log_prints=False, on_failure=[notify_on_failure])
def gaps_flow(
    config_path: str | None = None,
    data_dir: str | None = None,
    as_of: date | None = None,
    intervals: list[str] | None = None,
    interpolate: bool = True,
) -> dict[str, Any]:
    """Find gaps in stored bars, interpolate the short underlying ones, queue the rest, report.

    ``as_of``: the last session to check (default: the last completed session).
    ``intervals``: bar intervals to check (default: every interval with stored bars).
    ``interpolate``: set false to queue even the short underlying gaps.
    """
    from flows.tasks.settings import flow_warehouse, load_flow_settings
    from flows.trading_days import trading_calendar
    from warehouse import BAR_INTERVALS

    log = get_run_logger()
    settings = load_flow_settings(config_path, data_dir)
    wh = flow_warehouse(settings)
    calendar = trading_calendar(settings)
    if as_of is None:
        as_of = last_completed_session(calendar, datetime.now(UTC))
    if intervals is None:
        intervals = [i for i in BAR_INTERVALS if wh.files("bars", i)]
    unknown = [i for i in intervals if i not in BAR_INTERVALS]
    if unknown:
        raise ValueError(f"intervals {unknown} are not bar intervals; allowed: {BAR_INTERVALS}")
    underlyings = list(settings.universe.underlyings)
    kinds = symbol_kinds(wh, underlyings)

    checks: list[IntervalCheck] = []
    for interval in intervals:
        if interval == DAILY:
            start = months_before(as_of, 12 * settings.history.daily_years)
        else:
            start = months_before(as_of, settings.history.intraday_months)
        checks.append(detect_gaps(wh, calendar, interval, start, as_of, kinds, underlyings))

    gaps = [gap for check in checks for gap in check.gaps]
    infos = {g.symbol: info_of(g.symbol, kinds, underlyings) for g in gaps}
    if interpolate:
        actions = fill_small_gaps(wh, gaps, infos)
    else:
        actions = {_key(g): GapAction.REDOWNLOAD for g in gaps}
    earliest = min((c.window_start for c in checks), default=as_of)
    previous = previous_gaps(wh, checks, as_of)
    actions = carry_over(actions, previous)
    ranked = rank_gaps(gaps, infos, actions, trading_days(calendar, earliest, as_of))
    resolved = record_gaps(wh, ranked, previous)
    summary = GapsSummary(
        as_of=as_of,
        intervals=tuple(intervals),
        symbols=sum(c.symbols for c in checks),
        gaps=len(ranked),
        missing_minutes=sum(r.gap.minutes for r in ranked),
        interpolated=sum(1 for r in ranked if r.action is GapAction.INTERPOLATED),
        redownload=sum(1 for r in ranked if r.action is GapAction.REDOWNLOAD),
        unavailable=sum(1 for r in ranked if r.action is GapAction.UNAVAILABLE),
        resolved=resolved,
    )
    md_path, html_path = publish_report(wh.root, summary, ranked, checks)
    log.info(
        "gaps up to %s: %d found, %d interpolated, %d queued, %d resolved; report %s",
        as_of,
        summary.gaps,
        summary.interpolated,
        summary.redownload,
        summary.resolved,
        md_path,
    )
    return {**summary.as_dict(), "report_md": str(md_path), "report_html": str(html_path)}
