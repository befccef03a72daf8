"""The maintenance flow: a dry run changes nothing; a real run prunes, compacts, backs up, warns."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.maintenance import maintenance_flow
from tests.flows.conftest import Hook
from tests.warehouse.builders import events, minute_bars, ticks
from warehouse import Warehouse
from warehouse.backup import list_backups
from warehouse.halt import raise_halt

TODAY = date(2025, 3, 3)  # a Monday; the calendar covers 2025 and 2026


def config_for(tmp_path: Path, webhook: str | None = None) -> Path:
    path = tmp_path / "optbot.toml"
    text = f'[data]\ndir = "{tmp_path / "data"}"\n\n[retention]\nticks_days = 2\n'
    text += "intraday_bars_months = 3\n"
    if webhook:
        text += f'\n[notify]\nwebhook_url = "{webhook}"\n'
    path.write_text(text, encoding="utf-8")
    return path


def fill_warehouse(root: Path) -> Warehouse:
    """Expired and fresh ticks and 1m bars, plus an events month made of two files."""
    wh = Warehouse(root)
    wh.write("ticks", ticks(TODAY - timedelta(days=10), 5))  # expires (older than 2 days)
    wh.write("ticks", ticks(TODAY, 5))
    wh.write("bars", minute_bars("NIFTY", date(2024, 9, 2), minutes=30), interval="1m")  # expires
    wh.write("bars", minute_bars("NIFTY", date(2025, 2, 28), minutes=30), interval="1m")
    start = datetime(2025, 3, 3, 4, 0, tzinfo=UTC)
    wh.write("events", events(start, ["a", "b"]))
    wh.write("events", events(start + timedelta(minutes=1), ["c"]))  # a second part file
    raise_halt(root, halt_id="test-halt", reason="kept in backups", source="test", created_at=start)
    return wh


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    root = tmp_path / "data"
    fill_warehouse(root)
    before = data_files(root)

    result = maintenance_flow(dry_run=True, today=TODAY, config_path=str(config), min_free_gb=0)

    assert data_files(root) == before
    steps = result["steps"]
    assert steps["retention"].startswith("would remove 2 file(s)")
    assert steps["compaction"] == "would compact 1 partition(s)"
    assert steps["backup"].startswith(f"would write {TODAY.isoformat()}.tar")
    assert not (root / "backups").exists()
    assert result["report"] == "" and not (root / "reports").exists()
    assert result["warnings"] == []


def test_apply_prunes_compacts_backs_up_and_warns(tmp_path: Path, hook: Hook) -> None:
    config = config_for(tmp_path, webhook=hook.url)
    root = tmp_path / "data"
    wh = fill_warehouse(root)

    result = maintenance_flow(today=TODAY, keep_backups=2, min_free_gb=1e9, config_path=str(config))

    # retention: the old day of ticks and the September bars are gone, the fresh ones stay
    assert wh.read("ticks").num_rows == 5
    bars = wh.read("bars", interval="1m")
    assert bars.num_rows == 30 and min(bars["ts"].to_pylist()).date() == date(2025, 2, 28)
    # compaction: the events month is one file holding all three events
    assert len(wh.files("events")) == 1 and wh.read("events").num_rows == 3
    # backup: a tar of the datasets and the HALT marker, restorable as it is
    (snapshot,) = list_backups(root)
    assert snapshot.name == f"{TODAY.isoformat()}.tar"
    with tarfile.open(snapshot) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "restored", filter="data")
    assert "HALT/test-halt.json" in names
    assert not any(name.endswith(".lock") or "/." in name for name in names)
    restored = Warehouse(tmp_path / "restored")
    assert restored.read("events").num_rows == 3 and restored.read("ticks").num_rows == 5
    # disk warning (threshold far above any disk), alerted through the webhook
    assert len(result["warnings"]) == 1 and "low disk space" in result["warnings"][0]
    (alert,) = hook.bodies
    assert alert["source"] == "maintenance" and alert["severity"] == "warning"
    assert "low disk space" in alert["text"]
    report = Path(result["report"]).read_text("utf-8")
    assert "tar -xf" in report and "low disk space" in report
    assert result["steps"]["session"] == "simulator: the demo login is automatic"


def test_uncovered_calendar_years_are_warned(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    (tmp_path / "data").mkdir()
    far = date(2031, 6, 2)
    result = maintenance_flow(dry_run=True, today=far, config_path=str(config), min_free_gb=0)
    calendar_warnings = [w for w in result["warnings"] if "NSE calendar" in w]
    assert len(calendar_warnings) == 2
    assert "2031" in calendar_warnings[0] and "2032" in calendar_warnings[1]
    assert result["steps"]["calendar"] == "covered: none; missing: 2031, 2032"


def test_backups_beyond_keep_are_pruned(tmp_path: Path) -> None:
    from warehouse.backup import take_backup

    root = tmp_path / "data"
    fill_warehouse(root)
    for offset in range(4):
        take_backup(root, TODAY + timedelta(days=offset), keep=2)
    assert [p.name for p in list_backups(root)] == ["2025-03-05.tar", "2025-03-06.tar"]
    # the same day again replaces that day's snapshot and keeps the newest two
    plan = take_backup(root, date(2025, 3, 6), keep=2)
    assert plan.prune == [] and len(list_backups(root)) == 2
    assert not list((root / "backups").glob(".*"))  # no temp files left behind


@pytest.fixture
def angelone_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Target the real broker, but with no keyring and no way to open a connection to it."""
    import keyring
    from keyring.backends import fail

    from flows.broker_session import BrokerSession

    def no_login(self: Any) -> None:
        raise AssertionError("the maintenance flow must not connect to the broker")

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # neither credentials nor tokens come from this machine
    monkeypatch.setattr(BrokerSession, "connect", no_login)
    monkeypatch.setenv("OPTBOT_BROKER__TARGET", "angelone")
    for name in ("CLIENT_CODE", "PIN", "API_KEY", "TOTP_SECRET"):
        monkeypatch.delenv(f"OPTBOT_{name}", raising=False)
    yield
    keyring.set_keyring(before)


