"""prefect.yaml: each deployment loads a real flow, on IST schedules, with valid parameters."""

from __future__ import annotations

import importlib
import inspect
import re
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from prefect import Flow
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

from optbot.commands.flows import FLOWS

ROOT = Path(__file__).resolve().parents[2]
IST = ZoneInfo("Asia/Kolkata")
DOCUMENT = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
DEPLOYMENTS = {d["name"]: d for d in DOCUMENT["deployments"]}


def comment_blocks(text: str) -> dict[str, str]:
    """Each deployment's comment lines, keyed by the deployment's name."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        named = re.match(r"\s*- name: (\S+)\s*$", line)
        if named:
            current = blocks.setdefault(named.group(1), [])
        elif current is not None and line.lstrip().startswith("#"):
            current.append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


PROJECT_TEXT = (ROOT / "prefect.yaml").read_text(encoding="utf-8")
HEADER = PROJECT_TEXT.split("\ndeployments:", 1)[0]
COMMENTS = comment_blocks(PROJECT_TEXT)


def load(entrypoint: str) -> Flow:
    path, _, function = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{ROOT / path}:{function}", use_placeholder_flow=False)


def fires(deployment: dict[str, Any], count: int) -> list[datetime]:
    """The next ``count`` run times (IST) after Friday 2026-11-20 00:00 IST."""
    (schedule,) = deployment["schedules"]
    start = datetime(2026, 11, 20, tzinfo=ZoneInfo(schedule["timezone"]))
    it = CronSim(schedule["cron"], start)
    return [next(it) for _ in range(count)]


def test_file_is_a_valid_prefect_project() -> None:
    model = PrefectYamlModel.model_validate(DOCUMENT)
    assert len(model.deployments) == len(DEPLOYMENTS)  # names are unique


def test_one_deployment_per_cli_flow() -> None:
    assert set(DEPLOYMENTS) == set(FLOWS)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_loads_the_flow_the_cli_runs(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    loaded = load(deployment["entrypoint"])
    assert isinstance(loaded, Flow)
    module, function, _ = FLOWS[name]
    imported = getattr(importlib.import_module(module), function)
    assert isinstance(imported, Flow) and loaded.name == imported.name == name
    assert deployment["work_pool"]["name"] == "optbot-process"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_parameters_match_the_flow_signature(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    loaded = load(deployment["entrypoint"])
    given = deployment.get("parameters") or {}
    signature = inspect.signature(loaded.fn).parameters
    assert set(given) <= set(signature), f"{name}: unknown {set(given) - set(signature)}"
    required = {n for n, p in signature.items() if p.default is inspect.Parameter.empty}
    assert required <= set(given)
    validated = loaded.validate_parameters(given)
    assert {k: validated[k] for k in given} == given
    # Deployments must be runnable from the UI with plain values.
    assert {"config_path", "data_dir"} <= set(signature)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_parameter_is_documented_next_to_its_deployment(name: str) -> None:
    # config_path and data_dir are common to all flows and explained once at the top.
    signature = inspect.signature(load(DEPLOYMENTS[name]["entrypoint"]).fn).parameters
    undocumented = [
        p
        for p in signature
        if p not in {"config_path", "data_dir"}
        and not re.search(rf"(?<![\w]){re.escape(p)}(?![\w])", COMMENTS.get(name, ""))
    ]
    assert undocumented == [], f"{name}: no comment for {undocumented}"
    assert "`config_path`" in HEADER and "`data_dir`" in HEADER


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_schedules_are_valid_crons_in_ist(name: str) -> None:
    for schedule in DEPLOYMENTS[name].get("schedules") or []:
        assert schedule["timezone"] == "Asia/Kolkata"
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])


@pytest.mark.parametrize(
    ("name", "at", "weekdays"),
    [
        ("instruments", time(7, 30), {0, 1, 2, 3, 4}),
        ("intraday-worker", time(9, 0), {0, 1, 2, 3, 4}),
        ("reconcile", time(16, 15), {0, 1, 2, 3, 4}),
        ("nightly", time(18, 30), {0, 1, 2, 3, 4}),
        ("maintenance", time(10, 0), {6}),
    ],
)
def test_schedule_times(name: str, at: time, weekdays: set[int]) -> None:
    upcoming = fires(DEPLOYMENTS[name], 10)
    assert {moment.time() for moment in upcoming} == {at}
    assert {moment.weekday() for moment in upcoming} == weekdays
    assert all(moment.utcoffset().total_seconds() == 5.5 * 3600 for moment in upcoming)


def test_flows_run_by_nightly_have_no_competing_weekday_schedule() -> None:
    # gaps and categorise run inside nightly; a second weekday schedule would double them.
    for name in ("gaps", "categorise"):
        assert not DEPLOYMENTS[name].get("schedules")
