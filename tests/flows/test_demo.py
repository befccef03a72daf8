"""``optbot demo`` end to end: simulator, nightly flows, report — and a rerun downloads nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optbot.cli import app
from warehouse import Warehouse

runner = CliRunner()


@pytest.mark.slow
def test_demo_runs_the_nightly_flows_and_reports_honestly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    args = ["demo", "--data-dir", str(data), "--underlying", "NIFTY"]

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    for step in ("instruments", "history", "gaps", "categorise", "maintenance"):
        assert re.search(rf"\[\s*completed\] nightly: {step}:", first.output), step
    # What does not exist yet is said to be skipped, never shown as done.
    assert "[  skipped] paper session" in first.output

    report = next((data / "reports").glob("demo-*.md")).read_text()
    assert "| nightly: categorise | completed |" in report
    assert "| paper session | skipped |" in report

    wh = Warehouse(data)
    categories = wh.read("categories").to_pylist()
    assert [c["underlying"] for c in categories] == ["NIFTY"]
    assert categories[0]["category"] in {"CE", "PE", "NO_TRADE"}
    minutes = wh.query("SELECT count(*) AS n FROM bars_1m WHERE symbol = 'NIFTY'")
    # Three months of 375-minute sessions for the underlying alone.
    assert minutes.column("n")[0].as_py() >= 55 * 375
    requests = int(re.search(r"nightly: history: .*requests=(\d+)", first.output).group(1))
    assert requests > 0

    # Same seed, same warehouse: the history step has nothing left to download.
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert re.search(r"nightly: history: .*requests=0\b", second.output), second.output[-2000:]
    assert (
        wh.query("SELECT count(*) AS n FROM bars_1m WHERE symbol = 'NIFTY'").column("n")[0].as_py()
        == minutes.column("n")[0].as_py()
    )
