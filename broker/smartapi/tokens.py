"""Session tokens and where they are kept between runs.

A SmartAPI session (jwt + refresh + feed token) lasts until midnight IST of the day it was
made (SPEC §2.1), so one login in the morning serves every run of the day. Tokens are kept in
the OS keyring (service ``optbot``, user ``session:<client code>``). When the machine has no
keyring backend (a server, a container) they go to a JSON file in the data directory instead,
created atomically with mode 0600 in a 0700 folder. Token values are never logged; a file that
others can read is refused rather than used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import SecretStr

IST = ZoneInfo("Asia/Kolkata")
KEYRING_SERVICE = "optbot"
MARKET_CLOSE = time(15, 30)

log = logging.getLogger(__name__)


def session_expiry(issued_at: datetime) -> datetime:
    """When a session made at ``issued_at`` ends: the next midnight IST (UTC result)."""
    local = issued_at.astimezone(IST)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=IST)
    return midnight.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """The three tokens of one login, and when it happened."""

    client_code: str
    jwt: SecretStr
    refresh_token: SecretStr
    feed_token: SecretStr
    issued_at: datetime

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")

    @property
    def expires_at(self) -> datetime:
        """Midnight IST after the login (UTC)."""
        return session_expiry(self.issued_at)

    def valid_at(self, now: datetime) -> bool:
        """Whether the session is still alive at ``now`` (by the clock, not by asking)."""
        return self.issued_at <= now + timedelta(minutes=5) and now < self.expires_at

    def valid_through(self, now: datetime, until: time = MARKET_CLOSE) -> bool:
        """Alive now and still alive at ``until`` IST today (default: the 15:30 close)."""
        if not self.valid_at(now):
            return False
        end = datetime.combine(now.astimezone(IST).date(), until, tzinfo=IST)
        return end < self.expires_at

    def secret_values(self) -> tuple[str, str, str]:
        """The raw token strings, for a redactor."""
        return (
            self.jwt.get_secret_value(),
            self.refresh_token.get_secret_value(),
            self.feed_token.get_secret_value(),
        )

    def to_json(self) -> str:
        """Serialised form for a store; contains the secrets."""
        return json.dumps(
            {
                "client_code": self.client_code,
                "jwt": self.jwt.get_secret_value(),
                "refresh_token": self.refresh_token.get_secret_value(),
                "feed_token": self.feed_token.get_secret_value(),
                "issued_at": self.issued_at.astimezone(UTC).isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SessionTokens:
        """Inverse of :meth:`to_json`; ValueError (without the content) when malformed."""
        try:
            data: Any = json.loads(text)
            return cls(
                client_code=str(data["client_code"]),
                jwt=SecretStr(str(data["jwt"])),
                refresh_token=SecretStr(str(data["refresh_token"])),
                feed_token=SecretStr(str(data["feed_token"])),
                issued_at=datetime.fromisoformat(str(data["issued_at"])),
            )
        except (ValueError, KeyError, TypeError):
            raise ValueError("stored session is malformed") from None


class TokenStore(Protocol):
    """Somewhere to keep one session per client code between runs."""

    def load(self, client_code: str) -> SessionTokens | None: ...

    def save(self, tokens: SessionTokens) -> None: ...

    def clear(self, client_code: str) -> None: ...

    def describe(self) -> str: ...


class MemoryTokenStore:
    """Keeps sessions for the life of the process only."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionTokens] = {}

    def load(self, client_code: str) -> SessionTokens | None:
        """The stored session, if any."""
        return self._sessions.get(client_code)

    def save(self, tokens: SessionTokens) -> None:
        """Remember a session."""
        self._sessions[tokens.client_code] = tokens

    def clear(self, client_code: str) -> None:
        """Forget a session."""
        self._sessions.pop(client_code, None)

    def describe(self) -> str:
        """Where sessions go."""
        return "memory (this process only)"


