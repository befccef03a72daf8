"""Idempotent live execution: a retried intent never becomes a second order (simulator)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import time
from typing import Any

import pytest

from broker.smartapi.errors import BrokerUnavailable, OrderRejected
from broker.smartapi.execution import ExecutionClient
from broker.smartapi.models import IST
from broker.smartapi.rest import OrderRequest, SmartApiClient
from tests.broker.test_client_support import (
    assert_no_secrets,
    exception_texts,
    issued_store,
    make_client,
)


@pytest.fixture(autouse=True)
def _market_open(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    if not time(9, 20) <= sim.now().astimezone(IST).time() <= time(15, 0):
        sim.set_clock(at="10:30")


def _intent_id() -> str:
    return "I" + uuid.uuid4().hex[:12]  # 13 characters, under SmartAPI's 20


def _option(sim: Any) -> Any:
    spot = sim.model.quote("99926000", sim.now()).ltp_paise
    puts = [
        i
        for i in sim.model.instruments()
        if i.exchange == "NFO" and i.name == "NIFTY" and i.option_type == "PE" and i.expiry
    ]
    nearest = min(i.expiry for i in puts)
    return min((i for i in puts if i.expiry == nearest), key=lambda i: abs(i.strike_paise - spot))


def _resting_buy(sim: Any, tag: str) -> OrderRequest:
    """A BUY far below the market (inside the circuit band): it stays open."""
    option = _option(sim)
    quote = sim.model.quote(option.token, sim.now())
    tick = option.tick_paise
    price = max(quote.lower_circuit_paise, quote.ltp_paise * 6 // 10)
    price += -price % tick
    return OrderRequest(
        exchange="NFO",
        symbol=option.symbol,
        token=option.token,
        side="BUY",
        quantity=option.lot,
        price_paise=price,
        ordertag=tag,
    )


async def _orders_tagged(client: SmartApiClient, tag: str) -> list[Any]:
    return [o for o in await client.order_book() if o.ordertag == tag]


def test_timeout_after_acceptance_finds_the_order_instead_of_sending_again(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker accepts the order but answers after the client gave up."""
    tag = _intent_id()
    request = _resting_buy(sim, tag)
    sleeps: list[float] = []

    async def settle(seconds: float) -> None:
        # The client has given up on placeOrder; the broker is still working on it.
        sleeps.append(seconds)
        sim.clear_faults()
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim), timeout_s=0.3) as client:
            execution = ExecutionClient(client, lookup_delay_s=1.0, sleep=settle)
            sim.set_faults("latency_ms=800")
            try:
                order = await execution.place(request, maybe_sent=False)
            finally:
                sim.clear_faults()
            assert order.ordertag == tag and order.status == "open"
            assert sleeps == [1.0]  # one unclear send, one look at the book, no second send
            await asyncio.sleep(1.0)  # any stray second order would have landed by now
            tagged = await _orders_tagged(client, tag)
            assert [o.order_id for o in tagged] == [order.order_id]
            await execution.cancel(order)
            assert_no_secrets([caplog.text], caplog.records, sim, [client])

    asyncio.run(scenario())
    assert "unclear" in caplog.text


def test_retrying_an_intent_after_a_timeout_does_not_double_it(sim: Any) -> None:
    """The caller's own retry (say after a restart) is looked up before anything is sent."""
    tag = _intent_id()
    request = _resting_buy(sim, tag)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim), timeout_s=0.3) as client:
            sim.set_faults("latency_ms=800")
            try:
                with pytest.raises(BrokerUnavailable) as caught:
                    await client.place_order(request)
            finally:
                sim.clear_faults()
            assert client.transport.attempts == 1  # placeOrder is never retried blindly
            assert "0.3" in str(caught.value)
            await asyncio.sleep(1.0)  # the broker finishes accepting it
            execution = ExecutionClient(client, lookup_delay_s=0.1)
            order = await execution.place(request)  # maybe_sent defaults to True
            again = await execution.place(request)
            assert again.order_id == order.order_id
            assert len(await _orders_tagged(client, tag)) == 1
            await execution.cancel(order)

    asyncio.run(scenario())


def test_server_error_before_acceptance_is_sent_again_once(sim: Any) -> None:
    tag = _intent_id()
    request = _resting_buy(sim, tag)

    async def settle(seconds: float) -> None:
        sim.clear_faults()
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            execution = ExecutionClient(client, lookup_delay_s=0.1, sleep=settle)
            sim.set_faults("http5xx=1")
            try:
                order = await execution.place(request, maybe_sent=False)
            finally:
                sim.clear_faults()
            tagged = await _orders_tagged(client, tag)
            assert [o.order_id for o in tagged] == [order.order_id]
            await execution.cancel(order)

    asyncio.run(scenario())


def test_rejection_is_raised_with_order_id_and_reason(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request = _resting_buy(sim, _intent_id())

    async def scenario() -> OrderRejected:
        async with make_client(sim, store=issued_store(sim)) as client:
            sim.reject_next(1, "RMS: insufficient funds (simulated)")
            with pytest.raises(OrderRejected) as caught:
                await ExecutionClient(client).place(request, maybe_sent=False)
            assert_no_secrets(exception_texts(caught.value), caplog.records, sim, [client])
            return caught.value

    error = asyncio.run(scenario())
    assert len(error.order_id) == 15 and error.order_id.isdigit()
    assert error.reason == "RMS: insufficient funds (simulated)"
    assert error.order_id in str(error)


def test_modify_then_cancel(sim: Any) -> None:
    request = _resting_buy(sim, _intent_id())
    tick = _option(sim).tick_paise

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            execution = ExecutionClient(client, lookup_delay_s=0.1)
            order = await execution.place(request, maybe_sent=False)
            modified = await execution.modify(order, price_paise=order.price_paise - tick)
            assert modified.price_paise == request.price_paise - tick
            assert modified.status == "open"
            cancelled = await execution.cancel(modified)
            assert cancelled.status == "cancelled"
            # Cancelling again is harmless: the order's record says it is done.
            assert (await execution.cancel(modified)).status == "cancelled"

    asyncio.run(scenario())
