"""``optbot warehouse …``: retention, compaction and integrity checks of the data directory."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from warehouse import QuarantineReport

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="PATH",
        help="Warehouse directory. (default: data.dir from the config, else ./data)",
    ),
]

warehouse_app = typer.Typer(
    name="warehouse",
    help=(
        "Look after the Parquet warehouse: retention, compaction, integrity checks.\n\n"
        "Example: optbot warehouse retention --dry-run"
    ),
    no_args_is_help=True,
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit (2: the user can fix it)."""
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def resolve_warehouse_dir(cli_value: Path | None) -> Path:
    """The data directory: the flag, else the configuration's, else ./data. Must exist."""
    root = cli_value
    if root is None:
        try:
            from optbot.config import ConfigError, resolve_data_dir
        except ImportError:
            root = Path("data")
        else:
            try:
                root = resolve_data_dir(None)
            except ConfigError as exc:
                fail(str(exc))
    if not root.is_dir():
        fail(
            f"data directory '{root}' does not exist; "
            "pass --data-dir PATH or set data.dir in the config"
        )
    return root


def human_size(size: int) -> str:
    """Bytes as a short human string, e.g. 1.5 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def _print_quarantine(report: QuarantineReport, root: Path) -> None:
    for item in report:
        print(
            f"quarantined {_relative(item.path, root)} -> {_relative(item.moved_to, root)}: "
            f"{item.reason}",
            file=sys.stderr,
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.absolute()))
    except ValueError:
        return str(path)


def _retention_limits(ticks_days: int | None, months: int | None) -> tuple[int, int]:
    if ticks_days is not None and months is not None:
        return ticks_days, months
    try:
        from optbot.config import ConfigError, load_settings
    except ImportError:
        return (2 if ticks_days is None else ticks_days, 3 if months is None else months)
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    retention = settings.retention
    return (
        ticks_days if ticks_days is not None else retention.ticks_days,
        months if months is not None else retention.intraday_bars_months,
    )


@warehouse_app.command("retention")
def retention_command(
    apply: Annotated[
        bool,
        typer.Option(
            "--apply/--dry-run",
            help="Remove the expired files, or only list them. (default: --dry-run)",
        ),
    ] = False,
    today: Annotated[
        str | None,
        typer.Option(
            "--today", metavar="YYYY-MM-DD", help="Day to measure ages from. (default: today, IST)"
        ),
    ] = None,
    ticks_days: Annotated[
        int | None,
        typer.Option(
            "--ticks-days", min=0, help="Keep ticks this many days. (default: config, else 2)"
        ),
    ] = None,
    intraday_bars_months: Annotated[
        int | None,
        typer.Option(
            "--intraday-bars-months",
            min=0,
            help="Keep 1m–1h bars this many months. (default: config, else 3)",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List (or with --apply, remove) partitions older than the retention limits.

    Daily bars and the trading records are kept.

    Example: optbot warehouse retention --dry-run --today 2026-11-20
    """
    from rich.console import Console
    from rich.table import Table

    from warehouse import Warehouse
    from warehouse.layout import IST

    if today is None:
        day = datetime.now(UTC).astimezone(IST).date()
    else:
        try:
            day = date.fromisoformat(today.strip())
        except ValueError:
            fail(f"--today {today!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-20")
    root = resolve_warehouse_dir(data_dir)
    days, months = _retention_limits(ticks_days, intraday_bars_months)
    wh = Warehouse(root)
    plan = wh.retention(day, dry_run=True, ticks_days=days, intraday_bars_months=months)
    if plan.files:
        table = Table(title=f"Expired on {day.isoformat()} (ticks {days} d, bars {months} mo)")
        table.add_column("View")
        table.add_column("File", overflow="fold")
        table.add_column("Rows", justify="right")
        table.add_column("Size", justify="right")
        for item in plan.files:
            rows = "?" if item.rows is None else f"{item.rows:,}"
            table.add_row(item.view, _relative(item.path, root), rows, human_size(item.bytes))
        Console().print(table)
    summary = f"{len(plan.files)} file(s), {plan.total_rows:,} rows, {human_size(plan.total_bytes)}"
    if not apply:
        print(f"Dry run: {summary} would be removed. Run with --apply to remove them.")
        return
    removed = wh.apply_retention(plan)
    print(f"Removed {len(removed)} of {summary}.")


@warehouse_app.command("compact")
def compact_command(
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", metavar="NAME", help="Only this dataset. (default: all)"),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Merge each partition's files into one (events and ticks grow a file per write).

    Example: optbot warehouse compact --dataset ticks
    """
    from warehouse import DATASETS, Warehouse

    if dataset is not None and dataset not in DATASETS:
        fail(f"--dataset {dataset!r} is not a dataset; allowed: {', '.join(DATASETS)}")
    root = resolve_warehouse_dir(data_dir)
    report = Warehouse(root).compact(dataset)
    _print_quarantine(report.quarantine, root)
    print(
        f"Compacted {len(report.partitions)} partition(s): "
        f"{report.files_before} -> {report.files_after} file(s), {report.rows:,} rows rewritten."
    )


@warehouse_app.command("check")
def check_command(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Read only footers and schemas, not every row."),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Verify every data file, quarantine bad ones, rebuild the catalog and summarise.

    Exits with 1 when a file had to be quarantined.

    Example: optbot warehouse check --data-dir data
    """
    from rich.console import Console
    from rich.table import Table

    from warehouse import Warehouse

    root = resolve_warehouse_dir(data_dir)
    report = Warehouse(root).check(deep=not quick)
    table = Table(title=f"Warehouse {root}")
    table.add_column("View")
    table.add_column("Files", justify="right")
    table.add_column("Rows", justify="right")
    table.add_column("Size", justify="right")
    for view in report.views:
        table.add_row(view.view, str(view.files), f"{view.rows:,}", human_size(view.bytes))
    Console().print(table)
    for path in report.temp_files_removed:
        print(f"removed leftover temp file {_relative(path, root)}")
    _print_quarantine(report.quarantine, root)
    catalog = "catalog refreshed" if report.catalog_refreshed else "catalog busy, not refreshed"
    print(f"{len(report.quarantine)} file(s) quarantined; {catalog}.")
    if report.quarantine:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``optbot warehouse`` to the root app."""
    app.add_typer(warehouse_app, name="warehouse")
