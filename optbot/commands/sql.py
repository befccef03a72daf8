"""``optbot sql``: ask the warehouse a question in SQL."""

from __future__ import annotations

import contextlib
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer

from optbot.commands.warehouse import DataDirOption, fail, resolve_warehouse_dir

if TYPE_CHECKING:
    import pyarrow as pa


def _text(value: object) -> str:
    """One value as text for CSV and tables (NULL becomes empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_value(value: object) -> object:
    """JSON fallback: exact decimals and dates as strings."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _print_csv(table: pa.Table) -> None:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_text(v) for v in row.values()])


def _print_json(table: pa.Table) -> None:
    import json

    print(json.dumps(table.to_pylist(), default=_json_value, ensure_ascii=False, indent=1))


def _print_table(table: pa.Table) -> None:
    import pyarrow as pa
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Table(caption=f"{table.num_rows:,} row(s)")
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        out.add_column(field.name, justify="right" if numeric else "left")
    for row in table.to_pylist():
        out.add_row(
            *(Text("NULL", style="dim") if v is None else Text(_text(v)) for v in row.values())
        )
    Console().print(out)


def sql(
    query: Annotated[
        str,
        typer.Argument(help="SQL over the views bars_1m … bars_1d, trades, orders, …"),
    ],
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of row objects.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run SQL on the warehouse catalog (read-only) and print the result.

    Views: instruments, bars_1m, bars_5m, bars_15m, bars_1h, bars_1d, ticks,
    categories, gaps, orders, trades, positions, events, reconciliation, charges.
    Timestamps are shown in IST; money columns are integer paise.

    Example: optbot sql "SELECT symbol, count(*) FROM bars_1m GROUP BY symbol" --csv
    """
    import duckdb

    from warehouse import CatalogBusy, Warehouse
    from warehouse.catalog import connect_catalog

    if as_csv and as_json:
        fail("--csv and --json cannot be used together; pick one (default: a table)")
    root = resolve_warehouse_dir(data_dir)
    wh = Warehouse(root)
    try:
        if not wh.catalog_path.exists():
            wh.refresh_catalog()
        con = connect_catalog(wh.catalog_path, read_only=True)
    except CatalogBusy as exc:
        fail(f"{exc}; try again in a moment", code=1)
    try:
        # without time zone data timestamps show in UTC, which is still correct
        with contextlib.suppress(duckdb.Error):
            con.execute("SET TimeZone = 'Asia/Kolkata'")
        try:
            relation = con.sql(query)
            table = relation.to_arrow_table() if relation is not None else None
        except duckdb.Error as exc:
            fail(f"SQL error: {exc}")
    finally:
        con.close()
    if table is None:
        return
    if as_csv:
        _print_csv(table)
    elif as_json:
        _print_json(table)
    else:
        _print_table(table)


def register(app: typer.Typer) -> None:
    """Add ``optbot sql`` to the root app."""
    app.command(name="sql")(sql)
