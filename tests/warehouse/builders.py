"""Small tables for warehouse tests: bars, ticks, events, orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa

# 09:15 IST is 03:45 UTC.
SESSION_OPEN_UTC = time(3, 45)


def minute_bars(
    symbol: str,
    day: date,
    *,
    first_minute: int = 0,
    minutes: int = 375,
    close: float = 100.0,
    source: str = "test",
) -> pa.Table:
    """One symbol's 1-minute bars for part of a session, every close equal to ``close``."""
    start = datetime.combine(day, SESSION_OPEN_UTC, UTC)
    stamps = [start + timedelta(minutes=first_minute + i) for i in range(minutes)]
    return bars_at(symbol, stamps, close=close, source=source)


def bars_at(
    symbol: str, stamps: Sequence[datetime], *, close: float = 100.0, source: str = "test"
) -> pa.Table:
    """Bars of one symbol at the given start times."""
    n = len(stamps)
    return pa.table(
        {
            "symbol": [symbol] * n,
            "token": ["26000"] * n,
            "exchange": ["NSE"] * n,
            "ts": pa.array(list(stamps), pa.timestamp("us", tz="UTC")),
            "open": [close] * n,
            "high": [close + 1] * n,
            "low": [close - 1] * n,
            "close": [close] * n,
            "volume": list(range(n)),
            "oi": pa.nulls(n, pa.int64()),
            "interpolated": [False] * n,
            "source": [source] * n,
        }
    )


def ticks(day: date, count: int, *, token: str = "26000", first: int = 0) -> pa.Table:
    """``count`` ticks one second apart from 09:15 IST."""
    start = datetime.combine(day, SESSION_OPEN_UTC, UTC)
    recv = [start + timedelta(seconds=first + i) for i in range(count)]
    return pa.table(
        {
            "token": [token] * count,
            "exchange": ["NSE"] * count,
            "exchange_ts": pa.array(recv, pa.timestamp("us", tz="UTC")),
            "recv_ts": pa.array(recv, pa.timestamp("us", tz="UTC")),
            "ltp_paise": [2_400_000 + first + i for i in range(count)],
        }
    )


def events(start: datetime, keys: Sequence[str], *, kind: str = "Intent") -> pa.Table:
    """Events one second apart with the given idempotency keys."""
    stamps = [start + timedelta(seconds=i) for i in range(len(keys))]
    return pa.table(
        {
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "kind": [kind] * len(keys),
            "key": list(keys),
            "payload": [f'{{"key": "{k}"}}' for k in keys],
        }
    )


def order_row(order_id: str, status: str, *, price_paise: int = 12_345) -> dict[str, object]:
    """One orders row as a dict."""
    placed = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    return {
        "mode": "paper",
        "order_id": order_id,
        "unique_order_id": None,
        "intent_id": f"i-{order_id}",
        "session_date": date(2026, 11, 20),
        "symbol": "NIFTY25NOV24000CE",
        "token": "43210",
        "exchange": "NFO",
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "INTRADAY",
        "variety": "NORMAL",
        "quantity": 75,
        "filled_quantity": 0,
        "price_paise": price_paise,
        "trigger_price_paise": None,
        "average_price_paise": None,
        "status": status,
        "status_message": None,
        "placed_at": placed,
        "updated_at": placed,
    }
