"""``optbot login``: start the day's SmartAPI session by hand; every run reuses it until midnight.

For a trader who keeps no TOTP secret on the machine: type the current 6-digit code from the
authenticator app (or paste tokens from a browser login). The session is checked with
getProfile and stored in the OS keyring, or in a 0600 file under the data directory when the
machine has no keyring.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from broker.smartapi.auth import LoginCredentials
    from broker.smartapi.models import Profile
    from broker.smartapi.rest import SmartApiClient
    from optbot.config import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (default: $OPTBOT_CONFIG, else ./optbot.toml, else defaults).",
        show_default=False,
    ),
]
TotpOption = Annotated[
    str | None,
    typer.Option(
        "--totp",
        help="The current 6-digit code from your authenticator app (asked for when omitted "
        "and no TOTP secret is configured).",
        show_default=False,
    ),
]
JwtOption = Annotated[
    str | None,
    typer.Option("--jwt", help="Paste a jwt from a login made elsewhere.", show_default=False),
]
FeedTokenOption = Annotated[
    str | None,
    typer.Option("--feed-token", help="The feed token that goes with --jwt.", show_default=False),
]
RefreshTokenOption = Annotated[
    str | None,
    typer.Option(
        "--refresh-token",
        help="The refresh token that goes with --jwt (optional).",
        show_default=False,
    ),
]
PasteOption = Annotated[
    bool,
    typer.Option(
        "--paste-tokens",
        help="Paste jwt, feed token and refresh token at hidden prompts (kept out of the "
        "process list and shell history, unlike --jwt/--feed-token).",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory for the session file when no OS keyring exists (default: [data] dir).",
        show_default=False,
    ),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def login(
    config: ConfigOption = None,
    totp: TotpOption = None,
    jwt: JwtOption = None,
    feed_token: FeedTokenOption = None,
    refresh_token: RefreshTokenOption = None,
    paste_tokens: PasteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Log in to SmartAPI once for the day; every optbot run reuses the session until midnight IST.

    Reads client code, PIN and API key from OPTBOT_* variables or the OS keyring (asks for
    any that are missing), then asks for the 6-digit TOTP code. With --jwt and --feed-token it
    stores tokens from a login made elsewhere instead, after checking them.

    Example: optbot login --totp 123456   (or: optbot login --paste-tokens)
    """
    from optbot.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
        if settings.mode == "replay":  # replay loads no credentials; a login is still wanted
            settings = load_settings(config, mode="paper")
    except ConfigError as exc:
        _fail(str(exc))
    in_argv = any(value is not None for value in (jwt, feed_token, refresh_token))
    if paste_tokens and in_argv:
        _fail("give either --paste-tokens or --jwt/--feed-token, not both")
    if in_argv:
        print(
            "Warning: tokens given on the command line are visible in the process list and "
            "shell history; prefer --paste-tokens.",
            file=sys.stderr,
        )
    if paste_tokens:
        jwt = typer.prompt("jwt", hide_input=True)
        feed_token = typer.prompt("feed token", hide_input=True)
        refresh_token = typer.prompt("refresh token (Enter for none)", default="", hide_input=True)
        refresh_token = refresh_token or None
    pasted = paste_tokens or in_argv
    if pasted and (not jwt or not feed_token):
        _fail("--jwt and --feed-token are both needed to use pasted tokens")
    if totp is not None and pasted:
        _fail("give either --totp or pasted tokens (--jwt/--feed-token), not both")
    if totp is not None:
        totp = _check_totp(totp)
    credentials = _credentials(settings)
    folder = data_dir.expanduser() if data_dir is not None else settings.data.dir
    if pasted:
        assert jwt is not None and feed_token is not None
        asyncio.run(_store_pasted(settings, credentials, folder, jwt, feed_token, refresh_token))
        return
    if totp is None and credentials.totp_secret is None:
        totp = _check_totp(typer.prompt("TOTP code from your authenticator app"))
    asyncio.run(_login(settings, credentials, folder, totp))


