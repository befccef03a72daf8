"""REST calls against the simulator: budgets, retries, error mapping, splitting, typed records."""

from __future__ import annotations

import asyncio
import logging
import re
import time as wall
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest

from broker.smartapi import config as endpoints
from broker.smartapi.config import SmartApiConfig
from broker.smartapi.errors import (
    AuthError,
    BrokerUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
)
from broker.smartapi.limits import Budget
from broker.smartapi.models import IST, Order
from broker.smartapi.ratelimit import SlidingWindowLimiter
from broker.smartapi.rest import OrderRequest, RestTransport, SmartApiClient
from tests.broker.test_client_support import (
    assert_no_secrets,
    exception_texts,
    issued_store,
    make_client,
    requests_seen,
    sim_config,
    sim_credentials,
)

# --------------------------------------------------------------------------- reply parsing


def _interpret(status: int, body: bytes | str, content_type: str = "application/json") -> Any:
    transport = RestTransport(SmartApiConfig(), "key-xyz-123")
    raw = body.encode() if isinstance(body, str) else body
    response = httpx.Response(status, content=raw, headers={"Content-Type": content_type})
    return transport._interpret(endpoints.PROFILE, response)


def test_envelope_variants() -> None:
    ok = '{"status": true, "message": "SUCCESS", "errorcode": "", "data": {"a": 1.10}}'
    # Numbers are parsed as exact decimals: 1.10 stays 1.10, not a float.
    assert _interpret(200, ok) == {"a": Decimal("1.10")}
    assert str(_interpret(200, ok)["a"]) == "1.10"
    assert _interpret(200, '{"status": "true", "data": "null"}') is None
    assert _interpret(200, '{"status": true, "data": null}') is None
    with pytest.raises(InvalidRequest) as caught:
        _interpret(200, '{"status": "false", "message": "bad", "errorcode": "AB4008"}')
    assert caught.value.code == "AB4008"
    gateway = '{"success": false, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}'
    with pytest.raises(SessionExpired) as expired:
        _interpret(200, gateway)
    assert expired.value.code == "AG8001" and "Invalid Token" in str(expired.value)


def test_http_level_failures() -> None:
    with pytest.raises(RateLimited):
        _interpret(403, "Access denied because of exceeding access rate", "text/plain")
    with pytest.raises(RateLimited):
        _interpret(429, "Too Many Requests", "text/plain")
    # A 403 without the rate-limit text is a real refusal, not a reason to retry.
    with pytest.raises(AuthError) as refused:
        _interpret(403, "<html>Forbidden</html>", "text/html")
    assert not isinstance(refused.value, SessionExpired)
    with pytest.raises(BrokerUnavailable) as gateway:
        _interpret(502, "<html>Bad Gateway</html>", "text/html")
    assert gateway.value.http_status == 502
    with pytest.raises(BrokerUnavailable):
        _interpret(200, "not json at all")


def test_broker_messages_are_redacted() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _interpret(200, '{"status": false, "message": "key key-xyz-123 bad", "errorcode": "X"}')
    assert "key-xyz-123" not in str(caught.value)


# --------------------------------------------------------------------------- against the sim


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def _now(sim: Any) -> datetime:
    return sim.now().astimezone(IST)


def test_candle_burst_stays_inside_the_budget(sim: Any) -> None:
    """10 getCandleData calls at once: 3 per second, no refusal from the broker."""
    sim.reset_rate_limits()
    end = _now(sim) - timedelta(days=1)  # wholly in the past: every call sees the same rows
    start = end - timedelta(hours=2)

    async def scenario() -> tuple[float, int]:
        async with make_client(sim, store=issued_store(sim)) as client:
            began = wall.monotonic()
            results = await asyncio.gather(
                *(client.candles("NSE", "99926000", "1m", start, end) for _ in range(10))
            )
            elapsed = wall.monotonic() - began
            assert all(rows == results[0] for rows in results)
            return elapsed, client.transport.attempts

    before = requests_seen(sim)
    elapsed, attempts = asyncio.run(scenario())
    # 3 at t=0, 3 after 1 s, 3 after 2 s, the 10th after 3 s (plus margins).
    assert elapsed >= 3.0
    assert attempts == 10  # nothing was retried, so nothing was refused
    assert requests_seen(sim) - before == 10


