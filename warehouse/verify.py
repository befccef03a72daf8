"""Knowing which files are fit to read, without re-reading them every time.

A file is judged once per version (inode, size, mtime): a quick check reads the
footer and schema, a deep check decodes every row. Bad files are quarantined.
The catalog uses this before building views, because one bad file in a glob breaks
the whole view.
"""

from __future__ import annotations

import threading
from pathlib import Path

from warehouse.layout import glob_files
from warehouse.quarantine import QuarantineReport, file_signature
from warehouse.reader import Signature, inspect_file, quarantine_if_unchanged
from warehouse.schemas import Dataset


class FileVerifier:
    """Remembers which file versions passed, and how thoroughly."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._passed: dict[Path, tuple[Signature, bool]] = {}
        self._lock = threading.Lock()

    def trust(self, path: Path) -> None:
        """Mark a file this process just wrote as fully verified."""
        signature = file_signature(path)
        if signature is not None:
            with self._lock:
                self._passed[path] = (signature, True)

    def forget(self, paths: list[Path] | None = None) -> None:
        """Drop remembered results (all of them when ``paths`` is None)."""
        with self._lock:
            if paths is None:
                self._passed.clear()
            else:
                for path in paths:
                    self._passed.pop(path, None)

    def valid_files(
        self, dataset: Dataset, variant: str | None, report: QuarantineReport, *, deep: bool
    ) -> list[Path]:
        """Every file a view's glob matches that is fit to read; quarantine the rest."""
        valid: list[Path] = []
        for path in glob_files(self.root, dataset, variant):
            signature = file_signature(path)
            if signature is None:
                continue
            with self._lock:
                known = self._passed.get(path)
            if known is not None and known[0] == signature and (known[1] or not deep):
                valid.append(path)
                continue
            try:
                reason = inspect_file(self.root, dataset, path, deep=deep)
            except FileNotFoundError:
                continue
            if reason is None:
                with self._lock:
                    self._passed[path] = (signature, deep)
                valid.append(path)
            else:
                quarantine_if_unchanged(self.root, dataset, path, signature, reason, report)
                if path.exists() and file_signature(path) != signature:
                    valid.append(path)  # replaced by a newer version meanwhile; judge it next time
        return valid
