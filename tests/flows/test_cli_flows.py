"""``optbot flow`` / ``optbot nightly``: the flows listed, parameters typed, mistakes exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from optbot.commands.flows import FLOWS, register

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    return app


def test_help_lists_every_flow_with_an_example() -> None:
    result = runner.invoke(cli(), ["flow", "--help"])
    assert result.exit_code == 0
    for name in FLOWS:
        assert name in result.output
    assert "Example: optbot flow maintenance dry_run=true" in result.output
    for command in ("nightly", "ack", "status"):
        assert "Example: optbot" in runner.invoke(cli(), [command, "--help"]).output


def test_a_flow_runs_with_typed_parameters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = runner.invoke(
        cli(),
        [
            "flow",
            "maintenance",
            "dry_run=true",
            "min_free_gb=0",
            "today=2025-03-03",
            "--data-dir",
            str(data),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["dry_run"] is True and summary["today"] == "2025-03-03"
    assert not (data / "backups").exists()


def test_mistakes_are_one_line_errors_with_exit_2(tmp_path: Path) -> None:
    cases = [
        (["flow", "nightlly"], "unknown flow 'nightlly'; flows: instruments"),
        (["flow", "maintenance", "dry_run"], "is not KEY=VALUE"),
        (["flow", "maintenance", "keep=3"], "has no parameter 'keep'; parameters: dry_run"),
        (["flow", "maintenance", "keep_backups=many"], "parameter keep_backups='many'"),
        (["flow", "maintenance", "data_dir=/x"], "give data_dir as --data-dir PATH"),
        (["nightly", "--step", "histroy"], "--step 'histroy' is not a nightly step"),
    ]
    for args, message in cases:
        result = runner.invoke(cli(), [*args, "--data-dir", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_show_params_lists_names_types_and_defaults() -> None:
    result = runner.invoke(cli(), ["flow", "reconcile", "--show-params"])
    assert result.exit_code == 0
    assert "pnl_tolerance_paise: int = 100" in result.output
    assert "session_date: datetime.date | None = None" in result.output