def _check_totp(code: str) -> str:
    cleaned = code.strip().replace(" ", "")
    if not (len(cleaned) == 6 and cleaned.isdigit()):
        _fail(f"--totp {code!r} is not a TOTP code; give the 6 digits your authenticator shows")
    return cleaned


def _credentials(settings: Settings) -> LoginCredentials:
    """Credentials from config/env/keyring; a missing client code, PIN or API key is asked for."""
    from pydantic import SecretStr

    from broker.smartapi.auth import LoginCredentials
    from optbot.config import ConfigError, load_credentials
    from optbot.secrets import lookup_credential

    try:
        full = load_credentials(settings)
    except ConfigError:
        full = None  # usually: no TOTP secret on this machine, which is what login is for
    if full is not None:
        return LoginCredentials.from_config(full)
    values: dict[str, str] = {}
    for name, prompt, hide in (
        ("client_code", "Client code", False),
        ("pin", "Trading PIN", True),
        ("api_key", "SmartAPI API key", True),
    ):
        found = lookup_credential(name, os.environ).value
        if found is not None:
            values[name] = found.get_secret_value()
        else:
            values[name] = typer.prompt(prompt, hide_input=hide).strip()
    return LoginCredentials(
        client_code=values["client_code"].upper(),
        pin=SecretStr(values["pin"]),
        api_key=SecretStr(values["api_key"]),
    )


def _client(settings: Settings, credentials: LoginCredentials, folder: Path) -> SmartApiClient:
    from broker.smartapi.config import SmartApiConfig
    from broker.smartapi.rest import SmartApiClient
    from broker.smartapi.tokens import default_token_store

    config = SmartApiConfig.from_settings(settings.broker, max_retries=2)
    store = default_token_store(folder)
    return SmartApiClient.open(config, credentials, store=store)


async def _login(
    settings: Settings, credentials: LoginCredentials, folder: Path, totp: str | None
) -> None:
    from broker.smartapi.errors import AuthError, BrokerError

    client = _client(settings, credentials, folder)
    async with client:
        try:
            await client.session.login(totp)
            profile = await client.session.profile()
        except AuthError as exc:
            _fail(f"login refused: {exc}")
        except BrokerError as exc:
            _fail(f"could not reach SmartAPI at {settings.broker.rest_url}: {exc}", code=1)
    _report(client, profile)


async def _store_pasted(
    settings: Settings,
    credentials: LoginCredentials,
    folder: Path,
    jwt: str,
    feed_token: str,
    refresh_token: str | None,
) -> None:
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from broker.smartapi.errors import AuthError, BrokerError
    from broker.smartapi.tokens import SessionTokens

    tokens = SessionTokens(
        client_code=credentials.client_code,
        jwt=SecretStr(jwt.strip().removeprefix("Bearer ").strip()),
        refresh_token=SecretStr((refresh_token or "").strip()),
        feed_token=SecretStr(feed_token.strip()),
        issued_at=datetime.now(UTC),
    )
    client = _client(settings, credentials, folder)
    async with client:
        try:
            profile = await client.session.use_tokens(tokens)
        except AuthError as exc:
            _fail(f"the pasted tokens were refused: {exc}")
        except BrokerError as exc:
            _fail(f"could not reach SmartAPI at {settings.broker.rest_url}: {exc}", code=1)
    _report(client, profile)


def _report(client: SmartApiClient, profile: Profile) -> None:
    from broker.smartapi.tokens import IST

    until = client.session.session_valid_until()
    when = until.astimezone(IST).strftime("%Y-%m-%d %H:%M IST") if until else "unknown"
    who = f"{profile.name} ({profile.client_code})" if profile.name else profile.client_code
    typer.echo(f"Logged in as {who}; session valid until {when}.")
    typer.echo(f"Session stored in {client.session.store.describe()}.")


def register(app: typer.Typer) -> None:
    """Add ``optbot login`` to the root app."""
    app.command(name="login")(login)