def test_injected_rate_limit_refusal_is_retried(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []

    async def backoff(seconds: float) -> None:
        sleeps.append(seconds)
        sim.clear_faults()  # the broker relents after the first refusal
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim), sleep=backoff) as client:
            sim.set_faults("ratelimit=1")
            try:
                ltp = await client.ltp("NSE", "Nifty 50", "99926000")
            finally:
                sim.clear_faults()
            assert ltp.ltp_paise > 0 and ltp.token == "99926000"
            assert client.transport.attempts == 2
            assert_no_secrets([caplog.text], caplog.records, sim, [client])

    asyncio.run(scenario())
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.2
    assert "RateLimited" in caplog.text


def test_injected_server_errors_are_retried(sim: Any) -> None:
    async def backoff(seconds: float) -> None:
        sim.clear_faults()
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim), sleep=backoff) as client:
            sim.set_faults("http5xx=1")
            try:
                profile = await client.profile()
            finally:
                sim.clear_faults()
            assert profile.client_code == sim.client_code
            assert client.transport.attempts == 2

    asyncio.run(scenario())


def test_server_errors_are_retried_a_bounded_number_of_times(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> BrokerUnavailable:
        async with make_client(sim, store=issued_store(sim), max_retries=2) as client:
            sim.set_faults("http5xx=1")
            before = requests_seen(sim)
            try:
                with pytest.raises(BrokerUnavailable) as caught:
                    await client.funds()
            finally:
                sim.clear_faults()
            assert requests_seen(sim) - before == 3  # the first try and two retries
            assert caught.value.http_status in (500, 502, 503, 504)
            assert_no_secrets(exception_texts(caught.value), caplog.records, sim, [client])
            return caught.value

    asyncio.run(scenario())


def test_validation_errors_are_not_retried(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    end = _now(sim)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            before = requests_seen(sim)
            # Nifty 50 is listed on NSE, not NFO.
            with pytest.raises(InvalidRequest) as caught:
                await client.candles("NFO", "99926000", "5m", end - timedelta(hours=1), end)
            assert caught.value.code == "AB1009"
            assert requests_seen(sim) - before == 1
            assert client.transport.attempts == 1
            with pytest.raises(NotFound):
                await client.order_details("00000000-0000-0000-0000-000000000000")
            assert_no_secrets(exception_texts(caught.value), caplog.records, sim, [client])

    asyncio.run(scenario())


def test_long_candle_range_is_split_and_stitched(sim: Any) -> None:
    end = _now(sim)
    start = end - timedelta(days=75)

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with make_client(sim, store=issued_store(sim)) as client:
            before = requests_seen(sim)
            rows = await client.candles("NSE", "99926000", "ONE_MINUTE", start, end)
            # 76 calendar dates in spans of 30: three requests.
            assert requests_seen(sim) - before == 3
            # An independent single request across the first chunk edge (day 30 → 31).
            edge = datetime.combine(start.date() + timedelta(days=28), time(0), tzinfo=IST)
            window = await client.candles("NSE", "99926000", "1m", edge, edge + timedelta(days=4))
            return rows, window

    rows, window = asyncio.run(scenario())
    starts = [row.start for row in rows]
    assert starts == sorted(set(starts)), "rows must be ascending with no duplicates"
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for moment in starts:
        by_day[moment.date()].append(moment)
    assert len(by_day) > 30  # more than one request's worth of trading days
    for minutes in by_day.values():
        steps = {b - a for a, b in pairwise(minutes)}
        assert steps <= {timedelta(minutes=1)}, "each session's minutes are contiguous"
    full_days = [m for m in by_day.values() if len(m) == 375]
    assert full_days and all(m[0].time() == time(9, 15) for m in full_days)
    # Around the chunk edge the stitched rows equal a direct fetch.
    covered = {c.start: c for c in window}
    assert covered
    assert all(row == covered[row.start] for row in rows if row.start in covered)
    assert sum(1 for row in rows if row.start in covered) == len(covered)


def test_open_interest_for_an_option(sim: Any) -> None:
    option = _atm_call(sim)
    end = _now(sim)

    async def scenario() -> list[Any]:
        async with make_client(sim, store=issued_store(sim)) as client:
            return await client.open_interest(
                "NFO", option.token, "5m", end - timedelta(days=2), end
            )

    points = asyncio.run(scenario())
    assert points and all(p.oi >= 0 for p in points)
    assert [p.time for p in points] == sorted({p.time for p in points})


def test_quote_for_120_tokens_takes_three_requests(sim: Any) -> None:
    tokens = [i.token for i in sim.model.instruments() if i.exchange == "NFO"][:119]
    assert len(tokens) == 119
    wanted = [("NFO", t) for t in tokens] + [("NSE", "no-such-token")]

    async def scenario() -> Any:
        async with make_client(sim, store=issued_store(sim)) as client:
            before = requests_seen(sim)
            result = await client.quote(wanted, "FULL")
            assert requests_seen(sim) - before == 3
            return result

    result = asyncio.run(scenario())
    assert {q.token for q in result.fetched} == set(tokens)
    assert [u.token for u in result.unfetched] == ["no-such-token"]
    assert result.unfetched[0].error_code == "AB4018"
    some = result.fetched[0]
    assert some.ltp_paise > 0 and len(some.bids) == 5 and len(some.asks) == 5


# --------------------------------------------------------------------------- orders


def _ensure_market_open(sim: Any) -> None:
    now = _now(sim).time()
    if not time(9, 20) <= now <= time(15, 0):
        sim.set_clock(at="10:30")


def _atm_call(sim: Any) -> Any:
    spot = sim.model.quote("99926000", sim.now()).ltp_paise
    calls = [
        i
        for i in sim.model.instruments()
        if i.exchange == "NFO" and i.name == "NIFTY" and i.option_type == "CE" and i.expiry
    ]
    nearest = min(i.expiry for i in calls)
    return min((i for i in calls if i.expiry == nearest), key=lambda i: abs(i.strike_paise - spot))


async def _wait_for(
    client: SmartApiClient, order_id: str, statuses: set[str], seconds: float = 5.0
) -> Order:
    deadline = wall.monotonic() + seconds
    while True:
        book = {o.order_id: o for o in await client.order_book()}
        order = book[order_id]
        if order.status in statuses or wall.monotonic() > deadline:
            return order


def test_orders_books_positions_and_funds(sim: Any) -> None:
    _ensure_market_open(sim)
    # Real-time market for this test: at the fixture's 60x a loaded machine lets the ask run
    # past the limit between the quote and the order, and the order rests instead of filling.
    sim.set_clock(speed=1)
    option = _atm_call(sim)
    lot, tick = option.lot, option.tick_paise

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            funds_before = await client.funds()
            quote = (await client.quote([("NFO", option.token)])).fetched[0]
            assert quote.asks and quote.asks[0].price_paise > 0
            limit = quote.asks[0].price_paise + 2 * tick
            ack = await client.place_order(
                OrderRequest(
                    exchange="NFO",
                    symbol=option.symbol,
                    token=option.token,
                    side="BUY",
                    quantity=lot,
                    price_paise=limit,
                    ordertag="T-BUY-1",
                )
            )
            assert len(ack.order_id) == 15 and ack.unique_order_id
            filled = await _wait_for(client, ack.order_id, {"complete"})
            assert filled.status == "complete" and filled.ordertag == "T-BUY-1"
            assert filled.filled_quantity == lot and filled.price_paise == limit
            assert filled.average_price_paise is not None and filled.average_price_paise <= limit
            details = await client.order_details(ack.unique_order_id)
            assert details.order_id == ack.order_id

            trades = [t for t in await client.trade_book() if t.order_id == ack.order_id]
            assert sum(t.quantity for t in trades) == lot
            assert all(t.side == "BUY" and t.price_paise <= limit for t in trades)
            value = sum(t.value_paise for t in trades)
            assert value == sum(t.price_paise * t.quantity for t in trades)

            position = next(p for p in await client.positions() if p.token == option.token)
            assert position.net_quantity >= lot and position.buy_value_paise >= value

            funds_after = await client.funds()
            assert funds_before.available_cash_paise - funds_after.available_cash_paise == value

            # A resting order: modify its price, then cancel it.
            bid = quote.bids[0].price_paise
            # Far below the market (but inside the circuit band), so it rests.
            resting_price = max(quote.lower_circuit_paise or tick, bid * 6 // 10)
            resting_price += -resting_price % tick  # up onto the tick grid
            ack2 = await client.place_order(
                OrderRequest(
                    exchange="NFO",
                    symbol=option.symbol,
                    token=option.token,
                    side="BUY",
                    quantity=lot,
                    price_paise=resting_price,
                    ordertag="T-REST-1",
                )
            )
            resting = await _wait_for(client, ack2.order_id, {"open"})
            assert resting.status == "open"
            await client.modify_order(resting, price_paise=resting_price - tick)
            modified = await client.order_details(ack2.unique_order_id)
            assert modified.price_paise == resting_price - tick
            await client.cancel_order(ack2.order_id)
            cancelled = await client.order_details(ack2.unique_order_id)
            assert cancelled.status == "cancelled" and cancelled.is_terminal
            with pytest.raises(NotFound):  # a cancelled order cannot be cancelled again
                await client.cancel_order(ack2.order_id)

    asyncio.run(scenario())


def test_ordertag_of_20_characters_is_refused_before_sending(sim: Any) -> None:
    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            with pytest.raises(InvalidRequest, match="at most 19"):
                await client.place_order(
                    OrderRequest("NFO", "X", "1", "BUY", 1, 100, ordertag="x" * 20)
                )
            assert client.transport.attempts == 0

    asyncio.run(scenario())


def test_budget_wait_past_the_deadline_fails_at_once_unsent(sim: Any) -> None:
    """deadline_s bounds the wait for budget: no sleeping a minute for a 1 s call."""
    backoffs: list[float] = []

    async def backoff(seconds: float) -> None:
        backoffs.append(seconds)
        await asyncio.sleep(seconds)

    async def scenario() -> RateLimited:
        client = SmartApiClient.open(
            sim_config(sim, deadline_s=1.0),
            sim_credentials(sim),
            store=issued_store(sim),
            limiter=SlidingWindowLimiter(lambda _: Budget(per_minute=1)),
            sleep=backoff,
        )
        async with client:
            before = requests_seen(sim)
            await client.ltp("NSE", "Nifty 50", "99926000")
            with pytest.raises(RateLimited) as caught:
                # The guard only turns a hang (the old 60 s budget sleep) into a failure.
                await asyncio.wait_for(client.ltp("NSE", "Nifty 50", "99926000"), 10)
            assert requests_seen(sim) - before == 1  # the second call never left
            assert client.transport.attempts == 1
            return caught.value

    refused = asyncio.run(scenario())
    assert refused.retry_after_s is not None and refused.retry_after_s > 1.0
    assert "deadline" in str(refused) and "not sent" in str(refused)
    assert backoffs == []  # not retried either: no room would come before the deadline


def test_http_timeout_ends_at_the_deadline(sim: Any) -> None:
    async def scenario() -> BrokerUnavailable:
        async with make_client(
            sim, store=issued_store(sim), deadline_s=0.5, timeout_s=5.0
        ) as client:
            sim.set_faults("latency_ms=1500")
            try:
                with pytest.raises(BrokerUnavailable) as caught:
                    # The guard turns a full 5 s timeout into a failure.
                    await asyncio.wait_for(client.profile(), 4)
            finally:
                sim.clear_faults()
            return caught.value

    error = asyncio.run(scenario())
    assert re.search(r"no answer within 0\.\d+ s", str(error)), str(error)
