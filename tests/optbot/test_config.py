"""Configuration: loading, precedence, every class of mistake, secrets and the config command."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from datetime import time
from decimal import Decimal
from pathlib import Path

import keyring
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.backends import fail
from pydantic import ValidationError
from typer.testing import CliRunner

from optbot.cli import app
from optbot.config import (
    ANGELONE_URLS,
    SIM_DEMO_CREDENTIALS,
    ConfigError,
    RiskSettings,
    Settings,
    load_credentials,
    load_settings,
    resolve_data_dir,
)
from optbot.secrets import read_keyring

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "optbot.example.toml"

LIVE_SECRETS = {
    "OPTBOT_CLIENT_CODE": "A1234567",
    "OPTBOT_PIN": "9876",
    "OPTBOT_TOTP_SECRET": "JBSWY3DPEHPK3PXP",
    "OPTBOT_API_KEY": "k3yV4lue",
}


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring that also records which names were asked for."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}
        self.asked: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.append(username)
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


class BrokenKeyring(KeyringBackend):
    """A backend that fails the way a locked or unreachable Secret Service does."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("unreachable")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("unreachable")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Empty working dir, no OPTBOT_* variables from the host, a fresh in-memory keyring."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.upper().startswith("OPTBOT_")]:
        monkeypatch.delenv(name)
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def write(tmp_path: Path, text: str, name: str = "optbot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path | None = None, **kwargs: object) -> tuple[str, ...]:
    env = kwargs.pop("env", {})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


# --------------------------------------------------------------------------- defaults, example


def test_defaults_without_any_file() -> None:
    cfg = load_settings(env={})
    assert cfg.mode == "paper" and cfg.live is False
    assert cfg.broker.target == "sim"
    assert cfg.broker.rest_url == "http://127.0.0.1:8765"
    assert cfg.universe.underlyings == ("NIFTY", "BANKNIFTY", "FINNIFTY")
    assert cfg.charges.brokerage_per_order == Decimal("20")
    assert cfg.risk.daily_loss_limit == Decimal("5000")
    assert (cfg.risk.no_new_entries_after, cfg.risk.flatten_at, cfg.risk.cancel_pending_at) == (
        time(15, 0),
        time(15, 15),
        time(15, 25),
    )
    assert cfg.data.dir == Path("data")


def test_optbot_toml_in_working_dir_is_found(tmp_path: Path) -> None:
    write(tmp_path, "[sim]\nseed = 99\n")
    assert load_settings(env={}).sim.seed == 99


def test_optbot_config_env_var_names_the_file(tmp_path: Path) -> None:
    other = write(tmp_path, "[sim]\nseed = 11\n", "elsewhere.toml")
    write(tmp_path, "[sim]\nseed = 99\n")  # ./optbot.toml loses to $OPTBOT_CONFIG
    assert load_settings(env={"OPTBOT_CONFIG": str(other)}).sim.seed == 11


def test_example_file_validates_and_holds_the_defaults() -> None:
    assert load_settings(EXAMPLE, env={}) == load_settings(env={})


def _documented_keys(text: str) -> set[str]:
    """Dotted keys in the example, counting optional keys shown as `# key = value`."""
    keys: set[str] = set()
    section = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = header.group(1) + "."
        elif assignment := re.match(r"^(?:# )?(\w+) = ", line):
            keys.add(section + assignment.group(1))
    return keys


def _model_keys() -> set[str]:
    keys: set[str] = set()
    for name, field in Settings.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            keys.update(f"{name}.{key}" for key in sub.model_fields)
        else:
            keys.add(name)
    return keys


def test_example_file_documents_every_field_and_nothing_else() -> None:
    documented = _documented_keys(EXAMPLE.read_text(encoding="utf-8"))
    assert documented == _model_keys()


def test_example_file_commented_options_are_valid_when_enabled(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    enabled = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    overrides = tmp_path / "config" / "calendar_overrides.toml"
    overrides.parent.mkdir()
    overrides.write_text("", encoding="utf-8")
    cfg = load_settings(write(tmp_path, enabled, "enabled.toml"), env={})
    assert cfg.risk.max_lots_per_order == 10
    assert cfg.notify.email_to == "trader@example.com"
    assert cfg.calendar.overrides_file == Path("config/calendar_overrides.toml")


def test_every_key_in_the_example_has_a_comment_line_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\w+ = ", line):
            assert lines[index - 1].startswith("#"), f"undocumented: {line}"


# --------------------------------------------------------------------------- mistakes


def test_unknown_top_level_key_names_key_and_allowed_keys(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, 'colour = "blue"\n'))
    assert problem.startswith("colour: 'blue' — unknown key")
    assert "allowed keys in the top level: mode, live, data, broker" in problem


def test_unknown_nested_key_suggests_the_close_match(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "[risk]\nmax_positions = 3\n"))
    assert problem.startswith("risk.max_positions: 3 — unknown key")
    assert "did you mean 'max_open_positions'?" in problem
    assert "allowed keys in [risk]: kill_switch, max_open_positions" in problem


