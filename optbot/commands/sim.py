"""``optbot sim``: run the local SmartAPI-compatible exchange simulator in the foreground."""

from __future__ import annotations

import sys
from datetime import date, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from broker.sim.server import SimServer

_EXAMPLE = "optbot sim --port 8765 --speed 60 --faults ratelimit=0.1,latency_ms=200"


def _fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _session_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        _fail(f"--session {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-20")
    from market.calendar import default_calendar

    calendar = default_calendar()
    if not calendar.is_trading_day(day):
        before = calendar.previous_trading_day(day)
        _fail(
            f"--session {day.isoformat()} is not an NSE trading day; the one before is "
            f"{before.isoformat()}"
        )
    return day


def _start_time(text: str) -> time:
    from broker.sim.server import parse_session_time

    try:
        return parse_session_time(text)
    except ValueError:
        _fail(f"--start {text!r} is not a session time; use HH:MM, e.g. 09:15")


def _banner(server: SimServer, overridden: bool) -> str:
    creds = server.credentials
    cfg = server.config
    scenario = f", scenario {cfg.scenario}" if cfg.scenario else ""
    now = server.now()
    secret = "(as given)" if overridden else creds.totp_secret
    pin = "(as given)" if overridden else creds.pin
    faults = server.faults.spec() or "none"
    lines = [
        f"optbot SmartAPI simulator — session {server.model.session_date.isoformat()} from "
        f"{now:%H:%M} IST at {cfg.speed:g}× real time (seed {cfg.seed}{scenario})",
        f"  REST       {server.rest_url}",
        f"  Feed WS    {server.ws_url}",
        f"  Order WS   {server.order_ws_url}",
        f"  Master     {server.master_url}",
        f"  Control    {server.rest_url}/__sim/state",
        "Login (simulator only):",
        f"  client code {creds.client_code}   PIN {pin}   API key {creds.api_key}",
        f"  TOTP secret {secret} — current code {server.totp_now()} (changes every 30 s)",
        f"Faults: {faults}",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def sim(
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default: config sim.host, 127.0.0.1).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port (default: config sim.port, 8765); 0 picks a free one.", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the simulated market (default: config sim.seed).", show_default=False
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Session seconds per real second (default: config sim.speed); 1 = real time.",
            show_default=False,
        ),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            help="Trading day to replay, YYYY-MM-DD (default: the most recent one).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[str, typer.Option(help="Session time to start from, HH:MM.")] = "09:15",
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Named day: gap_up, gap_down, vix_spike, flash_crash, quiet.",
            show_default=False,
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help=(
                "Faults, e.g. ratelimit=0.2,http5xx=0.1,latency_ms=200,ws_drop_after_s=30,"
                "ws_silent_after_s=20,malformed=0.01,expire_at=10:30,reject=0.1,fill_delay_s=2. "
                "http5xx answers without acting; latency_ms holds each answer after acting "
                "(an order placed, its answer late)."
            ),
            show_default=False,
        ),
    ] = None,
    client_code: Annotated[
        str | None, typer.Option(help="Client code to accept (default DEMO01).", show_default=False)
    ] = None,
    pin: Annotated[
        str | None, typer.Option(help="PIN to accept (default 1234).", show_default=False)
    ] = None,
    totp_secret: Annotated[
        str | None,
        typer.Option(help="Base32 TOTP secret (default: the demo secret).", show_default=False),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key to accept (default optbot-sim-key).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file for the sim defaults (default: $OPTBOT_CONFIG, ./optbot.toml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the local SmartAPI-compatible exchange simulator until Ctrl-C.

    One port serves REST, the WebSocket 2.0 feed, order-status updates and the master.

    It replays a trading day from 09:15 IST at --speed and prints the URLs and the demo login.

    Example: optbot sim --port 8765 --speed 60 --faults ratelimit=0.1,latency_ms=200
    """
    from broker.sim.credentials import DEMO_CREDENTIALS, CredentialError, SimCredentials
    from broker.sim.faults import HEALTHY, FaultSpecError, parse_faults
    from broker.sim.scenarios import scenario_by_name
    from broker.sim.server import SimConfig, SimServer
    from optbot.config import ConfigError, load_settings

    try:
        defaults = load_settings(config).sim
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None

    port = defaults.port if port is None else port
    if not 0 <= port <= 65535:
        _fail(f"--port {port} is not a port; use 1..65535, or 0 for a free one")
    speed = defaults.speed if speed is None else speed
    if not 0 < speed <= 100_000:
        _fail(f"--speed {speed:g} must be more than 0 and at most 100000 (1 = real time)")
    seed = defaults.seed if seed is None else seed
    if seed < 0:
        _fail(f"--seed {seed} must be 0 or more")
    try:
        scenario_by_name(scenario)
    except ValueError as exc:
        _fail(f"--scenario {exc}")
    try:
        fault_settings = HEALTHY if faults is None else parse_faults(faults)
    except FaultSpecError as exc:
        _fail(f"--faults: {exc}")
    overridden = any(v is not None for v in (client_code, pin, totp_secret, api_key))
    try:
        credentials = SimCredentials(
            client_code=client_code or DEMO_CREDENTIALS.client_code,
            pin=pin or DEMO_CREDENTIALS.pin,
            totp_secret=totp_secret or DEMO_CREDENTIALS.totp_secret,
            api_key=api_key or DEMO_CREDENTIALS.api_key,
        )
    except CredentialError as exc:
        field, _, problem = str(exc).partition(":")
        _fail(f"--{field.replace('_', '-')}:{problem}")

    sim_config = SimConfig(
        host=host or defaults.host,
        port=port,
        seed=seed,
        speed=speed,
        session_date=_session_date(session),
        start_at=_start_time(start),
        scenario=scenario,
        faults=fault_settings,
        credentials=credentials,
    )
    server = SimServer(sim_config)

    def announce(started: SimServer) -> None:
        typer.echo(_banner(started, overridden))

    try:
        server.run(on_started=announce)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        typer.echo("simulator stopped")
    except OSError as exc:
        _fail(
            f"cannot listen on {sim_config.host}:{port}: {exc.strerror or exc}; "
            "choose another --port (0 picks a free one)"
        )


def register(app: typer.Typer) -> None:
    """Add ``optbot sim`` to the root app."""
    app.command(name="sim")(sim)
