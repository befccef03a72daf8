"""Where dataset files live: partition paths, period labels and file names.

Nothing outside the warehouse knows these paths; the catalog's views hide them.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.schemas import Dataset, Level, Period

# India keeps one offset all year (no DST), so a fixed offset is exact.
IST = timezone(timedelta(hours=5, minutes=30), "IST")
_IST_OFFSET_US = 19_800 * 1_000_000

DATA_FILE = "data.parquet"
_PART_FILE = re.compile(r"^part-(\d+)\.parquet$")
_PERIOD_FORMATS: dict[Period, str] = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
_PERIOD_PATTERNS: dict[Period, re.Pattern[str]] = {
    "day": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "month": re.compile(r"^\d{4}-\d{2}$"),
    "year": re.compile(r"^\d{4}$"),
}


def encode_value(value: str) -> str:
    """Percent-encode a partition value so '/', '=' and friends cannot break the path."""
    return quote(value, safe="")


def decode_value(text: str) -> str:
    """Inverse of ``encode_value`` (DuckDB decodes hive values the same way)."""
    return unquote(text)


def period_label(day: date, period: Period) -> str:
    """The partition label of the period that contains ``day``."""
    return day.strftime(_PERIOD_FORMATS[period])


def period_bounds(label: str, period: Period) -> tuple[date, date] | None:
    """First day and the day after the last day of a labelled period; None if malformed."""
    if not _PERIOD_PATTERNS[period].match(label):
        return None
    try:
        if period == "day":
            first = date.fromisoformat(label)
            return first, first + timedelta(days=1)
        if period == "month":
            year, month = int(label[:4]), int(label[5:7])
            first = date(year, month, 1)
            return first, first + timedelta(days=calendar.monthrange(year, month)[1])
        year = int(label)
        return date(year, 1, 1), date(year + 1, 1, 1)
    except ValueError:
        return None


def period_labels(column: pa.ChunkedArray | pa.Array, period: Period) -> pa.Array:
    """Per-row period labels of a date32 or UTC timestamp column, in exchange time."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        micros = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64())
        local = pc.add(micros, _IST_OFFSET_US).cast(pa.timestamp("us"))
    elif pa.types.is_date(kind):
        local = pc.cast(pc.cast(column, pa.date32()), pa.timestamp("s"))
    else:
        raise TypeError(f"cannot take a period of a {kind} column")
    labels = pc.strftime(local, format=_PERIOD_FORMATS[period])
    if isinstance(labels, pa.ChunkedArray):
        return labels.combine_chunks()
    return labels


def ist_day(moment: datetime) -> date:
    """The exchange (IST) calendar day of an aware datetime."""
    return moment.astimezone(IST).date()


def ist_midnight(day: date) -> datetime:
    """00:00 IST of a day, as an aware datetime."""
    return datetime.combine(day, time(), IST)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition directory and the values its path encodes."""

    path: Path
    variant: str | None
    values: Mapping[str, str]  # decoded column-level values, e.g. {"symbol": "NIFTY"}
    label: str  # period label, e.g. "2026-11"
    period: Period

    def bounds(self) -> tuple[date, date] | None:
        """First day and the day after the last day this partition may hold."""
        return period_bounds(self.label, self.period)

    def files(self) -> list[Path]:
        """The partition's data files, oldest write first."""
        return data_files(self.path)


def partition_dir(root: Path, dataset: Dataset, levels: Sequence[tuple[Level, str]]) -> Path:
    """Directory of a partition given each level's (decoded) value."""
    path = root / dataset.name
    for level, value in levels:
        path = path / f"{level.name}={encode_value(value)}"
    return path


def _file_rank(path: Path) -> tuple[int, int, str]:
    # data.parquet is the merged past; part files were appended after it, in sequence.
    if path.name == DATA_FILE:
        return (0, 0, "")
    match = _PART_FILE.match(path.name)
    if match:
        return (1, int(match.group(1)), path.name)
    return (2, 0, path.name)


def data_files(directory: Path) -> list[Path]:
    """Visible ``*.parquet`` files of a directory, oldest write first."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    files = [
        Path(entry.path)
        for entry in entries
        if entry.name.endswith(".parquet")
        and not entry.name.startswith(".")
        and entry.is_file(follow_symlinks=False)
    ]
    return sorted(files, key=_file_rank)


def next_part_file(directory: Path) -> Path:
    """Name for the next appended part file (the caller holds the dataset lock)."""
    sequence = 0
    for path in data_files(directory):
        match = _PART_FILE.match(path.name)
        if match:
            sequence = max(sequence, int(match.group(1)))
    return directory / f"part-{sequence + 1:06d}.parquet"


def temp_path(final: Path, token: str) -> Path:
    """A temp name beside ``final``: hidden and not ending in .parquet, so no glob sees it."""
    return final.with_name(f".{final.name}.{token}.tmp")


def view_glob(root: Path, dataset: Dataset, variant: str | None) -> str:
    """Absolute glob matching every data file of one catalog view."""
    levels = dataset.levels(variant)
    parts = [str(root / dataset.name)]
    if dataset.variant_level is not None and variant is not None:
        parts.append(f"{dataset.variant_level}={encode_value(variant)}")
        levels = levels[1:]
    parts.extend("*" for _ in levels)
    parts.append("*.parquet")
    return "/".join(parts)


def glob_files(root: Path, dataset: Dataset, variant: str | None) -> list[Path]:
    """Every file the view's glob matches, including ones in malformed partitions."""
    pattern = view_glob(root, dataset, variant)
    relative = Path(pattern).relative_to(root)
    return sorted(p for p in root.glob(str(relative)) if not p.name.startswith("."))


