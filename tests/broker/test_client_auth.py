"""Login, refresh, stored sessions and the one re-login, against the simulator over loopback."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.smartapi.errors import AuthError
from broker.smartapi.tokens import IST, FileTokenStore
from tests.broker.test_client_support import (
    assert_no_secrets,
    exception_texts,
    issued_store,
    make_client,
    requests_seen,
    sim_credentials,
)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def _wrong_totp(sim: Any) -> str:
    """A 6-digit code that is none of the codes the simulator accepts right now (±1 step)."""
    from broker.sim.credentials import totp_code

    now = datetime.now().timestamp()
    valid = {totp_code(sim.totp_secret, now + step * 30) for step in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in valid)


def test_login_stores_the_session_and_profile_works(sim: Any, tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)

    async def scenario() -> None:
        async with make_client(sim, store=store) as client:
            tokens = await client.session.login()
            assert tokens.jwt.get_secret_value().startswith("eyJ")
            profile = await client.session.profile()
            assert profile.client_code == sim.client_code
            assert "NFO" in profile.exchanges
            # A session made now lasts until the next midnight IST.
            until = client.session.session_valid_until()
            assert until is not None
            local = until.astimezone(IST)
            assert (local.hour, local.minute) == (0, 0)
            assert local - datetime.now(IST) <= timedelta(days=1)

    asyncio.run(scenario())
    saved = store.load(sim.client_code)
    assert saved is not None and saved.valid_at(datetime.now(IST))


def test_stored_session_is_reused_without_logging_in(sim: Any) -> None:
    store = issued_store(sim)

    async def scenario() -> None:
        async with make_client(sim, store=store) as client:
            funds = await client.funds()
            assert funds.available_cash_paise > 0
            assert client.session.stats.logins == 0

    asyncio.run(scenario())


def test_bad_totp_is_an_auth_error_with_the_broker_code(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> AuthError:
        async with make_client(sim) as client:
            with pytest.raises(AuthError) as caught:
                await client.session.login(_wrong_totp(sim))
            assert client.transport.attempts == 1  # a refused login is not retried
            assert client.session.tokens is None
            return caught.value

    error = asyncio.run(scenario())
    assert error.code == "AB1050"
    assert "Invalid totp" in str(error)
    assert_no_secrets(exception_texts(error), caplog.records, sim)


def test_bad_pin_is_an_auth_error(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    credentials = sim_credentials(sim, pin="9876")

    async def scenario() -> AuthError:
        async with make_client(sim, credentials=credentials) as client:
            with pytest.raises(AuthError) as caught:
                await client.profile()
            return caught.value

    error = asyncio.run(scenario())
    assert error.code == "AB1007"
    assert_no_secrets(exception_texts(error), caplog.records, sim)
    # Nor the wrong PIN that was typed.
    assert "9876" not in " ".join(exception_texts(error)) + caplog.text


def test_refresh_trades_tokens_for_new_ones(sim: Any) -> None:
    async def scenario() -> None:
        async with make_client(sim) as client:
            first = await client.session.login()
            second = await client.session.refresh()
            assert second.jwt != first.jwt and second.feed_token != first.feed_token
            assert client.session.stats.refreshes == 1
            # The new session works.
            assert (await client.session.profile()).client_code == sim.client_code

    asyncio.run(scenario())


def test_expired_token_is_renewed_once_and_the_call_succeeds(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with make_client(sim) as client:
            await client.session.login()
            old_jwt = client.session.tokens.jwt  # type: ignore[union-attr]
            # The nightly-rollover fault: tokens issued before the chosen session instant
            # stop working once the session clock reaches it.
            rollover = (sim.now() + timedelta(minutes=1)).replace(second=0, microsecond=0)
            sim.set_faults(f"expire_at={rollover:%H:%M}")
            sim.set_clock(at=(rollover + timedelta(minutes=1)).time())
            try:
                funds = await client.funds()
            finally:
                sim.clear_faults()
            assert funds.net_paise > 0
            assert client.session.stats.recoveries == 1
            assert client.session.stats.refreshes == 1  # refresh was enough
            assert client.session.tokens.jwt != old_jwt  # type: ignore[union-attr]
            assert_no_secrets([caplog.text], caplog.records, sim, [client])

    asyncio.run(scenario())


def test_refused_refresh_falls_back_to_a_full_login(sim: Any) -> None:
    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            await client.profile()
            sim.expire_sessions(refresh=True)
            rms = await client.funds()
            assert rms.net_paise > 0
            stats = client.session.stats
            assert (stats.recoveries, stats.refreshes, stats.logins) == (1, 1, 1)

    asyncio.run(scenario())


def test_without_totp_secret_an_expired_session_needs_a_person(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = issued_store(sim)
    credentials = sim_credentials(sim, totp_secret=False)

    async def scenario() -> AuthError:
        async with make_client(sim, store=store, credentials=credentials) as client:
            await client.profile()
            sim.expire_sessions(refresh=True)
            with pytest.raises(AuthError, match="optbot login") as caught:
                await client.profile()
            assert client.session.stats.logins == 0
            assert_no_secrets(exception_texts(caught.value), caplog.records, sim, [client])
            return caught.value

    asyncio.run(scenario())
    assert store.load(sim.client_code) is None  # the dead session is forgotten


def test_persistent_auth_failure_gives_up_after_exactly_one_relogin(
    sim: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Every session token is refused, fresh ones included (an account locked mid-session).
    monkeypatch.setattr(sim.state.sessions, "is_live", lambda session, now=None: False)

    async def scenario() -> None:
        async with make_client(sim) as client:
            before = requests_seen(sim)
            with pytest.raises(AuthError) as caught:
                await client.funds()
            stats = client.session.stats
            assert stats.recoveries == 1
            assert stats.logins + stats.refreshes == 2  # the first login, then one renewal
            # login, getRMS (refused), generateTokens, getRMS replay (refused).
            assert requests_seen(sim) - before == 4
            assert caught.value.code == "AG8001"
            # The session is now unusable: no further requests, no further logins.
            with pytest.raises(AuthError):
                await client.profile()
            assert requests_seen(sim) - before == 4
            assert_no_secrets(exception_texts(caught.value), caplog.records, sim, [client])

    asyncio.run(scenario())


def test_logout_ends_the_session_and_forgets_it(sim: Any) -> None:
    store = issued_store(sim)

    async def scenario() -> None:
        async with make_client(sim, store=store) as client:
            await client.profile()
            tokens = client.session.tokens
            await client.session.logout()
            assert client.session.tokens is None
            assert client.session.store.load(sim.client_code) is None
            # The broker no longer honours the old token.
            with pytest.raises(AuthError):
                await client.session.use_tokens(tokens, save=False)  # type: ignore[arg-type]

    asyncio.run(scenario())
    assert store.load(sim.client_code) is None
