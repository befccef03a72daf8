"""Compaction folds part files into one per partition and keeps every row."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow.parquet as pq

from tests.warehouse.builders import events, minute_bars, ticks
from warehouse import Warehouse


def test_compaction_reduces_files_and_keeps_rows(wh: Warehouse) -> None:
    start = datetime(2026, 11, 20, 4, tzinfo=UTC)
    for i in range(5):
        wh.write("events", events(start, [f"e{i}a", f"e{i}b"]))
    for i in range(3):
        wh.write("ticks", ticks(date(2026, 11, 20), 10, first=10 * i))
    before_events = wh.read("events")
    before_ticks = wh.read("ticks")
    assert len(wh.files("events")) == 5 and len(wh.files("ticks")) == 3

    report = wh.compact()
    assert (report.files_before, report.files_after) == (8, 2)
    assert report.rows == 10 + 30
    assert [p.name for p in wh.files("events")] == ["data.parquet"]
    assert [p.name for p in wh.files("ticks")] == ["data.parquet"]
    assert wh.read("events").equals(before_events)
    assert wh.read("ticks").equals(before_ticks)
    assert pq.read_metadata(wh.files("ticks")[0]).num_rows == 30

    # appends after compaction go next to data.parquet and are read with it
    wh.write("events", events(start, ["late"]))
    assert [p.name for p in wh.files("events")] == ["data.parquet", "part-000001.parquet"]
    assert wh.read("events").num_rows == 11
    assert wh.compact("events").files_after == 1


def test_compaction_dedupes_resent_events_and_leaves_single_files_alone(wh: Warehouse) -> None:
    start = datetime(2026, 11, 20, 4, tzinfo=UTC)
    wh.write("events", events(start, ["a", "b"]))
    wh.write("events", events(start, ["b", "c"]))  # "b" sent again after a restart
    wh.write("bars", minute_bars("NIFTY", date(2026, 11, 2)), interval="1m")
    [bars_file] = wh.files("bars")
    mtime = bars_file.stat().st_mtime_ns
    report = wh.compact()
    assert report.partitions == [wh.files("events")[0].parent]
    assert wh.read("events")["key"].to_pylist() == ["a", "b", "c"]
    assert bars_file.stat().st_mtime_ns == mtime  # one file already: not rewritten
