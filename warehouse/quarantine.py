"""Moving bad files out of the way, with a note saying why.

A file that cannot be read as its dataset (bad footer, truncated, foreign schema,
outside the partition layout) is moved to
``<data>/quarantine/<dataset>/<its path inside the dataset>`` next to a
``.reason.txt``, logged as a warning and listed in a ``QuarantineReport``. It is
never silently skipped and never deleted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.atomic import ensure_dir, fsync_dir

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    """A file moved to quarantine: where it was, where it is now, and why."""

    dataset: str
    path: Path
    moved_to: Path
    reason: str


@dataclass(slots=True)
class QuarantineReport:
    """The files an operation had to quarantine (empty when all was well)."""

    files: list[QuarantinedFile] = field(default_factory=list)

    def add(self, item: QuarantinedFile) -> None:
        """Record one quarantined file."""
        self.files.append(item)

    def extend(self, other: QuarantineReport) -> None:
        """Record every file of another report."""
        self.files.extend(other.files)

    @property
    def paths(self) -> list[Path]:
        """Original paths of the quarantined files."""
        return [item.path for item in self.files]

    def __bool__(self) -> bool:
        return bool(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[QuarantinedFile]:
        return iter(self.files)


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) identifying one version of a file; None if it is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def quarantine_file(root: Path, dataset: str, path: Path, reason: str) -> QuarantinedFile | None:
    """Move ``path`` into quarantine with a reason note; None if it had already gone.

    The caller holds the dataset lock, so no writer replaces the file meanwhile.
    """
    relative = path.relative_to(root / dataset)
    target = root / QUARANTINE_DIR / dataset / relative
    ensure_dir(target.parent)
    suffix = 0
    while target.exists():  # the same name may go bad more than once
        suffix += 1
        target = target.with_name(f"{path.name}.{suffix}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    fsync_dir(path.parent)
    fsync_dir(target.parent)
    note = target.with_name(target.name + ".reason.txt")
    note.write_text(f"dataset: {dataset}\noriginal: {path}\nreason: {reason}\n", encoding="utf-8")
    log.warning("quarantined %s (%s): moved to %s", path, reason, target)
    return QuarantinedFile(dataset, path, target, reason)
