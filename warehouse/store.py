"""``Warehouse``: the one entry point to the Parquet datasets and their DuckDB catalog."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.atomic import ensure_dir, remove_files
from warehouse.catalog import CATALOG_FILE, apply_views, view_sql
from warehouse.compaction import CompactionReport, compact_dataset
from warehouse.conform import conform
from warehouse.errors import CatalogBusy, PartitionError, QueryError
from warehouse.layout import (
    ist_day,
    ist_midnight,
    list_partitions,
    partition_dir,
    split_by_partition,
)
from warehouse.locks import catalog_lock, dataset_lock
from warehouse.quarantine import QuarantineReport
from warehouse.reader import ReadResult, read_partition, sort_rows
from warehouse.retention import RetentionPlan, RetentionPolicy, apply_retention, plan_retention
from warehouse.schemas import DATASETS, UTC_TS, Dataset, get_dataset
from warehouse.verify import FileVerifier
from warehouse.writer import (
    PartitionWrite,
    append_partition,
    merge_partition,
    replace_partition,
)

log = logging.getLogger(__name__)

TimeBound = date | datetime


@dataclass(slots=True)
class WriteReport:
    """What ``Warehouse.write`` did."""

    dataset: str
    view: str
    rows_in: int
    partitions: list[PartitionWrite] = field(default_factory=list)
    quarantine: QuarantineReport = field(default_factory=QuarantineReport)
    catalog_refreshed: bool = False

    @property
    def files_written(self) -> list[Path]:
        """The new data files."""
        return [p.written for p in self.partitions if p.written is not None]

    @property
    def files_removed(self) -> list[Path]:
        """Files superseded by the new ones."""
        return [path for p in self.partitions for path in p.removed]


@dataclass(frozen=True, slots=True)
class ViewSummary:
    """Files, rows and bytes behind one catalog view."""

    view: str
    files: int
    rows: int
    bytes: int


@dataclass(slots=True)
class CheckReport:
    """Outcome of ``Warehouse.check``."""

    views: list[ViewSummary] = field(default_factory=list)
    quarantine: QuarantineReport = field(default_factory=QuarantineReport)
    temp_files_removed: list[Path] = field(default_factory=list)
    catalog_refreshed: bool = False


class Warehouse:
    """Hive-partitioned Parquet datasets under ``root`` plus ``root/catalog.duckdb``.

    Example::

        wh = Warehouse(Path("data"))
        wh.write("bars", bars_table, interval="1m")
        wh.read("bars", interval="1m", symbol="NIFTY", start=date(2026, 11, 2))
        wh.query("SELECT symbol, count(*) FROM bars_1m GROUP BY symbol")
    """

    def __init__(self, root: Path | str, *, catalog_timeout_s: float = 5.0) -> None:
        self.root = Path(root).absolute()
        self.catalog_path = self.root / CATALOG_FILE
        self.catalog_timeout_s = catalog_timeout_s
        self._verifier = FileVerifier(self.root)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        dataset: str,
        table: pa.Table,
        *,
        replace_partitions: bool = False,
        **partition_values: str,
    ) -> WriteReport:
        """Merge (or, for events and ticks, append) rows into their partitions.

        Bars need ``interval=`` ("1m", "5m", "15m", "1h", "1d"); other partition
        values come from the rows. A value given for a column level (``symbol=``)
        must match every row.

        ``replace_partitions=True`` makes the rows the whole content of each partition
        they fall in (a day's instrument snapshot written again, say): earlier rows
        there go, whatever their keys, in one atomic swap per partition. Partitions
        the rows do not touch are left alone, so an empty table changes nothing.
        Append-only datasets (events, ticks) cannot be replaced.
        """
        ds = get_dataset(dataset)
        if replace_partitions and ds.append_only:
            raise PartitionError(
                f"{ds.name} is append-only; replace_partitions works for merged datasets"
            )
        variant = self._variant(ds, partition_values)
        rows = conform(table, ds, source=f"table for {ds.view_name(variant)}")
        for name, value in partition_values.items():
            if name not in ds.column_levels:
                raise PartitionError(self._unknown_level(ds, name))
            if not isinstance(value, str):
                raise PartitionError(f"{name} must be one string when writing, got {value!r}")
            if rows.num_rows and not pc.all(pc.equal(rows[name], value)).as_py():
                raise PartitionError(f"{name}={value!r} given but some rows have another {name}")
        report = WriteReport(ds.name, ds.view_name(variant), rows.num_rows)
        groups = split_by_partition(rows, ds, variant)
        if not groups:
            return report
        with dataset_lock(self.root, ds.name):
            for levels, part in groups:
                directory = partition_dir(self.root, ds, levels)
                if replace_partitions:
                    result = replace_partition(ds, directory, part)
                elif ds.append_only:
                    result = append_partition(ds, directory, part)
                else:
                    result = merge_partition(self.root, ds, directory, part, report.quarantine)
                if result.written is not None:
                    self._verifier.trust(result.written)
                self._verifier.forget(result.removed)
                report.partitions.append(result)
        report.catalog_refreshed = self._refresh_after_change([(ds, variant)], report.quarantine)
        return report

    # -- reading ---------------------------------------------------------------------------

    def read(
        self,
        dataset: str,
        *,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        columns: Sequence[str] | None = None,
        **partition_values: str | Sequence[str],
    ) -> pa.Table:
        """Rows of a dataset as one table (see ``scan``); quarantined files are logged."""
        return self.scan(dataset, start=start, end=end, columns=columns, **partition_values).table

    def scan(
        self,
        dataset: str,
        *,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        columns: Sequence[str] | None = None,
        **partition_values: str | Sequence[str],
    ) -> ReadResult:
        """Rows with ``start <= time column < end``, narrowed by partition values.

        Bars need ``interval=``; ``symbol=`` takes one symbol or a list. Bounds are
        aware datetimes, or dates meaning 00:00 IST for timestamp columns.
        Unreadable files are quarantined and listed in the result, not raised.
        """
        ds = get_dataset(dataset)
        variant = self._variant(ds, partition_values)
        where: dict[str, list[str]] = {}
        for name, value in partition_values.items():
            if name not in ds.column_levels:
                raise PartitionError(self._unknown_level(ds, name))
            where[name] = [value] if isinstance(value, str) else list(value)
        if columns is not None:
            unknown = [c for c in columns if c not in ds.schema.names]
            if unknown:
                raise PartitionError(
                    f"unknown column(s) {unknown} for {ds.name}; "
                    f"columns: {', '.join(ds.schema.names)}"
                )
        low, first_day = _lower_bound(ds, start)
        high, end_day = _upper_bound(ds, end)
        report = QuarantineReport()
        tables: list[pa.Table] = []
        for partition in list_partitions(self.root, ds, variant=variant, where=where):
            bounds = partition.bounds()
            if bounds is None:
                continue
            if first_day is not None and bounds[1] <= first_day:
                continue
            if end_day is not None and bounds[0] >= end_day:
                continue
            part = read_partition(self.root, ds, partition, report)
            if part.num_rows:
                tables.append(part)
        if not tables:
            table = ds.schema.empty_table()
        elif len(tables) == 1:
            table = tables[0]
        else:
            table = sort_rows(pa.concat_tables(tables), ds.sort_columns)
        time_values = table[ds.time_column]
        if low is not None:
            table = table.filter(pc.greater_equal(time_values, low))
            time_values = table[ds.time_column]
        if high is not None:
            table = table.filter(pc.less(time_values, high))
        if columns is not None:
            table = table.select(list(columns))
        return ReadResult(table, report)

    def query(self, sql: str) -> pa.Table:
        """Run SQL over every dataset view (``bars_1m``, ``trades``, …) and return Arrow.

        Uses a private in-memory DuckDB with the same views as the catalog file, so it
        never waits for the catalog's lock. Timestamps come back in UTC.
        """
        attempt = 1
        while True:
            try:
                return self._query_once(sql)
            except duckdb.IOException as exc:
                # a file the glob listed was removed (compaction, retention) mid-query
                if attempt == 3:
                    raise QueryError(str(exc)) from exc
                attempt += 1
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc

    def _query_once(self, sql: str) -> pa.Table:
        report = QuarantineReport()  # quarantined files are logged as warnings
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            for ds, variant in self._views(None):
                files = self._verifier.valid_files(ds, variant, report, deep=False)
                con.execute(view_sql(self.root, ds, variant, has_files=bool(files)))
            result = con.sql(sql)
            return result.to_arrow_table() if result is not None else pa.table({})
        finally:
            con.close()

    # -- catalog ---------------------------------------------------------------------------

    def refresh_catalog(
        self, datasets: Iterable[str] | None = None, *, timeout_s: float | None = None
    ) -> QuarantineReport:
        """Verify files (quarantining bad ones) and recreate the views in ``catalog.duckdb``.

        Raises ``CatalogBusy`` if another process keeps the catalog file locked.
        """
        report = QuarantineReport()
        self._refresh(self._views(datasets), report, timeout_s or self.catalog_timeout_s)
        return report

    def _refresh(
        self,
        views: list[tuple[Dataset, str | None]],
        report: QuarantineReport,
        timeout_s: float,
    ) -> None:
        def statements(selected: list[tuple[Dataset, str | None]]) -> dict[str, str]:
            return {
                ds.view_name(variant): view_sql(
                    self.root,
                    ds,
                    variant,
                    has_files=bool(self._verifier.valid_files(ds, variant, report, deep=False)),
                )
                for ds, variant in selected
            }

        def missing(present: set[str]) -> dict[str, str]:
            absent = [(ds, v) for ds, v in self._views(None) if ds.view_name(v) not in present]
            return statements(absent)

        deadline = time.monotonic() + timeout_s
        ensure_dir(self.root)
        # One refresh at a time across threads and processes, and the views are worked out
        # inside the lock, so a refresh never writes what it saw before a later one ran.
        with catalog_lock(self.root, timeout_s=timeout_s):
            apply_views(
                self.catalog_path,
                statements(views),
                timeout_s=max(deadline - time.monotonic(), 0.0),
                missing=missing,
            )

    def _refresh_after_change(
        self, views: list[tuple[Dataset, str | None]], report: QuarantineReport
    ) -> bool:
        # The data is already safe on disk; a busy catalog only delays the views.
        try:
            self._refresh(views, report, self.catalog_timeout_s)
        except (CatalogBusy, duckdb.Error) as exc:
            log.warning("catalog not refreshed: %s", exc)
            return False
        return True

    # -- maintenance -----------------------------------------------------------------------

    def compact(self, dataset: str | None = None) -> CompactionReport:
        """Merge multi-file partitions (of one dataset, or all) into one file each."""
        report = CompactionReport()
        selected = [get_dataset(dataset)] if dataset is not None else list(DATASETS.values())
        for ds in selected:
            compact_dataset(self.root, ds, report)
        self._verifier.forget(report.removed)
        for path in report.written:
            self._verifier.trust(path)
        self._refresh_after_change(self._views([ds.name for ds in selected]), report.quarantine)
        return report

    def retention(
        self,
        today: date,
        *,
        dry_run: bool = True,
        ticks_days: int | None = 2,
        intraday_bars_months: int | None = 3,
        daily_bars_years: int | None = None,
    ) -> RetentionPlan:
        """Plan (and unless ``dry_run``, carry out) removal of expired partitions."""
        policy = RetentionPolicy(ticks_days, intraday_bars_months, daily_bars_years)
        plan = plan_retention(self.root, today, policy)
        if not dry_run:
            self.apply_retention(plan)
        return plan

    def apply_retention(self, plan: RetentionPlan) -> list[Path]:
        """Remove exactly the files of a plan made by ``retention(dry_run=True)``."""
        removed = apply_retention(self.root, plan)
        self._verifier.forget(removed)
        touched = sorted({item.dataset for item in plan.files})
        if touched:
            self._refresh_after_change(self._views(touched), QuarantineReport())
        return removed

    def check(self, *, deep: bool = True) -> CheckReport:
        """Verify every file (deep: decode every row), quarantine bad ones, rebuild views."""
        report = CheckReport()
        self._verifier.forget()
        for ds in DATASETS.values():
            if not (self.root / ds.name).is_dir():
                continue
            with dataset_lock(self.root, ds.name):
                # No writer of ours is mid-write while we hold the lock: temp files are debris.
                temps = [
                    Path(dirpath) / name
                    for dirpath, _, names in os.walk(self.root / ds.name)
                    for name in names
                    if name.startswith(".") and name.endswith(".tmp")
                ]
                report.temp_files_removed.extend(remove_files(sorted(temps)))
        for ds, variant in self._views(None):
            files = self._verifier.valid_files(ds, variant, report.quarantine, deep=deep)
            rows = 0
            size = 0
            for path in files:
                try:
                    rows += pq.read_metadata(path).num_rows
                    size += path.stat().st_size
                except FileNotFoundError:
                    continue
            report.views.append(ViewSummary(ds.view_name(variant), len(files), rows, size))
        try:
            # files that just passed the deep check are remembered, so this only re-lists them
            self._refresh(self._views(None), report.quarantine, self.catalog_timeout_s)
            report.catalog_refreshed = True
        except CatalogBusy as exc:
            log.warning("catalog not refreshed: %s", exc)
        return report

    # -- helpers ---------------------------------------------------------------------------

    def files(self, dataset: str, variant: str | None = None) -> list[Path]:
        """Data files of a dataset (one variant, or all), oldest write first per partition."""
        ds = get_dataset(dataset)
        if variant is not None:
            ds.check_variant(variant)
        return [
            path
            for partition in list_partitions(self.root, ds, variant=variant)
            for path in partition.files()
        ]

    def _views(self, datasets: Iterable[str] | None) -> list[tuple[Dataset, str | None]]:
        selected = (
            [get_dataset(name) for name in datasets]
            if datasets is not None
            else list(DATASETS.values())
        )
        return [(ds, variant) for ds in selected for variant in ds.variant_names()]

    @staticmethod
    def _variant(ds: Dataset, partition_values: dict[str, Any]) -> str | None:
        if ds.variant_level is None:
            return None
        value = partition_values.pop(ds.variant_level, None)
        if value is None:
            raise PartitionError(
                f"{ds.name} needs {ds.variant_level}=… (one of {', '.join(ds.variants)})"
            )
        if not isinstance(value, str):
            raise PartitionError(f"{ds.variant_level} must be one string, got {value!r}")
        return ds.check_variant(value)

    @staticmethod
    def _unknown_level(ds: Dataset, name: str) -> str:
        allowed = [ds.variant_level] if ds.variant_level else []
        allowed += list(ds.column_levels)
        return (
            f"{name!r} is not a partition of {ds.name}; "
            f"allowed: {', '.join(allowed) if allowed else 'none'}"
        )


def _lower_bound(ds: Dataset, value: TimeBound | None) -> tuple[pa.Scalar | None, date | None]:
    if value is None:
        return None, None
    if pa.types.is_timestamp(ds.schema.field(ds.time_column).type):
        instant = _instant(value, "start")
        return pa.scalar(instant, type=UTC_TS), ist_day(instant)
    day = _day(value, "start", ds)
    return pa.scalar(day, type=pa.date32()), day


def _upper_bound(ds: Dataset, value: TimeBound | None) -> tuple[pa.Scalar | None, date | None]:
    """Exclusive bound, plus the first day that cannot hold rows before it."""
    if value is None:
        return None, None
    if pa.types.is_timestamp(ds.schema.field(ds.time_column).type):
        instant = _instant(value, "end")
        return pa.scalar(instant, type=UTC_TS), ist_day(instant - timedelta(microseconds=1)) + (
            timedelta(days=1)
        )
    day = _day(value, "end", ds)
    return pa.scalar(day, type=pa.date32()), day


def _instant(value: TimeBound, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}={value} has no time zone; pass an aware datetime")
        return value
    return ist_midnight(value)


def _day(value: TimeBound, name: str, ds: Dataset) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{name} must be a date: {ds.name}.{ds.time_column} holds dates")
    return value
