"""Typed, frozen configuration: one TOML file, ``OPTBOT_*`` environment overrides, secrets apart.

Precedence, highest first: explicit arguments (``--mode``), environment variables
(``OPTBOT_RISK__DAILY_LOSS_LIMIT=5000``: prefix ``OPTBOT_``, ``__`` between section and key),
the TOML file, built-in defaults. The file is ``--config PATH``, else ``$OPTBOT_CONFIG``, else
``./optbot.toml`` when present, else none at all (the demo needs no file).

Every mistake is reported at start as one :class:`ConfigError` listing each problem as
``<key>: <value> — <what is allowed>``. Secrets never come from the file: a secret-looking key
there is refused and its value never echoed. Credentials are loaded per mode by
:func:`load_credentials` — not at all in replay, the simulator's public demo values against
the simulator, the environment or OS keyring against Angel One.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from optbot.secrets import (
    CREDENTIAL_NAMES,
    KEYRING_SERVICE,
    credential_env_var,
    how_to_move_secret,
    is_secret_key,
    lookup_credential,
)

ENV_PREFIX = "OPTBOT_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "OPTBOT_CONFIG"
DEFAULT_CONFIG_FILE = Path("optbot.toml")

Mode = Literal["paper", "live", "replay"]
BrokerTarget = Literal["sim", "angelone"]
Timeframe = Literal["1m", "5m", "15m", "1h"]

MODES: tuple[str, ...] = ("paper", "live", "replay")
TIMEFRAME_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}

# NSE equity-derivatives continuous session (IST); every risk clock time must fall inside it.
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)

SIM_DEFAULT_HOST = "127.0.0.1"
SIM_DEFAULT_PORT = 8765


def _sim_urls(host: str, port: int) -> dict[str, str]:
    """The simulator's endpoints, which mirror the SmartAPI paths on one local port."""
    return {
        "rest_url": f"http://{host}:{port}",
        "ws_url": f"ws://{host}:{port}/smart-stream",
        "order_ws_url": f"ws://{host}:{port}/smart-order-update",
        "master_url": f"http://{host}:{port}/OpenAPI_File/files/OpenAPIScripMaster.json",
    }


SIM_DEFAULT_URLS: dict[str, str] = _sim_urls(SIM_DEFAULT_HOST, SIM_DEFAULT_PORT)

# Angel One production hosts (shared/smartapi/SPEC.md §1.1).
ANGELONE_URLS: dict[str, str] = {
    "rest_url": "https://apiconnect.angelone.in",
    "ws_url": "wss://smartapisocket.angelone.in/smart-stream",
    "order_ws_url": "wss://tns.angelone.in/smart-order-update",
    "master_url": (
        "https://margincalculator.angelone.in/OpenAPI_File/files/OpenAPIScripMaster.json"
    ),
}


# --------------------------------------------------------------------------- field types


def _check_underlying(name: str) -> str:
    if not re.fullmatch(r"[A-Z][A-Z0-9&_-]*", name):
        raise ValueError("must be an upper-case NSE symbol such as NIFTY or BANKNIFTY")
    return name


def _check_session_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("must be a local IST clock time without a UTC offset, e.g. 15:00:00")
    if not SESSION_OPEN <= value <= SESSION_CLOSE:
        raise ValueError(
            f"must be inside the NSE session {SESSION_OPEN:%H:%M}–{SESSION_CLOSE:%H:%M} IST"
        )
    return value


def _check_http_url(url: str) -> str:
    return _check_url(url, ("http", "https"))


def _check_ws_url(url: str) -> str:
    return _check_url(url, ("ws", "wss"))


