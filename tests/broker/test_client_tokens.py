"""Session tokens: expiry at midnight IST, the 0600 file store, the keyring fallback."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from pydantic import SecretStr

from broker.smartapi.tokens import (
    IST,
    FileTokenStore,
    KeyringTokenStore,
    SessionTokens,
    default_token_store,
    session_expiry,
)

JWT = "eyJhbGciOiJIUzUxMiJ9.jwt-payload.sig"
REFRESH = "eyJhbGciOiJIUzUxMiJ9.refresh-payload.sig"
FEED = "eyJhbGciOiJIUzUxMiJ9.feed-payload.sig"


def tokens(issued_at: datetime, client_code: str = "DEMO01") -> SessionTokens:
    return SessionTokens(
        client_code, SecretStr(JWT), SecretStr(REFRESH), SecretStr(FEED), issued_at
    )


def test_session_ends_at_the_next_midnight_ist() -> None:
    # 23:00 IST on 5 Jan is 17:30 UTC; the session ends at 00:00 IST 6 Jan = 18:30 UTC 5 Jan.
    issued = datetime(2026, 1, 5, 23, 0, tzinfo=IST)
    assert session_expiry(issued) == datetime(2026, 1, 5, 18, 30, tzinfo=UTC)
    # 02:00 IST on 6 Jan (20:30 UTC on 5 Jan) belongs to 6 Jan: ends 00:00 IST on 7 Jan.
    early = datetime(2026, 1, 5, 20, 30, tzinfo=UTC)
    assert session_expiry(early) == datetime(2026, 1, 7, 0, 0, tzinfo=IST)


def test_valid_through_the_close() -> None:
    session = tokens(datetime(2026, 1, 5, 8, 50, tzinfo=IST))
    morning = datetime(2026, 1, 5, 9, 0, tzinfo=IST)
    assert session.valid_at(morning)
    assert session.valid_through(morning)  # until 15:30 today
    assert session.valid_through(morning, until=time(23, 59))
    next_day = datetime(2026, 1, 6, 9, 0, tzinfo=IST)
    assert not session.valid_at(next_day)
    assert not session.valid_through(next_day)


def test_secrets_do_not_show_in_repr() -> None:
    text = repr(tokens(datetime(2026, 1, 5, tzinfo=UTC)))
    assert JWT not in text and REFRESH not in text and FEED not in text


def test_file_store_is_0600_atomic_and_round_trips(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "secrets")
    original = tokens(datetime(2026, 1, 5, 3, 30, tzinfo=UTC))
    store.save(original)
    path = store.path_for("DEMO01")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # No temp file left behind.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    loaded = store.load("DEMO01")
    assert loaded == original
    assert store.load("OTHER") is None
    store.clear("DEMO01")
    assert store.load("DEMO01") is None


def test_file_store_refuses_a_file_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    store.save(tokens(datetime(2026, 1, 5, tzinfo=UTC)))
    store.path_for("DEMO01").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert store.load("DEMO01") is None
    assert "readable by other users" in caplog.text
    assert JWT not in caplog.text


def test_file_store_ignores_a_corrupt_file_without_echoing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    path = store.path_for("DEMO01")
    path.write_text('{"jwt": "' + JWT + '"')
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert store.load("DEMO01") is None
    assert JWT not in caplog.text


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


def test_no_keyring_backend_falls_back_to_the_file(tmp_path: Path, restore_keyring: None) -> None:
    keyring.set_keyring(fail.Keyring())
    store = default_token_store(tmp_path)
    assert isinstance(store, FileTokenStore)
    store.save(tokens(datetime(2026, 1, 5, tzinfo=UTC)))
    path = tmp_path / "secrets" / "session-DEMO01.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class _DictKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


class _BrokenKeyring(_DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.NoKeyringError("no backend")

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.NoKeyringError("no backend")


def test_keyring_store_uses_service_optbot(tmp_path: Path, restore_keyring: None) -> None:
    backend = _DictKeyring()
    keyring.set_keyring(backend)
    store = default_token_store(tmp_path)
    assert isinstance(store, KeyringTokenStore)
    original = tokens(datetime(2026, 1, 5, tzinfo=UTC))
    store.save(original)
    assert ("optbot", "session:DEMO01") in backend.items
    assert not (tmp_path / "secrets").exists()
    assert store.load("DEMO01") == original


def test_keyring_that_fails_at_use_falls_back_to_the_file(
    tmp_path: Path, restore_keyring: None, caplog: pytest.LogCaptureFixture
) -> None:
    keyring.set_keyring(_BrokenKeyring())
    store = default_token_store(tmp_path)
    original = tokens(datetime(2026, 1, 5, tzinfo=UTC))
    with caplog.at_level(logging.WARNING):
        store.save(original)
    assert stat.S_IMODE((tmp_path / "secrets" / "session-DEMO01.json").stat().st_mode) == 0o600
    assert store.load("DEMO01") == original
    assert "file" in store.describe()
    assert JWT not in caplog.text
