"""HALT markers: raised atomically and once, listed, acknowledged, never lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warehouse.halt import (
    HaltError,
    UnknownHalt,
    acknowledge,
    acknowledged_halts,
    active_halts,
    find_halt,
    is_halted,
    raise_halt,
)

T0 = datetime(2026, 11, 20, 10, 45, tzinfo=UTC)


def test_raise_list_and_acknowledge(tmp_path: Path) -> None:
    assert not is_halted(tmp_path) and active_halts(tmp_path) == []
    halt, new = raise_halt(
        tmp_path,
        halt_id="reconcile-2026-11-20-abcd",
        reason="1 break",
        source="reconcile",
        created_at=T0,
        details=["order:1:known: unknown order"],
    )
    assert new and halt.active
    marker = tmp_path / "HALT" / "reconcile-2026-11-20-abcd.json"
    assert json.loads(marker.read_text("utf-8"))["details"] == ["order:1:known: unknown order"]
    assert is_halted(tmp_path)
    assert [h.id for h in active_halts(tmp_path)] == ["reconcile-2026-11-20-abcd"]
    assert list((tmp_path / "HALT").glob(".*")) == []  # no temp file left

    acked = acknowledge(tmp_path, halt.id, by="asha", at=T0 + timedelta(hours=8))
    assert acked.acknowledged_by == "asha" and not acked.active
    assert not marker.exists() and not is_halted(tmp_path)
    assert [h.id for h in acknowledged_halts(tmp_path)] == [halt.id]
    assert find_halt(tmp_path, halt.id) == acked


def test_same_id_is_raised_once_even_after_acknowledgement(tmp_path: Path) -> None:
    raise_halt(tmp_path, halt_id="h1", reason="first", source="t", created_at=T0)
    again, new = raise_halt(tmp_path, halt_id="h1", reason="second", source="t", created_at=T0)
    assert not new and again.reason == "first"
    acknowledge(tmp_path, "h1", by="asha", at=T0)
    _, new = raise_halt(tmp_path, halt_id="h1", reason="third", source="t", created_at=T0)
    assert not new and not is_halted(tmp_path)


def test_unknown_or_already_acknowledged_ids_are_refused(tmp_path: Path) -> None:
    raise_halt(tmp_path, halt_id="h1", reason="r", source="t", created_at=T0)
    with pytest.raises(UnknownHalt, match="no active halt 'h2'; active halts: h1"):
        acknowledge(tmp_path, "h2", by="x", at=T0)
    acknowledge(tmp_path, "h1", by="x", at=T0)
    with pytest.raises(UnknownHalt, match="acknowledged already"):
        acknowledge(tmp_path, "h1", by="x", at=T0)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", ".hidden", "x" * 200])
def test_ids_that_are_not_plain_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(HaltError, match="not valid"):
        raise_halt(tmp_path, halt_id=bad, reason="r", source="t", created_at=T0)
    with pytest.raises(HaltError, match="not valid"):
        acknowledge(tmp_path, bad, by="x", at=T0)


def test_an_unreadable_marker_still_halts(tmp_path: Path) -> None:
    (tmp_path / "HALT").mkdir()
    (tmp_path / "HALT" / "manual.json").write_text("{broken", encoding="utf-8")
    (halt,) = active_halts(tmp_path)
    assert halt.id == "manual" and "unreadable" in halt.reason
    assert is_halted(tmp_path)
    acknowledge(tmp_path, "manual", by="x", at=T0)
    assert not is_halted(tmp_path)


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HaltError, match="timezone-aware"):
        raise_halt(tmp_path, halt_id="h", reason="r", source="t", created_at=datetime(2026, 1, 1))
