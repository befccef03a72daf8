"""Retention: the dry run lists exactly what the real run removes, and changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.builders import bars_at, minute_bars, order_row, ticks
from warehouse import RetentionPolicy, Warehouse, get_dataset
from warehouse.retention import months_before

TODAY = date(2026, 11, 20)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix == ".parquet"
    }


def _fill(wh: Warehouse) -> None:
    for day in (date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), TODAY):
        wh.write("ticks", ticks(day, 4))
    for day in (date(2026, 7, 31), date(2026, 8, 3), date(2026, 11, 2)):
        wh.write("bars", minute_bars("NIFTY", day, minutes=10), interval="1m")
    wh.write("bars", minute_bars("NIFTY", date(2026, 6, 1), minutes=6), interval="5m")
    daily = [datetime(2020, 3, 2, tzinfo=UTC) - timedelta(hours=5, minutes=30)]
    wh.write("bars", bars_at("NIFTY", daily), interval="1d")
    import pyarrow as pa

    old_order = order_row("1", "complete") | {"session_date": date(2020, 3, 2)}
    wh.write("orders", pa.Table.from_pylist([old_order], schema=get_dataset("orders").schema))


def test_cutoff_arithmetic() -> None:
    # Same day N months back, clamped to the shorter month.
    assert months_before(date(2026, 11, 20), 3) == date(2026, 8, 20)
    assert months_before(date(2026, 1, 15), 3) == date(2025, 10, 15)
    assert months_before(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert months_before(date(2024, 5, 31), 3) == date(2024, 2, 29)
    with pytest.raises(ValueError, match="ticks_days"):
        RetentionPolicy(ticks_days=-1)


def test_dry_run_lists_exact_files_and_changes_nothing(wh: Warehouse) -> None:
    _fill(wh)
    before = _snapshot(wh.root)
    plan = wh.retention(TODAY, dry_run=True)
    # ticks: older than 20 Nov - 2 days = 18 Nov → 16th and 17th go, 18th stays.
    # intraday bars: months ending before 20 Aug → July (1m) and June (5m) go, August stays.
    # daily bars and orders from 2020 stay: kept forever by default.
    assert sorted(str(f.path.relative_to(wh.root)) for f in plan.files) == [
        "bars/interval=1m/symbol=NIFTY/month=2026-07/data.parquet",
        "bars/interval=5m/symbol=NIFTY/month=2026-06/data.parquet",
        "ticks/date=2026-11-16/part-000001.parquet",
        "ticks/date=2026-11-17/part-000001.parquet",
    ]
    assert {f.view for f in plan.files} == {"bars_1m", "bars_5m", "ticks"}
    assert plan.total_rows == 10 + 6 + 4 + 4
    assert plan.total_bytes == sum(f.path.stat().st_size for f in plan.files)
    assert not plan.applied
    assert _snapshot(wh.root) == before


def test_apply_removes_exactly_the_plan(wh: Warehouse) -> None:
    _fill(wh)
    before = _snapshot(wh.root)
    plan = wh.retention(TODAY, dry_run=True)
    removed = wh.apply_retention(plan)
    assert sorted(removed) == sorted(f.path for f in plan.files)
    after = _snapshot(wh.root)
    expected = {k: v for k, v in before.items() if wh.root / k not in set(removed)}
    assert after == expected
    assert not (wh.root / "ticks/date=2026-11-16").exists()  # emptied folders go too
    assert not (wh.root / "bars/interval=5m").exists()
    assert (wh.root / "bars").is_dir()
    # views still work, including bars_5m which has no files left
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bars_5m").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM bars_1m").fetchone() == (20,)
        assert con.execute("SELECT count(*) FROM ticks").fetchone() == (8,)
    finally:
        con.close()
    assert wh.retention(TODAY, dry_run=False).files == []


def test_real_run_with_other_limits(wh: Warehouse) -> None:
    _fill(wh)
    plan = wh.retention(
        TODAY, dry_run=False, ticks_days=0, intraday_bars_months=0, daily_bars_years=1
    )
    assert plan.applied
    # ticks_days=0 keeps only today; months=0 keeps only this month; 2020 daily bars go.
    assert sorted(str(p.relative_to(wh.root)) for p in plan.removed) == [
        "bars/interval=1d/symbol=NIFTY/year=2020/data.parquet",
        "bars/interval=1m/symbol=NIFTY/month=2026-07/data.parquet",
        "bars/interval=1m/symbol=NIFTY/month=2026-08/data.parquet",
        "bars/interval=5m/symbol=NIFTY/month=2026-06/data.parquet",
        "ticks/date=2026-11-16/part-000001.parquet",
        "ticks/date=2026-11-17/part-000001.parquet",
        "ticks/date=2026-11-18/part-000001.parquet",
    ]
    assert wh.read("orders").num_rows == 1
