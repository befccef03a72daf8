"""Warehouse errors, grouped by what the caller should do.

    WarehouseError              anything the warehouse refuses or cannot do
    ├── UnknownDataset          fix the caller: no such dataset (or bars interval)
    ├── PartitionError          fix the caller: a partition value is missing or wrong
    ├── SchemaMismatch          fix the data: a table does not fit the dataset schema
    ├── QueryError              fix the SQL: DuckDB rejected the query
    └── CatalogBusy             retry later: another process holds the catalog file

Corrupt files are not errors: they are quarantined and reported (see ``quarantine``).
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base of every warehouse error."""


class UnknownDataset(WarehouseError):
    """The dataset (or its variant, such as a bars interval) does not exist."""


class PartitionError(WarehouseError):
    """A partition value is missing, unknown or inconsistent with the rows."""


class SchemaMismatch(WarehouseError):
    """A table does not fit a dataset's schema; ``problems`` names each bad column."""

    def __init__(self, dataset: str, source: str, problems: list[str]) -> None:
        self.dataset = dataset
        self.source = source
        self.problems = problems
        super().__init__(f"{source} does not fit dataset '{dataset}': " + "; ".join(problems))


class QueryError(WarehouseError):
    """DuckDB rejected a query; the message is DuckDB's."""


class CatalogBusy(WarehouseError):
    """The DuckDB catalog file stayed locked by another process for the whole retry budget."""
