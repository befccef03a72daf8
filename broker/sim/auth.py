"""Logins and sessions: TOTP check, token minting, refresh, logout, expiry.

A login needs the account's client code, PIN and a TOTP code of the current 30 s step or one step
either side (wall time: the client's authenticator uses the real clock). It mints three
JWT-looking tokens — JWT, refresh and feed — each ``header.payload.signature`` with an HS512 header
and an HMAC-SHA512 signature under a secret drawn when the process starts, so tokens from an
earlier run never work.

Expiry follows the simulated session clock. A JWT (and its feed token) stops working at midnight
IST after the day it was issued, when it is logged out or refreshed away, when ``expire_all`` is
called, or — the nightly-rollover fault — once the session clock reaches the fault's
``expire_at`` if it was issued before that instant. A refresh token lives until midnight unless
logged out, used, or expired with ``refresh=True``; ``generateTokens`` trades it for a new session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Protocol
from zoneinfo import ZoneInfo

from broker.sim.credentials import SimCredentials
from broker.sim.faults import FaultInjector

IST = ZoneInfo("Asia/Kolkata")

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS512"}').rstrip(b"=").decode()

# SPEC §5.1 / §2.1 codes and the messages the real gateway uses for them.
INVALID_TOKEN = ("AG8001", "Invalid Token")
TOKEN_MISSING = ("AG8003", "Token missing")
INVALID_API_KEY = ("AG8001", "Invalid API Key")
INVALID_LOGIN = ("AB1007", "Login Id or password is invalid")
INVALID_TOTP = ("AB1050", "Invalid totp")
INVALID_REFRESH = ("AB8050", "Invalid Refresh Token")
REFRESH_EXPIRED = ("AB8051", "Refresh Token Expired")


def _utf8(text: str) -> bytes:
    """``text`` as bytes for a constant-time comparison (lone surrogates from JSON included)."""
    return text.encode("utf-8", "surrogatepass")


class SessionClock(Protocol):
    def now(self) -> datetime: ...


class AuthFailure(Exception):
    """A refused login, token or refresh: carries the SmartAPI error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class Session:
    """One login: its tokens and when (session time) it was issued."""

    client_code: str
    jwt: str
    refresh_token: str
    feed_token: str
    issued_at: datetime
    last_login: datetime
    revoked: bool = False
    refresh_revoked: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def midnight(self) -> datetime:
        """Midnight IST after the day the session was issued: when it ends at the latest."""
        day = self.issued_at.astimezone(IST).date() + timedelta(days=1)
        return datetime.combine(day, clock_time(0), tzinfo=IST)