class FileTokenStore:
    """One 0600 JSON file per client code in a 0700 folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, client_code: str) -> Path:
        """The file that holds this account's session."""
        safe = "".join(ch for ch in client_code if ch.isalnum() or ch in "-_") or "default"
        return self.folder / f"session-{safe}.json"

    def load(self, client_code: str) -> SessionTokens | None:
        """The stored session, or None if absent, unreadable or readable by others."""
        path = self.path_for(client_code)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("ignoring session file %s: readable by other users (chmod 600 it)", path)
            return None
        try:
            tokens = SessionTokens.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring session file %s: %s", path, type(exc).__name__)
            return None
        return tokens if tokens.client_code == client_code else None

    def save(self, tokens: SessionTokens) -> None:
        """Write the session atomically: a 0600 temp file in the same folder, then rename."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            self.folder.chmod(0o700)
        target = self.path_for(tokens.client_code)
        fd, temp = tempfile.mkstemp(prefix=".session-", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say so explicitly anyway
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(tokens.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def clear(self, client_code: str) -> None:
        """Delete the session file."""
        with contextlib.suppress(FileNotFoundError):
            self.path_for(client_code).unlink()

    def describe(self) -> str:
        """Where sessions go."""
        return f"file {self.folder} (mode 0600)"


def keyring_available() -> bool:
    """Whether the OS keyring has a real backend (not the 'fail' placeholder)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # backend discovery can fail in many backend-specific ways
        return False
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0


class KeyringTokenStore:
    """The OS keyring, falling back to a file when the keyring turns out to be unusable."""

    def __init__(self, fallback: FileTokenStore) -> None:
        self.fallback = fallback
        self._use_fallback = False

    @staticmethod
    def _user(client_code: str) -> str:
        return f"session:{client_code}"

    def _keyring_call(self, action: str, client_code: str, payload: str | None = None) -> Any:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            if action == "get":
                return keyring.get_password(KEYRING_SERVICE, self._user(client_code))
            if action == "set":
                keyring.set_password(KEYRING_SERVICE, self._user(client_code), payload or "")
                return None
            with contextlib.suppress(PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, self._user(client_code))
            return None
        except KeyringError as exc:  # NoKeyringError included
            log.warning(
                "OS keyring unusable (%s); using %s", type(exc).__name__, self.fallback.describe()
            )
            self._use_fallback = True
            raise _KeyringDown from None

    def load(self, client_code: str) -> SessionTokens | None:
        """The stored session from the keyring (or the fallback file)."""
        if not self._use_fallback:
            try:
                text = self._keyring_call("get", client_code)
            except _KeyringDown:
                return self.fallback.load(client_code)
            if text:
                try:
                    return SessionTokens.from_json(text)
                except ValueError:
                    log.warning("ignoring malformed session in the OS keyring")
                    return None
            return None
        return self.fallback.load(client_code)

    def save(self, tokens: SessionTokens) -> None:
        """Store the session in the keyring (or the fallback file)."""
        if not self._use_fallback:
            try:
                self._keyring_call("set", tokens.client_code, tokens.to_json())
                return
            except _KeyringDown:
                pass
        self.fallback.save(tokens)

    def clear(self, client_code: str) -> None:
        """Forget the session everywhere it could be."""
        if not self._use_fallback:
            with contextlib.suppress(_KeyringDown):
                self._keyring_call("delete", client_code)
        self.fallback.clear(client_code)

    def describe(self) -> str:
        """Where sessions go."""
        if self._use_fallback:
            return self.fallback.describe()
        return f"OS keyring (service {KEYRING_SERVICE!r})"


class _KeyringDown(Exception):
    pass


def default_token_store(data_dir: Path) -> TokenStore:
    """The OS keyring when there is one, else a 0600 file under ``<data_dir>/secrets``."""
    files = FileTokenStore(data_dir / "secrets")
    if keyring_available():
        return KeyringTokenStore(fallback=files)
    return files
