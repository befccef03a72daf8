"""Candles in and out of the warehouse ``bars`` dataset, as the history flow needs them.

Bars are stored per interval and symbol: an underlying under its F&O name (``NIFTY``), INDIA VIX
as ``INDIA VIX``, a future or an option under its trading symbol (``NIFTY24NOV2626000CE``).
Prices are float rupees (bars are for analysis; orders never read them), the start instant UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from market.candles import Ohlcv, SessionCalendar, bar_starts, session_day
from warehouse import Warehouse
from warehouse.schemas import BARS_SCHEMA, GAPS_SCHEMA

DATASET = "bars"
SOURCE = "broker"


def bars_table(
    candles: Sequence[Ohlcv], *, symbol: str, token: str, exchange: str, source: str = SOURCE
) -> pa.Table:
    """Checked candles as rows of the ``bars`` dataset."""
    n = len(candles)
    columns = {
        "symbol": [symbol] * n,
        "token": [token] * n,
        "exchange": [exchange] * n,
        "ts": [c.start for c in candles],
        "open": [float(c.open) for c in candles],
        "high": [float(c.high) for c in candles],
        "low": [float(c.low) for c in candles],
        "close": [float(c.close) for c in candles],
        "volume": [int(c.volume) for c in candles],
        "oi": [None] * n,
        "interpolated": [False] * n,
        "source": [source] * n,
    }
    return pa.table(columns, schema=BARS_SCHEMA)


def write_bars(wh: Warehouse, table: pa.Table, interval: str) -> int:
    """Merge bars into the warehouse (same symbol and start replaces); returns rows given."""
    if table.num_rows == 0:
        return 0
    return wh.write(DATASET, table, interval=interval).rows_in


def _read_ts(wh: Warehouse, interval: str, symbol: str, first: date, last: date) -> pa.Array:
    table = wh.read(
        DATASET,
        interval=interval,
        symbol=symbol,
        start=first,
        end=last + timedelta(days=1),
        columns=["ts"],
    )
    return table["ts"]


def stored_sessions(
    wh: Warehouse, interval: str, symbol: str, first: date, last: date
) -> set[date]:
    """Sessions in ``[first, last]`` with at least one stored bar of ``interval``."""
    starts: list[datetime] = _read_ts(wh, interval, symbol, first, last).to_pylist()
    return {session_day(start) for start in starts}


def stored_bar_count(wh: Warehouse, interval: str, symbol: str, first: date, last: date) -> int:
    """Stored bars of ``interval`` for ``symbol`` in sessions ``[first, last]``."""
    return len(_read_ts(wh, interval, symbol, first, last))


def latest_close(wh: Warehouse, symbol: str, on_or_before: date) -> Decimal | None:
    """The close of the latest stored bar on or before a session (daily bars, else 1m)."""
    for interval in ("1d", "1m"):
        table = wh.read(
            DATASET,
            interval=interval,
            symbol=symbol,
            end=on_or_before + timedelta(days=1),
            columns=["ts", "close"],
        )
        if table.num_rows:
            last = pc.max(table["ts"])
            close = table.filter(pc.equal(table["ts"], last))["close"][0].as_py()
            # the float close has at most two decimals as fetched; repr keeps them exactly
            return Decimal(repr(close)).quantize(Decimal("0.01"))
    return None


# --------------------------------------------------------------------------- re-download requests
#
# The gaps flow queues a gap for download again by writing a ``gaps`` row with
# ``action = "redownload"`` for [start_ts, end_ts). After fetching that session again the history
# flow settles the row: ``resolved`` when every bar of the span is now stored, ``unavailable``
# when the broker still has none or only part of it (the gaps flow then reports it without
# queueing it again).

GAPS = "gaps"
REDOWNLOAD = "redownload"
RESOLVED = "resolved"
UNAVAILABLE = "unavailable"


def redownload_requests(
    wh: Warehouse, symbol: str, interval: str, first: date, last: date
) -> list[dict[str, Any]]:
    """``gaps`` rows queued for download again for this series, in sessions ``[first, last]``."""
    table = wh.read(GAPS, start=first, end=last + timedelta(days=1))
    return [
        row
        for row in table.to_pylist()
        if row["symbol"] == symbol and row["interval"] == interval and row["action"] == REDOWNLOAD
    ]


def settle_redownloads(
    wh: Warehouse,
    rows: Sequence[dict[str, Any]],
    interval: str,
    calendar: SessionCalendar,
) -> dict[str, int]:
    """Mark re-fetched gap rows ``resolved`` or ``unavailable``; returns how many of each."""
    settled: list[dict[str, Any]] = []
    counts = {RESOLVED: 0, UNAVAILABLE: 0}
    for row in rows:
        start, end = row["start_ts"], row["end_ts"]
        expected = {
            s for s in bar_starts(row["session_date"], interval, calendar) if start <= s < end
        }
        stored = set(
            wh.read(DATASET, interval=interval, symbol=row["symbol"], start=start, end=end)[
                "ts"
            ].to_pylist()
        )
        action = RESOLVED if expected and expected <= stored else UNAVAILABLE
        counts[action] += 1
        settled.append({**row, "action": action})
    if settled:
        wh.write(GAPS, pa.Table.from_pylist(settled, schema=GAPS_SCHEMA))
    return counts
