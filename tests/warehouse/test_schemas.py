"""The dataset declarations are consistent with their schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from warehouse import DATASETS, UnknownDataset, get_dataset
from warehouse.schemas import PERIOD_LEVEL_NAMES

MONEY_DATASETS = ("orders", "trades", "positions", "charges", "ticks", "instruments")


@pytest.mark.parametrize("name", list(DATASETS))
def test_key_sort_time_and_level_columns_exist(name: str) -> None:
    ds = DATASETS[name]
    columns = set(ds.schema.names)
    assert set(ds.key) <= columns
    assert set(ds.sort_columns) <= columns
    assert ds.time_column in columns
    assert set(ds.column_levels) <= columns
    for column in (*ds.key, ds.time_column, *ds.column_levels):
        # a null key or partition value would have no home
        assert not ds.schema.field(column).nullable or name == "ticks", column


@pytest.mark.parametrize("name", list(DATASETS))
def test_path_only_levels_never_shadow_a_column(name: str) -> None:
    # DuckDB's hive partitioning lets a path value override a same-named file column.
    ds = DATASETS[name]
    for variant in ds.variant_names():
        for level in ds.levels(variant):
            if level.column is None or level.period is not None:
                assert level.name not in ds.schema.names, (name, level.name)


@pytest.mark.parametrize("name", MONEY_DATASETS)
def test_money_columns_are_int64_paise(name: str) -> None:
    schema = DATASETS[name].schema
    money = [f for f in schema if f.name.endswith("_paise")]
    assert money, "a money dataset without paise columns"
    for field in money:
        assert field.type == pa.int64() or (name == "instruments" and field.type == pa.int32())
    for field in schema:
        if "quantity" in field.name or field.name.endswith("_qty"):
            assert field.type == pa.int64(), field.name


def test_bars_are_split_by_interval_with_daily_by_year() -> None:
    bars = get_dataset("bars")
    assert bars.variants == ("1m", "5m", "15m", "1h", "1d")
    assert [lvl.name for lvl in bars.levels("1m")] == ["interval", "symbol", "month"]
    assert [lvl.name for lvl in bars.levels("1d")] == ["interval", "symbol", "year"]
    assert bars.view_name("15m") == "bars_15m"
    assert bars.key == ("symbol", "ts")
    assert bars.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert set(PERIOD_LEVEL_NAMES.values()) == {"date", "month", "year"}


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(UnknownDataset, match=r"unknown dataset 'bar'.*bars"):
        get_dataset("bar")
    with pytest.raises(UnknownDataset, match=r"interval '2m'.*1m, 5m"):
        get_dataset("bars").check_variant("2m")
