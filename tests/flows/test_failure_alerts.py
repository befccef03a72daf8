"""A nightly step flow that fails tells a person through the configured webhook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.categorise import categorise_flow
from flows.gaps import gaps_flow
from flows.history import history_flow
from tests.flows.conftest import Hook

AS_OF = date(2026, 11, 19)


def run_gaps(config: Path, tmp_path: Path) -> Any:
    # "2m" is no bar interval: the flow refuses it before reading anything.
    return gaps_flow(config_path=str(config), as_of=AS_OF, intervals=["2m"], return_state=True)


def run_categorise(config: Path, tmp_path: Path) -> Any:
    # The data directory is a plain file: the categories cannot be written anywhere.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    return categorise_flow(
        config_path=str(config),
        data_dir=str(blocked),
        as_of=AS_OF,
        fetch_futures=False,
        return_state=True,
    )


def run_history(config: Path, tmp_path: Path) -> Any:
    # An empty warehouse has no instrument snapshot: the flow stops before any broker call.
    return history_flow(config_path=str(config), end_date=AS_OF, return_state=True)


@pytest.mark.parametrize(
    ("name", "run", "cause"),
    [
        ("gaps", run_gaps, "not bar intervals"),
        ("categorise", run_categorise, "not-a-directory"),
        ("history", run_history, "no instrument snapshot"),
    ],
)
def test_failed_run_alerts_through_the_webhook(
    name: str,
    run: Callable[[Path, Path], Any],
    cause: str,
    hook: Hook,
    tmp_path: Path,
) -> None:
    config = tmp_path / "optbot.toml"
    config.write_text(
        f'[data]\ndir = "{tmp_path / "data"}"\n\n[universe]\nunderlyings = ["NIFTY"]\n\n'
        f'[notify]\nwebhook_url = "{hook.url}"\n',
        encoding="utf-8",
    )

    state = run(config, tmp_path)

    assert state.is_failed()
    (alert,) = hook.bodies
    assert alert["source"] == name and alert["severity"] == "critical"
    assert alert["subject"] == f"flow {name!r} failed"
    assert cause in alert["body"]
