"""OrderUpdates against the simulator's order-status WebSocket, plus the message parser."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest

from broker.smartapi.errors import AuthError
from broker.smartapi.order_updates import OrderUpdate, OrderUpdates, parse_order_update
from broker.smartapi.reconnect import Backoff, FeedAuthError, FeedCredentials

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
LTP_PATH = "/rest/secure/angelbroking/order/v1/getLtpData"
PLACE_PATH = "/rest/secure/angelbroking/order/v1/placeOrder"
ORDER_BOOK_PATH = "/rest/secure/angelbroking/order/v1/getOrderBook"
SBIN = {"exchange": "NSE", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045"}
FAST = Backoff(initial=0.05, max_delay=0.5, throttled_delay=0.2)


def rest_headers(api_key: str, jwt: str | None = None) -> dict[str, str]:
    """The SPEC §1.2 headers every REST call carries."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": "127.0.0.1",
        "X-ClientPublicIP": "127.0.0.1",
        "X-MACAddress": "00:00:00:00:00:00",
        "X-PrivateKey": api_key,
    }
    if jwt is not None:
        headers["Authorization"] = f"Bearer {jwt}"
    return headers


@pytest.fixture
def session(sim: Any) -> dict[str, str]:
    """A fresh REST login per test (the `sim` fixture empties the rate windows per test)."""
    body = {"clientcode": sim.client_code, "password": sim.pin, "totp": sim.totp_now()}
    response = httpx.post(
        sim.rest_url + LOGIN_PATH, json=body, headers=rest_headers(sim.api_key), timeout=10
    )
    response.raise_for_status()
    data = response.json()["data"]
    return {"jwt": data["jwtToken"], "feed_token": data["feedToken"]}


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def make_updates(sim: Any, session: dict[str, str], **overrides: Any) -> OrderUpdates:
    options: dict[str, Any] = {
        "jwt": session["jwt"],
        "api_key": sim.api_key,
        "client_code": sim.client_code,
        "feed_token": session["feed_token"],
        "on_update": lambda update: None,
        "ping_interval": 0.2,
        "silence_timeout": 2.0,
        "backoff": FAST,
        "rng": random.Random(1),
    }
    options.update(overrides)
    return OrderUpdates(sim.order_ws_url, **options)


async def place_limit_buy(client: httpx.AsyncClient, tag: str) -> str:
    """A marketable LIMIT buy of one SBIN share (1% above the last price); returns its id."""
    ltp = (await client.post(LTP_PATH, json=SBIN)).json()["data"]["ltp"]
    price = (Decimal(str(ltp)) * Decimal("1.01") / Decimal("0.05")).quantize(
        Decimal(1), rounding=ROUND_DOWN
    ) * Decimal("0.05")
    body = {
        **SBIN,
        "variety": "NORMAL",
        "transactiontype": "BUY",
        "ordertype": "LIMIT",
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": str(price),
        "quantity": "1",
        "squareoff": "0",
        "stoploss": "0",
        "ordertag": tag,
    }
    reply = (await client.post(PLACE_PATH, json=body)).json()
    assert reply["status"] is True, reply
    return str(reply["data"]["orderid"])


# --------------------------------------------------------------------------- over the socket


