"""Locks that let threads and processes share one warehouse.

Writers, compaction, retention and quarantine take an exclusive ``flock`` on
``<dataset>/.lock``; readers never lock, because every visible file is complete.
Each acquisition opens its own file description, so two threads of one process
exclude each other too. A thread that already holds a dataset's lock may take it
again (quarantining a file found bad in the middle of a write, for instance).

Catalog refreshes take ``<data>/.catalog.lock`` the same way, only for the short
refresh: DuckDB lets one connection at a time change the catalog file, and two
refreshes at once (threads or processes) make one of them fail.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.atomic import ensure_dir
from warehouse.errors import CatalogBusy

CATALOG_LOCK_FILE = ".catalog.lock"

_held = threading.local()


@contextmanager
def dataset_lock(root: Path, dataset: str) -> Iterator[None]:
    """Hold the dataset's write lock for the duration of the block."""
    directory = root / dataset
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if directory in held:
        yield
        return
    ensure_dir(directory)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(directory)
        try:
            yield
        finally:
            held.discard(directory)
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def catalog_lock(root: Path, *, timeout_s: float) -> Iterator[None]:
    """Hold ``<root>/.catalog.lock`` for the block; ``CatalogBusy`` after ``timeout_s``.

    Waits with jittered backoff rather than blocking, so a stuck holder costs a
    writer at most ``timeout_s`` and never hangs it.
    """
    path = root / CATALOG_LOCK_FILE
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    ensure_dir(root)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout_s)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
    finally:
        os.close(fd)  # closing releases the lock


def _acquire(fd: int, path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CatalogBusy(f"catalog lock {path} stayed held for {timeout_s:.1f} s")
        time.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
        delay = min(delay * 2, 0.1)