def list_partitions(
    root: Path,
    dataset: Dataset,
    *,
    variant: str | None = None,
    where: Mapping[str, Sequence[str]] | None = None,
) -> list[Partition]:
    """Well-formed partitions of a dataset, optionally narrowed by column-level values."""
    found: list[Partition] = []
    variants = [variant] if variant is not None else list(dataset.variant_names())
    for one in variants:
        levels = dataset.levels(one)
        start = root / dataset.name
        if dataset.variant_level is not None and one is not None:
            start = start / f"{dataset.variant_level}={encode_value(one)}"
            levels = levels[1:]
        found.extend(_walk(start, levels, {}, one, where or {}))
    return sorted(found, key=lambda p: str(p.path))


def _walk(
    directory: Path,
    levels: tuple[Level, ...],
    values: dict[str, str],
    variant: str | None,
    where: Mapping[str, Sequence[str]],
) -> Iterator[Partition]:
    level, rest = levels[0], levels[1:]
    prefix = f"{level.name}="
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        value = decode_value(entry.name[len(prefix) :])
        path = Path(entry.path)
        if level.period is not None:
            if period_bounds(value, level.period) is None:
                continue  # not a partition we wrote; `check` reports its files
            yield Partition(path, variant, dict(values), value, level.period)
            continue
        allowed = where.get(level.name)
        if allowed is not None and value not in allowed:
            continue
        yield from _walk(path, rest, {**values, level.name: value}, variant, where)


def split_by_partition(
    table: pa.Table, dataset: Dataset, variant: str | None
) -> list[tuple[tuple[tuple[Level, str], ...], pa.Table]]:
    """Group rows by the partition they belong to: [(level values, rows), ...]."""
    if table.num_rows == 0:
        return []
    level_values: list[tuple[Level, pa.Array | None]] = []
    for level in dataset.levels(variant):
        if level.column is None:
            level_values.append((level, None))
        elif level.period is not None:
            level_values.append((level, period_labels(table[level.column], level.period)))
        else:
            level_values.append((level, table[level.column].combine_chunks()))
    arrays = [values for _, values in level_values if values is not None]
    joined = pc.binary_join_element_wise(*arrays, "\x1f") if len(arrays) > 1 else arrays[0]
    encoded = pc.dictionary_encode(joined)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(codes)]))
    taken = table.take(pa.array(order))
    groups: list[tuple[tuple[tuple[Level, str], ...], pa.Table]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first_row = int(order[start])
        key: list[tuple[Level, str]] = []
        for level, values in level_values:
            if values is None:
                assert variant is not None  # only the variant level has no column
                key.append((level, variant))
            else:
                key.append((level, str(values[first_row].as_py())))
        groups.append((tuple(key), taken.slice(start, end - start)))
    return groups


def partition_of(root: Path, dataset: Dataset, path: Path) -> Partition | None:
    """The well-formed partition a data file sits in, or None if it sits elsewhere."""
    try:
        parts = path.parent.relative_to(root / dataset.name).parts
    except ValueError:
        return None
    variant: str | None = None
    if dataset.variant_level is not None:
        if not parts or not parts[0].startswith(f"{dataset.variant_level}="):
            return None
        variant = decode_value(parts[0].split("=", 1)[1])
        if variant not in dataset.variants:
            return None
    levels = dataset.levels(variant)
    if len(parts) != len(levels):
        return None
    values: dict[str, str] = {}
    label = ""
    for level, part in zip(levels, parts, strict=True):
        name, sep, raw = part.partition("=")
        if not sep or name != level.name:
            return None
        value = decode_value(raw)
        if level.period is not None:
            if period_bounds(value, level.period) is None:
                return None
            label = value
        elif level.column is not None:
            values[level.name] = value
    return Partition(path.parent, variant, values, label, dataset.period_for(variant))


def partition_mismatch(table: pa.Table, dataset: Dataset, partition: Partition) -> str | None:
    """Why the rows of a file do not belong to its partition directory (None if they do)."""
    if table.num_rows == 0:
        return None
    for column in dataset.column_levels:
        found = pc.unique(table[column]).to_pylist()
        if found != [partition.values.get(column)]:
            return f"column '{column}' holds {found[:5]} but the path says {partition.values}"
    labels = pc.unique(period_labels(table[dataset.time_column], partition.period)).to_pylist()
    if labels != [partition.label]:
        return (
            f"column '{dataset.time_column}' spans {sorted(labels)[:5]} "
            f"but the path says {partition.label}"
        )
    return None