def test_ack_then_the_events_of_a_placed_order(sim: Any, session: dict[str, str]) -> None:
    updates: list[OrderUpdate] = []

    async def scenario() -> tuple[str, dict[str, Any]]:
        async with make_updates(sim, session, on_update=updates.append) as socket:
            await wait_until(lambda: len(updates) >= 1, 5, "the AB00 ack")
            async with httpx.AsyncClient(
                base_url=sim.rest_url, headers=rest_headers(sim.api_key, session["jwt"])
            ) as client:
                order_id = await place_limit_buy(client, "fdtest-ack")
                await wait_until(
                    lambda: any(u.order_id == order_id and u.is_terminal for u in updates),
                    10,
                    "the order's final state",
                )
                book = (await client.get(ORDER_BOOK_PATH)).json()["data"]
            assert socket.stats.acks == 1
        (record,) = [row for row in book if row["orderid"] == order_id]
        return order_id, record

    order_id, record = run(scenario())
    ack = updates[0]
    assert ack.is_ack and ack.ab_code == "AB00" and ack.order_id == ""
    mine = [u for u in updates[1:] if u.order_id == order_id]
    assert [u.status for u in mine][-1] == "complete"
    assert "open" in [u.status for u in mine]
    final = mine[-1]
    assert final.ab_code == "AB05"
    assert final.ordertag == "fdtest-ack"
    assert final.unique_order_id == record["uniqueorderid"]
    assert (final.quantity, final.filled) == (1, 1)
    # The stream's average price agrees with the order book's, exactly, in paise.
    assert final.average_price_paise == int(Decimal(str(record["averageprice"])) * 100)
    assert final.average_price_paise > 0
    assert final.raw["orderData"]["orderid"] == order_id


def test_rejected_order_arrives_with_its_reason(sim: Any, session: dict[str, str]) -> None:
    updates: list[OrderUpdate] = []
    sim.reject_next(1, "RMS: margin shortfall (test)")

    async def scenario() -> str:
        async with make_updates(sim, session, on_update=updates.append):
            await wait_until(lambda: len(updates) >= 1, 5, "the AB00 ack")
            async with httpx.AsyncClient(
                base_url=sim.rest_url, headers=rest_headers(sim.api_key, session["jwt"])
            ) as client:
                order_id = await place_limit_buy(client, "fdtest-rej")
            await wait_until(
                lambda: any(u.order_id == order_id for u in updates), 10, "the rejection"
            )
        return order_id

    order_id = run(scenario())
    (rejected,) = [u for u in updates if u.order_id == order_id]
    assert rejected.status == "rejected"
    assert rejected.ab_code == "AB03"
    assert rejected.is_terminal
    assert rejected.text == "RMS: margin shortfall (test)"
    assert rejected.filled == 0


def test_drop_reconnects_and_asks_the_caller_to_reread_the_order_book(
    sim: Any, session: dict[str, str]
) -> None:
    updates: list[OrderUpdate] = []
    rereads: list[int] = []

    async def scenario() -> OrderUpdates:
        async def reread_order_book() -> None:
            async with httpx.AsyncClient(
                base_url=sim.rest_url, headers=rest_headers(sim.api_key, session["jwt"])
            ) as client:
                reply = (await client.get(ORDER_BOOK_PATH)).json()
            assert reply["status"] is True
            rereads.append(len(updates))

        socket = make_updates(
            sim, session, on_update=updates.append, on_reconnect=reread_order_book
        )
        async with socket:
            await wait_until(lambda: socket.stats.acks == 1, 5, "the first ack")
            assert rereads == []  # the first connection is not a reconnect
            sim.drop_connections("orders")
            await wait_until(lambda: socket.stats.acks == 2, 10, "the ack of a new socket")
        return socket

    socket = run(scenario())
    assert socket.stats.reconnects == 1
    # The hook ran once, before the new socket's first message was delivered.
    assert rereads == [1]
    assert [u.is_ack for u in updates] == [True, True]
    assert socket.failure is None


def test_bad_token_is_an_auth_error_without_retries(sim: Any, session: dict[str, str]) -> None:
    reported: list[object] = []

    async def scenario() -> tuple[OrderUpdates, BaseException]:
        socket = make_updates(
            sim, session, jwt="eyJhbGciOiJIUzUxMiJ9.bogus.token", on_error=reported.append
        )
        await socket.start()
        with pytest.raises(FeedAuthError) as caught:
            await socket.wait_connected(5)
        await asyncio.sleep(0.5)  # a retry loop would have tried several times by now
        await socket.close()
        return socket, caught.value

    socket, error = run(scenario())
    assert isinstance(error, AuthError)
    assert error.status == 401
    assert socket.stats.connect_attempts == 1
    assert reported == [error]


