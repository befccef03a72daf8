"""``optbot config check`` and ``optbot config show``: validate and display the configuration."""

from __future__ import annotations

import json
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from optbot.config import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (default: $OPTBOT_CONFIG, else ./optbot.toml, else defaults).",
        show_default=False,
    ),
]
ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode", help="Run mode to check for: paper, live or replay.", show_default=False
    ),
]


def check(config: ConfigOption = None, mode: ModeOption = None) -> None:
    """Validate the configuration and the credentials the mode needs.

    Exits 0 when the run could start, 2 with every problem listed when it could not.

    Example: optbot config check --config optbot.toml --mode paper
    """
    from optbot.config import ConfigError, find_config_file, load_credentials, load_settings

    try:
        settings = load_settings(config, mode=mode)
        load_credentials(settings)
        path = find_config_file(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    origin = str(path) if path is not None else "built-in defaults"
    typer.echo(
        f"config OK: {origin} — mode {settings.mode}, broker {settings.broker.target} "
        f"({settings.broker.rest_url}), data dir '{settings.data.dir}'"
    )


def show(config: ConfigOption = None, mode: ModeOption = None) -> None:
    """Print the effective settings (file, environment and defaults merged) as TOML.

    Credentials are never printed, only where each would come from.

    Example: optbot config show --mode replay
    """
    from optbot.config import ConfigError, credential_origins, find_config_file, load_settings

    try:
        settings = load_settings(config, mode=mode)
        path = find_config_file(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"# effective configuration from {path or 'built-in defaults'} and OPTBOT_* env")
    typer.echo(render_settings(settings), nl=False)
    typer.echo("\n# credentials (values never shown)")
    for name, origin in credential_origins(settings).items():
        typer.echo(f"# {name}: {origin}")


def render_settings(settings: Settings) -> str:
    """The settings as TOML that loads back to the same values; unset options are comments."""
    scalars: list[str] = []
    tables: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(type(value), "model_fields"):
            tables.append(f"\n[{name}]\n" + "".join(_render_table(value)))
        else:
            scalars.append(_render_line(name, value))
    return "".join(scalars) + "".join(tables)


def _render_table(section: Any) -> list[str]:
    return [_render_line(key, getattr(section, key)) for key in type(section).model_fields]


def _render_line(key: str, value: Any) -> str:
    if value is None:
        return f"# {key} = (not set)\n"
    return f"{key} = {_toml_value(value)}\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return f'"{value}"'  # a string keeps money exact on the way back in
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))


def register(app: typer.Typer) -> None:
    """Add the ``config`` command group to the root app."""
    group = typer.Typer(
        help="Validate and display the configuration.\n\nExample: optbot config check --mode paper",
        no_args_is_help=True,
    )
    group.command("check")(check)
    group.command("show")(show)
    app.add_typer(group, name="config")
