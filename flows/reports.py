"""Reports a person reads: Markdown files under ``<data>/reports/`` and Prefect artifacts.

Report files are written atomically (temp file, fsync, rename), so a half-written report is
never mistaken for a whole one. Artifacts are best effort: outside a Prefect run (a task's
``.fn`` called directly) there is nowhere to put them, and that must not fail the work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

log = logging.getLogger("optbot.flows")

REPORTS_DIR = "reports"


def money(paise: int | None) -> str:
    """Paise as rupees for a person: ``-123456`` → ``-₹1,234.56``; ``None`` → ``—``."""
    if paise is None:
        return "—"
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}₹{whole:,}.{part:02d}"


def write_report(root: Path, name: str, day: date, markdown: str) -> Path:
    """Write ``<root>/reports/<name>-YYYY-MM-DD.md`` atomically and return its path."""
    directory = Path(root) / REPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{day.isoformat()}.md"
    temp = directory / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(markdown)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-style Markdown table; ``|`` and newlines in cells are escaped."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A Markdown artifact in the Prefect UI (skipped outside a run)."""
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown=markdown, key=key, description=description)
    except Exception as exc:  # the report file is the record; the artifact is a convenience
        log.info("artifact %s not created: %s", key, exc)


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """A table artifact in the Prefect UI (skipped outside a run or when empty)."""
    if not rows:
        return
    try:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(
            table=[{k: _plain(v) for k, v in row.items()} for row in rows],
            key=key,
            description=description,
        )
    except Exception as exc:
        log.info("artifact %s not created: %s", key, exc)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