def test_unknown_section(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "[riks]\nkill_switch = true\n"))
    assert problem.startswith("riks: a table — unknown key (did you mean 'risk'?)")


def test_wrong_type(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[risk]\nmax_open_positions = "two"\n'))
    assert problem == (
        "risk.max_open_positions: 'two' — input should be a valid integer, "
        "unable to parse string as an integer"
    )


def test_section_given_as_a_value(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "risk = 5\n"))
    assert problem == "risk: 5 — must be a [risk] table of keys"


def test_out_of_range_number(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "[sim]\nport = 70000\n"))
    assert problem == "sim.port: 70000 — input should be less than or equal to 65535"


def test_bad_enum_value(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[broker]\ntarget = "zerodha"\n'))
    assert problem == "broker.target: 'zerodha' — allowed: sim, angelone"


def test_unknown_mode_argument() -> None:
    assert problems_of(mode="foo") == ("mode: 'foo' — allowed: paper, live, replay",)


def test_bad_timeframe_is_located_by_index(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[strategy]\ntrend_timeframes = ["15m", "2h"]\n'))
    assert problem == "strategy.trend_timeframes.1: '2h' — allowed: 1m, 5m, 15m, 1h"


def test_lower_case_underlying(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[universe]\nunderlyings = ["NIFTY", "nifty"]\n'))
    assert problem.startswith("universe.underlyings.1: 'nifty' — must be an upper-case")


def test_empty_universe(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "[universe]\nunderlyings = []\n"))
    assert problem.startswith("universe.underlyings: [] — ")
    assert "should have at least 1 item" in problem


def test_money_is_exact_and_limited_to_paise(tmp_path: Path) -> None:
    cfg = load_settings(write(tmp_path, '[risk]\ndaily_loss_limit = "1234.50"\n'), env={})
    assert cfg.risk.daily_loss_limit == Decimal("1234.50")
    (problem,) = problems_of(write(tmp_path, '[charges]\nbrokerage_per_order = "20.005"\n'))
    assert problem.startswith("charges.brokerage_per_order: '20.005' — ")
    assert "2 decimal places" in problem


def test_negative_brokerage(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[charges]\nbrokerage_per_order = "-1"\n'))
    assert problem.startswith("charges.brokerage_per_order: '-1' — input should be greater")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[risk]\nvix_pause_above = 35.0\n",
            "risk.vix_halt_above: 30.0 — must be ≥ risk.vix_pause_above (35.0)",
        ),
        (
            "[categorise]\nadx_no_trend = 30\n",
            "categorise.adx_no_trend: 30 — must be ≤ categorise.adx_trend (25.0)",
        ),
        (
            "[risk]\nflatten_at = 14:30:00\n",
            "risk.flatten_at: 14:30:00 — must be ≥ risk.no_new_entries_after (15:00:00)",
        ),
        (
            "[risk]\ncancel_pending_at = 15:10:00\n",
            "risk.cancel_pending_at: 15:10:00 — must be ≥ risk.flatten_at (15:15:00)",
        ),
        (
            "[risk]\ncancel_pending_at = 15:45:00\n",
            "risk.cancel_pending_at: 15:45:00 — must be inside the NSE session 09:15–15:30 IST",
        ),
        (
            "[risk]\nno_new_entries_after = 09:00:00\n",
            "risk.no_new_entries_after: 09:00:00 — must be inside the NSE session 09:15–15:30 IST",
        ),
        ("[strategy]\nema_fast = 30\n", "strategy.ema_slow: 21 — must be > strategy.ema_fast (30)"),
        (
            '[strategy]\nentry_timeframe = "15m"\n',
            "strategy.trend_timeframes: ['15m', '1h'] — each must be longer than "
            "strategy.entry_timeframe ('15m'); not 15m",
        ),
    ],
)
def test_inconsistent_pairs(tmp_path: Path, toml: str, expected: str) -> None:
    assert problems_of(write(tmp_path, toml)) == (expected,)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    toml = '[sim]\nport = 0\n[broker]\ntarget = "x"\n[risk]\nstale_order_s = 0\nfoo = 1\n'
    problems = problems_of(write(tmp_path, toml))
    keys = sorted(p.split(":")[0] for p in problems)
    assert keys == ["broker.target", "risk.foo", "risk.stale_order_s", "sim.port"]


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "[risk\nkill_switch = true\n"))
    assert problem.startswith("config: ") and "not valid TOML" in problem and "line 1" in problem


