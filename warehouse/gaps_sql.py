"""Bar queries for the analytics flows, in DuckDB: missing bars as runs, coverage, look-ups.

The expected bars come from ``market.gaps.bar_grid`` (the calendar's knowledge); this module
only matches them against the ``bars_<interval>`` files. Each symbol is checked over its own
slot range of the grid, and missing slots are grouped into runs with the usual
"slot minus row number" trick: consecutive slots share one value. The grid skips a slot number
at every session and window break, so an intraday run never crosses one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from market.gaps import BarGrid
from warehouse.catalog import view_sql
from warehouse.errors import QueryError
from warehouse.quarantine import QuarantineReport
from warehouse.schemas import get_dataset
from warehouse.store import Warehouse
from warehouse.verify import FileVerifier

_IST_OFFSET_US = 19_800_000_000
_US_PER_DAY = 86_400_000_000

SymbolRange = tuple[str, int, int]  # symbol, first slot, last slot (inclusive)


# One verifier per warehouse root: it remembers which file versions passed, so a repeated
# query does not re-read every footer.
_VERIFIERS: dict[Path, FileVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def _verifier(root: Path) -> FileVerifier:
    with _VERIFIERS_LOCK:
        found = _VERIFIERS.get(root)
        if found is None:
            found = _VERIFIERS[root] = FileVerifier(root)
        return found


def _connect(wh: Warehouse, interval: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    """An in-memory DuckDB with the bars view of one interval over files fit to read."""
    bars = get_dataset("bars")
    bars.check_variant(interval)
    files = _verifier(wh.root).valid_files(bars, interval, QuarantineReport(), deep=False)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(view_sql(wh.root, bars, interval, has_files=bool(files)))
    return con, bars.view_name(interval)


def query_bars(
    wh: Warehouse, interval: str, sql: str, tables: dict[str, pa.Table] | None = None
) -> pa.Table:
    """Run SQL over one bars view (``bars_1d``…) with Arrow ``tables`` registered by name.

    Lighter than ``Warehouse.query``: only that view is built, which matters for queries run
    often over many files.
    """
    con, _ = _connect(wh, interval)
    try:
        for name, table in (tables or {}).items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"gap query over bars_{interval} failed: {exc}") from exc
    finally:
        con.close()


def bar_coverage(wh: Warehouse, interval: str) -> pa.Table:
    """Per symbol: ``first_ts``, ``last_ts`` (bar starts, UTC) and ``bars`` stored."""
    view = get_dataset("bars").view_name(interval)
    sql = (
        f"SELECT symbol, min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS bars "
        f"FROM {view} GROUP BY symbol ORDER BY symbol"
    )
    return query_bars(wh, interval, sql, {})


def missing_runs(wh: Warehouse, grid: BarGrid, ranges: Sequence[SymbolRange]) -> pa.Table:
    """Runs of expected-but-absent bars: ``symbol, first_slot, last_slot, bars``.

    ``ranges`` gives each symbol's slot range of ``grid`` to check. Intraday bars match a
    grid bar by their exact start; daily bars by their IST calendar day.
    """
    empty = pa.table(
        {
            "symbol": pa.array([], pa.string()),
            "first_slot": pa.array([], pa.int64()),
            "last_slot": pa.array([], pa.int64()),
            "bars": pa.array([], pa.int64()),
        }
    )
    if not ranges or len(grid) == 0:
        return empty
    grid_table = pa.table({"slot": grid.slot, "key": grid.key})
    range_table = pa.table(
        {
            "symbol": pa.array([r[0] for r in ranges], pa.string()),
            "first_slot": pa.array([r[1] for r in ranges], pa.int64()),
            "last_slot": pa.array([r[2] for r in ranges], pa.int64()),
        }
    )
    view = get_dataset("bars").view_name(grid.interval)
    stored_key = (
        f"(epoch_us(ts) + {_IST_OFFSET_US}) // {_US_PER_DAY}" if grid.daily else "epoch_us(ts)"
    )
    # Pad the time filter by a day either side: it only prunes files, the join decides.
    low = int(grid.start_us.min()) - _US_PER_DAY
    high = int(grid.end_us.max()) + _US_PER_DAY
    sql = f"""
        WITH expected AS (
            SELECT r.symbol, g.slot, g.key
            FROM ranges r JOIN grid g ON g.slot BETWEEN r.first_slot AND r.last_slot
        ),
        stored AS (
            SELECT DISTINCT symbol, {stored_key} AS key
            FROM {view}
            WHERE symbol IN (SELECT symbol FROM ranges)
              AND ts >= make_timestamptz({low}) AND ts < make_timestamptz({high})
        ),
        missing AS (
            SELECT e.symbol, e.slot FROM expected e
            ANTI JOIN stored s ON e.symbol = s.symbol AND e.key = s.key
        ),
        numbered AS (
            SELECT symbol, slot,
                   slot - row_number() OVER (PARTITION BY symbol ORDER BY slot) AS run
            FROM missing
        )
        SELECT symbol, min(slot) AS first_slot, max(slot) AS last_slot, count(*) AS bars
        FROM numbered GROUP BY symbol, run ORDER BY symbol, first_slot
    """
    result = query_bars(wh, grid.interval, sql, {"grid": grid_table, "ranges": range_table})
    return result.cast(empty.schema)


def bars_at(wh: Warehouse, interval: str, wanted: Sequence[tuple[str, datetime]]) -> pa.Table:
    """Stored bars of ``interval`` at exact (symbol, bar start) pairs, in the bars schema."""
    schema = get_dataset("bars").schema
    if not wanted:
        return schema.empty_table()
    keys = pa.table(
        {
            "symbol": pa.array([w[0] for w in wanted], pa.string()),
            "ts": pa.array([w[1] for w in wanted], pa.timestamp("us", tz="UTC")),
        }
    )
    view = get_dataset("bars").view_name(interval)
    columns = ", ".join(f"b.{name}" for name in schema.names)
    sql = (
        f"SELECT DISTINCT {columns} FROM {view} b "
        f"JOIN wanted w ON b.symbol = w.symbol AND b.ts = w.ts ORDER BY b.symbol, b.ts"
    )
    return query_bars(wh, interval, sql, {"wanted": keys}).cast(schema)
