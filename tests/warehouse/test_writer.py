"""Atomic, idempotent, merging writes."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.warehouse.builders import events, minute_bars, order_row, ticks
from warehouse import PartitionError, UnknownDataset, Warehouse, get_dataset

DAY = date(2026, 11, 2)


def _visible(root: Path) -> list[str]:
    """Every file a reader's glob could pick up."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


def _hidden_temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_bars_land_in_interval_symbol_month_partition(wh: Warehouse) -> None:
    report = wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    assert _visible(wh.root) == ["bars/interval=1m/symbol=NIFTY/month=2026-11/data.parquet"]
    assert report.rows_in == 375
    assert report.catalog_refreshed
    stored = pq.read_table(report.files_written[0])
    assert stored.schema == get_dataset("bars").schema
    assert stored.num_rows == 375


def test_rewriting_the_same_bars_is_idempotent(wh: Warehouse) -> None:
    bars = minute_bars("NIFTY", DAY)
    wh.write("bars", bars, interval="1m")
    before = wh.read("bars", interval="1m")
    wh.write("bars", bars, interval="1m")
    wh.write("bars", bars, interval="1m")
    after = wh.read("bars", interval="1m")
    assert after.num_rows == 375
    assert after.equals(before)
    assert len(wh.files("bars")) == 1


def test_overlapping_ranges_merge_and_newest_write_wins(wh: Warehouse) -> None:
    # minutes 0..199 at 100, then 150..374 at 101: the overlap 150..199 takes 101.
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=200, close=100.0), interval="1m")
    later = minute_bars("NIFTY", DAY, first_minute=150, minutes=225, close=101.0)
    wh.write("bars", later, interval="1m")
    table = wh.read("bars", interval="1m", symbol="NIFTY")
    assert table.num_rows == 375
    closes = table["close"].to_pylist()
    assert closes[:150] == [100.0] * 150
    assert closes[150:] == [101.0] * 225
    stamps = table["ts"].to_pylist()
    assert stamps == sorted(stamps)
    assert len(wh.files("bars")) == 1


def test_duplicate_keys_within_one_table_keep_the_last_row(wh: Warehouse) -> None:
    rows = [order_row("1", "open"), order_row("1", "complete"), order_row("2", "rejected")]
    wh.write("orders", pa.Table.from_pylist(rows, schema=get_dataset("orders").schema))
    table = wh.read("orders")
    assert dict(zip(table["order_id"].to_pylist(), table["status"].to_pylist(), strict=True)) == {
        "1": "complete",
        "2": "rejected",
    }


def test_crash_before_rename_leaves_old_file_intact_and_no_visible_temp(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY, close=100.0), interval="1m")
    [path] = wh.files("bars")
    old_bytes = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        wh.write("bars", minute_bars("NIFTY", DAY, close=250.0), interval="1m")
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert _visible(wh.root) == ["bars/interval=1m/symbol=NIFTY/month=2026-11/data.parquet"]
    assert _hidden_temps(wh.root) == []
    assert set(wh.read("bars", interval="1m")["close"].to_pylist()) == {100.0}


def test_temp_file_of_an_interrupted_write_is_invisible_to_readers(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    [path] = wh.files("bars")
    # what a power cut mid-write leaves behind: a hidden, half-written temp file
    debris = path.with_name(".data.parquet.deadbeef.tmp")
    debris.write_bytes(path.read_bytes()[:100])
    assert wh.files("bars") == [path]
    assert wh.read("bars", interval="1m").num_rows == 375
    assert wh.query("SELECT count(*) AS n FROM bars_1m")["n"].to_pylist() == [375]
    report = wh.check()
    assert report.temp_files_removed == [debris]
    assert not report.quarantine


def test_crash_between_new_file_and_removal_loses_nothing(wh: Warehouse) -> None:
    # A leftover superseded file next to data.parquet: reads dedupe, the next write cleans.
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=100, close=100.0), interval="1m")
    [path] = wh.files("bars")
    leftover = path.with_name("part-000001.parquet")
    pq.write_table(minute_bars("NIFTY", DAY, first_minute=50, minutes=100, close=99.0), leftover)
    table = wh.read("bars", interval="1m")
    assert table.num_rows == 150
    wh.write("bars", minute_bars("NIFTY", DAY, first_minute=149, minutes=1), interval="1m")
    assert wh.files("bars") == [path]
    assert wh.read("bars", interval="1m").num_rows == 150


def test_append_only_datasets_add_part_files(wh: Warehouse) -> None:
    start = datetime(2026, 11, 20, 4, tzinfo=UTC)
    wh.write("events", events(start, ["a", "b"]))
    wh.write("events", events(start, ["c"]))
    names = [p.name for p in wh.files("events")]
    assert names == ["part-000001.parquet", "part-000002.parquet"]
    assert wh.read("events")["key"].to_pylist() == ["a", "c", "b"]  # ordered by ts


def test_ticks_are_partitioned_by_ist_date(wh: Warehouse) -> None:
    wh.write("ticks", ticks(DAY, 10))
    assert _visible(wh.root) == ["ticks/date=2026-11-02/part-000001.parquet"]


def test_partition_values_are_checked(wh: Warehouse) -> None:
    bars = minute_bars("NIFTY", DAY, minutes=2)
    with pytest.raises(PartitionError, match=r"bars needs interval=.*1m, 5m"):
        wh.write("bars", bars)
    with pytest.raises(UnknownDataset, match="interval '2m'"):
        wh.write("bars", bars, interval="2m")
    with pytest.raises(PartitionError, match="symbol='BANKNIFTY' given but some rows"):
        wh.write("bars", bars, interval="1m", symbol="BANKNIFTY")
    with pytest.raises(PartitionError, match="'month' is not a partition of bars"):
        wh.write("bars", bars, interval="1m", month="2026-11")
    assert wh.files("bars") == []
    wh.write("bars", bars, interval="1m", symbol="NIFTY")
    assert len(wh.files("bars", "1m")) == 1


def test_read_filters_by_symbol_and_time(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    wh.write("bars", minute_bars("NIFTY", date(2026, 12, 1)), interval="1m")
    wh.write("bars", minute_bars("BANKNIFTY", DAY), interval="1m")
    assert wh.read("bars", interval="1m").num_rows == 3 * 375
    assert wh.read("bars", interval="1m", symbol=["NIFTY"]).num_rows == 2 * 375
    one_day = wh.read("bars", interval="1m", symbol="NIFTY", start=DAY, end=date(2026, 11, 3))
    assert one_day.num_rows == 375
    # 09:15 to 09:20 IST is 03:45 to 03:50 UTC: five bars, end exclusive
    window = wh.read(
        "bars",
        interval="1m",
        start=datetime(2026, 11, 2, 3, 45, tzinfo=UTC),
        end=datetime(2026, 11, 2, 3, 50, tzinfo=UTC),
        columns=["symbol", "close"],
    )
    assert window.column_names == ["symbol", "close"]
    assert window["symbol"].to_pylist() == ["BANKNIFTY"] * 5 + ["NIFTY"] * 5
    assert wh.read("bars", interval="5m").num_rows == 0
    with pytest.raises(ValueError, match="no time zone"):
        wh.read("bars", interval="1m", start=datetime(2026, 11, 2))
