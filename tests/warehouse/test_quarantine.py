"""Corrupt and foreign files are quarantined with their path reported, never fatal."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.warehouse.builders import minute_bars
from warehouse import Warehouse

DAY = date(2026, 11, 2)


def _bad_files(wh: Warehouse) -> tuple[Path, Path, Path]:
    """NIFTY (good), plus garbage x.parquet and a foreign-schema file among BANKNIFTY's."""
    wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    wh.write("bars", minute_bars("BANKNIFTY", DAY), interval="1m")
    [good] = [p for p in wh.files("bars") if "BANKNIFTY" in str(p)]
    garbage = good.with_name("x.parquet")
    garbage.write_bytes(b"this is not parquet at all" * 10)
    foreign = good.with_name("foreign.parquet")
    pq.write_table(pa.table({"foo": [1, 2], "bar": ["a", "b"]}), foreign)
    return good, garbage, foreign


def _quarantined_at(wh: Warehouse, path: Path) -> Path:
    return wh.root / "quarantine" / "bars" / path.relative_to(wh.root / "bars")


def test_read_quarantines_bad_files_and_returns_the_rest(
    wh: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    good, garbage, foreign = _bad_files(wh)
    with caplog.at_level(logging.WARNING, logger="warehouse"):
        result = wh.scan("bars", interval="1m")
    assert result.table.num_rows == 2 * 375
    assert sorted(result.quarantine.paths) == sorted([garbage, foreign])
    for item in result.quarantine:
        assert item.moved_to == _quarantined_at(wh, item.path)
        assert item.moved_to.is_file()
        note = item.moved_to.with_name(item.moved_to.name + ".reason.txt").read_text()
        assert str(item.path) in note
        assert str(item.path) in caplog.text
    reasons = {item.path.name: item.reason for item in result.quarantine}
    assert "unreadable Parquet" in reasons["x.parquet"]
    assert "missing column 'symbol'" in reasons["foreign.parquet"]
    assert not garbage.exists() and not foreign.exists()
    assert good.exists()
    # the next read finds nothing more to quarantine
    assert not wh.scan("bars", interval="1m").quarantine


def test_truncated_file_is_quarantined(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    [path] = wh.files("bars")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = wh.scan("bars", interval="1m")
    assert result.table.num_rows == 0
    assert result.quarantine.paths == [path]
    assert _quarantined_at(wh, path).read_bytes() == data[: len(data) // 2]


def test_catalog_refresh_quarantines_before_building_views(wh: Warehouse) -> None:
    _, garbage, foreign = _bad_files(wh)
    report = wh.refresh_catalog()
    assert sorted(report.paths) == sorted([garbage, foreign])
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bars_1m").fetchone() == (750,)
    finally:
        con.close()


def test_query_survives_a_corrupt_file(wh: Warehouse) -> None:
    _bad_files(wh)
    assert wh.query("SELECT count(*) AS n FROM bars_1m")["n"].to_pylist() == [750]


def test_write_quarantines_a_corrupt_file_instead_of_overwriting_it(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=10), interval="1m")
    [path] = wh.files("bars")
    path.write_bytes(b"PAR1 broken")
    report = wh.write("bars", minute_bars("NIFTY", DAY, first_minute=10, minutes=5), interval="1m")
    assert report.quarantine.paths == [path]
    assert _quarantined_at(wh, path).read_bytes() == b"PAR1 broken"
    assert wh.read("bars", interval="1m").num_rows == 5


def test_deep_check_finds_rows_in_the_wrong_partition_and_stray_files(wh: Warehouse) -> None:
    wh.write("bars", minute_bars("NIFTY", DAY), interval="1m")
    [path] = wh.files("bars")
    # a valid file whose rows belong to another symbol: DuckDB would relabel them NIFTY
    misplaced = path.with_name("part-000009.parquet")
    pq.write_table(minute_bars("BANKNIFTY", DAY, minutes=3), misplaced)
    stray_dir = wh.root / "bars/interval=1m/symbol=NIFTY/month=November"
    stray_dir.mkdir()
    stray = stray_dir / "data.parquet"
    pq.write_table(minute_bars("NIFTY", DAY, minutes=3), stray)
    report = wh.check(deep=True)
    reasons = {item.path: item.reason for item in report.quarantine}
    assert set(reasons) == {misplaced, stray}
    assert "symbol" in reasons[misplaced] and "BANKNIFTY" in reasons[misplaced]
    assert "outside the dataset's partition layout" in reasons[stray]
    [bars_1m] = [v for v in report.views if v.view == "bars_1m"]
    assert (bars_1m.files, bars_1m.rows) == (1, 375)
    assert report.catalog_refreshed


def test_same_name_quarantined_twice_keeps_both(wh: Warehouse) -> None:
    for _ in range(2):
        wh.write("bars", minute_bars("NIFTY", DAY, minutes=2), interval="1m")
        [path] = wh.files("bars")
        path.write_bytes(b"garbage")
        wh.scan("bars", interval="1m")
    folder = _quarantined_at(wh, path).parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "data.parquet",
        "data.parquet.1",
        "data.parquet.1.reason.txt",
        "data.parquet.reason.txt",
    ]
