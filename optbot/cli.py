"""The ``optbot`` command line.

Each command lives in ``optbot/commands/<name>.py`` and exposes ``register(app)``.
Command modules import heavy dependencies inside their functions so that
``optbot --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="optbot",
    help=(
        "Automated NSE F&O options trading on Angel One SmartAPI, with a local "
        "SmartAPI-compatible exchange simulator.\n\n"
        "Example: optbot charges --buy 100 --sell 120 --quantity 75 --date 2025-06-10"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """optbot: NSE F&O options trading on SmartAPI (paper by default)."""


# Order here is the order shown by --help.
_COMMAND_MODULES = (
    "demo",
    "sim",
    "login",
    "nightly",
    "flows",
    "calendar",
    "charges",
    "sql",
    "config",
    "warehouse",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"optbot.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"optbot.commands.{name}":
                continue  # command not built yet
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
