"""Writing rows into partitions: merge by key (most datasets) or append (events, ticks).

Merge: read the partition's files, add the new rows last, keep the newest row per
key, sort, write ONE ``data.parquet`` atomically, then remove the superseded files.
A crash between the last two steps leaves duplicates, which the next read or write
resolves by key; it never loses a row. Corrupt files met on the way are quarantined
first, so they are kept aside rather than overwritten.

Replace: the new rows become the partition's whole content. A merged partition is
one ``data.parquet``; any other file in it is left over from a merge that crashed
before cleaning up, so its rows are in ``data.parquet`` already. Those are removed
first, then ``data.parquet`` is swapped in one rename: a reader (or a crash) sees
the old partition or the new one, never a mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from warehouse.atomic import remove_files, write_parquet_atomic
from warehouse.errors import WarehouseError
from warehouse.layout import DATA_FILE, data_files, next_part_file
from warehouse.quarantine import QuarantineReport
from warehouse.reader import dedupe_keep_last, read_files, sort_rows
from warehouse.schemas import Dataset


@dataclass(slots=True)
class PartitionWrite:
    """What one partition write did."""

    path: Path
    rows: int  # rows in the partition's new file
    written: Path | None = None
    removed: list[Path] = field(default_factory=list)


def merge_partition(
    root: Path,
    dataset: Dataset,
    directory: Path,
    new_rows: pa.Table | None,
    report: QuarantineReport,
) -> PartitionWrite:
    """Merge ``new_rows`` (may be None: compaction) into a partition. Caller holds the lock."""
    existing = _read_existing(root, dataset, directory, report)
    tables = [table for _, table in existing]
    if new_rows is not None and new_rows.num_rows:
        tables.append(new_rows)
    if not tables:
        return PartitionWrite(directory, 0)
    merged = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    merged = sort_rows(dedupe_keep_last(merged, dataset.key), dataset.sort_columns)
    target = directory / DATA_FILE
    write_parquet_atomic(merged, target)
    superseded = [path for path, _ in existing if path != target]
    return PartitionWrite(directory, merged.num_rows, target, remove_files(superseded))


def replace_partition(dataset: Dataset, directory: Path, new_rows: pa.Table) -> PartitionWrite:
    """Make ``new_rows`` the partition's only rows. Caller holds the lock."""
    if dataset.append_only:
        # appended part files are the data itself: no single rename could swap them all
        raise WarehouseError(f"{dataset.name} is append-only; its partitions cannot be replaced")
    rows = sort_rows(dedupe_keep_last(new_rows, dataset.key), dataset.sort_columns)
    target = directory / DATA_FILE
    removed = remove_files([path for path in data_files(directory) if path != target])
    write_parquet_atomic(rows, target)
    return PartitionWrite(directory, rows.num_rows, target, removed)


def append_partition(dataset: Dataset, directory: Path, new_rows: pa.Table) -> PartitionWrite:
    """Add ``new_rows`` as a new part file. Caller holds the lock."""
    rows = sort_rows(dedupe_keep_last(new_rows, dataset.key), dataset.sort_columns)
    target = next_part_file(directory)
    write_parquet_atomic(rows, target)
    return PartitionWrite(directory, rows.num_rows, target)


def _read_existing(
    root: Path, dataset: Dataset, directory: Path, report: QuarantineReport
) -> list[tuple[Path, pa.Table]]:
    # Under the lock nothing of ours changes the files; retry only for outside meddling.
    for _ in range(5):
        pairs = read_files(root, dataset, data_files(directory), report)
        if pairs is not None:
            return pairs
    raise WarehouseError(f"files in {directory} keep vanishing under the write lock")
