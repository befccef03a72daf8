"""``optbot calendar``: JSON shape, table, coverage warning, user override file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from optbot.cli import app

runner = CliRunner()

# NSE's published 2026 trading holidays (weekdays).
HOLIDAYS_2026 = [
    "2026-01-15",
    "2026-01-26",
    "2026-03-03",
    "2026-03-26",
    "2026-03-31",
    "2026-04-03",
    "2026-04-14",
    "2026-05-01",
    "2026-05-28",
    "2026-06-26",
    "2026-09-14",
    "2026-10-02",
    "2026-10-20",
    "2026-11-10",
    "2026-11-24",
    "2026-12-25",
]


def test_json_for_a_covered_year_has_the_documented_shape() -> None:
    result = runner.invoke(app, ["calendar", "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["holidays", "special_sessions", "covered"]
    assert payload["holidays"] == HOLIDAYS_2026
    assert payload["covered"] is True
    assert {
        "date": "2026-02-01",
        "start": "09:15",
        "end": "15:30",
        "kind": "special",
        "note": "Union Budget, Sunday live trading session",
    } in payload["special_sessions"]
    assert all(
        set(s) == {"date", "start", "end", "kind", "note"} for s in payload["special_sessions"]
    )
    assert result.stderr == ""


def test_json_lists_the_2025_muhurat_session() -> None:
    result = runner.invoke(app, ["calendar", "--year", "2025", "--json"])
    assert result.exit_code == 0, result.output
    sessions = json.loads(result.stdout)["special_sessions"]
    muhurat = [s for s in sessions if s["kind"] == "muhurat"]
    assert [(s["date"], s["start"], s["end"]) for s in muhurat] == [
        ("2025-10-21", "13:45", "14:45")
    ]


def test_uncovered_year_warns_on_stderr_and_still_succeeds() -> None:
    result = runner.invoke(app, ["calendar", "--year", "2027", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"holidays": [], "special_sessions": [], "covered": False}
    assert "WARNING" in result.stderr
    assert "2027" in result.stderr
    assert "[[holiday]]" in result.stderr


def test_table_shows_holidays_and_sessions() -> None:
    result = runner.invoke(app, ["calendar", "--year", "2025"])
    assert result.exit_code == 0, result.output
    assert "NSE trading calendar 2025" in result.stdout
    assert "2025-10-22" in result.stdout  # Diwali Balipratipada
    assert "muhurat" in result.stdout
    assert "13:45–14:45" in result.stdout
    assert "13 weekday holidays" in result.stdout


def test_table_for_an_uncovered_year_says_it_is_incomplete() -> None:
    result = runner.invoke(app, ["calendar", "--year", "2027"])
    assert result.exit_code == 0
    assert "No holiday data for 2027" in result.stdout
    assert "WARNING" in result.stderr


def test_overrides_file_adds_holidays_sessions_and_coverage(tmp_path: Path) -> None:
    overrides = tmp_path / "calendar.toml"
    overrides.write_text(
        "[coverage]\nyears = [2027]\n\n"
        '[[holiday]]\ndate = 2027-01-26\nnote = "Republic Day"\n\n'
        '[[special_session]]\ndate = 2027-10-30\nstart = "18:00"\nend = "19:00"\n'
        'kind = "muhurat"\nnote = "test muhurat"\n',
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["calendar", "--year", "2027", "--json", "--overrides", str(overrides)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "holidays": ["2027-01-26"],
        "special_sessions": [
            {
                "date": "2027-10-30",
                "start": "18:00",
                "end": "19:00",
                "kind": "muhurat",
                "note": "test muhurat",
            }
        ],
        "covered": True,
    }
    assert result.stderr == ""


def test_bad_overrides_file_is_a_one_line_error(tmp_path: Path) -> None:
    overrides = tmp_path / "bad.toml"
    overrides.write_text(
        '[[special_session]]\ndate = 2026-11-21\nstart = "10:00"\nend = "11:00"\nkind = "x"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["calendar", "--year", "2026", "--overrides", str(overrides)])
    assert result.exit_code == 2
    assert "kind 'x' is not one of muhurat, early_close, late_open, special" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_overrides_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = runner.invoke(app, ["calendar", "--overrides", str(missing)])
    assert result.exit_code == 2
    assert "nope.toml" in result.stderr
    assert "no such file" in result.stderr


def test_bad_year_exits_2_naming_the_value() -> None:
    result = runner.invoke(app, ["calendar", "--year", "20x6"])
    assert result.exit_code == 2
    assert "'20x6'" in result.stderr
    result = runner.invoke(app, ["calendar", "--year", "99999"])
    assert result.exit_code == 2
    assert "99999" in result.stderr


def test_default_year_runs() -> None:
    result = runner.invoke(app, ["calendar", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"holidays", "special_sessions", "covered"}


def test_help_shows_an_example() -> None:
    result = runner.invoke(app, ["calendar", "--help"])
    assert result.exit_code == 0
    assert "optbot calendar --year 2026 --json" in result.stdout
