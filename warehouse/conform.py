"""Fit a table to a dataset schema: cast safe differences, refuse everything else.

Safe: wider or in-range integers, ints to floats, other string encodings, date64 to
date32, timestamps with any time zone or unit (stored as UTC microseconds). Refused:
floats into integer columns (money and quantities are never floats), timestamps
without a time zone (IST or UTC? nobody can tell), and nulls in required columns.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.errors import SchemaMismatch
from warehouse.schemas import Dataset


def _castable(source: pa.DataType, target: pa.DataType) -> str | None:
    """None if ``source`` converts safely into ``target``, else why not."""
    if source == target or pa.types.is_null(source):
        return None
    if pa.types.is_dictionary(source):
        return _castable(source.value_type, target)
    if pa.types.is_string(target):
        if pa.types.is_string(source) or pa.types.is_large_string(source):
            return None
        if pa.types.is_string_view(source):
            return None
    elif pa.types.is_integer(target):
        if pa.types.is_integer(source):
            return None
        if pa.types.is_floating(source):
            return "floats are not accepted in integer columns"
    elif pa.types.is_floating(target):
        if pa.types.is_floating(source) or pa.types.is_integer(source):
            return None
    elif pa.types.is_date(target):
        if pa.types.is_date(source):
            return None
    elif pa.types.is_timestamp(target):
        if pa.types.is_timestamp(source):
            if source.tz is None:
                return "timestamps without a time zone are ambiguous; attach one (UTC)"
            return None
    elif pa.types.is_boolean(target) and pa.types.is_boolean(source):
        return None
    return None if source == target else "no safe conversion"


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if column.type == target:
        return column
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    # Sub-microsecond digits are dropped on purpose: storage is microseconds.
    safe = not pa.types.is_timestamp(target)
    return pc.cast(column, target, safe=safe)


def schema_problems(schema: pa.Schema, dataset: Dataset) -> list[str]:
    """Why a file schema cannot be read as the dataset's (empty when it can)."""
    problems: list[str] = []
    for field in dataset.schema:
        index = schema.get_field_index(field.name)
        if index < 0:
            if not field.nullable:
                problems.append(f"missing column '{field.name}' (expected {field.type})")
            continue
        reason = _castable(schema.field(index).type, field.type)
        if reason is not None:
            problems.append(
                f"column '{field.name}' is {schema.field(index).type}, "
                f"expected {field.type}: {reason}"
            )
    return problems


def conform(
    table: pa.Table, dataset: Dataset, *, source: str = "table", allow_extra: bool = False
) -> pa.Table:
    """Return ``table`` with exactly the dataset schema, or raise ``SchemaMismatch``.

    Missing nullable columns are filled with nulls. Extra columns are an error unless
    ``allow_extra`` (used when reading files, which may carry columns we no longer keep).
    """
    schema = dataset.schema
    problems: list[str] = []
    names = table.column_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    problems.extend(f"column '{n}' appears more than once" for n in duplicated)
    extra = [n for n in names if n not in schema.names]
    if extra and not allow_extra:
        problems.extend(
            f"unexpected column '{n}' (dataset columns: {', '.join(schema.names)})" for n in extra
        )
    columns: list[pa.ChunkedArray] = []
    for field in schema:
        if field.name not in names:
            if field.nullable:
                columns.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
            else:
                problems.append(f"missing column '{field.name}' (expected {field.type}, not null)")
            continue
        if field.name in duplicated:
            continue
        column = table[field.name]
        reason = _castable(column.type, field.type)
        if reason is not None:
            problems.append(
                f"column '{field.name}' is {column.type}, expected {field.type}: {reason}"
            )
            continue
        try:
            column = _cast(column, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems.append(f"column '{field.name}' does not fit {field.type}: {exc}")
            continue
        if not field.nullable and column.null_count:
            problems.append(
                f"column '{field.name}' has {column.null_count} null value(s); "
                f"expected {field.type}, not null"
            )
            continue
        columns.append(column)
    if problems:
        raise SchemaMismatch(dataset.name, source, problems)
    return pa.Table.from_arrays(columns, schema=schema)
