"""Reading data files safely: one open handle per file, bad files quarantined.

A reader never locks. Merge datasets replace ``data.parquet`` atomically, so a reader
holds either the old file or the new one. Compaction removes part files after
writing their merged replacement; a reader that finds a listed file gone lists the
partition again, and duplicates seen in the moment between the two are removed by
key, keeping the newest write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.conform import conform, schema_problems
from warehouse.errors import SchemaMismatch, WarehouseError
from warehouse.layout import Partition, partition_mismatch, partition_of
from warehouse.locks import dataset_lock
from warehouse.quarantine import QuarantineReport, file_signature, quarantine_file
from warehouse.schemas import Dataset

Signature = tuple[int, int, int]

_LISTING_ATTEMPTS = 20


def read_parquet_file(path: Path) -> tuple[pa.Table, Signature]:
    """Read a whole Parquet file through one handle; return it with its signature."""
    with open(path, "rb") as handle:
        signature = _handle_signature(handle.fileno())
        table = pq.ParquetFile(handle).read()
    return table, signature


def _handle_signature(fd: int) -> Signature:
    stat = os.fstat(fd)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def inspect_file(root: Path, dataset: Dataset, path: Path, *, deep: bool) -> str | None:
    """Why a file is not a valid part of the dataset, or None if it is.

    Quick: the footer parses and its schema casts to the dataset's. Deep: every page
    decodes, the rows fit the schema and belong to the file's partition directory.
    Raises FileNotFoundError if the file disappeared meanwhile.
    """
    partition = partition_of(root, dataset, path)
    if partition is None:
        return "file is outside the dataset's partition layout"
    try:
        if not deep:
            with open(path, "rb") as handle:
                schema = pq.ParquetFile(handle).schema_arrow
            problems = schema_problems(schema, dataset)
            return "; ".join(problems) if problems else None
        table, _ = read_parquet_file(path)
        rows = conform(table, dataset, source=str(path), allow_extra=True)
    except FileNotFoundError:
        raise
    except SchemaMismatch as exc:
        return "; ".join(exc.problems)
    except (pa.ArrowException, OSError) as exc:
        return f"unreadable Parquet: {exc}"
    return partition_mismatch(rows, dataset, partition)


def quarantine_if_unchanged(
    root: Path,
    dataset: Dataset,
    path: Path,
    signature: Signature | None,
    reason: str,
    report: QuarantineReport,
) -> None:
    """Quarantine ``path`` unless a writer has replaced it since it was judged bad."""
    with dataset_lock(root, dataset.name):
        if signature is not None and file_signature(path) != signature:
            return  # a newer version took its place; judge that one on its own
        moved = quarantine_file(root, dataset.name, path, reason)
    if moved is not None:
        report.add(moved)


def dedupe_keep_last(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """Keep one row per key: the last one (rows later in the table are newer writes)."""
    rows = table.num_rows
    if rows < 2:
        return table
    numbered = table.select(list(key)).append_column("__row", pa.array(np.arange(rows)))
    last = numbered.group_by(list(key), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == rows:
        return table
    keep = np.sort(last["__row_max"].to_numpy())
    return table.take(pa.array(keep))


def sort_rows(table: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """Rows sorted by ``columns`` ascending."""
    if table.num_rows < 2:
        return table
    return table.sort_by([(column, "ascending") for column in columns])


def read_files(
    root: Path, dataset: Dataset, files: list[Path], report: QuarantineReport
) -> list[tuple[Path, pa.Table]] | None:
    """Read and conform each file, quarantining bad ones; None if one has vanished."""
    tables: list[tuple[Path, pa.Table]] = []
    for path in files:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the signature
        except FileNotFoundError:
            return None
        with handle:
            # the signature of the very version read: quarantine only that version
            signature = _handle_signature(handle.fileno())
            try:
                raw = pq.ParquetFile(handle).read()
                tables.append((path, conform(raw, dataset, source=str(path), allow_extra=True)))
            except SchemaMismatch as exc:
                reason = "; ".join(exc.problems)
                quarantine_if_unchanged(root, dataset, path, signature, reason, report)
            except (pa.ArrowException, OSError) as exc:
                reason = f"unreadable Parquet: {exc}"
                quarantine_if_unchanged(root, dataset, path, signature, reason, report)
    return tables


def read_partition(
    root: Path, dataset: Dataset, partition: Partition, report: QuarantineReport
) -> pa.Table:
    """All rows of one partition, deduplicated by key when it holds several files."""
    for _ in range(_LISTING_ATTEMPTS):
        files = partition.files()
        pairs = read_files(root, dataset, files, report)
        if pairs is None:
            continue  # compaction or a writer removed a file after we listed it
        tables = [table for _, table in pairs]
        if not tables:
            return dataset.schema.empty_table()
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if len(files) > 1:
            table = sort_rows(dedupe_keep_last(table, dataset.key), dataset.sort_columns)
        return table
    raise WarehouseError(f"files in {partition.path} kept changing while being read")


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Rows read, plus any files that had to be quarantined on the way."""

    table: pa.Table
    quarantine: QuarantineReport
