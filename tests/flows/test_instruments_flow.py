"""The instruments flow against the simulator: dated snapshots, purging, refusing bad masters."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from prefect.artifacts import Artifact

from flows.instruments import instruments_flow
from flows.tasks.instrument_snapshot import snapshot_date_in_force, snapshot_in_force
from warehouse import Warehouse

if TYPE_CHECKING:
    from broker.sim.server import SimServer

SESSION = date(2026, 11, 20)  # the sim fixture's session date
FIRST_EXPIRY = date(2026, 11, 23)  # the simulator's nearest NIFTY expiry on that date
pytestmark = pytest.mark.filterwarnings("ignore::market.calendar.UncoveredYearWarning")


def write_config(folder: Path, sim: SimServer, underlyings: list[str]) -> str:
    path = folder / "optbot.toml"
    names = ", ".join(f'"{name}"' for name in underlyings)
    path.write_text(
        f'[data]\ndir = "{folder / "data"}"\n[sim]\nport = {sim.port}\n'
        f"[universe]\nunderlyings = [{names}]\n",
        encoding="utf-8",
    )
    return str(path)


def test_snapshot_holds_only_the_configured_underlyings_and_vix(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sim, ["NIFTY"])
    summary = instruments_flow(config_path=config, as_of=SESSION)
    assert summary["status"] == "accepted"
    wh = Warehouse(tmp_path / "data")
    snapshot = snapshot_in_force(wh, SESSION)
    assert snapshot is not None and snapshot.snapshot_date == SESSION
    instruments = list(snapshot.index)
    assert {inst.name for inst in instruments} == {"NIFTY", "INDIA VIX"}
    # the simulator lists NIFTY's index, 3 futures and options on 3 expiries (41 strikes x 2)
    master = httpx.get(sim.master_url).json()
    listed = [r for r in master if r["name"] in ("NIFTY", "INDIA VIX")]
    assert len(instruments) == len(listed) == summary["instruments_written"]
    assert snapshot.index.index_instrument("NIFTY").token == "99926000"
    assert snapshot.index.index_instrument("INDIA VIX").token == "99926017"
    assert summary["expired_purged"] == 0


def test_contracts_expired_before_the_snapshot_date_are_purged(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sim, ["NIFTY", "BANKNIFTY"])
    instruments_flow(config_path=config, as_of=SESSION)
    later = FIRST_EXPIRY + timedelta(days=1)
    summary = instruments_flow(config_path=config, as_of=later)
    wh = Warehouse(tmp_path / "data")
    before = snapshot_in_force(wh, SESSION)
    after = snapshot_in_force(wh, later)
    assert before is not None and after is not None and after.snapshot_date == later
    expiring = [i for i in before.index if i.expiry == FIRST_EXPIRY]
    assert expiring, "the simulator lists contracts expiring on its first expiry"
    assert summary["expired_purged"] == len(expiring)
    assert all(i.expiry is None or i.expiry >= later for i in after.index)
    assert len(after) == len(before) - len(expiring)


def test_a_same_day_rerun_with_fewer_underlyings_leaves_only_them(
    sim: SimServer, tmp_path: Path
) -> None:
    both = write_config(tmp_path, sim, ["NIFTY", "BANKNIFTY"])
    first = instruments_flow(config_path=both, as_of=SESSION)
    wh = Warehouse(tmp_path / "data")
    before = snapshot_in_force(wh, SESSION)
    assert before is not None
    assert {inst.name for inst in before.index} == {"NIFTY", "BANKNIFTY", "INDIA VIX"}

    only_nifty = write_config(tmp_path, sim, ["NIFTY"])
    rerun = instruments_flow(config_path=only_nifty, as_of=SESSION)

    after = snapshot_in_force(wh, SESSION)
    assert after is not None and after.snapshot_date == SESSION
    assert {inst.name for inst in after.index} == {"NIFTY", "INDIA VIX"}
    assert len(after) == rerun["instruments_written"] < first["instruments_written"]
    # the catalog view agrees with the files: no BANKNIFTY row is left in the day's snapshot
    names = wh.query(
        f"SELECT DISTINCT name FROM instruments WHERE snapshot_date = DATE '{SESSION}'"
    )["name"].to_pylist()
    assert sorted(names) == ["INDIA VIX", "NIFTY"]


def _corrupt(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """Three problems in NIFTY's options: a zero lot, an off-grid strike, a duplicate token."""
    options = [r for r in records if r["name"] == "NIFTY" and r["instrumenttype"] == "OPTIDX"]
    options[0]["lotsize"] = "0"
    options[1]["strike"] = str(float(options[1]["strike"]) + 1234) + "00"
    twin = dict(options[2])
    twin["symbol"] = twin["symbol"] + "X"
    return [*records, twin]


