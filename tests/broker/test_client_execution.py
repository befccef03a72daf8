"""Idempotent live execution: a retried intent never becomes a second order (simulator)."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from datetime import time
from typing import Any

import httpx
import pytest

from broker.smartapi.errors import (
    BrokerUnavailable,
    MustReconcile,
    OrderRejected,
    OrderStatusUnknown,
    RetryLater,
)
from broker.smartapi.execution import ExecutionClient
from broker.smartapi.models import IST
from broker.smartapi.rest import OrderRequest, SmartApiClient
from tests.broker.test_client_support import (
    assert_no_secrets,
    exception_texts,
    issued_store,
    make_client,
    sim_config,
    sim_credentials,
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


def _received(sim: Any, endpoint: str = "placeOrder") -> int:
    """How many ``endpoint`` requests the simulator has received (refused ones included)."""
    return int(sim.state_view()["rest_requests_by_endpoint"].get(endpoint, 0))


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _PlaceOrderWire(httpx.AsyncBaseTransport):
    """Real loopback HTTP, with placeOrder mishandled on the way as a test asks.

    ``refuse_first``: the first placeOrder is aimed at a closed port (connection refused, so it
    never reaches the broker). ``late_s``: every placeOrder reaches the broker that late, and
    its answer is lost (the client sees a read timeout at once).
    """

    def __init__(self, *, refuse_first: bool = False, late_s: float | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refuse_first = refuse_first
        self.late_s = late_s
        self.place_sends = 0
        self.late: list[asyncio.Task[None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/placeOrder"):
            return await self.inner.handle_async_request(request)
        self.place_sends += 1
        if self.refuse_first and self.place_sends == 1:
            dead = request.url.copy_with(port=_closed_port())
            request = httpx.Request(
                request.method, dead, headers=request.headers, content=await request.aread()
            )
        elif self.late_s is not None:
            self.late.append(asyncio.create_task(self._deliver_late(request)))
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return await self.inner.handle_async_request(request)

    async def _deliver_late(self, request: httpx.Request) -> None:
        assert self.late_s is not None
        body = await request.aread()
        await asyncio.sleep(self.late_s)
        async with httpx.AsyncClient() as courier:
            await courier.post(str(request.url), headers=dict(request.headers), content=body)

    async def aclose(self) -> None:
        await asyncio.gather(*self.late)
        await self.inner.aclose()


def _wired_client(sim: Any, wire: _PlaceOrderWire) -> tuple[SmartApiClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=wire, timeout=5.0)
    client = SmartApiClient.open(
        sim_config(sim), sim_credentials(sim), store=issued_store(sim), http=http
    )
    return client, http


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
            before = _received(sim)
            sim.set_faults("latency_ms=800")
            try:
                order = await execution.place(request, maybe_sent=False)
            finally:
                sim.clear_faults()
            assert order.ordertag == tag and order.status == "open"
            assert sleeps == [1.0]  # one unclear send, one look at the book, no second send
            assert _received(sim) - before == 1  # the broker saw exactly one placeOrder
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
            before = _received(sim)
            sim.set_faults("latency_ms=800")
            try:
                with pytest.raises(BrokerUnavailable) as caught:
                    await client.place_order(request)
            finally:
                sim.clear_faults()
            assert client.transport.attempts == 1  # placeOrder is never retried blindly
            assert _received(sim) - before == 1
            assert "0.3" in str(caught.value)
            await asyncio.sleep(1.0)  # the broker finishes accepting it
            execution = ExecutionClient(client, lookup_delay_s=0.1)
            order = await execution.place(request)  # maybe_sent defaults to True
            again = await execution.place(request)
            assert again.order_id == order.order_id
            assert len(await _orders_tagged(client, tag)) == 1
            assert _received(sim) - before == 1  # both retries found it; neither sent it
            await execution.cancel(order)

    asyncio.run(scenario())


def test_server_error_before_acceptance_is_never_sent_again_automatically(sim: Any) -> None:
    """A 5xx proves nothing: the order is watched for, then reported unknown, never re-sent.

    The caller's own retry of the same intent then looks the tag up and sends exactly once.
    """
    tag = _intent_id()
    request = _resting_buy(sim, tag)
    looks: list[float] = []
    settle_clock = [0.0]  # the settle window counts these pauses only, so looks are exact

    async def settle(seconds: float) -> None:
        looks.append(seconds)
        settle_clock[0] += seconds
        sim.clear_faults()
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with make_client(sim, store=issued_store(sim)) as client:
            execution = ExecutionClient(
                client,
                lookup_delay_s=0.5,
                settle_s=1.0,
                sleep=settle,
                clock=lambda: settle_clock[0],
            )
            placed, books = _received(sim), _received(sim, "getOrderBook")
            sim.set_faults("http5xx=1")
            try:
                with pytest.raises(OrderStatusUnknown) as caught:
                    await execution.place(request, maybe_sent=False)
            finally:
                sim.clear_faults()
            unknown = caught.value
            assert unknown.ordertag == tag and tag in str(unknown)
            assert isinstance(unknown, MustReconcile) and not isinstance(unknown, RetryLater)
            assert isinstance(unknown.__cause__, BrokerUnavailable)
            assert _received(sim) - placed == 1  # one send, refused with a 5xx, not repeated
            assert looks == [0.5, 0.5]  # the book was watched over the window, not glanced at
            assert _received(sim, "getOrderBook") - books == 2
            assert await _orders_tagged(client, tag) == []

            # The caller reconciles and retries the same intent: looked up, then sent once.
            books = _received(sim, "getOrderBook")
            order = await execution.place(request)
            assert _received(sim, "getOrderBook") - books == 1
            assert _received(sim) - placed == 2
            tagged = await _orders_tagged(client, tag)
            assert [o.order_id for o in tagged] == [order.order_id]
            await execution.cancel(order)

    asyncio.run(scenario())


def test_order_accepted_after_its_answer_was_lost_is_found_while_settling(sim: Any) -> None:
    """placeOrder reaches the broker 1.5 s late and its answer is lost: found, not re-sent."""
    tag = _intent_id()
    request = _resting_buy(sim, tag)

    async def scenario() -> None:
        wire = _PlaceOrderWire(late_s=1.5)
        client, http = _wired_client(sim, wire)
        try:
            execution = ExecutionClient(client, lookup_delay_s=0.5, settle_s=10.0)
            before = _received(sim)
            order = await execution.place(request, maybe_sent=False)
            assert order.ordertag == tag and order.status == "open"
            assert wire.place_sends == 1  # the client sent it once
            await asyncio.gather(*wire.late)
            assert _received(sim) - before == 1  # and the broker got it once
            tagged = await _orders_tagged(client, tag)
            assert [o.order_id for o in tagged] == [order.order_id]
            await execution.cancel(order)
        finally:
            await client.aclose()
            await http.aclose()
            await wire.aclose()

    asyncio.run(scenario())


def test_refused_connection_is_sent_again_and_lands_once(sim: Any) -> None:
    """A connection that was never made proves nothing left: that send is repeated."""
    tag = _intent_id()
    request = _resting_buy(sim, tag)

    async def scenario() -> None:
        wire = _PlaceOrderWire(refuse_first=True)
        client, http = _wired_client(sim, wire)
        try:
            execution = ExecutionClient(client, lookup_delay_s=0.1)
            before = _received(sim)
            order = await execution.place(request, maybe_sent=False)
            assert wire.place_sends == 2  # refused, then sent again
            assert _received(sim) - before == 1  # only the second one reached the broker
            tagged = await _orders_tagged(client, tag)
            assert [o.order_id for o in tagged] == [order.order_id]
            await execution.cancel(order)
        finally:
            await client.aclose()
            await http.aclose()
            await wire.aclose()

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
