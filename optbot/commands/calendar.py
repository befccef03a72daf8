"""``optbot calendar``: a year's NSE trading holidays and special sessions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from datetime import date

    from market.calendar import NseCalendar, SpecialSession


def _fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _parse_year(text: str | None) -> int:
    if text is None:
        from datetime import datetime

        from market.calendar import IST

        return datetime.now(IST).year
    try:
        year = int(text.strip())
    except ValueError:
        _fail(f"--year {text!r} is not a year; give a four-digit year, e.g. 2026")
    if not 1900 <= year <= 2200:
        _fail(f"--year {year} is out of range; give a year from 1900 to 2200, e.g. 2026")
    return year


def _load_calendar(overrides: Path | None) -> NseCalendar:
    from market.calendar import CalendarOverrideError, NseCalendar, default_calendar

    if overrides is None:
        return default_calendar()
    try:
        text = overrides.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"--overrides {str(overrides)!r}: no such file; give a calendar override TOML file")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"--overrides {str(overrides)!r} cannot be read as UTF-8 text: {exc}")
    try:
        return NseCalendar.from_overrides(user_toml_text=text, origin=str(overrides))
    except CalendarOverrideError as exc:
        _fail(str(exc))


def _session_json(session: SpecialSession) -> dict[str, str]:
    return {
        "date": session.date.isoformat(),
        "start": f"{session.start:%H:%M}",
        "end": f"{session.end:%H:%M}",
        "kind": session.kind.value,
        "note": session.note,
    }


def _print_table(
    year: int, holidays: list[date], sessions: list[SpecialSession], covered: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    rows: list[tuple[str, str, str, str, str]] = [
        (day.isoformat(), f"{day:%a}", "holiday", "closed", "") for day in holidays
    ]
    rows += [
        (
            s.date.isoformat(),
            f"{s.date:%a}",
            s.kind.value,
            f"{s.start:%H:%M}–{s.end:%H:%M}",
            s.note,
        )
        for s in sessions
    ]
    rows.sort()
    table = Table(title=f"NSE trading calendar {year}")
    for column in ("Date", "Day", "Event", "Hours (IST)", "Note"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row, style="red" if row[2] == "holiday" else None)
    table.caption = (
        f"{len(holidays)} weekday holidays, {len(sessions)} special session windows. "
        "Other weekdays: pre-open 09:00, normal 09:15–15:30, post-close to 16:00 IST."
        if covered
        else f"No holiday data for {year}: this list is incomplete."
    )
    Console().print(table)


def calendar(
    year: Annotated[
        str | None,
        typer.Option(
            "--year", metavar="YYYY", help="Calendar year, e.g. 2026. (default: this year)"
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print holidays, special sessions and coverage as JSON."),
    ] = False,
    overrides: Annotated[
        Path | None,
        typer.Option(
            "--overrides",
            metavar="PATH",
            help="Extra calendar override TOML (late holidays, special sessions, coverage).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """NSE trading holidays and special sessions (Muhurat, early close) of a year.

    Holidays come from the exchange calendar package and the project's overrides.

    --overrides adds your own layer in the same TOML format (see
    market/data/nse_calendar.toml).

    A year without holiday data prints a warning on stderr and lists what is known.

    Example: optbot calendar --year 2026 --json
    """
    import json
    import warnings

    from market.calendar import UncoveredYearWarning

    chosen_year = _parse_year(year)
    cal = _load_calendar(overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncoveredYearWarning)
        holidays = cal.holidays(chosen_year)
        sessions = cal.special_sessions(chosen_year)
    covered = cal.covers(chosen_year)
    for message in dict.fromkeys(
        str(w.message) for w in caught if issubclass(w.category, UncoveredYearWarning)
    ):
        print(f"WARNING: {message}", file=sys.stderr)

    if as_json:
        payload = {
            "holidays": [day.isoformat() for day in holidays],
            "special_sessions": [_session_json(s) for s in sessions],
            "covered": covered,
        }
        print(json.dumps(payload, indent=2))
        return
    _print_table(chosen_year, holidays, sessions, covered)


def register(app: typer.Typer) -> None:
    """Add ``optbot calendar`` to the root app."""
    app.command(name="calendar")(calendar)
