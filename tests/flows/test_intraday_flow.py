"""The intraday-worker flow: launches only on a covered trading day with no HALT active."""

from __future__ import annotations

import sys
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.intraday import intraday_worker_flow
from warehouse.halt import raise_halt

FRIDAY = date(2026, 11, 20)
REPUBLIC_DAY = date(2026, 1, 26)  # a Monday NSE holiday


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir()
    return str(tmp_path / "data")


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A stand-in ``streaming.worker`` module whose ``main`` records how it was called."""
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("streaming.worker")

    def main(*, mode: str, session_date: date, data_dir: Path) -> int:
        calls.append({"mode": mode, "session_date": session_date, "data_dir": data_dir})
        return 0

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streaming.worker", module)
    return calls


def test_holiday_and_weekend_end_at_once_saying_why(data_dir: str, worker: list) -> None:
    holiday = intraday_worker_flow(session_date=REPUBLIC_DAY, data_dir=data_dir)
    assert holiday["status"] == "closed"
    assert holiday["reason"] == (
        "2026-01-26 (Monday) is an NSE holiday; the next session is 2026-01-27"
    )
    weekend = intraday_worker_flow(session_date=date(2026, 11, 21), data_dir=data_dir)
    assert weekend["status"] == "closed" and "is a weekend" in weekend["reason"]
    assert worker == []


def test_uncovered_year_is_refused_loudly(data_dir: str, worker: list) -> None:
    state = intraday_worker_flow(
        session_date=date(2031, 6, 2), data_dir=data_dir, return_state=True
    )
    assert state.is_failed()
    assert "no holiday data for 2031" in state.message
    assert worker == []


def test_active_halt_keeps_the_worker_from_starting(data_dir: str, worker: list) -> None:
    raise_halt(
        Path(data_dir),
        halt_id="reconcile-2026-11-19-abcd1234",
        reason="reconciliation of 2026-11-19 (paper) found 1 break(s)",
        source="reconcile",
        created_at=datetime(2026, 11, 19, 11, 0, tzinfo=UTC),
    )
    result = intraday_worker_flow(session_date=FRIDAY, data_dir=data_dir)
    assert result["status"] == "halted"
    assert result["halts"] == ["reconcile-2026-11-19-abcd1234"]
    assert worker == []


def test_trading_day_launches_the_worker_entry_point(data_dir: str, worker: list) -> None:
    result = intraday_worker_flow(session_date=FRIDAY, mode="paper", data_dir=data_dir)
    assert result["status"] == "ran" and result["exit"] == 0
    assert worker == [{"mode": "paper", "session_date": FRIDAY, "data_dir": Path(data_dir)}]


def test_async_worker_and_failed_exit(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("streaming.worker")

    async def main(**options: Any) -> int:
        return 3 if options["mode"] == "paper" else 0

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streaming.worker", module)
    state = intraday_worker_flow(session_date=FRIDAY, data_dir=data_dir, return_state=True)
    assert state.is_failed() and "exited with status 3" in state.message


def test_missing_worker_fails_clearly(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the module did not exist.
    monkeypatch.setitem(sys.modules, "streaming.worker", None)
    state = intraday_worker_flow(session_date=FRIDAY, data_dir=data_dir, return_state=True)
    assert state.is_failed()
    assert "streaming worker not installed" in state.message