def test_missing_config_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.toml") == (
        f"config: {str(tmp_path / 'nope.toml')!r} — file not found",
    )
    missing = str(tmp_path / "gone.toml")
    assert problems_of(env={"OPTBOT_CONFIG": missing}) == (
        f"OPTBOT_CONFIG: {missing!r} — file not found",
    )


def test_calendar_overrides_file_must_exist(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[calendar]\noverrides_file = "none.toml"\n'))
    assert problem.startswith("calendar.overrides_file: 'none.toml' — ")


def test_settings_are_frozen() -> None:
    cfg = load_settings(env={})
    with pytest.raises(ValidationError):
        cfg.risk.kill_switch = True  # type: ignore[misc]


# --------------------------------------------------------------------------- secrets in the file


@pytest.mark.parametrize(
    ("toml", "key", "advice"),
    [
        ('api_key = "{v}"\n', "api_key", "set OPTBOT_API_KEY or run `keyring set optbot api_key`"),
        ('[broker]\npin = "{v}"\n', "broker.pin", "set OPTBOT_PIN or run `keyring set optbot pin`"),
        (
            '[broker]\npassword = "{v}"\n',
            "broker.password",
            "set OPTBOT_PIN or run `keyring set optbot pin`",
        ),
        ('[broker]\ntotp_secret = "{v}"\n', "broker.totp_secret", "set OPTBOT_TOTP_SECRET"),
        ('client_code = "{v}"\n', "client_code", "set OPTBOT_CLIENT_CODE"),
        ('[risk]\njwt = "{v}"\n', "risk.jwt", "session tokens are created at login"),
        ('[notify]\ntoken = "{v}"\n', "notify.token", "session tokens"),
        ('refresh_token = "{v}"\n', "refresh_token", "session tokens"),
        ('[broker.session]\nfeed_token = "{v}"\n', "broker.session.feed_token", "never configured"),
        ('[[extra]]\nname = "x"\npin = "{v}"\n', "extra.0.pin", "set OPTBOT_PIN"),
    ],
)
def test_secret_in_file_is_refused_without_echo(
    tmp_path: Path, toml: str, key: str, advice: str
) -> None:
    value = "S3cr3tValue42"
    path = write(tmp_path, toml.format(v=value))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    error = caught.value
    text = "\n".join([str(error), repr(error), *error.problems])
    assert value not in text
    assert f"{key}: <hidden> — secrets are not read from the config file" in text
    assert advice in text
    # Reported once, although both the file scan and model validation trip over it.
    assert sum(p.startswith(f"{key}:") for p in error.problems) == 1
    # Nothing chained either: a traceback would otherwise print pydantic's raw input.
    assert error.__cause__ is None and error.__suppress_context__


def test_secret_in_a_nested_env_var_is_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"OPTBOT_BROKER__API_KEY": "S3cr3tValue42"})
    assert "S3cr3tValue42" not in str(caught.value)
    assert caught.value.problems == (
        "broker.api_key (from OPTBOT_BROKER__API_KEY): <hidden> — secrets are not read from "
        "OPTBOT_BROKER__API_KEY; unset OPTBOT_BROKER__API_KEY and set OPTBOT_API_KEY or run "
        "`keyring set optbot api_key`",
    )


