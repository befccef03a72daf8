"""``optbot login`` against the simulator: TOTP from config, typed, prompted, or pasted tokens."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import keyring
import pytest
import typer
from keyring.backends import fail
from typer.testing import CliRunner, Result

from optbot.commands.login import register

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """optbot (test root)."""

    register(app)
    return app


APP = _app()
# Nothing from the machine running the tests may leak in.
CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in (
        "OPTBOT_CONFIG",
        "OPTBOT_CLIENT_CODE",
        "OPTBOT_PIN",
        "OPTBOT_TOTP_SECRET",
        "OPTBOT_API_KEY",
        "OPTBOT_MODE",
    )
}


@pytest.fixture(autouse=True)
def _no_os_keyring() -> Iterator[None]:
    """Sessions must land in the test's data dir, never in a real keyring."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def _config(sim: Any, tmp_path: Path, *, target: str = "sim") -> Path:
    path = tmp_path / "optbot.toml"
    if target == "sim":
        broker = f'[broker]\ntarget = "sim"\n\n[sim]\nhost = "127.0.0.1"\nport = {sim.port}\n'
    else:
        broker = f'[broker]\ntarget = "angelone"\nrest_url = "{sim.rest_url}"\n'
    path.write_text(f'{broker}\n[data]\ndir = "{tmp_path / "data"}"\n')
    return path


def _login(
    *args: str, env: dict[str, str | None] | None = None, stdin: str | None = None
) -> Result:
    return runner.invoke(APP, ["login", *args], env={**CLEAN_ENV, **(env or {})}, input=stdin)


def _session_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "secrets" / "session-DEMO01.json"


def test_help_shows_an_example() -> None:
    result = runner.invoke(APP, ["login", "--help"])
    assert result.exit_code == 0
    assert "Example: optbot login --totp 123456" in result.output


def test_login_with_the_configured_secret_stores_a_0600_session(sim: Any, tmp_path: Path) -> None:
    result = _login("--config", str(_config(sim, tmp_path)))
    assert result.exit_code == 0, result.output
    assert "Logged in as Demo Trader (DEMO01)" in result.stdout
    assert "valid until" in result.stdout and "00:00 IST" in result.stdout
    path = _session_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["jwt"].startswith("eyJ")
    assert stored["jwt"] not in result.output


def test_login_with_a_typed_code(sim: Any, tmp_path: Path) -> None:
    result = _login("--config", str(_config(sim, tmp_path)), "--totp", sim.totp_now())
    assert result.exit_code == 0, result.output
    assert _session_file(tmp_path).is_file()


def test_prompts_for_the_code_when_no_secret_is_kept(sim: Any, tmp_path: Path) -> None:
    # A real-account setup: client code, PIN and API key known, the TOTP secret is not.
    env = {"OPTBOT_CLIENT_CODE": "DEMO01", "OPTBOT_PIN": sim.pin, "OPTBOT_API_KEY": sim.api_key}
    config = _config(sim, tmp_path, target="angelone")
    result = _login("--config", str(config), env=env, stdin=f"{sim.totp_now()}\n")
    assert result.exit_code == 0, result.output
    assert "TOTP code from your authenticator app" in result.output
    assert _session_file(tmp_path).is_file()
    assert sim.pin not in result.output and sim.api_key not in result.output


def test_malformed_code_is_refused_before_calling_the_broker(sim: Any, tmp_path: Path) -> None:
    before = sim.state_view()["rest_requests"]
    result = _login("--config", str(_config(sim, tmp_path)), "--totp", "12ab56")
    assert result.exit_code == 2
    assert "'12ab56' is not a TOTP code" in result.stderr
    assert "Traceback" not in result.output
    assert sim.state_view()["rest_requests"] == before


def test_wrong_code_is_a_clear_refusal(sim: Any, tmp_path: Path) -> None:
    from broker.sim.credentials import totp_code

    now = datetime.now().timestamp()
    valid = {totp_code(sim.totp_secret, now + step * 30) for step in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in valid)
    result = _login("--config", str(_config(sim, tmp_path)), "--totp", wrong)
    assert result.exit_code == 2
    assert "login refused" in result.stderr and "Invalid totp" in result.stderr
    assert "AB1050" in result.stderr
    assert not _session_file(tmp_path).exists()


def test_pasted_tokens_are_checked_then_stored(sim: Any, tmp_path: Path) -> None:
    tokens = sim.issue_session()
    result = _login(
        "--config",
        str(_config(sim, tmp_path)),
        "--jwt",
        tokens["jwtToken"],
        "--feed-token",
        tokens["feedToken"],
        "--refresh-token",
        tokens["refreshToken"],
    )
    assert result.exit_code == 0, result.output
    stored = json.loads(_session_file(tmp_path).read_text())
    assert stored["jwt"] == tokens["jwtToken"] and stored["feed_token"] == tokens["feedToken"]
    assert tokens["jwtToken"] not in result.output


def test_refused_pasted_tokens_are_not_stored_nor_echoed(sim: Any, tmp_path: Path) -> None:
    fake = "eyJhbGciOiJIUzUxMiJ9.bm90LWEtdG9rZW4.c2ln"
    result = _login(
        "--config", str(_config(sim, tmp_path)), "--jwt", fake, "--feed-token", "feed-xyz-123"
    )
    assert result.exit_code == 2
    assert "pasted tokens were refused" in result.stderr
    assert fake not in result.output and "feed-xyz-123" not in result.output
    assert not _session_file(tmp_path).exists()


def test_jwt_without_feed_token_is_a_usage_error(sim: Any, tmp_path: Path) -> None:
    result = _login("--config", str(_config(sim, tmp_path)), "--jwt", "eyJx")
    assert result.exit_code == 2
    assert "--feed-token" in result.stderr


def test_paste_tokens_prompts_hidden_and_stores(sim: Any, tmp_path: Path) -> None:
    tokens = sim.issue_session()
    typed = f"{tokens['jwtToken']}\n{tokens['feedToken']}\n{tokens['refreshToken']}\n"
    result = _login("--config", str(_config(sim, tmp_path)), "--paste-tokens", stdin=typed)
    assert result.exit_code == 0, result.output
    stored = json.loads(_session_file(tmp_path).read_text())
    assert stored["jwt"] == tokens["jwtToken"] and stored["feed_token"] == tokens["feedToken"]
    # Hidden prompts: the pasted values are never echoed back.
    assert tokens["jwtToken"] not in result.output
    assert tokens["feedToken"] not in result.output


def test_tokens_in_argv_warn_about_the_process_list(sim: Any, tmp_path: Path) -> None:
    tokens = sim.issue_session()
    result = _login(
        "--config",
        str(_config(sim, tmp_path)),
        "--jwt",
        tokens["jwtToken"],
        "--feed-token",
        tokens["feedToken"],
    )
    assert result.exit_code == 0, result.output
    assert "prefer --paste-tokens" in result.stderr
