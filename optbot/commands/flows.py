"""``optbot nightly``, ``optbot flow``, ``optbot ack`` and ``optbot status``.

The flows run here, in this process, on Prefect's temporary local API unless
``PREFECT_API_URL`` (or ``[prefect] api_url``) points at a server — the same code a
deployment runs on its schedule.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from optbot.config import Settings

# name → (module, flow function, what it does). The order is the order shown in --help.
FLOWS: dict[str, tuple[str, str, str]] = {
    "instruments": (
        "flows.instruments",
        "instruments_flow",
        "download and validate the instrument master; write the day's snapshot",
    ),
    "history": ("flows.history", "history_flow", "download the candles still missing"),
    "gaps": ("flows.gaps", "gaps_flow", "report gaps in the bars; fill short underlying gaps"),
    "categorise": (
        "flows.categorise",
        "categorise_flow",
        "daily ADX category (CE / PE / no trade) per underlying for the next session",
    ),
    "reconcile": (
        "flows.reconcile",
        "reconcile_flow",
        "the day's journal against the broker's books; HALT on any break",
    ),
    "maintenance": (
        "flows.maintenance",
        "maintenance_flow",
        "retention, compaction, backup, disk/calendar/login checks",
    ),
    "nightly": (
        "flows.nightly",
        "nightly_flow",
        "instruments → history → gaps → categorise → maintenance",
    ),
    "intraday-worker": (
        "flows.intraday",
        "intraday_worker_flow",
        "launch the streaming worker on a trading day (not on holidays or under a HALT)",
    ),
}

_FLOW_LIST = "\n\n".join(f"[bold]{name}[/bold] — {what}" for name, (_, _, what) in FLOWS.items())

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="PATH", help="Configuration file (default: as for every command)."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="PATH",
        help="Warehouse directory. (default: data.dir from the config, else ./data)",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: something the user can fix)."""
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _quiet_prefect() -> None:
    # Offline and private by default; a configured server is used when given.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _settings(config: Path | None, data_dir: Path | None) -> Settings:
    from optbot.config import ConfigError, DataSettings, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc))
    if data_dir is not None:
        settings = settings.model_copy(update={"data": DataSettings(dir=data_dir)})
    if settings.prefect.api_url and "PREFECT_API_URL" not in os.environ:
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url
    return settings


def load_flow(name: str) -> Any:
    """The flow object behind a CLI name; exit 2 for an unknown name."""
    import importlib

    if name not in FLOWS:
        fail(f"unknown flow {name!r}; flows: {', '.join(FLOWS)}")
    module_name, function, _ = FLOWS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            fail(f"flow {name!r} is not installed ({module_name} is missing)", code=1)
        raise
    return getattr(module, function)


def flow_parameter_types(flow_obj: Any) -> dict[str, tuple[Any, Any]]:
    """``name → (type, default)`` for each parameter of a flow."""
    import inspect
    import typing

    hints = typing.get_type_hints(flow_obj.fn)
    return {
        name: (hints.get(name, Any), p.default)
        for name, p in inspect.signature(flow_obj.fn).parameters.items()
    }