# --------------------------------------------------------------------------- precedence


def test_env_beats_file_beats_default(tmp_path: Path) -> None:
    assert load_settings(env={}).risk.daily_loss_limit == Decimal("5000")
    path = write(tmp_path, '[risk]\ndaily_loss_limit = "3000"\n')
    assert load_settings(path, env={}).risk.daily_loss_limit == Decimal("3000")
    env = {"OPTBOT_RISK__DAILY_LOSS_LIMIT": "4000"}
    assert load_settings(path, env=env).risk.daily_loss_limit == Decimal("4000")


def test_env_override_of_a_path_and_of_the_mode(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "paper"\n[data]\ndir = "here"\n')
    cfg = load_settings(path, env={"OPTBOT_DATA__DIR": "/tmp/x", "OPTBOT_MODE": "replay"})
    assert cfg.data.dir == Path("/tmp/x")
    assert cfg.mode == "replay"


def test_mode_argument_beats_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "replay"\n')
    assert load_settings(path, mode="paper", env={"OPTBOT_MODE": "replay"}).mode == "paper"


def test_env_error_names_the_variable() -> None:
    (problem,) = problems_of(env={"OPTBOT_SIM__PORT": "eighty"})
    assert problem.startswith("sim.port (from OPTBOT_SIM__PORT): 'eighty' — ")


def test_env_lists_as_commas_or_json() -> None:
    env = {"OPTBOT_UNIVERSE__UNDERLYINGS": "NIFTY, SBIN"}
    assert load_settings(env=env).universe.underlyings == ("NIFTY", "SBIN")
    env = {"OPTBOT_STRATEGY__TREND_TIMEFRAMES": '["1h"]'}
    assert load_settings(env=env).strategy.trend_timeframes == ("1h",)


def test_live_switch_cannot_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[broker]\ntarget = "angelone"\n')
    problems = problems_of(path, mode="live", env={"OPTBOT_LIVE": "true"})
    assert problems[0].startswith("live (from OPTBOT_LIVE): 'true' — live trading is switched")


def test_live_switch_must_be_a_real_boolean(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, 'live = "yes"\n'))
    assert problem == "live: 'yes' — input should be a valid boolean"


# --------------------------------------------------------------------------- broker URLs


def test_angelone_target_switches_default_urls_to_real_hosts(tmp_path: Path) -> None:
    cfg = load_settings(write(tmp_path, '[broker]\ntarget = "angelone"\n'), env={})
    assert cfg.broker.rest_url == "https://apiconnect.angelone.in"
    assert cfg.broker.ws_url == "wss://smartapisocket.angelone.in/smart-stream"
    assert cfg.broker.order_ws_url == "wss://tns.angelone.in/smart-order-update"
    assert cfg.broker.master_url == ANGELONE_URLS["master_url"]
    assert cfg.broker.master_url.startswith("https://margincalculator.angelone.in/")


def test_explicit_url_is_kept_for_angelone(tmp_path: Path) -> None:
    toml = '[broker]\ntarget = "angelone"\nrest_url = "https://apiconnect.angelbroking.com"\n'
    cfg = load_settings(write(tmp_path, toml), env={})
    assert cfg.broker.rest_url == "https://apiconnect.angelbroking.com"
    assert cfg.broker.ws_url == "wss://smartapisocket.angelone.in/smart-stream"


def test_sim_urls_follow_sim_port() -> None:
    cfg = load_settings(env={"OPTBOT_SIM__PORT": "9100"})
    assert cfg.broker.rest_url == "http://127.0.0.1:9100"
    assert cfg.broker.ws_url == "ws://127.0.0.1:9100/smart-stream"