@pytest.mark.usefixtures("angelone_offline")
def test_broker_without_totp_secret_needs_a_morning_login(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTBOT_CLIENT_CODE", "a123")
    monkeypatch.setenv("OPTBOT_PIN", "4321")
    monkeypatch.setenv("OPTBOT_API_KEY", "key-xyz")
    config = config_for(tmp_path, webhook=hook.url)
    (tmp_path / "data").mkdir()

    result = maintenance_flow(dry_run=True, today=TODAY, config_path=str(config), min_free_gb=0)

    assert result["steps"]["session"] == "no valid stored session; no TOTP secret on this machine"
    (warning,) = result["warnings"]
    assert "fresh login is needed for the session of 2025-03-04" in warning  # Tuesday
    assert "optbot login" in warning
    (alert,) = hook.bodies
    assert alert["source"] == "maintenance" and alert["severity"] == "warning"
    assert warning in alert["body"]
    assert "4321" not in json.dumps(alert) and "key-xyz" not in json.dumps(alert)


@pytest.mark.usefixtures("angelone_offline")
def test_broker_without_credentials_is_warned(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTBOT_CLIENT_CODE", "a123")  # the PIN and API key are missing
    config = config_for(tmp_path, webhook=hook.url)
    (tmp_path / "data").mkdir()

    result = maintenance_flow(dry_run=True, today=TODAY, config_path=str(config), min_free_gb=0)

    assert result["steps"]["session"] == "credentials missing"
    (warning,) = result["warnings"]
    assert warning.startswith("the next session cannot log in: ")
    assert "OPTBOT_PIN" in warning and "OPTBOT_API_KEY" in warning
    (alert,) = hook.bodies
    assert alert["source"] == "maintenance" and warning in alert["body"]
