"""Partition paths and period labels (pure functions: golden cases and properties)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.warehouse.builders import bars_at
from warehouse import get_dataset
from warehouse.layout import (
    IST,
    decode_value,
    encode_value,
    partition_of,
    period_bounds,
    period_label,
    period_labels,
    split_by_partition,
)

BARS = get_dataset("bars")


def test_daily_bar_stamped_midnight_ist_stays_in_its_own_month() -> None:
    # 2026-11-02 00:00 IST is 2026-11-01 18:30 UTC: the UTC month would be wrong on the 1st.
    stamp = datetime(2026, 11, 1, 0, 0, tzinfo=IST).astimezone(UTC)
    assert stamp.day == 31 and stamp.month == 10
    labels = period_labels(pa.array([stamp], pa.timestamp("us", tz="UTC")), "month")
    assert labels.to_pylist() == ["2026-11"]


def test_split_groups_rows_by_symbol_and_month() -> None:
    stamps = [datetime(2026, 10, 30, 4, tzinfo=UTC), datetime(2026, 11, 2, 4, tzinfo=UTC)]
    table = pa.concat_tables([bars_at("NIFTY", stamps), bars_at("M&M", stamps[:1])])
    groups = split_by_partition(table, BARS, "1m")
    paths = sorted(
        ("/".join(f"{lvl.name}={encode_value(v)}" for lvl, v in levels), part.num_rows)
        for levels, part in groups
    )
    assert paths == [
        ("interval=1m/symbol=M%26M/month=2026-10", 1),
        ("interval=1m/symbol=NIFTY/month=2026-10", 1),
        ("interval=1m/symbol=NIFTY/month=2026-11", 1),
    ]


def test_partition_of_parses_and_rejects_paths(tmp_path: Path) -> None:
    root = tmp_path
    good = root / "bars/interval=1d/symbol=M%26M/year=2026/data.parquet"
    part = partition_of(root, BARS, good)
    assert part is not None
    assert (part.variant, dict(part.values), part.label) == ("1d", {"symbol": "M&M"}, "2026")
    assert part.bounds() == (date(2026, 1, 1), date(2027, 1, 1))
    for bad in (
        "bars/interval=1d/symbol=X/month=2026-01/x.parquet",  # daily bars are by year
        "bars/interval=2m/symbol=X/month=2026-01/x.parquet",  # no such interval
        "bars/interval=1m/symbol=X/month=2026-13/x.parquet",  # no such month
        "bars/interval=1m/month=2026-01/x.parquet",  # level missing
    ):
        assert partition_of(root, BARS, root / bad) is None, bad


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_encoded_values_round_trip_and_stay_one_path_segment(value: str) -> None:
    encoded = encode_value(value)
    assert "/" not in encoded and "=" not in encoded
    assert decode_value(encoded) == value


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
def test_period_bounds_contain_the_day(day: date) -> None:
    for period in ("day", "month", "year"):
        bounds = period_bounds(period_label(day, period), period)
        assert bounds is not None
        first, after = bounds
        assert first <= day < after
        # the next period starts exactly where this one ends
        assert period_label(after, period) != period_label(day, period)
        assert period_label(after - timedelta(days=1), period) == period_label(day, period)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=20,
    )
)
def test_arrow_period_labels_match_ist_calendar(stamps: list[datetime]) -> None:
    array = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    expected = [s.astimezone(IST).strftime("%Y-%m-%d") for s in stamps]
    assert period_labels(array, "day").to_pylist() == expected
