"""The DuckDB catalog: one view per dataset over its Parquet files.

``<data>/catalog.duckdb`` holds only view definitions (absolute paths), so
``duckdb data/catalog.duckdb -c "select * from bars_1m limit 5"`` works from the
project root. A dataset without files still gets a typed, empty view. DuckDB lets
one process at a time open the file, so it is opened briefly and a lock conflict
is retried with backoff. Our own refreshes also queue on ``<data>/.catalog.lock``
(see ``locks.catalog_lock``), so the retries are for outsiders such as a user's
``duckdb`` shell.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.errors import CatalogBusy
from warehouse.layout import view_glob
from warehouse.schemas import Dataset

CATALOG_FILE = "catalog.duckdb"

# Another connection holds the file (another process, or this one with other settings).
_LOCK_MESSAGES = (
    "Could not set lock",
    "Conflicting lock",
    "different configuration",
    "file handle conflict",
)
# Another connection to the same database changed a view in the same instant.
_CONFLICT_MESSAGES = ("write-write conflict",)


def quote_identifier(name: str) -> str:
    """An SQL identifier, quoted so keywords and odd names are safe."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(kind: pa.DataType) -> str:
    """The DuckDB type a Parquet column of this Arrow type reads as."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "VARCHAR"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_date32(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP WITH TIME ZONE" if kind.tz is not None else "TIMESTAMP"
    names = {
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
    }
    if kind in names:
        return names[kind]
    raise TypeError(f"no DuckDB type for {kind}")


def view_sql(root: Path, dataset: Dataset, variant: str | None, *, has_files: bool) -> str:
    """``CREATE OR REPLACE VIEW`` for one dataset view."""
    name = quote_identifier(dataset.view_name(variant))
    if not has_files:
        columns = ", ".join(
            f"CAST(NULL AS {duckdb_type(f.type)}) AS {quote_identifier(f.name)}"
            for f in dataset.schema
        )
        return f"CREATE OR REPLACE VIEW {name} AS SELECT {columns} WHERE false"
    # Every path level is read as text; levels that are not columns (month, interval)
    # stay out of the view, which has exactly the dataset's columns.
    hive_types = ", ".join(
        f"{quote_literal(level.name)}: 'VARCHAR'" for level in dataset.levels(variant)
    )
    columns = ", ".join(quote_identifier(f.name) for f in dataset.schema)
    source = (
        f"read_parquet({quote_literal(view_glob(root, dataset, variant))}, "
        f"hive_partitioning = true, union_by_name = true, hive_types = {{{hive_types}}})"
    )
    return f"CREATE OR REPLACE VIEW {name} AS SELECT {columns} FROM {source}"


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    return any(text in str(exc) for text in _LOCK_MESSAGES)


def _is_write_conflict(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.TransactionException) or any(
        text in str(exc) for text in _CONFLICT_MESSAGES
    )


def _pause(delay: float) -> float:
    """Sleep a jittered ``delay``; return the next, doubled up to one second."""
    time.sleep(delay * random.uniform(0.5, 1.0))
    return min(delay * 2, 1.0)


def connect_catalog(
    path: Path, *, read_only: bool, timeout_s: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """Open the catalog file, retrying with jittered backoff while another process holds it."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise CatalogBusy(
                    f"catalog {path} stayed locked for {timeout_s:.1f} s: {exc}"
                ) from exc
        delay = _pause(delay)


def apply_views(
    path: Path,
    statements: Mapping[str, str],
    *,
    timeout_s: float = 10.0,
    missing: Callable[[set[str]], Mapping[str, str]] | None = None,
) -> None:
    """Create or replace views in the catalog file, in one short session.

    ``missing`` receives the names of the views already there and returns statements
    for absent ones, so a new or partial catalog gets every view on its first refresh.
    A session that loses a write conflict is rolled back and run again, with backoff,
    until ``timeout_s`` is spent (then ``CatalogBusy``).
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            _apply_once(path, statements, max(deadline - time.monotonic(), 0.0), missing)
            return
        except duckdb.Error as exc:
            if not _is_write_conflict(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise CatalogBusy(
                    f"catalog {path} stayed locked for {timeout_s:.1f} s: {exc}"
                ) from exc
        delay = _pause(delay)


def _apply_once(
    path: Path,
    statements: Mapping[str, str],
    timeout_s: float,
    missing: Callable[[set[str]], Mapping[str, str]] | None,
) -> None:
    con = connect_catalog(path, read_only=False, timeout_s=timeout_s)
    try:
        todo = dict(statements)
        if missing is not None:
            rows = con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"
            ).fetchall()
            present = {str(row[0]) for row in rows}
            todo = {**missing(present | set(todo)), **todo}
        if not todo:
            return
        con.execute("BEGIN TRANSACTION")
        for sql in todo.values():
            con.execute(sql)
        con.execute("COMMIT")
    finally:
        con.close()