def test_expired_session_is_an_auth_error(sim: Any, session: dict[str, str]) -> None:
    sim.expire_sessions()

    async def scenario() -> tuple[OrderUpdates, FeedAuthError]:
        socket = make_updates(sim, session)
        await socket.start()
        with pytest.raises(FeedAuthError) as caught:
            await socket.wait_connected(5)
        await socket.close()
        return socket, caught.value

    socket, error = run(scenario())
    assert error.status == 403
    assert "log in again" in str(error)
    assert socket.stats.connect_attempts == 1


def test_provider_renews_the_session_after_expiry_and_drop(
    sim: Any, session: dict[str, str]
) -> None:
    calls: list[bool] = []
    current = {"jwt": session["jwt"]}
    rereads: list[int] = []

    async def provider(refresh: bool) -> FeedCredentials:
        calls.append(refresh)
        if refresh:
            current["jwt"] = sim.issue_session()["jwtToken"]
        return FeedCredentials(jwt=current["jwt"])

    async def scenario() -> OrderUpdates:
        socket = make_updates(
            sim,
            session,
            jwt=None,
            feed_token=None,
            credentials=provider,
            on_reconnect=lambda: rereads.append(1),
        )
        async with socket:
            await wait_until(lambda: socket.stats.acks == 1, 5, "the first ack")
            sim.expire_sessions()
            sim.drop_connections("orders")
            await wait_until(lambda: socket.stats.acks == 2, 10, "the ack on the new session")
            assert socket.failure is None
        return socket

    socket = run(scenario())
    # Old token (refused with 403 "Token expired"), then one renewal that connects.
    assert calls == [False, False, True]
    assert socket.stats.credential_refreshes == 1
    assert socket.stats.connect_attempts == 3
    assert socket.stats.reconnects == 1
    assert rereads == [1]


def test_without_a_provider_expiry_and_drop_stop_the_socket(
    sim: Any, session: dict[str, str]
) -> None:
    async def scenario() -> tuple[OrderUpdates, FeedAuthError]:
        socket = make_updates(sim, session)
        await socket.start()
        await wait_until(lambda: socket.stats.acks == 1, 5, "the first ack")
        sim.expire_sessions()
        sim.drop_connections("orders")
        with pytest.raises(FeedAuthError) as caught:
            await asyncio.wait_for(socket.join(), 10)
        await asyncio.sleep(0.3)  # time in which a retry loop would have run again
        await socket.close()
        return socket, caught.value

    socket, error = run(scenario())
    assert error.status == 403
    assert socket.stats.connect_attempts == 2
    assert socket.stats.credential_refreshes == 0


def test_provider_still_refused_after_renewal_stops_without_a_storm(
    sim: Any, session: dict[str, str]
) -> None:
    calls: list[bool] = []
    sim.expire_sessions()

    async def expired(refresh: bool) -> FeedCredentials:
        calls.append(refresh)
        return FeedCredentials(jwt=session["jwt"])

    async def scenario() -> tuple[OrderUpdates, FeedAuthError]:
        socket = make_updates(sim, session, jwt=None, feed_token=None, credentials=expired)
        await socket.start()
        with pytest.raises(FeedAuthError) as caught:
            await socket.wait_connected(5)
        await asyncio.sleep(0.5)  # a retry loop would have tried several times by now
        await socket.close()
        return socket, caught.value

    socket, error = run(scenario())
    assert error.status == 403
    assert calls == [False, True]
    assert socket.stats.connect_attempts == 2
    assert socket.failure is error


def test_connection_limit_429_is_retried_later(sim: Any, session: dict[str, str]) -> None:
    async def scenario() -> tuple[OrderUpdates, int]:
        sockets = [make_updates(sim, session) for _ in range(3)]
        # Another process holding the same login: this process's slot count does not see it,
        # so only the server's 429 stops it.
        outsider = make_updates(sim, session, client_code="")
        try:
            for socket in sockets:
                await socket.start()
                await socket.wait_connected(5)
            await outsider.start()
            await wait_until(lambda: outsider.stats.connect_attempts >= 2, 5, "a second try")
            attempts_while_full = outsider.stats.connect_attempts
            assert not outsider.connected
            await sockets[0].close()
            await outsider.wait_connected(5)
            return outsider, attempts_while_full
        finally:
            for socket in [*sockets, outsider]:
                await socket.close()

    outsider, attempts_while_full = run(scenario())
    assert attempts_while_full >= 2
    assert outsider.failure is None
    assert outsider.stats.connections == 1


