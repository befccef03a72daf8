"""Dated backup snapshots of the warehouse: ``<data>/backups/YYYY-MM-DD.tar``.

A snapshot is a plain tar of every dataset folder plus the ``HALT`` markers, taken while
holding each dataset's write lock, so no half-written partition gets in (readers never
lock, so they carry on meanwhile). The DuckDB catalog is left out: its views are rebuilt
from the files by ``optbot warehouse check``. The tar is written under a hidden temp name
and renamed into place, so a crash never leaves a truncated backup under a real name;
only the newest ``keep`` snapshots are kept.

Restore (with nothing writing to the data directory)::

    mkdir restored && tar -xf data/backups/2026-11-08.tar -C restored
    # inspect, then swap it in: move data/ aside, move restored/ to data/
    optbot warehouse check --data-dir data   # rebuild the catalog views
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from warehouse.atomic import ensure_dir, fsync_dir, remove_files
from warehouse.halt import HALT_DIR
from warehouse.locks import dataset_lock
from warehouse.schemas import DATASETS

BACKUP_DIR = "backups"
_SNAPSHOT = re.compile(r"^(\d{4}-\d{2}-\d{2})\.tar$")


@dataclass(slots=True)
class BackupPlan:
    """What a snapshot for ``day`` holds and which older snapshots it pushes out."""

    day: date
    target: Path
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    prune: list[Path] = field(default_factory=list)
    done: bool = False
    archive_bytes: int = 0


def backup_dir(root: Path) -> Path:
    """``<data>/backups``."""
    return Path(root) / BACKUP_DIR


def list_backups(root: Path) -> list[Path]:
    """Snapshots present, oldest first."""
    directory = backup_dir(root)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _SNAPSHOT.match(p.name) and p.is_file())


def _folder_files(folder: Path) -> list[Path]:
    """Data files under ``folder``; lock files, temp files and hidden folders are not data."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return found


def _folders(root: Path) -> list[tuple[Path, str | None]]:
    """Top-level folders that go into a snapshot, with the dataset lock each needs."""
    return [
        (root / name, name if name in DATASETS else None)
        for name in [*DATASETS, HALT_DIR]
        if (root / name).is_dir()
    ]


def plan_backup(root: Path, day: date, *, keep: int) -> BackupPlan:
    """List what a snapshot for ``day`` would hold and which snapshots would be pruned."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    root = Path(root)
    plan = BackupPlan(day, backup_dir(root) / f"{day.isoformat()}.tar")
    for folder, _ in _folders(root):
        for path in _folder_files(folder):
            with contextlib.suppress(FileNotFoundError):
                plan.bytes += path.stat().st_size
                plan.files.append(path)
    existing = [p for p in list_backups(root) if p != plan.target]
    # The new snapshot counts as one of the kept; older ones beyond keep - 1 go.
    survivors = sorted([*existing, plan.target])[-keep:]
    plan.prune = [p for p in existing if p not in survivors]
    return plan


def take_backup(root: Path, day: date, *, keep: int) -> BackupPlan:
    """Write the snapshot for ``day`` (replacing one of the same day) and prune old ones."""
    root = Path(root)
    plan = plan_backup(root, day, keep=keep)
    directory = backup_dir(root)
    ensure_dir(directory)
    temp = directory / f".{day.isoformat()}.{uuid.uuid4().hex}.tmp"
    try:
        with tarfile.open(temp, "w") as archive:
            for folder, lock_name in _folders(root):
                if lock_name is not None:
                    with dataset_lock(root, lock_name):
                        _add_folder(archive, root, folder)
                else:
                    _add_folder(archive, root, folder)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, plan.target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_dir(directory)
    remove_files(plan.prune)
    plan.done = True
    plan.archive_bytes = plan.target.stat().st_size
    return plan


def _add_folder(archive: tarfile.TarFile, root: Path, folder: Path) -> None:
    # Listed again under the lock: the plan's list may be stale by now.
    for path in _folder_files(folder):
        with contextlib.suppress(FileNotFoundError):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
