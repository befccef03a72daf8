"""``write(..., replace_partitions=True)``: rows become the whole content of their partitions."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.warehouse.builders import events, minute_bars
from warehouse import PartitionError, Warehouse
from warehouse.schemas import INSTRUMENTS_SCHEMA

DAY = date(2026, 11, 20)
NEXT_DAY = date(2026, 11, 23)


def snapshot(day: date, names: list[str]) -> pa.Table:
    """A tiny instrument snapshot: each underlying's index row and one future."""
    rows = []
    for n, name in enumerate(names):
        rows.append((f"9{n}", name, "NSE", "AMXIDX", None))
        rows.append((f"5{n}", f"{name}26NOVFUT", "NFO", "FUTIDX", date(2026, 11, 24)))
    return pa.table(
        {
            "snapshot_date": [day] * len(rows),
            "token": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "name": [names[i // 2] for i in range(len(rows))],
            "exchange": [r[2] for r in rows],
            "instrument_type": [r[3] for r in rows],
            "expiry": [r[4] for r in rows],
            "strike_paise": pa.nulls(len(rows), pa.int64()),
            "option_type": pa.nulls(len(rows), pa.string()),
            "lot_size": pa.array([75] * len(rows), pa.int32()),
            "tick_paise": pa.array([5] * len(rows), pa.int32()),
        },
        schema=INSTRUMENTS_SCHEMA,
    )


def test_merge_keeps_dropped_rows_but_replace_leaves_only_the_new_ones(wh: Warehouse) -> None:
    wh.write("instruments", snapshot(DAY, ["NIFTY", "BANKNIFTY"]))
    wh.write("instruments", snapshot(NEXT_DAY, ["NIFTY", "BANKNIFTY"]))
    # BANKNIFTY's tokens are keys NIFTY's rows do not share: a merge keeps them
    wh.write("instruments", snapshot(DAY, ["NIFTY"]))
    assert wh.read("instruments", start=DAY, end=NEXT_DAY).num_rows == 4

    report = wh.write("instruments", snapshot(DAY, ["NIFTY"]), replace_partitions=True)

    assert report.catalog_refreshed
    assert [p.rows for p in report.partitions] == [2]
    day_rows = wh.read("instruments", start=DAY, end=NEXT_DAY)
    assert sorted(day_rows["symbol"].to_pylist()) == ["NIFTY", "NIFTY26NOVFUT"]
    assert wh.query(f"SELECT count(*) AS n FROM instruments WHERE snapshot_date = DATE '{DAY}'")[
        "n"
    ].to_pylist() == [2]
    # the other day's partition is not touched
    later = wh.read("instruments", start=NEXT_DAY)
    assert set(later["name"].to_pylist()) == {"NIFTY", "BANKNIFTY"}
    assert later.num_rows == 4


def test_replace_touches_only_the_partitions_its_rows_fall_in(wh: Warehouse) -> None:
    december = date(2026, 12, 1)
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=30, close=100.0), interval="1m")
    wh.write("bars", minute_bars("NIFTY", december, minutes=30, close=100.0), interval="1m")
    wh.write("bars", minute_bars("BANKNIFTY", DAY, minutes=30, close=100.0), interval="1m")

    # NIFTY's November partition now holds 10 bars from 09:20, nothing from before
    replacement = minute_bars("NIFTY", DAY, first_minute=5, minutes=10, close=101.0)
    wh.write("bars", replacement, interval="1m", replace_partitions=True)

    november = wh.read("bars", interval="1m", symbol="NIFTY", end=december)
    assert november["ts"].to_pylist() == replacement["ts"].to_pylist()
    assert set(november["close"].to_pylist()) == {101.0}
    assert wh.read("bars", interval="1m", symbol="NIFTY", start=december).num_rows == 30
    assert wh.read("bars", interval="1m", symbol="BANKNIFTY").num_rows == 30
    counts = wh.query("SELECT symbol, count(*) AS n FROM bars_1m GROUP BY symbol ORDER BY symbol")
    assert counts.to_pylist() == [{"symbol": "BANKNIFTY", "n": 30}, {"symbol": "NIFTY", "n": 40}]


def test_replace_keeps_the_last_of_duplicate_keys_and_leaves_one_file(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=20, close=100.0), interval="1m")
    [path] = wh.files("bars")
    # a file left over by a merge that crashed before cleaning up
    leftover = path.with_name("part-000001.parquet")
    pq.write_table(minute_bars("NIFTY", DAY, first_minute=20, minutes=5, close=99.0), leftover)
    twice = pa.concat_tables(
        [
            minute_bars("NIFTY", DAY, minutes=3, close=102.0),
            minute_bars("NIFTY", DAY, minutes=3, close=103.0),
        ]
    )

    report = wh.write("bars", twice, interval="1m", replace_partitions=True)

    assert wh.files("bars") == [path]
    assert report.files_removed == [leftover]
    table = wh.read("bars", interval="1m")
    assert table["close"].to_pylist() == [103.0] * 3


def test_a_crash_before_the_swap_leaves_the_old_partition(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh.write("instruments", snapshot(DAY, ["NIFTY", "BANKNIFTY"]))

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        wh.write("instruments", snapshot(DAY, ["NIFTY"]), replace_partitions=True)
    monkeypatch.undo()

    assert set(wh.read("instruments")["name"].to_pylist()) == {"NIFTY", "BANKNIFTY"}
    assert wh.read("instruments").num_rows == 4


def test_an_empty_table_replaces_nothing(wh: Warehouse) -> None:
    wh.write("instruments", snapshot(DAY, ["NIFTY"]))
    report = wh.write("instruments", snapshot(DAY, []), replace_partitions=True)
    assert report.partitions == []
    assert wh.read("instruments").num_rows == 2


def test_append_only_datasets_refuse_replace(wh: Warehouse) -> None:
    start = minute_bars("NIFTY", DAY, minutes=1)["ts"][0].as_py()
    wh.write("events", events(start, ["a", "b"]))
    with pytest.raises(PartitionError, match="events is append-only"):
        wh.write("events", events(start, ["c"]), replace_partitions=True)
    assert sorted(wh.read("events")["key"].to_pylist()) == ["a", "b"]
