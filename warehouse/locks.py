"""One writer at a time per dataset, across threads and processes.

Writers, compaction, retention and quarantine take an exclusive ``flock`` on
``<dataset>/.lock``; readers never lock, because every visible file is complete.
Each acquisition opens its own file description, so two threads of one process
exclude each other too. A thread that already holds a dataset's lock may take it
again (quarantining a file found bad in the middle of a write, for instance).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.atomic import ensure_dir

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