class SessionStore:
    """Every session the simulator has issued, looked up by any of its tokens. Thread-safe."""

    def __init__(
        self,
        credentials: SimCredentials,
        clock: SessionClock,
        faults: FaultInjector,
        *,
        wall: Callable[[], float] = _time.time,
    ) -> None:
        self.credentials = credentials
        self._clock = clock
        self._faults = faults
        self._wall = wall
        self._secret = secrets.token_bytes(32)
        self._by_jwt: dict[str, Session] = {}
        self._by_refresh: dict[str, Session] = {}
        self._by_feed: dict[str, Session] = {}
        self._lock = threading.Lock()

    # --- tokens -------------------------------------------------------------------------------

    def _mint(self, kind: str, client_code: str, issued: datetime, expires: datetime) -> str:
        claims = {
            "sub": client_code,
            "typ": kind,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_hex(8),
        }
        body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{_HEADER}.{body.rstrip(b'=').decode()}"
        mac = hmac.new(self._secret, signing_input.encode(), hashlib.sha512).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def _signed(self, token: str) -> bool:
        head, _, mac = token.rpartition(".")
        if head.count(".") != 1 or not mac:
            return False
        want = hmac.new(self._secret, _utf8(head), hashlib.sha512).digest()
        return hmac.compare_digest(base64.urlsafe_b64encode(want).rstrip(b"="), _utf8(mac))

    def issue(self, client_code: str | None = None) -> Session:
        """Mint a fresh session without a login call (tests and the admin API use this)."""
        code = client_code or self.credentials.client_code
        now = self._clock.now()
        midnight = datetime.combine(
            now.astimezone(IST).date() + timedelta(days=1), clock_time(0), tzinfo=IST
        )
        session = Session(
            client_code=code,
            jwt=self._mint("access", code, now, midnight),
            refresh_token=self._mint("refresh", code, now, midnight),
            feed_token=self._mint("feed", code, now, midnight),
            issued_at=now,
            last_login=now,
        )
        with self._lock:
            self._by_jwt[session.jwt] = session
            self._by_refresh[session.refresh_token] = session
            self._by_feed[session.feed_token] = session
        return session

    # --- login / refresh / logout -------------------------------------------------------------

    def check_totp(self, code: str) -> bool:
        """True for the code of the current 30 s step or one step either side."""
        # Other scripts' digits pass str.isdigit but are never a TOTP code.
        return code.isascii() and self.credentials.totp_matches(code, self._wall(), window=1)

    def login(self, clientcode: str, password: str, totp: str) -> Session:
        """``loginByPassword``: AB1007 for a wrong client code or PIN, AB1050 for a wrong TOTP."""
        creds = self.credentials
        # Compared as bytes: compare_digest refuses non-ASCII text, and any input is just wrong.
        code_ok = hmac.compare_digest(_utf8(clientcode.upper()), _utf8(creds.client_code.upper()))
        pin_ok = hmac.compare_digest(_utf8(password), _utf8(creds.pin))
        if not (code_ok and pin_ok):
            raise AuthFailure(*INVALID_LOGIN)
        if not self.check_totp(totp):
            raise AuthFailure(*INVALID_TOTP)
        return self.issue(creds.client_code)

    def refresh(self, refresh_token: str) -> Session:
        """``generateTokens``: a new session for a live refresh token; the old one ends."""
        if not refresh_token or not self._signed(refresh_token):
            raise AuthFailure(*INVALID_REFRESH)
        with self._lock:
            old = self._by_refresh.get(refresh_token)
        if old is None or old.refresh_revoked:
            raise AuthFailure(*INVALID_REFRESH)
        if self._clock.now() >= old.midnight:
            raise AuthFailure(*REFRESH_EXPIRED)
        new = self.issue(old.client_code)
        new.last_login = old.last_login
        old.revoked = True
        old.refresh_revoked = True
        return new

    def logout(self, session: Session) -> None:
        """End a session: all three of its tokens stop working."""
        session.revoked = True
        session.refresh_revoked = True

    def expire_all(self, *, refresh: bool = False) -> int:
        """Expire every live JWT now (and refresh tokens too when asked); returns the count."""
        with self._lock:
            sessions = list(self._by_jwt.values())
        count = 0
        for s in sessions:
            if not s.revoked:
                count += 1
            s.revoked = True
            if refresh:
                s.refresh_revoked = True
        return count

    # --- checks -------------------------------------------------------------------------------

    def is_live(self, session: Session, now: datetime | None = None) -> bool:
        """True while the session's JWT and feed token still work."""
        if session.revoked:
            return False
        at = self._clock.now() if now is None else now
        if at >= session.midnight:
            return False
        expire_at = self._faults.settings.expire_at
        if expire_at is not None:
            rollover = datetime.combine(session.issued_at.astimezone(IST).date(), expire_at, IST)
            if session.issued_at < rollover <= at:
                return False
        return True

    def verify_jwt(self, token: str) -> Session:
        """The live session of a JWT (with or without ``Bearer``), else ``AuthFailure`` AG8001."""
        jwt = token.strip()
        if jwt[:7].lower() == "bearer ":
            jwt = jwt[7:].strip()
        if not jwt:
            raise AuthFailure(*TOKEN_MISSING)
        if not self._signed(jwt):
            raise AuthFailure(*INVALID_TOKEN)
        with self._lock:
            session = self._by_jwt.get(jwt)
        if session is None or not self.is_live(session):
            raise AuthFailure(*INVALID_TOKEN)
        return session

    def find_jwt(self, token: str) -> Session | None:
        """The session a JWT belongs to, live or not (None for a token never issued)."""
        jwt = token.strip()
        if jwt[:7].lower() == "bearer ":
            jwt = jwt[7:].strip()
        with self._lock:
            return self._by_jwt.get(jwt)

    def client_of_refresh(self, refresh_token: str) -> str:
        """The client code a refresh token was issued to ("" if unknown), for rate limiting."""
        with self._lock:
            session = self._by_refresh.get(refresh_token.strip())
        return "" if session is None else session.client_code

    def verify_feed_token(self, feed_token: str) -> Session | None:
        """The live session of a feed token, or None."""
        with self._lock:
            session = self._by_feed.get(feed_token.strip())
        if session is None or not self.is_live(session):
            return None
        return session

    def live_sessions(self) -> int:
        """How many sessions still work (for the admin state view)."""
        with self._lock:
            sessions = list(self._by_jwt.values())
        now = self._clock.now()
        return sum(1 for s in sessions if self.is_live(s, now))