def test_secrets_never_reach_logs_or_errors(
    sim: Any, session: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [session["jwt"], session["feed_token"], sim.api_key]

    async def scenario() -> BaseException:
        async with make_updates(sim, session) as socket:
            await socket.wait_connected(5)
        bad = make_updates(sim, session, jwt=session["jwt"] + "x")
        await bad.start()
        with pytest.raises(FeedAuthError) as caught:
            await bad.wait_connected(5)
        await bad.close()
        return caught.value

    error = run(scenario())
    ours = [
        record
        for record in caplog.records
        if record.name.startswith(("broker.smartapi", "websockets.client"))
    ]
    assert any("Authorization: Bearer ***" in record.getMessage() for record in ours)
    for record in ours:
        for secret in secrets:
            assert secret not in record.getMessage()
    for secret in secrets:
        assert secret not in f"{error} {error!r} {error.__cause__}"


# --------------------------------------------------------------------------- the parser


def _message(code: str, **order: Any) -> str:
    return json.dumps(
        {
            "user-id": "DEMO01",
            "status-code": "200",
            "order-status": code,
            "error-message": "",
            "orderData": order,
        }
    )


def test_parser_golden_fill() -> None:
    update = parse_order_update(
        _message(
            "AB05",
            orderid="261120000000007",
            uniqueorderid="0d3c2f9e-0000-4000-8000-000000000007",
            status="complete",
            ordertag="intent-42",
            quantity="130",
            filledshares="130",
            averageprice="194.55",
            text="",
        )
    )
    assert update.order_id == "261120000000007"
    assert update.unique_order_id == "0d3c2f9e-0000-4000-8000-000000000007"
    assert (update.status, update.ab_code, update.ordertag) == ("complete", "AB05", "intent-42")
    assert (update.quantity, update.filled) == (130, 130)
    # ₹194.55 = 19455 paise.
    assert update.average_price_paise == 19455
    assert update.is_terminal and not update.is_ack


def test_parser_keeps_numeric_prices_exact() -> None:
    # As a float, 4.35 × 100 = 434.99999999999994, which int() would make 434 paise.
    assert int(4.35 * 100) == 434
    order = '{"orderid": "1", "averageprice": 4.35, "filledshares": 65}'
    update = parse_order_update('{"order-status": "AB05", "orderData": ' + order + "}")
    # ₹4.35 = 435 paise: the JSON number is read as a Decimal, never as a float.
    assert update.average_price_paise == 435
    assert update.filled == 65


def test_parser_tolerates_empty_and_odd_fields() -> None:
    ack = parse_order_update(
        _message("AB00", orderid="", status="", averageprice="", filledshares="", quantity=None)
    )
    assert ack.is_ack
    assert (ack.average_price_paise, ack.filled, ack.quantity, ack.status) == (0, 0, 0, "")

    # Upper-case status, "75.0" quantities, orderstatus only, reason in error-message.
    odd = parse_order_update(
        json.dumps(
            {
                "order-status": "ab03",
                "error-message": "Adapter is Logged Off",
                "orderData": {"orderid": "9", "orderstatus": "Rejected", "filledshares": "75.0"},
            }
        )
    )
    assert (odd.ab_code, odd.status, odd.filled) == ("AB03", "rejected", 75)
    assert odd.text == "Adapter is Logged Off"
    assert odd.is_terminal


@pytest.mark.parametrize("garbage", ["pong?", "[1, 2]", '"text"', "{not json"])
def test_parser_refuses_what_is_not_an_order_message(garbage: str) -> None:
    with pytest.raises(ValueError):
        parse_order_update(garbage)
