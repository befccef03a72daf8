"""The SmartAPI session: TOTP login, token refresh, logout, and one re-login when it is refused.

A session is three tokens from ``loginByPassword`` (client code + trading PIN + a 6-digit TOTP,
SPEC §2) and lives until midnight IST. :class:`SmartApiSession` keeps the current tokens,
reuses a stored session from earlier in the day, logs in with the TOTP secret when it has one,
and recovers once from a refused token: refresh first (``generateTokens``), full login when
that fails and a TOTP secret is at hand. Without a TOTP secret on the machine the person runs
``optbot login`` each morning and types the code from their authenticator.

Login failures are :class:`AuthError` whatever code the broker used (AB1050 invalid TOTP,
AB1007 wrong client code or PIN …): a refused login is never retried in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any, Protocol

import pyotp
from pydantic import SecretStr

from broker.smartapi import config as endpoints
from broker.smartapi.errors import AuthError, BrokerError, RetryLater
from broker.smartapi.models import Profile, text
from broker.smartapi.tokens import (
    IST,
    MARKET_CLOSE,
    MemoryTokenStore,
    SessionTokens,
    TokenStore,
)

if TYPE_CHECKING:
    from broker.smartapi.rest import RestTransport

log = logging.getLogger(__name__)


class _SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


class CredentialsLike(Protocol):
    """What ``optbot.config.Credentials`` offers (every field a SecretStr)."""

    @property
    def client_code(self) -> _SecretLike: ...
    @property
    def pin(self) -> _SecretLike: ...
    @property
    def totp_secret(self) -> _SecretLike: ...
    @property
    def api_key(self) -> _SecretLike: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LoginCredentials:
    """What a login needs. ``totp_secret`` is optional: without it a person supplies the code."""

    client_code: str
    pin: SecretStr = field(repr=False)
    api_key: SecretStr = field(repr=False)
    totp_secret: SecretStr | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, credentials: CredentialsLike) -> LoginCredentials:
        """From ``optbot.config.Credentials``."""
        secret = credentials.totp_secret.get_secret_value()
        return cls(
            client_code=credentials.client_code.get_secret_value(),
            pin=SecretStr(credentials.pin.get_secret_value()),
            api_key=SecretStr(credentials.api_key.get_secret_value()),
            totp_secret=SecretStr(secret) if secret else None,
        )

    def totp_now(self, at: datetime | None = None) -> str:
        """The current 6-digit code (RFC 6238, 30 s, SHA-1: pyotp's defaults, SPEC §2.2)."""
        if self.totp_secret is None:
            raise AuthError("no TOTP secret on this machine: run `optbot login` and type the code")
        totp = pyotp.TOTP(self.totp_secret.get_secret_value().replace(" ", "").upper())
        return totp.at(at) if at is not None else totp.now()

    def secret_values(self) -> tuple[str, ...]:
        """Raw secret strings, for a redactor."""
        values = [self.pin.get_secret_value(), self.api_key.get_secret_value()]
        if self.totp_secret is not None:
            values.append(self.totp_secret.get_secret_value())
        return tuple(values)


@dataclass(slots=True)
class SessionStats:
    """How often the session had to talk to the login endpoints."""

    logins: int = 0
    refreshes: int = 0
    recoveries: int = 0


class SmartApiSession:
    """Holds the current tokens; logs in, refreshes, recovers once, logs out."""

    def __init__(
        self,
        transport: RestTransport,
        credentials: LoginCredentials,
        *,
        store: TokenStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._transport = transport
        self.credentials = credentials
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self._clock = clock or _utc_now
        self._tokens: SessionTokens | None = None
        self._unusable = False
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.stats = SessionStats()
        transport.redactor.add(*credentials.secret_values())

    # ---- state

    @property
    def tokens(self) -> SessionTokens | None:
        """The tokens in use (None before the first login or stored-session load)."""
        return self._tokens

    def session_valid_until(self, now: datetime | None = None) -> datetime | None:
        """When the current session ends (midnight IST), or None if there is none valid now."""
        at = now or self._clock()
        tokens = self._tokens or self.store.load(self.credentials.client_code)
        if tokens is None or not tokens.valid_at(at):
            return None
        return tokens.expires_at

    def valid_through(self, until: time = MARKET_CLOSE, now: datetime | None = None) -> bool:
        """Is there a session now that will still be valid at ``until`` IST today?"""
        at = now or self._clock()
        tokens = self._tokens or self.store.load(self.credentials.client_code)
        return tokens is not None and tokens.valid_through(at, until)

    def mark_unusable(self) -> None:
        """After a failed recovery: refuse further calls until :meth:`reset` or a new login."""
        self._unusable = True

    def reset(self) -> None:
        """Forget the in-memory session; the next call loads or logs in again."""
        self._tokens = None
        self._unusable = False

    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    # ---- the session token for a call

    async def jwt(self) -> str:
        """The token for the next call: current, else stored from earlier today, else a login."""
        if self._unusable:
            raise AuthError("session refused after a re-login; run `optbot login` or restart")
        tokens = self._tokens
        if tokens is not None and tokens.valid_at(self._clock()):
            return tokens.jwt.get_secret_value()
        async with self._guard():
            tokens = self._tokens
            now = self._clock()
            if tokens is None or not tokens.valid_at(now):
                stored = self.store.load(self.credentials.client_code)
                if stored is not None and stored.valid_at(now):
                    self._adopt(stored, save=False)
                    log.info("using the stored session (valid until %s)", _ist(stored.expires_at))
                else:
                    if self.credentials.totp_secret is None:
                        raise AuthError(
                            "no session for today and no TOTP secret on this machine: "
                            "run `optbot login`"
                        )
                    await self._login(self.credentials.totp_now())
            assert self._tokens is not None
            return self._tokens.jwt.get_secret_value()

    async def recover(self, failed_jwt: str) -> None:
        """The broker refused ``failed_jwt``: refresh, else log in again (once per token)."""
        async with self._guard():
            current = self._tokens
            if current is not None and current.jwt.get_secret_value() != failed_jwt:
                return  # another call already renewed the session
            self.stats.recoveries += 1
            if current is not None:
                try:
                    await self._refresh(current)
                    return
                except RetryLater:
                    raise
                except BrokerError as exc:
                    log.warning("token refresh refused (%s); logging in again", exc.code or exc)
            self._tokens = None
            if self.credentials.totp_secret is None:
                self.store.clear(self.credentials.client_code)
                raise AuthError(
                    "session expired and there is no TOTP secret on this machine to log in "
                    "again: run `optbot login`"
                )
            await self._login(self.credentials.totp_now())

    # ---- login endpoints

    async def login(self, totp: str | None = None) -> SessionTokens:
        """Log in with ``totp`` (a code typed by a person) or the stored TOTP secret."""
        async with self._guard():
            code = totp if totp is not None else self.credentials.totp_now()
            return await self._login(code)

    async def _login(self, totp: str) -> SessionTokens:
        code = totp.strip()
        if not (len(code) == 6 and code.isdigit()):
            raise AuthError("a TOTP code is 6 digits")
        body = {
            "clientcode": self.credentials.client_code,
            "password": self.credentials.pin.get_secret_value(),
            "totp": code,
        }
        self.stats.logins += 1
        data = await self._login_call(endpoints.LOGIN, body, jwt=None, what="login")
        tokens = self._tokens_from(data)
        self._adopt(tokens, save=True)
        self._unusable = False
        log.info("logged in; session valid until %s", _ist(tokens.expires_at))
        return tokens

    async def refresh(self) -> SessionTokens:
        """Trade the refresh token for new tokens (generateTokens)."""
        async with self._guard():
            if self._tokens is None:
                raise AuthError("no session to refresh: log in first")
            return await self._refresh(self._tokens)

    async def _refresh(self, current: SessionTokens) -> SessionTokens:
        self.stats.refreshes += 1
        data = await self._login_call(
            endpoints.GENERATE_TOKENS,
            {"refreshToken": current.refresh_token.get_secret_value()},
            jwt=current.jwt.get_secret_value(),
            what="token refresh",
        )
        tokens = self._tokens_from(data)
        self._adopt(tokens, save=True)
        log.info("session refreshed; valid until %s", _ist(tokens.expires_at))
        return tokens

    async def _login_call(
        self, endpoint: endpoints.Endpoint, body: dict[str, str], *, jwt: str | None, what: str
    ) -> Any:
        try:
            return await self._transport.call(endpoint, body=body, jwt=jwt, retry="safe")
        except RetryLater:
            raise
        except BrokerError as exc:
            # At login every refusal (AB1007 wrong PIN, AB1050 bad TOTP, AG8001 bad API key …)
            # is a plain auth failure: nothing to recover by logging in yet again.
            raise AuthError(
                f"{what} refused: {exc.message.split(': ', 1)[-1]}",
                code=exc.code,
                http_status=exc.http_status,
            ) from exc

    def _tokens_from(self, data: Any) -> SessionTokens:
        if not isinstance(data, dict):
            raise AuthError("login reply carries no tokens")
        jwt = text(data.get("jwtToken")).removeprefix("Bearer ").strip()
        refresh = text(data.get("refreshToken"))
        feed = text(data.get("feedToken"))
        if not (jwt and refresh and feed):
            raise AuthError("login reply lacks a jwt, refresh or feed token")
        return SessionTokens(
            client_code=self.credentials.client_code,
            jwt=SecretStr(jwt),
            refresh_token=SecretStr(refresh),
            feed_token=SecretStr(feed),
            issued_at=self._clock(),
        )

    def _adopt(self, tokens: SessionTokens, *, save: bool) -> None:
        self._transport.redactor.add(*tokens.secret_values())
        self._tokens = tokens
        if save:
            self.store.save(tokens)

    async def use_tokens(self, tokens: SessionTokens, *, save: bool = True) -> Profile:
        """Adopt tokens obtained elsewhere (pasted by a person), after checking them."""
        async with self._guard():
            self._adopt(tokens, save=False)
            self._unusable = False
        profile = await self.profile()
        if save:
            self.store.save(tokens)
        return profile

    async def profile(self) -> Profile:
        """getProfile with the current token, no recovery: the honest "is this session good?"."""
        tokens = self._tokens
        if tokens is None:
            raise AuthError("no session: log in first")
        data = await self._transport.call(
            endpoints.PROFILE, jwt=tokens.jwt.get_secret_value(), retry="safe"
        )
        return Profile.parse(data if isinstance(data, dict) else {})

    async def logout(self) -> None:
        """End the session at the broker and forget it here and in the store."""
        async with self._guard():
            tokens = self._tokens or self.store.load(self.credentials.client_code)
            self._tokens = None
            self.store.clear(self.credentials.client_code)
            if tokens is None:
                return
            await self._transport.call(
                endpoints.LOGOUT,
                body={"clientcode": self.credentials.client_code},
                jwt=tokens.jwt.get_secret_value(),
                retry="safe",
            )
            log.info("logged out")


def _ist(moment: datetime) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
