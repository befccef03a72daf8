"""Helpers shared by the SmartAPI client tests (no tests here): building clients for the sim.

Every client here talks to the simulator from the ``sim`` fixture over loopback. Clients use
the process-wide per-account limiter, exactly as production code does, because the simulator
counts requests per client code across every test that uses it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from broker.smartapi.auth import LoginCredentials
from broker.smartapi.config import SmartApiConfig
from broker.smartapi.rest import SmartApiClient
from broker.smartapi.tokens import MemoryTokenStore, SessionTokens, TokenStore

# Fast backoff: the tests wait for retries, not for politeness.
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 5.0, "max_retries": 4}

# Loggers of the simulator (the "broker" side of the wire): what the server logs is not ours.
_SERVER_LOGGERS = ("optbot.sim", "broker.sim", "uvicorn")


def sim_config(sim: Any, **overrides: Any) -> SmartApiConfig:
    """A client config pointing at the simulator."""
    return SmartApiConfig(rest_url=sim.rest_url, master_url=sim.master_url, **{**FAST, **overrides})


def sim_credentials(
    sim: Any, *, totp_secret: bool = True, pin: str | None = None
) -> LoginCredentials:
    """The simulator's demo login (optionally a wrong PIN, or no TOTP secret)."""
    return LoginCredentials(
        client_code=sim.client_code,
        pin=SecretStr(pin if pin is not None else sim.pin),
        api_key=SecretStr(sim.api_key),
        totp_secret=SecretStr(sim.totp_secret) if totp_secret else None,
    )


def make_client(
    sim: Any,
    *,
    store: TokenStore | None = None,
    credentials: LoginCredentials | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    **config: Any,
) -> SmartApiClient:
    """A client for the simulator; ``sleep`` replaces the transport's backoff sleep."""
    return SmartApiClient.open(
        sim_config(sim, **config),
        credentials or sim_credentials(sim),
        store=store if store is not None else MemoryTokenStore(),
        sleep=sleep or asyncio.sleep,
    )


def issued_store(sim: Any) -> MemoryTokenStore:
    """A token store holding a session minted by the simulator (no login call spent)."""
    tokens = sim.issue_session()
    store = MemoryTokenStore()
    store.save(
        SessionTokens(
            client_code=sim.client_code,
            jwt=SecretStr(tokens["jwtToken"]),
            refresh_token=SecretStr(tokens["refreshToken"]),
            feed_token=SecretStr(tokens["feedToken"]),
            issued_at=datetime.now(UTC),
        )
    )
    return store


def requests_seen(sim: Any) -> int:
    """REST requests the simulator has received so far (rejected ones included)."""
    return int(sim.state_view()["rest_requests"])


def secrets_of(sim: Any, clients: Iterable[SmartApiClient] = ()) -> list[str]:
    """Every secret value in play: the demo credentials and each client's session tokens."""
    values = [sim.api_key, sim.totp_secret]
    for client in clients:
        tokens = client.session.tokens
        if tokens is not None:
            values.extend(tokens.secret_values())
        stored = client.session.store.load(sim.client_code)
        if stored is not None:
            values.extend(stored.secret_values())
    return [v for v in values if v]


def assert_no_secrets(
    texts: Iterable[str],
    records: Iterable[logging.LogRecord],
    sim: Any,
    clients: Iterable[SmartApiClient] = (),
) -> None:
    """No secret value (nor the PIN as a standalone number) in any text or client log record."""
    secrets = secrets_of(sim, clients)
    pin = re.compile(rf"(?<!\d){re.escape(sim.pin)}(?!\d)")
    ours = [r.getMessage() for r in records if not r.name.startswith(_SERVER_LOGGERS)]
    for text in [*texts, *ours]:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:120]!r}"
        assert not pin.search(text), f"the PIN leaked into: {text[:120]!r}"


def exception_texts(exc: BaseException) -> list[str]:
    """str and repr of an exception and of everything chained to it."""
    texts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.extend([str(current), repr(current)])
        current = current.__cause__ or current.__context__
    return texts
