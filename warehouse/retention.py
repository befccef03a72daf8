"""Retention: which partitions are old enough to delete, and deleting exactly those.

A partition expires when its whole period lies before the cutoff: ticks more than
``ticks_days`` days before today, intraday bars whose month ended more than
``intraday_bars_months`` months before today. Daily bars and every other dataset
are kept unless a limit is given. Dates are passed in; nothing here reads a clock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from warehouse.atomic import prune_empty_dirs, remove_files
from warehouse.layout import list_partitions
from warehouse.locks import dataset_lock
from warehouse.schemas import DATASETS, INTRADAY_BAR_INTERVALS, Dataset


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of data is kept (None: forever)."""

    ticks_days: int | None = 2
    intraday_bars_months: int | None = 3
    daily_bars_years: int | None = None

    def __post_init__(self) -> None:
        for name in ("ticks_days", "intraday_bars_months", "daily_bars_years"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")


@dataclass(frozen=True, slots=True)
class ExpiredFile:
    """One file the plan removes."""

    dataset: str
    view: str
    path: Path
    rows: int | None  # None when the footer cannot be read
    bytes: int


@dataclass(slots=True)
class RetentionPlan:
    """What retention removes for a given day; ``applied`` once it has been carried out."""

    today: date
    policy: RetentionPolicy
    files: list[ExpiredFile] = field(default_factory=list)
    applied: bool = False
    removed: list[Path] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        """Rows in the listed files (unreadable footers count as zero)."""
        return sum(item.rows or 0 for item in self.files)

    @property
    def total_bytes(self) -> int:
        """Bytes in the listed files."""
        return sum(item.bytes for item in self.files)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` months earlier, clamped to the month's length."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cutoff(
    dataset: Dataset, variant: str | None, today: date, policy: RetentionPolicy
) -> date | None:
    """First day still kept for a dataset view, or None when it is kept forever."""
    if dataset.name == "ticks" and policy.ticks_days is not None:
        return today - timedelta(days=policy.ticks_days)
    if dataset.name == "bars":
        if variant in INTRADAY_BAR_INTERVALS and policy.intraday_bars_months is not None:
            return months_before(today, policy.intraday_bars_months)
        if variant == "1d" and policy.daily_bars_years is not None:
            return months_before(today, 12 * policy.daily_bars_years)
    return None


def _rows(path: Path) -> int | None:
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError):
        return None


def plan_retention(root: Path, today: date, policy: RetentionPolicy) -> RetentionPlan:
    """List every file retention would remove today; changes nothing."""
    plan = RetentionPlan(today, policy)
    for dataset in DATASETS.values():
        for variant in dataset.variant_names():
            first_kept = cutoff(dataset, variant, today, policy)
            if first_kept is None:
                continue
            for partition in list_partitions(root, dataset, variant=variant):
                bounds = partition.bounds()
                if bounds is None or bounds[1] > first_kept:
                    continue  # some of its days are still kept
                for path in partition.files():
                    try:
                        size = path.stat().st_size
                    except FileNotFoundError:
                        continue
                    plan.files.append(
                        ExpiredFile(
                            dataset.name, dataset.view_name(variant), path, _rows(path), size
                        )
                    )
    return plan


def apply_retention(root: Path, plan: RetentionPlan) -> list[Path]:
    """Remove exactly the files of ``plan`` and the partition folders left empty."""
    removed: list[Path] = []
    for name in sorted({item.dataset for item in plan.files}):
        paths = [item.path for item in plan.files if item.dataset == name]
        with dataset_lock(root, name):
            removed.extend(remove_files(paths))
            for directory in sorted({p.parent for p in paths}, reverse=True):
                prune_empty_dirs(directory, root / name)
    plan.applied = True
    plan.removed = removed
    return removed
