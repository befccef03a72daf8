"""The DuckDB catalog file: one typed view per dataset, usable by plain duckdb."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import pytest

from tests.warehouse.builders import minute_bars, order_row
from warehouse import DATASETS, CatalogBusy, Warehouse
from warehouse.catalog import duckdb_type

ALL_VIEWS = {
    "instruments",
    "bars_1m",
    "bars_5m",
    "bars_15m",
    "bars_1h",
    "bars_1d",
    "ticks",
    "categories",
    "gaps",
    "orders",
    "trades",
    "positions",
    "events",
    "reconciliation",
    "charges",
}


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {view}").fetchall()]


def test_empty_warehouse_gets_every_view_typed(wh: Warehouse) -> None:
    wh.refresh_catalog()
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        views = {
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        assert views == ALL_VIEWS
        for ds in DATASETS.values():
            for variant in ds.variant_names():
                view = ds.view_name(variant)
                expected = [(f.name, duckdb_type(f.type)) for f in ds.schema]
                assert _columns(con, view) == expected, view
                assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
        assert ("price_paise", "BIGINT") in _columns(con, "orders")
        assert ("ts", "TIMESTAMP WITH TIME ZONE") in _columns(con, "bars_1m")
    finally:
        con.close()


def test_plain_duckdb_sees_rows_after_a_write(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", date(2026, 11, 2)), interval="1m")
    wh.write("bars", minute_bars("M&M", date(2026, 11, 2), minutes=10), interval="1m")
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT symbol, count(*) FROM bars_1m GROUP BY symbol ORDER BY symbol"
        ).fetchall()
        assert rows == [("M&M", 10), ("NIFTY", 375)]
        # the dataset's columns and types only: no month/interval from the path
        expected = [(f.name, duckdb_type(f.type)) for f in DATASETS["bars"].schema]
        assert _columns(con, "bars_1m") == expected
        assert con.execute("SELECT count(*) FROM bars_5m").fetchone() == (0,)
    finally:
        con.close()


def test_catalog_views_use_absolute_paths(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    wh.write("orders", _orders())
    monkeypatch.chdir("/")
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT order_id, price_paise FROM orders").fetchall() == [("7", 100)]
    finally:
        con.close()


def _orders():  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.Table.from_pylist(
        [order_row("7", "complete", price_paise=100)], schema=DATASETS["orders"].schema
    )


def test_busy_catalog_does_not_fail_the_write(wh: Warehouse) -> None:
    wh.refresh_catalog()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(wh.catalog_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = Warehouse(wh.root, catalog_timeout_s=0.3)
        report = busy.write("orders", _orders())
        assert not report.catalog_refreshed
        assert busy.read("orders").num_rows == 1  # the data is there regardless
        with pytest.raises(CatalogBusy, match="locked"):
            busy.refresh_catalog()
    finally:
        holder.communicate("")
    # once free, the next refresh brings the views up to date
    wh.refresh_catalog()
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    finally:
        con.close()


def test_query_helper_returns_arrow_and_wraps_sql_errors(wh: Warehouse) -> None:
    from warehouse import QueryError

    wh.write("orders", _orders())
    table = wh.query("SELECT order_id, price_paise FROM orders")
    assert table.to_pylist() == [{"order_id": "7", "price_paise": 100}]
    with pytest.raises(QueryError, match="nope"):
        wh.query("SELECT nope FROM orders")
