"""Reading 1-minute bars partitioned by month vs by day, side by side in one run.

Builds three months of 1-minute bars for ten symbols in a temporary folder, stored
once as the warehouse stores them (one file per symbol and month) and once with
one file per symbol and day, then reads everything back both ways (the
warehouse's pyarrow reader and a DuckDB glob) and prints JSON with the median of
five runs of each and the day/month ratio.

Run: .venv/bin/python bench/warehouse_read.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import Warehouse, get_dataset
from warehouse.atomic import COMPRESSION
from warehouse.quarantine import QuarantineReport
from warehouse.reader import read_files, sort_rows

SYMBOLS = [f"SYM{i:02d}" for i in range(10)]
FIRST_DAY = date(2026, 9, 1)
LAST_DAY = date(2026, 11, 30)
BARS_PER_SESSION = 375  # 09:15 to 15:30 IST
RUNS = 5
BARS = get_dataset("bars")


def sessions() -> list[date]:
    """Weekdays in the range (holidays do not matter for a read benchmark)."""
    days = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def session_bars(symbol: str, day: date, rng: np.random.Generator) -> pa.Table:
    """One session of random-walk 1-minute bars."""
    open_utc = datetime(day.year, day.month, day.day, 3, 45, tzinfo=UTC)
    start_us = int(open_utc.timestamp() * 1_000_000)
    ts = start_us + np.arange(BARS_PER_SESSION, dtype=np.int64) * 60_000_000
    close = 20_000 + np.cumsum(rng.normal(0, 5, BARS_PER_SESSION))
    n = BARS_PER_SESSION
    return pa.table(
        {
            "symbol": pa.array([symbol] * n),
            "token": pa.array(["26000"] * n),
            "exchange": pa.array(["NSE"] * n),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "open": close + rng.normal(0, 1, n),
            "high": close + 3,
            "low": close - 3,
            "close": close,
            "volume": rng.integers(0, 100_000, n),
            "oi": pa.nulls(n, pa.int64()),
            "interpolated": np.zeros(n, dtype=bool),
            "source": pa.array(["bench"] * n),
        },
        schema=BARS.schema,
    )


def build(work: Path) -> tuple[Warehouse, Path, int]:
    """Write the same bars month-partitioned (via Warehouse) and day-partitioned."""
    rng = np.random.default_rng(7)
    wh = Warehouse(work / "by_month")
    by_day = work / "by_day"
    rows = 0
    for symbol in SYMBOLS:
        tables = [session_bars(symbol, day, rng) for day in sessions()]
        for day, table in zip(sessions(), tables, strict=True):
            folder = by_day / f"bars/interval=1m/symbol={symbol}/date={day.isoformat()}"
            folder.mkdir(parents=True)
            pq.write_table(table, folder / "data.parquet", compression=COMPRESSION)
        combined = pa.concat_tables(tables)
        rows += combined.num_rows
        wh.write("bars", combined, interval="1m")
    return wh, by_day, rows


def pyarrow_read(root: Path) -> pa.Table:
    """Every file read through the warehouse's reader, then sorted by (symbol, ts)."""
    files = sorted(root.glob("bars/interval=1m/*/*/*.parquet"))
    pairs = read_files(root, BARS, files, QuarantineReport())
    assert pairs is not None
    return sort_rows(pa.concat_tables([t for _, t in pairs]), BARS.sort_columns)


def duckdb_read(root: Path) -> pa.Table:
    """Every file through a DuckDB hive glob, as the catalog views read them."""
    glob = f"{root}/bars/interval=1m/*/*/*.parquet"
    con = duckdb.connect()
    try:
        columns = ", ".join(f'"{name}"' for name in BARS.schema.names)
        sql = (
            f"SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true, "
            "union_by_name = true) ORDER BY symbol, ts"
        )
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def median_seconds(read: Callable[[], pa.Table], expected_rows: int) -> float:
    """Median wall time of RUNS reads (after one warm-up read)."""
    assert read().num_rows == expected_rows
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        table = read()
        times.append(time.perf_counter() - started)
        assert table.num_rows == expected_rows
    return statistics.median(times)


def main() -> None:
    """Build both layouts, time the reads, print JSON."""
    with tempfile.TemporaryDirectory(prefix="optbot-bench-") as tmp:
        wh, by_day, rows = build(Path(tmp))
        month_files = len(list(wh.root.glob("bars/interval=1m/*/*/*.parquet")))
        day_files = len(list(by_day.glob("bars/interval=1m/*/*/*.parquet")))
        results: dict[str, object] = {
            "rows": rows,
            "symbols": len(SYMBOLS),
            "sessions": len(sessions()),
            "runs": RUNS,
            "files": {"by_month": month_files, "by_day": day_files},
        }
        readers: tuple[tuple[str, Callable[[Path], pa.Table]], ...] = (
            ("pyarrow", pyarrow_read),
            ("duckdb", duckdb_read),
        )
        for name, read in readers:
            month = median_seconds(partial(read, wh.root), rows)
            day = median_seconds(partial(read, by_day), rows)
            results[name] = {
                "by_month_s": round(month, 4),
                "by_day_s": round(day, 4),
                "day_over_month": round(day / month, 2),
            }
        month_api = median_seconds(lambda: wh.read("bars", interval="1m"), rows)
        results["warehouse_read_by_month_s"] = round(month_api, 4)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
