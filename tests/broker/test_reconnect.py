"""The shared reconnect machinery: the retry classifier, backoff, and credentials providers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.http11 import Response

from broker.smartapi.errors import AuthError, BrokerUnavailable, RateLimited
from broker.smartapi.feed import MarketFeed, Mode
from broker.smartapi.reconnect import (
    Backoff,
    FeedAuthError,
    FeedCredentials,
    FeedRefused,
    classify_failure,
    pick_credentials,
    session_credentials,
)
from tests.broker.test_client_support import issued_store, make_client

NIFTY = "99926000"
FAST = Backoff(initial=0.05, max_delay=0.5, throttled_delay=0.2)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def provider_feed(sim: Any, provider: Any, **overrides: Any) -> MarketFeed:
    options: dict[str, Any] = {
        "api_key": sim.api_key,
        "client_code": sim.client_code,
        "credentials": provider,
        "ping_interval": 0.2,
        "silence_timeout": 2.0,
        "backoff": FAST,
        "rng": random.Random(1),
    }
    options.update(overrides)
    return MarketFeed(sim.ws_url, **options)


# --------------------------------------------------------------------------- credentials


def test_session_credentials_renew_the_rest_session_after_expiry(sim: Any) -> None:
    ticks: list[int] = []

    async def scenario() -> tuple[MarketFeed, int, int, bool]:
        async with make_client(sim, store=issued_store(sim)) as client:
            first_jwt = await client.session.jwt()
            feed = provider_feed(
                sim,
                session_credentials(client.session),
                on_batch=lambda batch: ticks.append(len(batch)),
            )
            await feed.subscribe([NIFTY], Mode.LTP)
            async with feed:
                await wait_until(lambda: sum(ticks) >= 2, 10, "ticks on the first session")
                # The JWT dies (its refresh token lives on) and the socket drops.
                sim.expire_sessions()
                sim.drop_connections("feed")
                await wait_until(lambda: feed.stats.reconnects == 1, 10, "a reconnect")
                seen = sum(ticks)
                await wait_until(lambda: sum(ticks) > seen, 10, "ticks on the renewed session")
            renewed = await client.session.jwt() != first_jwt
            return feed, client.session.stats.refreshes, client.session.stats.logins, renewed

    feed, refreshes, logins, renewed = run(scenario())
    # One refusal, one generateTokens call, no new login; the REST session uses the new JWT.
    assert feed.stats.credential_refreshes == 1
    assert (refreshes, logins) == (1, 0)
    assert renewed
    assert feed.failure is None


def test_provider_retry_later_is_retried_and_other_errors_stop_the_socket(sim: Any) -> None:
    tokens = sim.issue_session()
    good = FeedCredentials(jwt=tokens["jwtToken"], feed_token=tokens["feedToken"])
    flaky_calls: list[bool] = []

    async def flaky(refresh: bool) -> FeedCredentials:
        flaky_calls.append(refresh)
        if len(flaky_calls) <= 2:
            raise BrokerUnavailable("login endpoint timed out")
        return good

    async def refused(refresh: bool) -> FeedCredentials:
        raise AuthError("no TOTP secret on this machine: run `optbot login`")

    async def wrong_type(refresh: bool) -> Any:
        return tokens

    async def scenario() -> list[Any]:
        outcomes: list[Any] = []
        feed = provider_feed(sim, flaky)
        async with feed:
            await feed.wait_connected(5)
        outcomes.append(feed)
        for provider in (refused, wrong_type):
            stopped = provider_feed(sim, provider)
            await stopped.start()
            with pytest.raises(Exception) as caught:
                await stopped.wait_connected(5)
            await stopped.close()
            outcomes.append((stopped, caught.value))
        return outcomes

    flaky_feed, (refused_feed, auth_error), (typed_feed, type_error) = run(scenario())
    # Two transient failures, backed off, then a connection; no handshake was wasted.
    assert flaky_calls == [False, False, False]
    assert flaky_feed.stats.connect_attempts == 1
    assert flaky_feed.failure is None
    # The provider's own AuthError is what stops the socket: nothing reached the server.
    assert type(auth_error) is AuthError and "optbot login" in str(auth_error)
    assert refused_feed.failure is auth_error
    assert refused_feed.stats.connect_attempts == 0
    assert isinstance(type_error, TypeError) and "FeedCredentials" in str(type_error)
    assert typed_feed.stats.connect_attempts == 0


def test_feed_credentials_strip_bearer_and_hide_in_repr() -> None:
    credentials = FeedCredentials(jwt="Bearer eyJsecret.jwt ", feed_token=" eyJfeed ")
    assert (credentials.jwt, credentials.feed_token) == ("eyJsecret.jwt", "eyJfeed")
    assert "eyJ" not in repr(credentials)


def test_pick_credentials_wants_exactly_one_kind() -> None:
    async def provider(refresh: bool) -> FeedCredentials:
        return FeedCredentials(jwt="j")

    fixed = pick_credentials(
        "feed", jwt="j", feed_token="f", credentials=None, feed_token_required=True
    )
    assert fixed == FeedCredentials(jwt="j", feed_token="f")
    assert (
        pick_credentials(
            "feed", jwt=None, feed_token=None, credentials=provider, feed_token_required=True
        )
        is provider
    )
    # The order-status stream needs no feed token.
    assert pick_credentials(
        "orders", jwt="j", feed_token=None, credentials=None, feed_token_required=False
    ) == FeedCredentials(jwt="j")
    with pytest.raises(ValueError, match="not both"):
        pick_credentials(
            "feed", jwt="j", feed_token=None, credentials=provider, feed_token_required=True
        )
    with pytest.raises(ValueError, match="jwt= and feed_token="):
        pick_credentials(
            "feed", jwt="j", feed_token=None, credentials=None, feed_token_required=True
        )
    with pytest.raises(ValueError, match="give jwt=, or"):
        pick_credentials(
            "orders", jwt=None, feed_token=None, credentials=None, feed_token_required=False
        )


# --------------------------------------------------------------------------- classifier


def _status(code: int, message: str = "") -> InvalidStatus:
    headers = Headers({"x-error-message": message} if message else {})
    return InvalidStatus(Response(code, "", headers, b""))


def test_classifier_gives_up_on_auth_and_retries_what_can_recover() -> None:
    backoff = Backoff(throttled_delay=7.0)
    unauthorised = classify_failure(
        _status(401, "Invalid Header - Invalid Auth token"), service="feed", backoff=backoff
    )
    assert not unauthorised.retry
    assert isinstance(unauthorised.error, FeedAuthError)
    assert unauthorised.error.reason == "Invalid Header - Invalid Auth token"

    expired = classify_failure(_status(403), service="feed", backoff=backoff)
    assert not expired.retry
    assert isinstance(expired.error, FeedAuthError)
    assert expired.error.status == 403

    throttled = classify_failure(_status(429), service="feed", backoff=backoff)
    assert throttled.retry and throttled.min_delay == 7.0

    assert classify_failure(_status(503), service="feed", backoff=backoff).retry
    not_found = classify_failure(_status(404), service="feed", backoff=backoff)
    assert not not_found.retry and isinstance(not_found.error, FeedRefused)
    assert classify_failure(ConnectionRefusedError(), service="feed", backoff=backoff).retry
    assert classify_failure(TimeoutError(), service="feed", backoff=backoff).retry
    assert classify_failure(InvalidHandshake("closed"), service="feed", backoff=backoff).retry
    # Our own bugs are not network weather: re-raised, not retried.
    bug = classify_failure(KeyError("x"), service="feed", backoff=backoff)
    assert not bug.retry and bug.error is None


def test_backoff_golden_values() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max_delay=30.0, jitter=0.0)
    rng = random.Random(0)
    # 0.5 · 2^n: 0.5, 1, 2, 4, 8, 16, then capped at 30.
    assert [backoff.delay(n, rng) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_stays_within_its_jitter_band(attempt: int, jitter: float, seed: int) -> None:
    backoff = Backoff(initial=0.25, factor=3.0, max_delay=20.0, jitter=jitter)
    ceiling = min(20.0, 0.25 * 3.0**attempt) if attempt < 64 else 20.0
    delay = backoff.delay(attempt, random.Random(seed))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


def test_classifier_marks_auth_failures_renewable_and_provider_trouble_retryable() -> None:
    backoff = Backoff(throttled_delay=7.0)
    for status in (401, 403):
        verdict = classify_failure(_status(status), service="feed", backoff=backoff)
        assert verdict.renew_credentials and not verdict.retry
    for status in (404, 429, 503):
        assert not classify_failure(
            _status(status), service="feed", backoff=backoff
        ).renew_credentials
    # What a REST-backed provider raises when its login or refresh hits weather.
    throttled = classify_failure(RateLimited("busy"), service="feed", backoff=backoff)
    assert throttled.retry and throttled.min_delay == 7.0
    assert classify_failure(BrokerUnavailable("5xx"), service="feed", backoff=backoff).retry
    refused = classify_failure(AuthError("bad pin"), service="feed", backoff=backoff)
    assert not refused.retry and refused.error is None and not refused.renew_credentials
