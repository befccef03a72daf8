"""Compaction: fold each partition's files into one ``data.parquet``.

Append-only datasets (events, ticks) gain a part file per write; a crash between
writing a merged file and removing what it replaced can leave extra files anywhere.
Both are merged here, keeping the newest row per key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warehouse.layout import list_partitions
from warehouse.locks import dataset_lock
from warehouse.quarantine import QuarantineReport
from warehouse.schemas import Dataset
from warehouse.writer import merge_partition


@dataclass(slots=True)
class CompactionReport:
    """Files before and after, rows kept, partitions rewritten, files quarantined."""

    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    partitions: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    quarantine: QuarantineReport = field(default_factory=QuarantineReport)


def compact_dataset(root: Path, dataset: Dataset, report: CompactionReport) -> None:
    """Merge every multi-file partition of ``dataset`` into a single file."""
    with dataset_lock(root, dataset.name):
        for partition in list_partitions(root, dataset):
            files = partition.files()
            report.files_before += len(files)
            if len(files) < 2:
                report.files_after += len(files)
                continue
            result = merge_partition(root, dataset, partition.path, None, report.quarantine)
            report.files_after += len(partition.files())
            report.rows += result.rows
            report.partitions.append(partition.path)
            if result.written is not None:
                report.written.append(result.written)
            report.removed.extend(result.removed)
