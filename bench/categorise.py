"""Categorisation and gap-report speed on synthetic warehouses; prints JSON.

1. Categorise 200 underlyings from two years of daily bars: read them from the warehouse
   (one DuckDB query) and compute ADX/DI/volume verdicts. Target < 1 s.
2. Gap report over three months of 1-minute bars for 50 symbols (~1.2 M bars) with random
   holes: expected-bar grid, DuckDB anti-join, gap runs, ranking, Markdown and HTML. Target < 2 s.

Data are random walks written to a temporary warehouse the way the flows store them; each
measurement is the median of several runs (the first run, which warms DuckDB and the OS
file cache, is included in the list but not treated specially).

Run: .venv/bin/python bench/categorise.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flows.categorise import gather_inputs, verdict_for, volume_sessions
from flows.gaps import (
    GapsSummary,
    find_interval_gaps,
    info_of,
    rank_gaps,
    render_html,
    render_markdown,
)
from market.calendar import default_calendar
from market.categorise import Category, Thresholds
from market.gaps import GapAction, trading_days
from warehouse import Warehouse
from warehouse.schemas import BARS_SCHEMA

RUNS = 5
CALENDAR = default_calendar()
AS_OF = date(2026, 11, 20)
UNDERLYINGS = 200
GAP_SYMBOLS = 50


def median_of(work: Callable[[], Any], runs: int = RUNS) -> tuple[float, list[float], Any]:
    """Median wall time of ``runs`` calls, every time, and the last result."""
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), [round(t, 4) for t in times], result


def _bars(symbol: str, stamps_us: np.ndarray, rng: np.random.Generator, base: float) -> pa.Table:
    n = len(stamps_us)
    drift = rng.choice([-0.0015, 0.0, 0.0015])
    close = base * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.006, n)) * close
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pa.table(
        {
            "symbol": pa.array([symbol] * n),
            "token": pa.array([str(100_000 + zlib.crc32(symbol.encode()) % 99_999)] * n),
            "exchange": pa.array(["NSE"] * n),
            "ts": pa.array(stamps_us, pa.timestamp("us", tz="UTC")),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(100_000, 2_000_000, n),
            "oi": pa.nulls(n, pa.int64()),
            "interpolated": pa.array([False] * n),
            "source": pa.array(["bench"] * n),
        },
        schema=BARS_SCHEMA,
    )


def _ist_midnight_us(day: date) -> int:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=5, minutes=30)
    return int(moment.timestamp()) * 1_000_000


def bench_categorise(root: Path) -> dict[str, Any]:
    """Two years of daily bars for 200 stock underlyings, then read + categorise them all."""
    rng = np.random.default_rng(11)
    wh = Warehouse(root)
    days = trading_days(CALENDAR, date(AS_OF.year - 2, AS_OF.month, AS_OF.day), AS_OF)
    stamps = np.array([_ist_midnight_us(d) for d in days], dtype=np.int64)
    names = [f"STOCK{i:03d}" for i in range(UNDERLYINGS)]
    write_start = time.perf_counter()
    tables = [_bars(f"{name}-EQ", stamps, rng, 1_000.0) for name in names]
    wh.write("bars", pa.concat_tables(tables), interval="1d")
    write_s = time.perf_counter() - write_start
    thresholds = Thresholds()
    sessions = volume_sessions(CALENDAR, AS_OF, thresholds.volume_lookback + 1)

    def read() -> Any:
        return gather_inputs(wh, CALENDAR, names, AS_OF, None)

    def run() -> dict[str, Category]:
        inputs = read()
        return {n: verdict_for(n, inputs, thresholds, sessions).category for n in names}

    read_median, _, _ = median_of(read)
    median, runs, verdicts = median_of(run)
    counts = {c.value: sum(1 for v in verdicts.values() if v is c) for c in Category}
    return {
        "underlyings": UNDERLYINGS,
        "sessions": len(days),
        "bars": UNDERLYINGS * len(days),
        "write_s": round(write_s, 3),
        "read_median_s": round(read_median, 4),
        "median_s": round(median, 4),
        "runs_s": runs,
        "target_s": 1.0,
        "meets_target": median < 1.0,
        "categories": counts,
    }


def bench_gap_report(root: Path) -> dict[str, Any]:
    """Three months of 1-minute bars for 50 symbols with holes, then the full gap report."""
    rng = np.random.default_rng(5)
    wh = Warehouse(root)
    first = date(AS_OF.year, AS_OF.month - 3, AS_OF.day)
    days = trading_days(CALENDAR, first, AS_OF)
    minute_us = np.concatenate(
        [
            np.array([int(m.timestamp()) * 1_000_000 for m in CALENDAR.trading_minutes(d)])
            for d in days
        ]
    )
    symbols = [f"UND{i:02d}" for i in range(10)] + [
        f"UND{i % 10:02d}26NOV26{25000 + 50 * i}CE" for i in range(GAP_SYMBOLS - 10)
    ]
    holes = 0
    write_start = time.perf_counter()
    for symbol in symbols:
        keep = np.ones(len(minute_us), dtype=bool)
        for _ in range(int(rng.integers(5, 40))):  # holes of 1 to 30 minutes
            at = int(rng.integers(0, len(minute_us) - 30))
            keep[at : at + int(rng.integers(1, 31))] = False
            holes += 1
        if rng.random() < 0.2:  # a whole missing session now and then
            day = int(rng.integers(0, len(days)))
            keep[day * 375 : (day + 1) * 375] = False
        wh.write("bars", _bars(symbol, minute_us[keep], rng, 20_000.0), interval="1m")
    write_s = time.perf_counter() - write_start
    underlyings = [f"UND{i:02d}" for i in range(10)]

    def report() -> tuple[int, int]:
        check = find_interval_gaps(wh, CALENDAR, "1m", first, AS_OF, {}, underlyings)
        infos = {g.symbol: info_of(g.symbol, {}, underlyings) for g in check.gaps}
        actions = {(g.symbol, g.interval, g.start): GapAction.REDOWNLOAD for g in check.gaps}
        ranked = rank_gaps(check.gaps, infos, actions, days)
        summary = GapsSummary(
            AS_OF,
            ("1m",),
            check.symbols,
            len(ranked),
            sum(r.gap.minutes for r in ranked),
            0,
            len(ranked),
            0,
        )
        text = render_markdown(summary, ranked, [check]) + render_html(summary, ranked, [check])
        return len(ranked), len(text)

    median, runs, (gaps, chars) = median_of(report)
    return {
        "symbols": GAP_SYMBOLS,
        "sessions": len(days),
        "bars_stored": int(wh.query("SELECT count(*) AS n FROM bars_1m")["n"][0].as_py()),
        "holes_cut": holes,
        "gaps_found": gaps,
        "report_chars": chars,
        "write_s": round(write_s, 3),
        "median_s": round(median, 4),
        "runs_s": runs,
        "target_s": 2.0,
        "meets_target": median < 2.0,
    }


def main() -> None:
    """Run both benchmarks in temporary warehouses and print one JSON document."""
    with tempfile.TemporaryDirectory(prefix="optbot-bench-") as tmp:
        categorise_result = bench_categorise(Path(tmp) / "daily")
        gaps_result = bench_gap_report(Path(tmp) / "minute")
    print(
        json.dumps(
            {"categorise_200x2y": categorise_result, "gap_report_50x3m": gaps_result}, indent=2
        )
    )


if __name__ == "__main__":
    main()
