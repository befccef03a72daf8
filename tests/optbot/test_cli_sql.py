"""``optbot sql`` and ``optbot warehouse …`` through the real root app."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from optbot.cli import app
from tests.warehouse.builders import events, minute_bars, order_row, ticks
from warehouse import Warehouse, get_dataset

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    wh = Warehouse(root)
    wh.write("bars", minute_bars("NIFTY", date(2026, 11, 2), minutes=3), interval="1m")
    rows = [order_row("1", "complete", price_paise=12_345), order_row("2", "rejected")]
    wh.write("orders", pa.Table.from_pylist(rows, schema=get_dataset("orders").schema))
    return root


def test_json_is_a_list_of_row_objects_with_ist_timestamps(data: Path) -> None:
    query = "SELECT symbol, ts, close, oi FROM bars_1m ORDER BY ts LIMIT 2"
    result = invoke("sql", query, "--json", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    # 03:45 UTC is 09:15 IST
    assert json.loads(result.stdout) == [
        {"symbol": "NIFTY", "ts": "2026-11-02T09:15:00+05:30", "close": 100.0, "oi": None},
        {"symbol": "NIFTY", "ts": "2026-11-02T09:16:00+05:30", "close": 100.0, "oi": None},
    ]


def test_csv_has_header_and_exact_paise(data: Path) -> None:
    query = "SELECT order_id, price_paise, status FROM orders ORDER BY order_id"
    result = invoke("sql", query, "--csv", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["order_id", "price_paise", "status"],
        ["1", "12345", "complete"],
        ["2", "12345", "rejected"],
    ]


def test_default_is_a_table(data: Path) -> None:
    result = invoke(
        "sql", "SELECT symbol, count(*) AS bars FROM bars_1m GROUP BY 1", "--data-dir", str(data)
    )
    assert result.exit_code == 0, result.output
    assert "symbol" in result.stdout and "bars" in result.stdout
    assert re.search(r"NIFTY\s*│\s*3\s*│", result.stdout)
    assert "1 row(s)" in result.stdout


def test_sql_error_prints_duckdb_message_and_exits_2(data: Path) -> None:
    result = invoke("sql", "SELECT nope FROM bars_1m", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "SQL error" in result.stderr and '"nope"' in result.stderr
    assert "Traceback" not in result.output


def test_catalog_is_read_only(data: Path) -> None:
    result = invoke("sql", "CREATE TABLE t AS SELECT 1", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "read-only" in result.stderr.lower()


def test_user_mistakes_exit_2_with_one_line(tmp_path: Path, data: Path) -> None:
    missing = tmp_path / "nowhere"
    result = invoke("sql", "SELECT 1", "--data-dir", str(missing))
    assert result.exit_code == 2
    assert f"data directory '{missing}' does not exist" in result.stderr
    result = invoke("sql", "SELECT 1", "--csv", "--json", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "--csv and --json cannot be used together" in result.stderr
    result = invoke("warehouse", "compact", "--dataset", "bar", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "--dataset 'bar' is not a dataset; allowed: instruments, bars" in result.stderr
    result = invoke("warehouse", "retention", "--today", "20-11-2026", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "--today '20-11-2026' is not a date" in result.stderr


def test_sql_builds_a_missing_catalog(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    result = invoke("sql", "SELECT count(*) AS n FROM trades", "--json", "--data-dir", str(root))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 0}]
    assert (root / "catalog.duckdb").is_file()


def test_retention_dry_run_then_apply(tmp_path: Path) -> None:
    root = tmp_path / "data"
    wh = Warehouse(root)
    wh.write("ticks", ticks(date(2026, 11, 10), 5))
    wh.write("ticks", ticks(date(2026, 11, 20), 5))
    old = wh.files("ticks")[0]
    args = ["--today", "2026-11-20", "--ticks-days", "2", "--intraday-bars-months", "3"]
    dry = invoke("warehouse", "retention", *args, "--data-dir", str(root))
    assert dry.exit_code == 0, dry.output
    assert "ticks/date=2026-11-10/part-000001.parquet" in dry.stdout.replace("\n", "")
    assert "Dry run: 1 file(s), 5 rows" in dry.stdout
    assert old.exists()
    real = invoke("warehouse", "retention", *args, "--apply", "--data-dir", str(root))
    assert real.exit_code == 0, real.output
    assert "Removed 1 of 1 file(s), 5 rows" in real.stdout
    assert not old.exists()
    assert len(wh.files("ticks")) == 1


def test_compact_and_check(tmp_path: Path) -> None:
    root = tmp_path / "data"
    wh = Warehouse(root)
    start = datetime(2026, 11, 20, 4, tzinfo=UTC)
    wh.write("events", events(start, ["a"]))
    wh.write("events", events(start, ["b"]))
    result = invoke("warehouse", "compact", "--data-dir", str(root))
    assert result.exit_code == 0, result.output
    assert "Compacted 1 partition(s): 2 -> 1 file(s), 2 rows rewritten." in result.stdout

    ok = invoke("warehouse", "check", "--data-dir", str(root))
    assert ok.exit_code == 0, ok.output
    assert "events" in ok.stdout and "0 file(s) quarantined; catalog refreshed." in ok.stdout

    bad = wh.files("events")[0].with_name("x.parquet")
    bad.write_bytes(b"not parquet")
    flagged = invoke("warehouse", "check", "--data-dir", str(root))
    assert flagged.exit_code == 1
    assert "quarantined events/month=2026-11/x.parquet" in flagged.stderr
    assert "1 file(s) quarantined" in flagged.stdout
    assert (root / "quarantine/events/month=2026-11/x.parquet").is_file()


def test_help_shows_examples() -> None:
    for args in (
        ["sql"],
        ["warehouse", "retention"],
        ["warehouse", "compact"],
        ["warehouse", "check"],
    ):
        result = invoke(*args, "--help")
        assert result.exit_code == 0
        assert "Example: optbot " in result.stdout
