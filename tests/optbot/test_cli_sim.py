"""``optbot sim``: argument errors exit 2 with one line; a real run serves and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from broker.sim.credentials import DEMO_CREDENTIALS
from optbot.cli import app

OPTBOT = Path(sys.executable).with_name("optbot")


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["sim", "--help"])
    assert result.exit_code == 0
    assert "Example: optbot sim --port 8765" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--faults", "ratelimit=2"], "ratelimit='2'"),
        (["--faults", "latency=5"], "unknown name 'latency'"),
        (["--session", "2026-11-21"], "2026-11-21 is not an NSE trading day"),
        (["--session", "21/11/2026"], "--session '21/11/2026'"),
        (["--scenario", "meltdown"], "'meltdown'"),
        (["--port", "70000"], "--port 70000"),
        (["--speed", "0"], "--speed 0"),
        (["--start", "noon"], "--start 'noon'"),
        (["--totp-secret", "not base32!"], "--totp-secret"),
        (["--pin", "12"], "--pin"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["sim", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert named in lines[0]
    assert "Traceback" not in result.output


def test_a_real_run_prints_urls_and_login_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "OPTBOT_SIM__SEED": "21", "OPTBOT_SIM__SPEED": "250"}
    env.pop("OPTBOT_CONFIG", None)
    proc = subprocess.Popen(
        [str(OPTBOT), "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=str(tmp_path),
    )
    try:
        banner: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            banner.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(banner)
        assert "Press Ctrl-C to stop." in text, text
        assert "250× real time (seed 21)" in text  # defaults from [sim] via the environment
        rest = re.search(r"REST\s+(http://127\.0\.0\.1:\d+)", text)
        assert rest is not None
        assert f"{rest.group(1)}/smart-stream".replace("http", "ws") in text
        assert f"client code {DEMO_CREDENTIALS.client_code}" in text
        assert f"TOTP secret {DEMO_CREDENTIALS.totp_secret}" in text
        code = re.search(r"current code (\d{6})", text)
        assert code is not None and DEMO_CREDENTIALS.totp_matches(code.group(1), time.time())
        state = httpx.get(f"{rest.group(1)}/__sim/state", timeout=10).json()
        assert state["seed"] == 21 and state["speed"] == 250
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
