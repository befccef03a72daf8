"""The client-side sliding-window limiter and the budget table."""

from __future__ import annotations

import asyncio
import contextlib
import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.smartapi.limits import (
    BUDGETS,
    ORDERS_BUCKET,
    Budget,
    bucket_for,
    budget_for,
)
from broker.smartapi.ratelimit import SlidingWindowLimiter, Ticket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send(limiter: SlidingWindowLimiter, bucket: str, latency: float = 0.0) -> Ticket:
    """A granted request whose answer arrives ``latency`` after it was issued (clock unmoved)."""
    ticket = limiter.try_acquire(bucket)
    if ticket.granted:
        limiter.settle(ticket, at=ticket.issued_at + latency)
    return ticket


def test_orders_share_one_bucket_and_quote_is_one_per_second() -> None:
    assert {bucket_for(n) for n in ("placeOrder", "modifyOrder", "cancelOrder")} == {ORDERS_BUCKET}
    assert budget_for(ORDERS_BUCKET) == Budget(per_second=9, per_minute=500, per_hour=1000)
    assert budget_for("quote").per_second == 1
    assert budget_for("getCandleData") == Budget(3, 180, 5000)
    # An endpoint nobody listed is still throttled.
    assert budget_for("somethingNew").per_second == 1


def test_three_per_second_then_wait_for_the_oldest_to_leave_the_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(margin_s=0.1, clock=clock)
    assert [send(limiter, "getCandleData").wait_s for _ in range(3)] == [0.0, 0.0, 0.0]
    # Fourth at t=0: the first request (settled t=0) leaves the 1 s window at 1.0, + 0.1 margin.
    refused = limiter.try_acquire("getCandleData")
    assert (refused.granted, refused.wait_s) == (False, 1.1)
    limiter.settle(refused)  # a refused ticket was never counted: settling it changes nothing
    clock.now = 1.1
    assert send(limiter, "getCandleData").granted
    # A refused attempt is not recorded.
    assert limiter.settled_times("getCandleData") == [0.0, 0.0, 0.0, 1.1]


def test_a_request_in_flight_blocks_its_slot_until_settled() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=3), margin_s=0.05, clock=clock)
    flying = [limiter.try_acquire("b") for _ in range(3)]
    assert all(t.granted for t in flying) and limiter.in_flight("b") == 3
    clock.now = 5.0  # long after they were sent, but no answer yet: still no room
    blocked = limiter.try_acquire("b")
    # A lower bound: the oldest could settle now at the earliest, then 1 s + 0.05 margin.
    assert not blocked.granted and abs(blocked.wait_s - 1.05) < 1e-9
    limiter.settle(flying[0], at=5.5)
    clock.now = 6.5
    # The window counts from the answer (5.5), not the send (0): room at 5.5 + 1.05 = 6.55.
    assert abs(limiter.try_acquire("b").wait_s - 0.05) < 1e-9
    clock.now = 6.55
    assert limiter.try_acquire("b").granted
    # 5.5 has just left the window; the two unanswered ones and the new one fly.
    assert limiter.settled_times("b") == [] and limiter.in_flight("b") == 3


def test_settling_twice_counts_once_and_late_answers_keep_order() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=2), margin_s=0.0, clock=clock)
    first, second = limiter.try_acquire("b"), limiter.try_acquire("b")
    limiter.settle(second, at=0.3)
    limiter.settle(first, at=0.9)  # answered after the one sent later
    limiter.settle(first, at=2.0)  # repeated: ignored
    assert limiter.settled_times("b") == [0.3, 0.9]
    clock.now = 1.0
    # Two in the window; the older (0.3) leaves at 1.3.
    assert abs(limiter.try_acquire("b").wait_s - 0.3) < 1e-9


def test_buckets_are_independent_but_shared_endpoints_are_not() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(margin_s=0.0, clock=clock)
    for _ in range(9):
        assert send(limiter, bucket_for("placeOrder")).granted
    assert limiter.try_acquire(bucket_for("cancelOrder")).wait_s > 0  # the shared 9/s is spent
    assert send(limiter, "getOrderBook").granted


def test_minute_window_binds_after_the_second_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        lambda _: Budget(per_second=3, per_minute=5), margin_s=0.0, clock=clock
    )
    sent = []
    while len(sent) < 6:
        ticket = send(limiter, "x")
        if ticket.granted:
            sent.append(clock.now)
        else:
            clock.now += ticket.wait_s
    # 3 at t=0, 2 at t=1 (minute cap 5 reached), the 6th when t=0 leaves the minute: t=60.
    assert sent == [0.0, 0.0, 0.0, 1.0, 1.0, 60.0]