def test_ws_url_needs_ws_scheme(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[broker]\nws_url = "http://x/smart-stream"\n'))
    assert (
        problem
        == "broker.ws_url: 'http://x/smart-stream' — must be a URL starting with ws:// or wss://"
    )


# --------------------------------------------------------------------------- modes, credentials


def test_live_needs_the_file_switch(tmp_path: Path) -> None:
    path = write(tmp_path, '[broker]\ntarget = "angelone"\n')
    assert problems_of(path, mode="live") == (
        f"live: false — mode 'live' needs `live = true` in {path}",
    )


def test_live_needs_angelone(tmp_path: Path) -> None:
    path = write(tmp_path, "live = true\n")
    assert problems_of(path, mode="live") == (
        "broker.target: 'sim' — mode 'live' trades only through target = \"angelone\"",
    )


def test_live_without_secrets_lists_all_four(tmp_path: Path) -> None:
    path = write(tmp_path, 'live = true\n[broker]\ntarget = "angelone"\n')
    cfg = load_settings(path, mode="live", env={})
    with pytest.raises(ConfigError) as caught:
        load_credentials(cfg, env={"OPTBOT_PIN": "9876"})
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["client_code", "totp_secret", "api_key"]
    assert problems[0] == (
        "client_code: (not set) — mode 'live' with target 'angelone' needs it: set "
        "OPTBOT_CLIENT_CODE or run `keyring set optbot client_code`"
    )


def test_live_with_env_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, 'live = true\n[broker]\ntarget = "angelone"\n')
    cfg = load_settings(path, mode="live", env={})
    creds = load_credentials(cfg, env=LIVE_SECRETS)
    assert creds is not None
    assert creds.client_code.get_secret_value() == "A1234567"
    assert creds.api_key.get_secret_value() == "k3yV4lue"
    for value in LIVE_SECRETS.values():
        assert value not in repr(creds) and value not in str(creds)


def test_paper_against_angelone_needs_secrets(tmp_path: Path) -> None:
    cfg = load_settings(write(tmp_path, '[broker]\ntarget = "angelone"\n'), env={})
    with pytest.raises(ConfigError) as caught:
        load_credentials(cfg, env={})
    assert len(caught.value.problems) == 4


def test_paper_against_the_simulator_uses_demo_credentials() -> None:
    creds = load_credentials(load_settings(env={}), env={})
    assert creds is SIM_DEMO_CREDENTIALS
    assert creds.client_code.get_secret_value() == "DEMO01"
    assert creds.pin.get_secret_value() == "1234"
    assert creds.totp_secret.get_secret_value() == "OPTBOTSIMDEMOKEYTOTPSECRET234567"
    assert creds.api_key.get_secret_value() == "optbot-sim-key"


def test_replay_loads_no_credentials(tmp_path: Path, isolated: MemoryKeyring) -> None:
    path = write(tmp_path, '[broker]\ntarget = "angelone"\n')
    cfg = load_settings(path, mode="replay", env={})
    assert load_credentials(cfg, env={}) is None
    assert isolated.asked == []  # the keyring was not even asked


def test_keyring_supplies_credentials(isolated: MemoryKeyring) -> None:
    for name, value in [("client_code", "K1"), ("pin", "1111"), ("api_key", "kk")]:
        keyring.set_password("optbot", name, value)
    keyring.set_password("optbot", "totp_secret", "jbsw y3dp ehpk 3pxp")
    cfg = load_settings(env={"OPTBOT_BROKER__TARGET": "angelone"})
    creds = load_credentials(cfg, env={"OPTBOT_PIN": "2222"})
    assert creds is not None
    assert creds.client_code.get_secret_value() == "K1"
    assert creds.pin.get_secret_value() == "2222"  # the environment beats the keyring
    assert creds.totp_secret.get_secret_value() == "JBSWY3DPEHPK3PXP"  # spaces from enrolment
    assert sorted(isolated.asked) == ["api_key", "client_code", "totp_secret"]


def test_invalid_totp_secret_is_not_echoed() -> None:
    cfg = load_settings(env={"OPTBOT_BROKER__TARGET": "angelone"})
    env = {**LIVE_SECRETS, "OPTBOT_TOTP_SECRET": "not!base32"}
    with pytest.raises(ConfigError) as caught:
        load_credentials(cfg, env=env)
    assert caught.value.problems == (
        "totp_secret: <hidden, from OPTBOT_TOTP_SECRET> — must be the base32 TOTP secret "
        "shown when TOTP was enabled",
    )
    assert "not!base32" not in str(caught.value)


