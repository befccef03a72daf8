"""Tables are checked against the dataset schema before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from tests.warehouse.builders import minute_bars, order_row
from warehouse import SchemaMismatch, Warehouse, get_dataset
from warehouse.conform import conform, schema_problems

BARS = get_dataset("bars")
ORDERS = get_dataset("orders")


def _orders(**overrides: pa.Array) -> pa.Table:
    table = pa.Table.from_pylist([order_row("261120000000001", "open")], schema=ORDERS.schema)
    for name, array in overrides.items():
        table = table.set_column(table.schema.get_field_index(name), name, array)
    return table


def test_missing_required_column_names_column_and_type() -> None:
    table = minute_bars("NIFTY", datetime(2026, 11, 2).date(), minutes=3).drop_columns(["close"])
    with pytest.raises(SchemaMismatch, match=r"missing column 'close' \(expected double"):
        conform(table, BARS)


def test_float_money_is_refused() -> None:
    table = _orders(price_paise=pa.array([123.45]))
    with pytest.raises(SchemaMismatch, match="'price_paise' is double, expected int64: floats"):
        conform(table, ORDERS)


def test_naive_timestamp_is_refused() -> None:
    bars = minute_bars("NIFTY", datetime(2026, 11, 2).date(), minutes=2)
    naive = bars.set_column(3, "ts", pa.array([datetime(2026, 11, 2, 3, 45)] * 2))
    with pytest.raises(SchemaMismatch, match=r"'ts' is timestamp.*time zone"):
        conform(naive, BARS)


def test_extra_column_and_nulls_in_required_column_are_reported_together() -> None:
    bars = minute_bars("NIFTY", datetime(2026, 11, 2).date(), minutes=2)
    bars = bars.append_column("vwap", pa.array([1.0, 2.0]))
    bars = bars.set_column(7, "close", pa.array([1.0, None]))
    with pytest.raises(SchemaMismatch) as info:
        conform(bars, BARS)
    assert any("unexpected column 'vwap'" in p for p in info.value.problems)
    assert any("'close' has 1 null" in p for p in info.value.problems)


def test_out_of_range_int_for_int32_column_is_refused() -> None:
    ds = get_dataset("gaps")
    row = {
        "symbol": "NIFTY",
        "interval": "1m",
        "session_date": datetime(2026, 11, 2).date(),
        "start_ts": datetime(2026, 11, 2, 4, tzinfo=UTC),
        "end_ts": datetime(2026, 11, 2, 5, tzinfo=UTC),
        "minutes": 2**40,
        "kind": "missing",
        "action": "backfill",
    }
    table = pa.Table.from_pylist([row])  # minutes inferred as int64
    with pytest.raises(SchemaMismatch, match="'minutes' does not fit int32"):
        conform(table, ds)
    row["minutes"] = 60
    assert conform(pa.Table.from_pylist([row]), ds)["minutes"].type == pa.int32()


def test_safe_differences_are_cast() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    bars = minute_bars("NIFTY", datetime(2026, 11, 2).date(), minutes=1)
    loose = pa.table(
        {
            "symbol": pa.array(["NIFTY"], pa.large_string()),
            "token": pa.array(["26000"]).dictionary_encode(),
            "exchange": ["NSE"],
            # 09:15 IST at nanosecond precision in another zone: the same instant
            "ts": pa.array([datetime(2026, 11, 2, 9, 15, tzinfo=ist)], pa.timestamp("ns", ist)),
            "open": pa.array([100], pa.int32()),
            "high": [101.0],
            "low": [99.0],
            "close": [100.0],
            "volume": pa.array([0], pa.int32()),
            "interpolated": [False],
            "source": ["test"],
        }
    )  # no "oi": nullable, so filled with null
    fitted = conform(loose, BARS)
    assert fitted.schema == BARS.schema
    assert fitted.to_pylist() == bars.to_pylist()


def test_schema_problems_of_a_foreign_file_schema() -> None:
    foreign = pa.schema([("foo", pa.int64()), ("symbol", pa.int64())])
    problems = schema_problems(foreign, BARS)
    assert "column 'symbol' is int64, expected string: no safe conversion" in problems
    assert any(p.startswith("missing column 'ts'") for p in problems)
    assert schema_problems(BARS.schema, BARS) == []


def test_write_refuses_bad_table_and_writes_nothing(wh: Warehouse) -> None:
    table = _orders(quantity=pa.array([1.5]))
    with pytest.raises(SchemaMismatch, match="quantity"):
        wh.write("orders", table)
    assert wh.files("orders") == []