def _check_url(url: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return url


def _check_ip(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address, e.g. 192.168.1.10") from None
    return text


def _check_mac(text: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", text):
        raise ValueError("must be a MAC address like aa:bb:cc:dd:ee:ff")
    return text


def _check_email(text: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ValueError("must be an e-mail address like trader@example.com")
    return text


def _split_list(value: Any) -> Any:
    """Accept a list from the environment as JSON (``["NIFTY"]``) or as ``NIFTY,BANKNIFTY``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("is not a valid JSON list") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


Underlying = Annotated[str, AfterValidator(_check_underlying)]
SessionTime = Annotated[time, AfterValidator(_check_session_time)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
WsUrl = Annotated[str, AfterValidator(_check_ws_url)]
Money = Annotated[Decimal, Field(ge=0, decimal_places=2)]
Percent = Annotated[Decimal, Field(gt=0, lt=100)]


class _Section(BaseModel):
    # validate_default: a cross-field check must also fire when only one side is set.
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True
    )


# --------------------------------------------------------------------------- sections


class DataSettings(_Section):
    """Where the warehouse lives."""

    dir: Path = Path("data")

    @field_validator("dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


class BrokerSettings(_Section):
    """Which SmartAPI endpoint to talk to and how patiently."""

    target: BrokerTarget = "sim"
    rest_url: HttpUrl = SIM_DEFAULT_URLS["rest_url"]
    ws_url: WsUrl = SIM_DEFAULT_URLS["ws_url"]
    order_ws_url: WsUrl = SIM_DEFAULT_URLS["order_ws_url"]
    master_url: HttpUrl = SIM_DEFAULT_URLS["master_url"]
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_retries: int = Field(default=5, ge=0, le=20)
    client_local_ip: Annotated[str, AfterValidator(_check_ip)] = "127.0.0.1"
    client_public_ip: Annotated[str, AfterValidator(_check_ip)] = "127.0.0.1"
    mac_address: Annotated[str, AfterValidator(_check_mac)] = "00:00:00:00:00:00"


class SimSettings(_Section):
    """The local SmartAPI-compatible exchange simulator."""

    host: str = Field(default=SIM_DEFAULT_HOST, min_length=1)
    port: int = Field(default=SIM_DEFAULT_PORT, ge=1, le=65535)
    seed: int = 7
    speed: float = Field(default=60.0, gt=0, le=100_000)


class UniverseSettings(_Section):
    """What is traded."""

    underlyings: Annotated[tuple[Underlying, ...], NoDecode] = Field(
        default=("NIFTY", "BANKNIFTY", "FINNIFTY"), min_length=1
    )
    strikes_around_atm: int = Field(default=2, ge=0, le=20)

    @field_validator("underlyings", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("underlyings")
    @classmethod
    def _no_duplicates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        doubled = sorted({name for name in value if value.count(name) > 1})
        if doubled:
            raise ValueError(f"lists {', '.join(doubled)} more than once")
        return value


class CalendarSettings(_Section):
    """Local additions to the NSE trading calendar."""

    overrides_file: FilePath | None = None


class ChargesSettings(_Section):
    """Broker-specific charges; statutory ones come from the dated schedule in ``market``."""

    brokerage_per_order: Money = Decimal("20")


class HistorySettings(_Section):
    """How far back the backfill reaches."""

    daily_years: int = Field(default=2, ge=1, le=25)
    intraday_months: int = Field(default=3, ge=1, le=36)


class RetentionSettings(_Section):
    """How long raw data is kept before the maintenance flow drops it."""

    ticks_days: int = Field(default=2, ge=1, le=3650)
    intraday_bars_months: int = Field(default=3, ge=1, le=600)


class CategoriseSettings(_Section):
    """Daily-ADX categorisation of each underlying into buy CE / buy PE / no trade."""

    adx_trend: float = Field(default=25.0, gt=0, le=100)
    adx_no_trend: float = Field(default=20.0, gt=0, le=100)
    di_band: float = Field(default=2.0, ge=0, le=100)
    volume_lookback: int = Field(default=20, ge=1, le=500)

    @field_validator("adx_no_trend")
    @classmethod
    def _below_trend(cls, value: float, info: ValidationInfo) -> float:
        trend = info.data.get("adx_trend")
        if trend is not None and value > trend:
            raise ValueError(f"must be ≤ categorise.adx_trend ({trend})")
        return value


class StrategySettings(_Section):
    """The multi-timeframe ADX/RSI/EMA strategy."""

    name: str = Field(default="mtf_adx", pattern=r"^[a-z][a-z0-9_]*$")
    rsi_period: int = Field(default=14, ge=2, le=200)
    adx_period: int = Field(default=14, ge=2, le=200)
    ema_fast: int = Field(default=9, ge=1, le=500)
    ema_slow: int = Field(default=21, ge=2, le=500)
    rsi_ce_min: float = Field(default=55.0, ge=0, le=100)
    rsi_pe_max: float = Field(default=45.0, ge=0, le=100)
    entry_timeframe: Timeframe = "5m"
    trend_timeframes: Annotated[tuple[Timeframe, ...], NoDecode] = Field(
        default=("15m", "1h"), min_length=1
    )

    @field_validator("trend_timeframes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("ema_slow")
    @classmethod
    def _slower_than_fast(cls, value: int, info: ValidationInfo) -> int:
        fast = info.data.get("ema_fast")
        if fast is not None and value <= fast:
            raise ValueError(f"must be > strategy.ema_fast ({fast})")
        return value

    @field_validator("rsi_pe_max")
    @classmethod
    def _not_above_ce_min(cls, value: float, info: ValidationInfo) -> float:
        # An RSI reading that both confirms CE and PE would make the signal ambiguous.
        ce_min = info.data.get("rsi_ce_min")
        if ce_min is not None and value > ce_min:
            raise ValueError(f"must be ≤ strategy.rsi_ce_min ({ce_min})")
        return value

    @field_validator("trend_timeframes")
    @classmethod
    def _longer_than_entry(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a timeframe more than once")
        entry = info.data.get("entry_timeframe")
        if entry is not None:
            short = [tf for tf in value if TIMEFRAME_MINUTES[tf] <= TIMEFRAME_MINUTES[entry]]
            if short:
                raise ValueError(
                    f"each must be longer than strategy.entry_timeframe ({entry!r}); "
                    f"not {', '.join(short)}"
                )
        return value


class RiskSettings(_Section):
    """Limits every intent passes before it may become an order."""

    kill_switch: bool = False
    max_open_positions: int = Field(default=2, ge=1, le=100)
    lots_per_trade: int = Field(default=1, ge=1, le=1000)
    max_lots_per_order: int | None = Field(default=None, ge=1, le=10_000)
    daily_loss_limit: Money = Field(default=Decimal("5000"), gt=0)
    max_consecutive_losses: int = Field(default=3, ge=1, le=100)
    vix_pause_above: float = Field(default=25.0, gt=0, le=200)
    vix_halt_above: float = Field(default=30.0, gt=0, le=200)
    stop_loss_pct: Percent = Decimal("20")
    trailing_stop_pct: Percent = Decimal("15")
    stale_order_s: int = Field(default=45, ge=1, le=3600)
    slippage_fence_pct: Percent = Decimal("2.0")
    no_new_entries_after: SessionTime = time(15, 0)
    flatten_at: SessionTime = time(15, 15)
    cancel_pending_at: SessionTime = time(15, 25)

    @field_validator("vix_halt_above")
    @classmethod
    def _halt_not_below_pause(cls, value: float, info: ValidationInfo) -> float:
        pause = info.data.get("vix_pause_above")
        if pause is not None and value < pause:
            raise ValueError(f"must be ≥ risk.vix_pause_above ({pause})")
        return value

    @field_validator("flatten_at")
    @classmethod
    def _flatten_after_last_entry(cls, value: time, info: ValidationInfo) -> time:
        last_entry = info.data.get("no_new_entries_after")
        if last_entry is not None and value < last_entry:
            raise ValueError(f"must be ≥ risk.no_new_entries_after ({last_entry.isoformat()})")
        return value

    @field_validator("cancel_pending_at")
    @classmethod
    def _cancel_after_flatten(cls, value: time, info: ValidationInfo) -> time:
        flatten = info.data.get("flatten_at")
        if flatten is not None and value < flatten:
            raise ValueError(f"must be ≥ risk.flatten_at ({flatten.isoformat()})")
        return value


class NotifySettings(_Section):
    """Where alerts go; both are optional."""

    webhook_url: HttpUrl | None = None
    email_to: Annotated[str, AfterValidator(_check_email)] | None = None


class PrefectSettings(_Section):
    """Prefect API; unset means Prefect's own default (its local temporary server)."""

    api_url: HttpUrl | None = None


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class _SourcePlan:
    toml_file: Path | None
    environ: Mapping[str, str]


# load_settings decides the file and the environment per call; pydantic-settings asks for
# its sources through a classmethod, so the plan travels in a context variable.
_SOURCE_PLAN: ContextVar[_SourcePlan | None] = ContextVar("optbot_config_sources", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The ``OPTBOT_*`` environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # must exist before the base __init__ loads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {key.lower(): value for key, value in self._environ.items()}


class Settings(BaseSettings):
    """The whole validated configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        allow_inf_nan=False,
    )

    mode: Mode = "paper"
    # Strict: only a real TOML boolean arms live trading, never "yes" or 1.
    live: bool = Field(default=False, strict=True)
    data: DataSettings = DataSettings()
    broker: BrokerSettings = BrokerSettings()
    sim: SimSettings = SimSettings()
    universe: UniverseSettings = UniverseSettings()
    calendar: CalendarSettings = CalendarSettings()
    charges: ChargesSettings = ChargesSettings()
    history: HistorySettings = HistorySettings()
    retention: RetentionSettings = RetentionSettings()
    categorise: CategoriseSettings = CategoriseSettings()
    strategy: StrategySettings = StrategySettings()
    risk: RiskSettings = RiskSettings()
    notify: NotifySettings = NotifySettings()
    prefect: PrefectSettings = PrefectSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        plan = _SOURCE_PLAN.get() or _SourcePlan(None, os.environ)
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _MappingEnvSource(settings_cls, plan.environ),
        ]
        if plan.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=plan.toml_file))
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _broker_url_defaults(cls, data: Any) -> Any:
        """Point URLs left at the simulator default at the chosen target.

        Against Angel One they become the production hosts; against the simulator they follow
        ``[sim] host`` and ``port``. A URL set to anything else is kept as written.
        """
        if not isinstance(data, dict):
            return data
        broker = data.get("broker", {})
        sim = data.get("sim", {})
        if not isinstance(broker, dict) or not isinstance(sim, dict):
            return data  # field validation reports the wrong type
        target = broker.get("target", "sim")
        if target == "angelone":
            wanted = ANGELONE_URLS
        elif target == "sim":
            wanted = _sim_urls(*_sim_client_address(sim))
        else:
            return data
        broker = dict(broker)
        for key, sim_default in SIM_DEFAULT_URLS.items():
            if broker.get(key, sim_default) == sim_default:
                broker[key] = wanted[key]
        return {**data, "broker": broker}


def _sim_client_address(sim: Mapping[str, Any]) -> tuple[str, int]:
    """Where a client reaches the simulator, given its (possibly raw, unvalidated) section."""
    host = sim.get("host", SIM_DEFAULT_HOST)
    if not isinstance(host, str) or not host.strip():
        host = SIM_DEFAULT_HOST
    elif host in ("0.0.0.0", "::"):  # a bind-all listener is reached over loopback
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    try:
        port = int(sim.get("port", SIM_DEFAULT_PORT))
    except (TypeError, ValueError):
        port = SIM_DEFAULT_PORT
    return host, port


# --------------------------------------------------------------------------- credentials


class Credentials(BaseModel):
    """SmartAPI login credentials; every field prints as stars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_code: SecretStr
    pin: SecretStr
    totp_secret: SecretStr
    api_key: SecretStr


# The simulator's published demo login. Public values, not secrets: they only open the local
# simulator, which keeps its own copy.
SIM_DEMO_CREDENTIALS = Credentials(
    client_code=SecretStr("DEMO01"),
    pin=SecretStr("1234"),
    totp_secret=SecretStr("OPTBOTSIMDEMOKEYTOTPSECRET234567"),
    api_key=SecretStr("optbot-sim-key"),
)


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A configuration that cannot be used; lists every problem found, one per line."""

    def __init__(self, problems: Sequence[str], source: str = "configuration") -> None:
        unique = tuple(dict.fromkeys(problems))
        self.problems: tuple[str, ...] = unique
        self.source = source
        lines = "\n".join(f"  {problem}" for problem in unique)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


def _problem(key: str, value: str, allowed: str) -> str:
    return f"{key}: {value} — {allowed}"


def _show(value: Any) -> str:
    """A value as a user would recognise it from TOML, cut short if long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, time):
        text = value.isoformat()
    elif isinstance(value, Path):
        text = repr(str(value))
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(item) for item in value) + "]"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _section_model(path: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _unknown_key_advice(loc: tuple[Any, ...]) -> str:
    model = _section_model(loc[:-1])
    if model is None:
        return "unknown key"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f"[{'.'.join(map(str, loc[:-1]))}]" if len(loc) > 1 else "the top level"
    return f"unknown key{hint}; allowed keys in {where}: {', '.join(allowed)}"


def _secret_problem(loc: Sequence[Any], env_name: str | None = None) -> str:
    key = ".".join(map(str, loc))
    if env_name is None:
        return _problem(key, "<hidden>", how_to_move_secret(str(loc[-1])))
    return _problem(
        f"{key} (from {env_name})", "<hidden>", how_to_move_secret(str(loc[-1]), env_name)
    )


def _describe_validation_error(exc: ValidationError, environ: Mapping[str, str]) -> Iterator[str]:
    env_names = {name.upper() for name in environ}
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(map(str, loc)) or "configuration"
        env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(map(str, loc)).upper()
        from_env = env_name in env_names
        if from_env:
            key += f" (from {env_name})"
        kind = error["type"]
        secret = [part for part in loc if isinstance(part, str) and is_secret_key(part)]
        if secret:
            if kind == "extra_forbidden":
                secret_loc = loc[: loc.index(secret[0]) + 1]
                yield _secret_problem(secret_loc, env_name if from_env else None)
            else:
                yield _problem(key, "<hidden>", "secrets do not belong in the configuration")
            continue
        value = _show(error.get("input"))
        if kind == "extra_forbidden":
            yield _problem(key, value, _unknown_key_advice(loc))
        elif kind == "missing":
            yield _problem(key, "(missing)", "required")
        elif kind == "literal_error":
            expected = str(error.get("ctx", {}).get("expected", ""))
            choices = expected.replace(" or ", ", ").replace("'", "")
            yield _problem(key, value, f"allowed: {choices}")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            yield _problem(key, value, f"must be a [{key}] table of keys")
        else:
            message = error["msg"].removeprefix("Value error, ")
            yield _problem(key, value, message[:1].lower() + message[1:])


# --------------------------------------------------------------------------- loading


def find_config_file(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file in use: the argument, else ``$OPTBOT_CONFIG``, else ``./optbot.toml``."""
    environ = os.environ if env is None else env
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError(
                [_problem("config", _show(config_path), "file not found")], str(config_path)
            )
        return config_path
    from_env = environ.get(CONFIG_ENV_VAR, "").strip()
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(
                [_problem(CONFIG_ENV_VAR, _show(from_env), "file not found")], from_env
            )
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # tomllib names the line and column, never the offending text.
        raise ConfigError(
            [_problem("config", _show(str(path)), f"not valid TOML: {exc}")], str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(
            [_problem("config", _show(str(path)), f"cannot be read: {exc.strerror}")], str(path)
        ) from None


def _secret_keys(table: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in parsed TOML whose key names a secret, at any depth."""
    if isinstance(table, dict):
        for key, value in table.items():
            here = (*loc, key)
            if is_secret_key(str(key)):
                yield here
            else:
                yield from _secret_keys(value, here)
    elif isinstance(table, list):
        for index, item in enumerate(table):
            yield from _secret_keys(item, (*loc, index))


def load_settings(
    config_path: Path | None = None,
    *,
    mode: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration; ``mode`` (from the command line) beats everything."""
    environ = os.environ if env is None else env
    path = find_config_file(config_path, environ)
    source = str(path) if path is not None else "built-in defaults"
    problems: list[str] = []
    if path is not None:
        problems.extend(_secret_problem(loc) for loc in _secret_keys(_read_toml(path)))

    live_vars = [name for name in environ if name.upper() == f"{ENV_PREFIX}LIVE"]
    for name in live_vars:
        problems.append(
            _problem(
                f"live (from {name})",
                _show(environ[name]),
                "live trading is switched on only by `live = true` in the config file; "
                f"unset {name}",
            )
        )
    source_env = {name: value for name, value in environ.items() if name not in live_vars}

    init: dict[str, Any] = {} if mode is None else {"mode": mode}
    token = _SOURCE_PLAN.set(_SourcePlan(path, source_env))
    try:
        settings = Settings(**init)
    except ValidationError as exc:
        # `from None`: the pydantic error carries raw inputs, which may include secrets.
        problems.extend(_describe_validation_error(exc, environ))
        raise ConfigError(problems, source) from None
    except SettingsError as exc:
        # Raised when a whole section is given as one variable (OPTBOT_RISK='{...}') and is
        # not JSON. The value is not shown: a section may hold anything.
        match = re.search(r'field "(\w+)"', str(exc))
        section = match.group(1) if match else "section"
        problems.append(
            _problem(
                f"{section} (from {ENV_PREFIX}{section.upper()})",
                "<not shown>",
                "a section set as one variable must be a JSON object; prefer one variable "
                f"per key, e.g. {ENV_PREFIX}RISK{ENV_NESTED_DELIMITER}DAILY_LOSS_LIMIT=5000",
            )
        )
        raise ConfigError(problems, source) from None
    finally:
        _SOURCE_PLAN.reset(token)

    problems.extend(_mode_problems(settings, path))
    if problems:
        raise ConfigError(problems, source)
    return settings


def _mode_problems(settings: Settings, path: Path | None) -> list[str]:
    if settings.mode != "live":
        return []
    problems = []
    if not settings.live:
        where = f"in {path}" if path is not None else "in a config file (none is in use)"
        problems.append(_problem("live", "false", f"mode 'live' needs `live = true` {where}"))
    if settings.broker.target != "angelone":
        problems.append(
            _problem(
                "broker.target",
                _show(settings.broker.target),
                "mode 'live' trades only through target = \"angelone\"",
            )
        )
    return problems


def _is_base32(text: str) -> bool:
    padded = text + "=" * (-len(text) % 8)
    try:
        base64.b32decode(padded, casefold=True)
    except (binascii.Error, ValueError):
        return False
    return True


def load_credentials(
    settings: Settings, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The login for this run: None in replay, demo values for the simulator, else env/keyring."""
    if settings.mode == "replay":
        return None
    if settings.broker.target == "sim":
        if settings.mode == "live":
            raise ConfigError(_mode_problems(settings, None), "credentials")
        return SIM_DEMO_CREDENTIALS
    environ = os.environ if env is None else env
    found: dict[str, SecretStr] = {}
    problems: list[str] = []
    for name in CREDENTIAL_NAMES:
        lookup = lookup_credential(name, environ)
        if lookup.value is None:
            note = (
                f" (keyring unavailable: {lookup.keyring_problem})"
                if lookup.keyring_problem
                else ""
            )
            problems.append(
                _problem(
                    name,
                    "(not set)",
                    f"mode {settings.mode!r} with target 'angelone' needs it: set "
                    f"{credential_env_var(name)} or run `keyring set {KEYRING_SERVICE} {name}`"
                    + note,
                )
            )
            continue
        value = lookup.value
        if name == "totp_secret":
            # Enrolment pages show the secret in spaced groups; pyotp wants it unbroken.
            compact = value.get_secret_value().replace(" ", "").upper()
            if not _is_base32(compact):
                problems.append(
                    _problem(
                        name,
                        f"<hidden, from {lookup.origin}>",
                        "must be the base32 TOTP secret shown when TOTP was enabled",
                    )
                )
                continue
            value = SecretStr(compact)
        found[name] = value
    if problems:
        raise ConfigError(problems, "credentials")
    return Credentials(**found)


def credential_origins(
    settings: Settings, *, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Where each credential would come from for this run, for display; never the values."""
    if settings.mode == "replay":
        return dict.fromkeys(CREDENTIAL_NAMES, "not loaded in replay")
    if settings.broker.target == "sim":
        return dict.fromkeys(CREDENTIAL_NAMES, "simulator demo value")
    environ = os.environ if env is None else env
    origins = {}
    for name in CREDENTIAL_NAMES:
        lookup = lookup_credential(name, environ)
        if lookup.value is not None:
            origins[name] = lookup.origin
        elif lookup.keyring_problem:
            origins[name] = f"not set (keyring unavailable: {lookup.keyring_problem})"
        else:
            origins[name] = "not set"
    return origins


def resolve_data_dir(cli_value: Path | None, config_path: Path | None = None) -> Path:
    """The warehouse directory: the command-line flag if given, else ``[data] dir``."""
    if cli_value is not None:
        return cli_value.expanduser()
    return load_settings(config_path).data.dir