@pytest.mark.parametrize(
    ("backend", "reason"), [(fail.Keyring, "NoKeyringError"), (BrokenKeyring, "RuntimeError")]
)
def test_unusable_keyring_counts_as_not_found(backend: type[KeyringBackend], reason: str) -> None:
    keyring.set_keyring(backend())
    assert read_keyring("pin") == (None, reason)
    cfg = load_settings(env={"OPTBOT_BROKER__TARGET": "angelone"})
    with pytest.raises(ConfigError) as caught:
        load_credentials(cfg, env={})
    assert all(p.endswith(f"(keyring unavailable: {reason})") for p in caught.value.problems)
    # Secrets from the environment still work without a keyring.
    assert load_credentials(cfg, env=LIVE_SECRETS) is not None


# --------------------------------------------------------------------------- data dir


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[data]\ndir = "from-file"\n', "c.toml")
    assert resolve_data_dir(Path("cli"), path) == Path("cli")
    assert resolve_data_dir(None, path) == Path("from-file")
    assert resolve_data_dir(None) == Path("data")
    monkeypatch.setenv("OPTBOT_DATA__DIR", "from-env")
    assert resolve_data_dir(None, path) == Path("from-env")


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    pause=st.floats(min_value=0.5, max_value=200, allow_nan=False),
    halt=st.floats(min_value=0.5, max_value=200, allow_nan=False),
)
def test_vix_thresholds_accepted_exactly_when_ordered(pause: float, halt: float) -> None:
    try:
        RiskSettings(vix_pause_above=pause, vix_halt_above=halt)
    except ValidationError:
        assert pause > halt
    else:
        assert pause <= halt


_session_minutes = st.integers(min_value=0, max_value=6 * 60 + 15)  # 09:15 + 0..375 min


def _clock(minutes_after_open: int) -> time:
    total = 9 * 60 + 15 + minutes_after_open
    return time(total // 60, total % 60)


@settings(max_examples=60, deadline=None)
@given(a=_session_minutes, b=_session_minutes, c=_session_minutes)
def test_risk_clock_times_accepted_exactly_when_ordered(a: int, b: int, c: int) -> None:
    times = {
        "no_new_entries_after": _clock(a),
        "flatten_at": _clock(b),
        "cancel_pending_at": _clock(c),
    }
    try:
        RiskSettings(**times)
    except ValidationError:
        assert not a <= b <= c
    else:
        assert a <= b <= c


# --------------------------------------------------------------------------- command line

runner = CliRunner()


def test_config_check_ok() -> None:
    result = runner.invoke(app, ["config", "check", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "config OK" in result.stdout and "mode paper, broker sim" in result.stdout


def test_config_check_reports_problems_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[risk]\nmax_positions = 3\n[broker]\npin = "S3cr3tValue42"\n')
    result = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "risk.max_positions: 3 — unknown key" in result.stderr
    assert "broker.pin: <hidden>" in result.stderr
    assert "S3cr3tValue42" not in result.output
    assert "Traceback" not in result.output


def test_config_check_unknown_mode() -> None:
    result = runner.invoke(app, ["config", "check", "--mode", "foo"])
    assert result.exit_code == 2
    assert "mode: 'foo' — allowed: paper, live, replay" in result.stderr


def test_config_check_live_needs_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, 'live = true\n[broker]\ntarget = "angelone"\n')
    args = ["config", "check", "--config", str(path), "--mode", "live"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "OPTBOT_TOTP_SECRET" in result.stderr
    result = runner.invoke(app, args, env=LIVE_SECRETS)
    assert result.exit_code == 0, result.output
    assert "mode live, broker angelone (https://apiconnect.angelone.in)" in result.stdout


def test_config_show_masks_secrets_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, '[broker]\ntarget = "angelone"\n[risk]\ndaily_loss_limit = "2500.50"\n')
    result = runner.invoke(app, ["config", "show", "--config", str(path)], env=LIVE_SECRETS)
    assert result.exit_code == 0, result.output
    for value in LIVE_SECRETS.values():
        assert value not in result.output
    assert "# pin: OPTBOT_PIN" in result.stdout
    assert 'daily_loss_limit = "2500.50"' in result.stdout
    shown = write(tmp_path, result.stdout, "shown.toml")
    assert tomllib.loads(result.stdout)["broker"]["target"] == "angelone"
    assert load_settings(shown, env={}) == load_settings(path, env={})


def test_config_show_bad_file_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[sim]\nport = -1\n")
    result = runner.invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2
    assert "sim.port: -1 — input should be greater than or equal to 1" in result.stderr