def test_a_master_that_fails_validation_is_kept_aside_and_the_old_snapshot_stays(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sim, ["NIFTY"])
    assert instruments_flow(config_path=config, as_of=SESSION)["status"] == "accepted"
    bad = tmp_path / "bad-master.json"
    bad.write_text(json.dumps(_corrupt(httpx.get(sim.master_url).json())), encoding="utf-8")

    next_day = SESSION + timedelta(days=1)
    summary = instruments_flow(config_path=config, as_of=next_day, master_file=str(bad))

    assert summary["status"] == "rejected"
    assert summary["instruments_written"] == 0
    assert summary["snapshot_in_force"] == SESSION.isoformat()
    wh = Warehouse(tmp_path / "data")
    assert snapshot_date_in_force(wh, next_day) == SESSION  # yesterday's stays in force
    kept = tmp_path / "data" / "rejected" / "master-20261121.json"
    assert summary["rejected_path"] == str(kept)
    assert kept.read_bytes() == bad.read_bytes()
    report = kept.with_name("master-20261121.report.md").read_text(encoding="utf-8")
    assert "REFUSED" in report and "lot" in report and "grid" in report
    reasons = " ".join(summary["reasons"])
    assert "problem(s) in the kept instruments" in reasons
    artifact = Artifact.get("instruments-report")
    assert artifact is not None and "REFUSED" in str(artifact.data)


def test_an_unreadable_master_is_refused_too(sim: SimServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim, ["NIFTY"])
    broken = tmp_path / "broken.json"
    broken.write_text('[{"token": "1", "sym', encoding="utf-8")
    summary = instruments_flow(config_path=config, as_of=SESSION, master_file=str(broken))
    assert summary["status"] == "rejected"
    assert "not valid JSON" in summary["reasons"][0]
    assert summary["snapshot_in_force"] is None
    assert (tmp_path / "data" / "rejected" / "master-20261120.json").exists()


def test_a_refused_master_alerts_a_person(sim: SimServer, tmp_path: Path) -> None:
    from tests.flows.conftest import Hook

    hook = Hook()
    try:
        config = tmp_path / "optbot.toml"
        config.write_text(
            f'[data]\ndir = "{tmp_path / "data"}"\n[sim]\nport = {sim.port}\n'
            f'[universe]\nunderlyings = ["NIFTY"]\n[notify]\nwebhook_url = "{hook.url}"\n',
            encoding="utf-8",
        )
        broken = tmp_path / "broken.json"
        broken.write_text('[{"token": "1", "sym', encoding="utf-8")
        summary = instruments_flow(config_path=str(config), as_of=SESSION, master_file=str(broken))
        assert summary["status"] == "rejected"
        alerts = [b for b in hook.bodies if b["source"] == "instruments"]
        assert len(alerts) == 1
        assert "refused" in alerts[0]["subject"] and "2026-11-20" in alerts[0]["subject"]
        assert "not valid JSON" in alerts[0]["body"]
    finally:
        hook.close()