def parse_parameters(flow_name: str, flow_obj: Any, pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings → typed flow parameters; exit 2 naming any bad one."""
    from pydantic import TypeAdapter, ValidationError

    types = flow_parameter_types(flow_obj)
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            fail(f"parameter {pair!r} is not KEY=VALUE, e.g. dry_run=true")
        if key not in types:
            fail(f"flow {flow_name!r} has no parameter {key!r}; parameters: {', '.join(types)}")
        kind = types[key][0]
        try:
            value = _coerce(TypeAdapter(kind), text)
        except ValidationError as exc:
            fail(f"parameter {key}={text!r}: {exc.errors()[0]['msg']} (type {_type_name(kind)})")
        parsed[key] = value
    return parsed


def _coerce(adapter: Any, text: str) -> Any:
    """A command-line string as the parameter's type: plain text, JSON, or a comma list."""
    from pydantic import ValidationError

    attempts = [
        lambda: adapter.validate_strings(text),
        lambda: adapter.validate_json(text),
        lambda: adapter.validate_python([p.strip() for p in text.split(",") if p.strip()]),
    ]
    if text.strip().lower() in ("none", "null"):
        attempts.insert(0, lambda: adapter.validate_python(None))
    first: ValidationError | None = None
    for attempt in attempts:
        try:
            return attempt()
        except ValidationError as exc:
            first = first or exc
    assert first is not None
    raise first


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _progress(flow_name: str) -> Any:
    """A progress bar on a terminal for flows that download candles; else nothing."""
    import contextlib

    if flow_name not in ("history", "nightly") or not sys.stderr.isatty():
        return contextlib.nullcontext()
    try:
        from flows.history import rich_progress
    except ImportError:
        return contextlib.nullcontext()
    from rich.console import Console

    return rich_progress(console=Console(stderr=True))


def _run(flow_name: str, flow_obj: Any, parameters: dict[str, Any]) -> None:
    try:
        with _progress(flow_name):
            result = flow_obj(**parameters)
    except Exception as exc:
        fail(f"flow {flow_name!r} failed: {exc}", code=1)
    print(json.dumps(result, indent=2, default=str, ensure_ascii=False))


def nightly_command(
    step: Annotated[
        list[str] | None,
        typer.Option(
            "--step",
            metavar="STEP",
            help="Run only this step (repeatable): instruments, history, gaps, categorise, "
            "maintenance.",
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the evening batch now: instruments → history → gaps → categorise → maintenance.

    Example: optbot nightly --step instruments --step history
    """
    _quiet_prefect()
    settings = _settings(config, data_dir)
    from flows.nightly import STEP_NAMES

    unknown = [s for s in step or [] if s not in STEP_NAMES]
    if unknown:
        fail(f"--step {unknown[0]!r} is not a nightly step; steps: {', '.join(STEP_NAMES)}")
    flow_obj = load_flow("nightly")
    params: dict[str, Any] = {"steps": step or None, "data_dir": str(settings.data.dir)}
    if config is not None:
        params["config_path"] = str(config)
    _run("nightly", flow_obj, params)


def flow_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Which flow (see the list above).")],
    parameters: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...",
            help="Flow parameters; lists as JSON or comma-separated.",
        ),
    ] = None,
    show_params: Annotated[
        bool, typer.Option("--show-params", help="List the flow's parameters and exit.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run one flow now, on this machine.

    Example: optbot flow maintenance dry_run=true keep_backups=3
    """
    if name not in FLOWS:
        fail(f"unknown flow {name!r}; flows: {', '.join(FLOWS)}")
    _quiet_prefect()
    flow_obj = load_flow(name)
    if show_params:
        for key, (kind, default) in flow_parameter_types(flow_obj).items():
            print(f"{key}: {_type_name(kind)} = {default!r}")
        return
    parsed = parse_parameters(name, flow_obj, list(parameters or []))
    for key in ("config_path", "data_dir"):
        if key in parsed:
            fail(f"give {key} as --{key.replace('_path', '').replace('_', '-')} PATH")
    settings = _settings(config, data_dir)
    accepted = flow_parameter_types(flow_obj)
    if "data_dir" in accepted:
        parsed["data_dir"] = str(settings.data.dir)
    if config is not None and "config_path" in accepted:
        parsed["config_path"] = str(config)
    _run(name, flow_obj, parsed)


flow_command.__doc__ = (flow_command.__doc__ or "") + "\n\nFlows:\n\n" + _FLOW_LIST


def _data_root(data_dir: Path | None) -> Path:
    from optbot.commands.warehouse import resolve_warehouse_dir

    return resolve_warehouse_dir(data_dir)


def ack_command(
    halt_id: Annotated[
        str, typer.Argument(metavar="ID", help="The HALT id 'optbot status' shows.")
    ],
    by: Annotated[
        str | None, typer.Option("--by", metavar="NAME", help="Who reviewed it. (default: $USER)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Acknowledge a HALT after reviewing its report, so new positions may open again.

    Example: optbot ack reconcile-2026-11-20-1a2b3c4d
    """
    import getpass
    from datetime import UTC, datetime

    from warehouse.halt import HaltError, acknowledge, active_halts

    root = _data_root(data_dir)
    who = by or os.environ.get("USER") or getpass.getuser()
    try:
        halt = acknowledge(root, halt_id, by=who, at=datetime.now(UTC))
    except HaltError as exc:
        fail(str(exc))
    print(f"HALT {halt.id} acknowledged by {who}: {halt.reason}")
    remaining = active_halts(root)
    if remaining:
        print(f"still halted by: {', '.join(h.id for h in remaining)}")
    else:
        print("no HALT remains: the next session may open positions")


def status_command(
    data_dir: DataDirOption = None,
    runs: Annotated[
        int,
        typer.Option(
            "--runs",
            metavar="N",
            min=0,
            max=100,
            help="Also list the last N flow runs (needs a Prefect server: PREFECT_API_URL).",
        ),
    ] = 0,
) -> None:
    """Show whether trading is halted, the last reconciliation and backup, and recent runs.

    Example: optbot status --runs 5
    """
    from warehouse.backup import list_backups
    from warehouse.halt import active_halts

    root = _data_root(data_dir)
    halts = active_halts(root)
    if halts:
        print(f"HALTED: {len(halts)} active HALT(s) — no new positions until acknowledged")
        for halt in halts:
            print(f"  {halt.id}  since {halt.created_at:%Y-%m-%d %H:%M} UTC  ({halt.source})")
            print(f"    {halt.reason}")
            for line in halt.details[:5]:
                print(f"    - {line}")
            if len(halt.details) > 5:
                print(f"    - … {len(halt.details) - 5} more")
            print(f"    clear after review: optbot ack {halt.id}")
    else:
        print("HALT: none active")
    reports = sorted((root / "reports").glob("reconcile-*.md"))
    if reports:
        latest = reports[-1]
        verdict = next(
            (
                line.strip("* ")
                for line in latest.read_text("utf-8").splitlines()
                if line.startswith("**Result")
            ),
            "",
        )
        print(f"last reconciliation: {latest.stem.removeprefix('reconcile-')} — {verdict}")
    else:
        print("last reconciliation: none")
    backups = list_backups(root)
    print(f"last backup: {backups[-1].name if backups else 'none'}")
    if runs:
        _print_runs(runs)


def _print_runs(limit: int) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        print("last runs: not shown; set PREFECT_API_URL (or [prefect] api_url) to a server")
        return
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def fetch() -> list[Any]:
        async with get_client() as client:
            runs = await client.read_flow_runs(limit=limit, sort=FlowRunSort.START_TIME_DESC)
            names = {}
            for run in runs:
                if run.flow_id not in names:
                    names[run.flow_id] = (await client.read_flow(run.flow_id)).name
            return [(names[r.flow_id], r) for r in runs]

    try:
        listed = asyncio.run(fetch())
    except Exception as exc:
        print(f"last runs: cannot reach Prefect ({type(exc).__name__}: {exc})")
        return
    print("last runs:")
    for flow_name, run in listed:
        state = run.state.name if run.state else "?"
        started = f"{run.start_time:%Y-%m-%d %H:%M}" if run.start_time else "not started"
        print(f"  {started}  {flow_name:<16} {state}")


def register(app: typer.Typer) -> None:
    """Add nightly, flow, ack and status to the root command."""
    app.command("nightly")(nightly_command)
    app.command(
        "flow",
        context_settings={"help_option_names": ["--help", "-h"]},
        rich_help_panel=None,
    )(flow_command)
    app.command("ack")(ack_command)
    app.command("status")(status_command)
