"""The warehouse: hive-partitioned Parquet datasets and a DuckDB catalog of views.

It is the only code that knows the file layout; everything else goes through
``Warehouse`` (write, read, query, compact, retention, check).
"""

from warehouse.compaction import CompactionReport
from warehouse.errors import (
    CatalogBusy,
    PartitionError,
    QueryError,
    SchemaMismatch,
    UnknownDataset,
    WarehouseError,
)
from warehouse.quarantine import QuarantinedFile, QuarantineReport
from warehouse.reader import ReadResult
from warehouse.retention import ExpiredFile, RetentionPlan, RetentionPolicy
from warehouse.schemas import BAR_INTERVALS, DATASETS, Dataset, get_dataset
from warehouse.store import CheckReport, ViewSummary, Warehouse, WriteReport

__all__ = [
    "BAR_INTERVALS",
    "DATASETS",
    "CatalogBusy",
    "CheckReport",
    "CompactionReport",
    "Dataset",
    "ExpiredFile",
    "PartitionError",
    "QuarantineReport",
    "QuarantinedFile",
    "QueryError",
    "ReadResult",
    "RetentionPlan",
    "RetentionPolicy",
    "SchemaMismatch",
    "UnknownDataset",
    "ViewSummary",
    "Warehouse",
    "WarehouseError",
    "WriteReport",
    "get_dataset",
]
