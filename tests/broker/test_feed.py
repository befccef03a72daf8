"""MarketFeed against the simulator over loopback: modes, unsubscribe, liveness, faults, limits."""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve

from broker.smartapi.codec import FRAME_LENGTH, Tick, TickBatch, encode_tick
from broker.smartapi.errors import AuthError, InvalidRequest
from broker.smartapi.feed import (
    Backoff,
    ConnectionLimitError,
    FeedAuthError,
    FeedCredentials,
    MarketFeed,
    Mode,
    ServerMessageError,
    Subscription,
    SubscriptionLimitError,
)

NIFTY = "99926000"
NSE_CM = 1
LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
# Tokens the simulator's master does not list: accepted by the server, they never tick.
UNLISTED = [str(70_000_000 + n) for n in range(1001)]
FAST = Backoff(initial=0.05, max_delay=0.5, throttled_delay=0.2)


def rest_headers(api_key: str) -> dict[str, str]:
    """The SPEC §1.2 headers every REST call carries."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": "127.0.0.1",
        "X-ClientPublicIP": "127.0.0.1",
        "X-MACAddress": "00:00:00:00:00:00",
        "X-PrivateKey": api_key,
    }


def login(sim: Any) -> dict[str, str]:
    """loginByPassword over plain httpx; waits out the 1/s login budget other tests may use."""
    deadline = time.monotonic() + 10
    while True:
        body = {
            "clientcode": sim.client_code,
            "password": sim.pin,
            # pyotp refuses the short demo secret; the simulator computes the same RFC 6238 code.
            "totp": sim.totp_now(),
        }
        response = httpx.post(
            sim.rest_url + LOGIN_PATH, json=body, headers=rest_headers(sim.api_key), timeout=10
        )
        if response.status_code == 403 and time.monotonic() < deadline:
            time.sleep(1.1)  # "exceeding access rate": login allows one call a second
            continue
        response.raise_for_status()
        data = response.json()["data"]
        return {"jwt": data["jwtToken"], "feed_token": data["feedToken"]}


@pytest.fixture(scope="module")
def session(sim_server: Any) -> dict[str, str]:
    """One REST login per module (the `sim` fixture's server lives as long)."""
    return login(sim_server)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    """Run one test coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class Collector:
    """on_batch target that keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[TickBatch] = []

    def __call__(self, batch: TickBatch) -> None:
        self.batches.append(batch)

    @property
    def ticks(self) -> int:
        return sum(len(batch) for batch in self.batches)


def make_feed(sim: Any, session: dict[str, str], **overrides: Any) -> MarketFeed:
    options: dict[str, Any] = {
        "jwt": session["jwt"],
        "api_key": sim.api_key,
        "client_code": sim.client_code,
        "feed_token": session["feed_token"],
        "ping_interval": 0.2,
        "silence_timeout": 2.0,
        "backoff": FAST,
        "rng": random.Random(1),
    }
    options.update(overrides)
    return MarketFeed(sim.ws_url, **options)


# --------------------------------------------------------------------------- happy path


@pytest.mark.parametrize("mode", list(Mode))
def test_each_mode_delivers_decoded_ticks_of_that_mode(
    sim: Any, session: dict[str, str], mode: Mode
) -> None:
    collector = Collector()

    async def scenario() -> None:
        feed = make_feed(sim, session, on_batch=collector)
        await feed.subscribe([NIFTY], mode, NSE_CM)
        async with feed:
            await wait_until(lambda: collector.ticks >= 5, 10, "five NIFTY ticks")
        # Every frame was exactly the mode's length, so none was malformed.
        assert feed.stats.malformed == 0
        assert feed.stats.frames == feed.stats.ticks >= 5
        assert feed.stats.last_message_at is not None

    run(scenario())
    ticks = [tick for batch in collector.batches for tick in batch.to_ticks()]
    assert {tick.subscription_mode for tick in ticks} == {int(mode)}
    assert {tick.token for tick in ticks} == {NIFTY}
    assert {tick.exchange_type for tick in ticks} == {NSE_CM}
    last = ticks[-1]
    assert last.last_traded_price > 0
    assert last.exchange_timestamp > 0
    if mode == Mode.LTP:
        # An LTP frame (51 bytes) ends at the last traded price: nothing beyond it is filled.
        assert last.closed_price == 0
        assert last.open_price_of_the_day == 0
    else:
        # QUOTE (123 bytes) carries the day's OHLC and the previous close.
        assert last.closed_price > 0
        assert last.low_price_of_the_day <= last.last_traded_price <= last.high_price_of_the_day
    if mode == Mode.SNAP_QUOTE:
        # SNAP_QUOTE (379 bytes) ends with the 52-week range (an index has no circuit limits).
        assert 0 < last.week_52_low_price <= last.week_52_high_price
    else:
        assert last.week_52_high_price == 0
    assert FRAME_LENGTH[int(mode)] in (51, 123, 379)


def test_async_iterator_and_async_callback_deliver_batches(
    sim: Any, session: dict[str, str]
) -> None:
    async def scenario() -> tuple[int, int]:
        iterated = 0
        feed = make_feed(sim, session)
        await feed.subscribe([NIFTY], Mode.LTP)
        await feed.start()
        async for batch in feed.batches():
            iterated += len(batch)
            if iterated >= 3:
                break
        await feed.close()

        seen: list[int] = []

        async def on_batch(batch: TickBatch) -> None:
            await asyncio.sleep(0)
            seen.append(len(batch))

        async with make_feed(sim, session, on_batch=on_batch) as second:
            assert isinstance(second, MarketFeed)
            await second.subscribe([NIFTY], Mode.LTP)
            await wait_until(lambda: sum(seen) >= 3, 10, "ticks via an async callback")
        return iterated, sum(seen)

    iterated, called = run(scenario())
    assert iterated >= 3
    assert called >= 3


def test_unsubscribe_stops_ticks_but_not_the_socket(sim: Any, session: dict[str, str]) -> None:
    collector = Collector()

    async def scenario() -> MarketFeed:
        feed = make_feed(sim, session, on_batch=collector)
        async with feed:
            await feed.wait_connected(5)
            await feed.subscribe([NIFTY], Mode.QUOTE)
            await wait_until(lambda: collector.ticks >= 3, 10, "ticks before unsubscribing")
            await feed.unsubscribe([NIFTY], Mode.QUOTE)
            assert feed.subscriptions == frozenset()
            # Frames already in flight may still land; then the stream must stay quiet
            # while pongs keep arriving on the same socket.
            await asyncio.sleep(0.5)
            ticks, pongs = feed.stats.ticks, feed.stats.pongs
            await wait_until(lambda: feed.stats.pongs >= pongs + 4, 5, "four more pongs")
            assert feed.stats.ticks == ticks
            assert feed.connected
            assert feed.stats.reconnects == 0
        return feed

    run(scenario())


def test_ping_pong_keeps_an_idle_socket_alive(sim: Any, session: dict[str, str]) -> None:
    async def scenario() -> MarketFeed:
        # No subscriptions: only the pong answers to our pings count as traffic, and the
        # watchdog (0.8 s) would drop the socket if they stopped.
        feed = make_feed(sim, session, ping_interval=0.15, silence_timeout=0.8)
        async with feed:
            await feed.wait_connected(5)
            await wait_until(lambda: feed.stats.pongs >= 12, 6, "a dozen pongs")
            assert feed.connected
        return feed

    feed = run(scenario())
    assert feed.stats.watchdog_trips == 0
    assert feed.stats.reconnects == 0
    assert feed.stats.connect_attempts == 1


# --------------------------------------------------------------------------- faults


def test_dropped_socket_reconnects_and_resubscribes(sim: Any, session: dict[str, str]) -> None:
    collector = Collector()

    async def scenario() -> MarketFeed:
        feed = make_feed(sim, session, on_batch=collector)
        await feed.subscribe([NIFTY], Mode.LTP)
        await feed.subscribe([NIFTY], Mode.QUOTE)
        async with feed:
            await wait_until(lambda: collector.ticks >= 4, 10, "ticks before the drop")
            sim.drop_connections("feed")
            await wait_until(lambda: feed.stats.reconnects == 1, 10, "a reconnect")
            before = len(collector.batches)
            # A new socket knows no subscriptions: ticks resume only if they were re-sent.
            await wait_until(
                lambda: (
                    {
                        int(mode)
                        for batch in collector.batches[before:]
                        for mode in batch.ticks["subscription_mode"]
                    }
                    == {1, 2}
                ),
                10,
                "LTP and QUOTE ticks after the reconnect",
            )
        return feed

    feed = run(scenario())
    assert feed.stats.reconnects == 1
    assert feed.stats.connections == 2
    assert feed.failure is None


def test_watchdog_reconnects_a_silent_socket(sim: Any, session: dict[str, str]) -> None:
    collector = Collector()

    async def scenario() -> MarketFeed:
        feed = make_feed(sim, session, on_batch=collector, silence_timeout=1.0)
        await feed.subscribe([NIFTY], Mode.LTP)
        async with feed:
            await wait_until(lambda: collector.ticks >= 3, 10, "ticks before the silence")
            # Sockets go quiet (no ticks, no pongs) 0.2 s after they open.
            sim.set_faults("ws_silent_after_s=0.2")
            await wait_until(lambda: feed.stats.watchdog_trips >= 1, 5, "the watchdog")
            sim.clear_faults()
            await wait_until(lambda: feed.stats.reconnects >= 1, 5, "a reconnect")
            ticks = collector.ticks
            await wait_until(lambda: collector.ticks > ticks, 10, "ticks after the silence")
        return feed

    feed = run(scenario())
    assert feed.stats.watchdog_trips >= 1
    assert feed.failure is None


def test_malformed_frames_are_counted_and_good_ticks_still_flow(
    sim: Any, session: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    collector = Collector()
    caplog.set_level(logging.WARNING, logger="broker.smartapi.feed")

    async def scenario() -> MarketFeed:
        feed = make_feed(sim, session, on_batch=collector, malformed_log_every=1_000_000)
        await feed.subscribe([NIFTY], Mode.SNAP_QUOTE)
        async with feed:
            await wait_until(lambda: collector.ticks >= 1, 10, "a first tick")
            sim.set_faults("malformed=0.3")
            await wait_until(lambda: feed.stats.malformed >= 5, 10, "five malformed frames")
            sim.clear_faults()
            ticks = collector.ticks
            await wait_until(lambda: collector.ticks > ticks + 3, 10, "good ticks afterwards")
        return feed

    feed = run(scenario())
    stats = feed.stats
    assert stats.frames == stats.ticks + stats.malformed
    assert stats.reconnects == 0
    assert stats.last_malformed_reason
    # Only well-formed SNAP_QUOTE rows reach the consumer.
    for batch in collector.batches:
        assert set(batch.ticks["subscription_mode"].tolist()) == {3}
        assert set(batch.ticks["token"].tolist()) == {NIFTY.encode()}
    # Logged once (the first), not once per frame.
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1


def test_bad_feed_token_stops_with_feed_auth_error_and_no_retry_storm(
    sim: Any, session: dict[str, str]
) -> None:
    reported: list[object] = []

    async def scenario() -> tuple[MarketFeed, BaseException]:
        feed = make_feed(sim, session, feed_token="not-the-feed-token", on_error=reported.append)
        await feed.start()
        with pytest.raises(FeedAuthError) as caught:
            await feed.wait_connected(5)
        await asyncio.sleep(0.5)  # time in which a retry loop would have run many times
        await feed.close()
        return feed, caught.value

    feed, error = run(scenario())
    assert isinstance(error, AuthError)
    assert error.status == 401
    assert error.reason == "Invalid Header - Invalid Feed Token"
    assert feed.stats.connect_attempts == 1
    assert feed.failure is error
    assert reported == [error]


# --------------------------------------------------------------------------- token rollover


class SimSessions:
    """Credentials provider: the current simulator session, a freshly minted one on refresh."""

    def __init__(self, sim: Any, first: dict[str, str]) -> None:
        self.sim = sim
        self.current = FeedCredentials(jwt=first["jwt"], feed_token=first["feed_token"])
        self.calls: list[bool] = []

    async def __call__(self, refresh: bool) -> FeedCredentials:
        self.calls.append(refresh)
        if refresh:
            tokens = self.sim.issue_session()
            self.current = FeedCredentials(jwt=tokens["jwtToken"], feed_token=tokens["feedToken"])
        return self.current


def rollover_faults(sim: Any, extra: str = "") -> str:
    """Faults that expire every session issued so far, with the clock moved past the rollover.

    A fault, not `expire_sessions()`: clearing it (the `sim` fixture does) revives the
    module's shared login for the tests that follow.
    """
    now = sim.now()
    # Two session minutes ahead is later than any session issued yet; the clock then
    # jumps three minutes ahead, past the rollover.
    spec = f"expire_at={(now + timedelta(minutes=2)):%H:%M}{extra}"
    sim.set_faults(spec)
    sim.set_clock(at=f"{(now + timedelta(minutes=3)):%H:%M:%S}")
    return spec


def test_feed_with_a_provider_survives_the_nightly_rollover(
    sim: Any, session: dict[str, str]
) -> None:
    collector = Collector()
    provider = SimSessions(sim, session)

    async def scenario() -> MarketFeed:
        feed = make_feed(
            sim,
            session,
            jwt=None,
            feed_token=None,
            credentials=provider,
            on_batch=collector,
            silence_timeout=1.0,
        )
        await feed.subscribe([NIFTY], Mode.LTP)
        async with feed:
            await wait_until(lambda: collector.ticks >= 3, 10, "ticks before the rollover")
            # The SmartAPI picture: tokens roll over and the open socket goes silent.
            spec = rollover_faults(sim, ",ws_silent_after_s=0.5")
            await wait_until(lambda: feed.stats.credential_refreshes == 1, 10, "a renewal")
            await wait_until(lambda: feed.connected, 10, "a socket on the new session")
            sim.set_faults(spec.removesuffix(",ws_silent_after_s=0.5"))
            ticks = collector.ticks
            await wait_until(lambda: collector.ticks > ticks + 2, 10, "ticks after the rollover")
            assert feed.failure is None
        return feed

    feed = run(scenario())
    assert feed.stats.watchdog_trips >= 1
    # Old tokens on the first reconnect (refused), then one renewal; never a second one.
    assert provider.calls[:3] == [False, False, True]
    assert provider.calls.count(True) == 1
    assert feed.stats.credential_refreshes == 1
    assert feed.stats.reconnects >= 1
    assert feed.failure is None


def test_feed_without_a_provider_stops_at_the_rollover(sim: Any, session: dict[str, str]) -> None:
    reported: list[object] = []
    collector = Collector()

    async def scenario() -> tuple[MarketFeed, FeedAuthError]:
        feed = make_feed(sim, session, on_error=reported.append, on_batch=collector)
        await feed.subscribe([NIFTY], Mode.LTP)
        await feed.start()
        # A tick proves the server holds the socket, so the drop below cannot miss it.
        await wait_until(lambda: collector.ticks >= 1, 10, "a first tick")
        rollover_faults(sim)
        sim.drop_connections("feed")
        with pytest.raises(FeedAuthError) as caught:
            await asyncio.wait_for(feed.join(), 10)
        await asyncio.sleep(0.3)  # time in which a retry loop would have run again
        await feed.close()
        return feed, caught.value

    feed, error = run(scenario())
    assert error.status == 401
    assert error.reason == "Invalid Header - Invalid Auth token"
    # The first connection, then the one refused reconnect: nothing more.
    assert feed.stats.connect_attempts == 2
    assert feed.stats.credential_refreshes == 0
    assert reported == [error]


def test_provider_refused_twice_stops_after_one_renewal(sim: Any, session: dict[str, str]) -> None:
    calls: list[bool] = []

    async def stale(refresh: bool) -> FeedCredentials:
        calls.append(refresh)
        return FeedCredentials(jwt=session["jwt"], feed_token="not-the-feed-token")

    async def scenario() -> tuple[MarketFeed, FeedAuthError]:
        feed = make_feed(sim, session, jwt=None, feed_token=None, credentials=stale)
        await feed.start()
        with pytest.raises(FeedAuthError) as caught:
            await feed.wait_connected(5)
        await asyncio.sleep(0.5)  # time in which a retry loop would have run many times
        await feed.close()
        return feed, caught.value

    feed, error = run(scenario())
    assert error.reason == "Invalid Header - Invalid Feed Token"
    assert calls == [False, True]
    assert feed.stats.connect_attempts == 2
    assert feed.stats.credential_refreshes == 1
    assert feed.failure is error


def test_feed_takes_fixed_tokens_or_a_provider_not_both(sim: Any, session: dict[str, str]) -> None:
    async def provider(refresh: bool) -> FeedCredentials:
        return FeedCredentials(jwt=session["jwt"], feed_token=session["feed_token"])

    with pytest.raises(ValueError, match="not both"):
        make_feed(sim, session, credentials=provider)
    with pytest.raises(ValueError, match="jwt= and feed_token="):
        make_feed(sim, session, feed_token=None)


# --------------------------------------------------------------------------- best-five flags


def test_disputed_best_five_flags_are_counted_and_the_ticks_delivered() -> None:
    book = Tick(
        subscription_mode=3,
        exchange_type=2,
        token="43650",
        last_traded_price=12_350,
        best_5_buy_quantity=(75, 150, 0, 0, 0),
        best_5_buy_price=(12_345, 12_340, 0, 0, 0),
        best_5_sell_quantity=(75, 0, 0, 0, 0),
        best_5_sell_price=(12_355, 0, 0, 0, 0),
    )
    good = encode_tick(book)
    # Bids flagged 0 and asks 1, as older SDK builds label the halves (sub-packets at 147 + 20 n).
    swapped = bytearray(good)
    for level in range(10):
        struct.pack_into("<h", swapped, 147 + 20 * level, int(level >= 5))
    frames = [good, bytes(swapped), bytes(swapped)]
    collector = Collector()

    async def stream(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "ping":
                await ws.send("pong")
            elif '"action":1' in str(message):
                for frame in frames:
                    await ws.send(frame)

    async def scenario() -> MarketFeed:
        async with serve(stream, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            feed = MarketFeed(
                f"ws://127.0.0.1:{port}",
                jwt="local-jwt",
                api_key="local-key",
                client_code="FLAGS01",
                feed_token="local-feed-token",
                on_batch=collector,
                ping_interval=0.2,
                backoff=FAST,
            )
            await feed.subscribe(["43650"], Mode.SNAP_QUOTE, 2)
            async with feed:
                await wait_until(lambda: collector.ticks >= 3, 5, "three SNAP_QUOTE ticks")
        return feed

    feed = run(scenario())
    assert (feed.stats.ticks, feed.stats.malformed, feed.stats.flag_mismatches) == (3, 0, 2)
    ticks = [tick for batch in collector.batches for tick in batch.to_ticks()]
    # Every tick, swapped or not, has the same book read by position and its LTP.
    for tick in ticks:
        assert tick.last_traded_price == 12_350
        assert tick.best_5_buy_price == (12_345, 12_340, 0, 0, 0)
        assert tick.best_5_sell_price == (12_355, 0, 0, 0, 0)


# --------------------------------------------------------------------------- limits


def test_subscription_beyond_1000_is_refused_client_side(sim: Any, session: dict[str, str]) -> None:
    async def scenario() -> tuple[MarketFeed, SubscriptionLimitError]:
        feed = make_feed(sim, session)
        async with feed:
            await feed.wait_connected(5)
            await feed.subscribe(UNLISTED[:1000], Mode.LTP)
            # The same pairs again are duplicates, not new subscriptions.
            await feed.subscribe(UNLISTED[:10], Mode.LTP)
            with pytest.raises(SubscriptionLimitError) as caught:
                await feed.subscribe(UNLISTED[1000:], Mode.LTP)
            pongs = feed.stats.pongs
            await wait_until(lambda: feed.stats.pongs >= pongs + 2, 5, "two more pongs")
        return feed, caught.value

    feed, error = run(scenario())
    assert isinstance(error, InvalidRequest)
    assert (error.count, error.limit) == (1001, 1000)
    assert "1001" in str(error)
    assert len(feed.subscriptions) == 1000
    assert Subscription(NSE_CM, UNLISTED[1000], 1) not in feed.subscriptions
    # Nothing was sent, so the server had nothing to refuse.
    assert feed.stats.server_errors == 0


def test_server_refusal_beyond_its_limit_is_reported_to_the_caller(
    sim: Any, session: dict[str, str]
) -> None:
    refusals: list[object] = []

    async def scenario() -> MarketFeed:
        # A client-side limit above the server's lets the request reach the server.
        feed = make_feed(sim, session, max_subscriptions=2000, on_error=refusals.append)
        async with feed:
            await feed.wait_connected(5)
            await feed.subscribe(UNLISTED[:1000], Mode.LTP)
            await feed.subscribe(UNLISTED[1000:], Mode.LTP)
            await wait_until(lambda: bool(refusals), 5, "the server's refusal")
        return feed

    feed = run(scenario())
    (refusal,) = refusals
    assert isinstance(refusal, ServerMessageError)
    assert refusal.code == "E1002"
    assert refusal.refused == {Subscription(NSE_CM, UNLISTED[1000], 1)}
    # The refused pair is forgotten, so a reconnect will not ask for it again.
    assert len(feed.subscriptions) == 1000
    assert feed.stats.server_errors == 1
    assert list(feed.server_errors) == [refusal]


def test_fourth_connection_is_refused_client_side(sim: Any, session: dict[str, str]) -> None:
    async def scenario() -> tuple[ConnectionLimitError, MarketFeed, bool]:
        feeds = [make_feed(sim, session) for _ in range(3)]
        extra = make_feed(sim, session)
        try:
            for feed in feeds:
                await feed.start()
            for feed in feeds:
                await feed.wait_connected(5)
            await wait_until(
                lambda: sim.state_view()["feed_connections"] == 3, 5, "three server-side sockets"
            )
            with pytest.raises(ConnectionLimitError) as caught:
                await extra.start()
            refused_attempts = extra.stats.connect_attempts
            # A slot frees up when one feed closes.
            await feeds[0].close()
            await extra.start()
            await extra.wait_connected(5)
            return caught.value, extra, refused_attempts == 0
        finally:
            for feed in [*feeds, extra]:
                await feed.close()

    error, extra, nothing_sent = run(scenario())
    assert isinstance(error, InvalidRequest)
    assert (error.count, error.limit) == (4, 3)
    assert "connection 4" in str(error) and "at most 3" in str(error)
    # The refused start never tried the server; the later one did, once.
    assert nothing_sent
    assert extra.stats.connections == 1


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_logs_or_errors(
    sim: Any, session: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [session["jwt"], session["feed_token"], sim.api_key]
    collector = Collector()

    async def scenario() -> list[BaseException]:
        errors: list[BaseException] = []
        async with make_feed(sim, session, on_batch=collector) as feed:
            assert isinstance(feed, MarketFeed)
            await feed.subscribe([NIFTY], Mode.LTP)
            await wait_until(lambda: collector.ticks >= 1, 10, "a tick")
        # A refused token that contains the real one must not leak it either.
        bad = make_feed(sim, session, jwt=session["jwt"] + "x")
        await bad.start()
        with pytest.raises(FeedAuthError) as caught:
            await bad.wait_connected(5)
        errors.append(caught.value)
        await bad.close()
        return errors

    errors = run(scenario())
    ours = [
        record
        for record in caplog.records
        if record.name.startswith(("broker.smartapi", "websockets.client"))
    ]
    # The handshake headers were logged (at DEBUG), with their values blanked out.
    assert any("x-feed-token: ***" in record.getMessage() for record in ours)
    for record in ours:
        for secret in secrets:
            assert secret not in record.getMessage()
    for error in errors:
        text = f"{error} {error!r} {error.__cause__}"
        for secret in secrets:
            assert secret not in text
    assert repr(make_feed(sim, session)).count("eyJ") == 0


# --------------------------------------------------------------------------- argument checks


def test_subscribe_rejects_bad_modes_exchange_types_and_tokens(
    sim: Any, session: dict[str, str]
) -> None:
    feed = make_feed(sim, session)

    async def attempt(call: Callable[[], Awaitable[None]]) -> str:
        with pytest.raises((ValueError, TypeError)) as caught:
            await call()
        return str(caught.value)

    async def scenario() -> list[str]:
        return [
            await attempt(lambda: feed.subscribe([NIFTY], 4)),
            await attempt(lambda: feed.subscribe([NIFTY], Mode.LTP, 6)),
            await attempt(lambda: feed.subscribe(["NIFTY"], Mode.LTP)),
            await attempt(lambda: feed.subscribe(NIFTY, Mode.LTP)),
        ]

    messages = run(scenario())
    assert "mode 4" in messages[0] and "SNAP_QUOTE" in messages[0]
    assert "exchange type 6" in messages[1] and "NSE_FO" in messages[1]
    assert "'NIFTY'" in messages[2]
    assert "iterable" in messages[3]
    assert feed.subscriptions == frozenset()
