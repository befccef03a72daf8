"""The nightly parent flow: every step against the simulator, and a failing step's aftermath."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prefect import flow

import flows.nightly as nightly
from flows.nightly import NightlyFailed, nightly_flow
from tests.conftest import SIM_SESSION
from tests.flows.conftest import Hook
from warehouse import Warehouse
from warehouse.backup import list_backups


def read_artifact(key: str) -> Any:
    """The latest artifact stored under ``key`` on the test Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0] if found else None


def test_nightly_runs_every_step_in_order(sim: Any, tmp_path: Path) -> None:
    sim.set_clock(at="15:30")  # the evening: the whole session has traded
    port = urlsplit(sim.rest_url).port
    config = tmp_path / "optbot.toml"
    config.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n\n[sim]\nport = {port}\n\n'
        '[universe]\nunderlyings = ["NIFTY"]\n',
        encoding="utf-8",
    )
    result = nightly_flow(
        config_path=str(config),
        step_parameters={
            "instruments": {"as_of": SIM_SESSION},
            "history": {
                "end_date": SIM_SESSION,
                "daily_from": date(2026, 7, 1),
                "intraday_from": SIM_SESSION,
                "include_options": False,
                "include_futures": False,
                "include_vix": False,
            },
            "gaps": {"as_of": SIM_SESSION, "intervals": ["1m"]},
            "categorise": {"as_of": SIM_SESSION, "fetch_futures": False},
            "maintenance": {"today": SIM_SESSION, "min_free_gb": 0},
        },
    )

    steps = result["steps"]
    assert [s["step"] for s in steps] == [
        "instruments",
        "history",
        "gaps",
        "categorise",
        "maintenance",
    ]
    assert [s["status"] for s in steps] == ["completed"] * 5, steps
    wh = Warehouse(tmp_path / "data")
    assert wh.read("instruments").num_rows > 0
    nifty_daily = wh.read("bars", interval="1d", symbol="NIFTY")
    assert nifty_daily.num_rows > 60  # July to November
    assert wh.read("bars", interval="1m", symbol="NIFTY").num_rows == 375  # one session
    categories = wh.read("categories").to_pylist()
    assert [c["underlying"] for c in categories] == ["NIFTY"]
    assert [p.name for p in list_backups(tmp_path / "data")] == ["2026-11-20.tar"]
    # The step table is in the Prefect UI.
    artifact = read_artifact("nightly-steps")
    assert artifact is not None and artifact.type == "table"
    assert "categorise" in str(artifact.data)


@flow(name="instruments")
def _fine_instruments(config_path: str | None = None, data_dir: str | None = None) -> dict:
    return {"snapshot_rows": 42}


@flow(name="history")
def _broken_history(config_path: str | None = None, data_dir: str | None = None) -> dict:
    raise RuntimeError("candles refused all evening")


def test_failed_step_fails_the_run_skips_dependants_and_alerts(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = {"instruments": _fine_instruments, "history": _broken_history}
    real_loader = nightly.load_step_flow
    monkeypatch.setattr(
        nightly, "load_step_flow", lambda step: stand_ins.get(step.name) or real_loader(step)
    )
    config = tmp_path / "optbot.toml"
    config.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n\n[notify]\nwebhook_url = "{hook.url}"\n',
        encoding="utf-8",
    )

    state = nightly_flow(
        config_path=str(config),
        step_parameters={"maintenance": {"dry_run": True, "min_free_gb": 0, "today": SIM_SESSION}},
        return_state=True,
    )

    assert state.is_failed()
    with pytest.raises(NightlyFailed) as failure:
        state.result()
    message = str(failure.value)
    assert "history (" in message and "candles refused all evening" in message
    assert "Skipped: gaps, categorise" in message
    assert "Completed: instruments, maintenance" in message
    # The failure hook told a person, with the same account of what ran.
    alerts = [b for b in hook.bodies if b["source"] == "nightly"]
    assert len(alerts) == 1 and "Skipped: gaps, categorise" in alerts[0]["body"]
    table = read_artifact("nightly-steps")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    statuses = {row["step"]: row["status"] for row in rows}
    assert statuses == {
        "instruments": "completed",
        "history": "failed",
        "gaps": "skipped",
        "categorise": "skipped",
        "maintenance": "completed",
    }


def test_unknown_step_or_parameter_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown nightly step"):
        nightly_flow(steps=["instrumnets"], data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="step 'maintenance' has no parameter"):
        nightly_flow(
            steps=["maintenance"],
            step_parameters={"maintenance": {"dry_rum": True}},
            data_dir=str(tmp_path),
        )
    assert not (tmp_path / "backups").exists()