@settings(max_examples=80, deadline=None)
@given(
    per_second=st.integers(1, 10),
    per_minute=st.one_of(st.none(), st.integers(1, 40)),
    requests=st.lists(
        st.tuples(st.floats(0, 2, allow_nan=False), st.floats(0, 3, allow_nan=False)),
        min_size=1,
        max_size=50,
    ),
    margin=st.sampled_from([0.0, 0.05, 0.1]),
)
def test_no_window_ever_holds_more_than_its_cap(
    per_second: int,
    per_minute: int | None,
    requests: list[tuple[float, float]],
    margin: float,
) -> None:
    """Concurrent callers with any latencies: wherever the broker counts each request between
    its send and its answer, no window ever holds more than its cap."""
    budget = Budget(per_second=per_second, per_minute=per_minute)
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: budget, margin_s=margin, clock=clock)
    # Events (time, order, kind, index): callers arrive, retry after a refusal, or get answers.
    events: list[tuple[float, int, str, int]] = []
    arrival = 0.0
    for i, (gap, _) in enumerate(requests):
        arrival += gap
        heapq.heappush(events, (arrival, len(events), "try", i))
    tickets: dict[int, Ticket] = {}
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    order = len(events)
    while events:
        clock.now, _, kind, i = heapq.heappop(events)
        order += 1
        if kind == "answer":
            limiter.settle(tickets[i], at=clock.now)
            answered[i] = clock.now
            continue
        ticket = limiter.try_acquire("b")
        assert ticket.wait_s >= 0
        if ticket.granted:
            # The worst case: this one counted at its send, every earlier one at its answer.
            for length, cap in budget.windows():
                cutoff = clock.now - length + 1e-9
                late = [j for j in sent if answered.get(j, float("inf")) > cutoff]
                assert len(late) < cap
            tickets[i], sent[i] = ticket, clock.now
            heapq.heappush(events, (clock.now + requests[i][1], order, "answer", i))
        else:
            heapq.heappush(events, (clock.now + ticket.wait_s, order, "try", i))
    assert len(answered) == len(requests) and limiter.in_flight("b") == 0
    # The margin is kept on top: answers a window apart are at least ``length + margin`` apart.
    for length, cap in budget.windows():
        for i in sent:
            earlier = [j for j in sent if sent[j] < sent[i] or (sent[j] == sent[i] and j < i)]
            late = [j for j in earlier if answered[j] > sent[i] - length - margin + 1e-9]
            assert len(late) < cap


def test_acquire_sleeps_until_allowed() -> None:
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=2), margin_s=0.0)

    async def burst() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(5):
            async with limiter.slot("b") as ticket:
                assert ticket.granted
        return loop.time() - start

    # 2 at once, 2 a second later, 1 two seconds later: at least 2 s in all.
    assert asyncio.run(burst()) >= 1.9
    assert limiter.in_flight("b") == 0


def test_slot_settles_when_the_request_fails() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=1), margin_s=0.0, clock=clock)

    async def failing() -> None:
        async with limiter.slot("b"):
            clock.now = 0.4
            raise ConnectionError("refused")

    with contextlib.suppress(ConnectionError):
        asyncio.run(failing())
    assert limiter.in_flight("b") == 0
    assert limiter.settled_times("b") == [0.4]


def test_budget_table_matches_spec_source_a() -> None:
    assert BUDGETS["loginByPassword"] == Budget(per_second=1)
    assert BUDGETS["getOrderBook"] == Budget(per_second=1)
    assert BUDGETS["getLtpData"] == Budget(10, 500, 5000)
    assert BUDGETS["getProfile"] == Budget(per_second=3, per_hour=1000)


def test_acquire_within_a_limit_reports_the_shortfall_instead_of_sleeping() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=1), margin_s=0.1, clock=clock)

    async def scenario() -> tuple[Ticket, Ticket, list[float], Ticket, Ticket]:
        first = await limiter.acquire("b", within_s=0.0)  # room now: counted at once
        clock.now = 0.25
        # In flight: no room before it is answered, and then not for 1 s + 0.1 more.
        flying = await limiter.acquire("b", within_s=0.5)
        limiter.settle(first, at=0.0)
        # Next room at 0 + 1 s + 0.1 margin = 1.1, i.e. 0.85 s away: more than 0.5 allows.
        refused = await limiter.acquire("b", within_s=0.5)
        counted = limiter.settled_times("b")
        clock.now = 1.1
        later = await limiter.acquire("b", within_s=0.0)
        limiter.settle(later)
        return first, refused, counted, later, flying

    first, refused, counted, later, flying = asyncio.run(scenario())
    assert first.granted and later.granted
    assert not flying.granted and abs(flying.wait_s - 1.1) < 1e-9
    assert not refused.granted and abs(refused.wait_s - 0.85) < 1e-9
    assert counted == [0.0]  # the refused requests were not counted
    assert limiter.settled_times("b") == [1.1]  # (0.0 has left the window by then)
