"""The client-side sliding-window limiter and the budget table."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.smartapi.limits import (
    BUDGETS,
    ORDERS_BUCKET,
    Budget,
    bucket_for,
    budget_for,
)
from broker.smartapi.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
    assert [limiter.try_acquire("getCandleData") for _ in range(3)] == [0.0, 0.0, 0.0]
    # Fourth at t=0: the first request (t=0) leaves the 1 s window at 1.0, plus 0.1 margin.
    assert limiter.try_acquire("getCandleData") == 1.1
    clock.now = 1.1
    assert limiter.try_acquire("getCandleData") == 0.0
    # A refused attempt is not recorded.
    assert limiter.sent_times("getCandleData") == [0.0, 0.0, 0.0, 1.1]


def test_buckets_are_independent_but_shared_endpoints_are_not() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(margin_s=0.0, clock=clock)
    for _ in range(9):
        assert limiter.try_acquire(bucket_for("placeOrder")) == 0.0
    assert limiter.try_acquire(bucket_for("cancelOrder")) > 0  # the shared 9/s is spent
    assert limiter.try_acquire("getOrderBook") == 0.0


def test_minute_window_binds_after_the_second_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        lambda _: Budget(per_second=3, per_minute=5), margin_s=0.0, clock=clock
    )
    sent = []
    while len(sent) < 6:
        wait = limiter.try_acquire("x")
        if wait == 0:
            sent.append(clock.now)
        else:
            clock.now += wait
    # 3 at t=0, 2 at t=1 (minute cap 5 reached), the 6th when t=0 leaves the minute: t=60.
    assert sent == [0.0, 0.0, 0.0, 1.0, 1.0, 60.0]


@settings(max_examples=60, deadline=None)
@given(
    per_second=st.integers(1, 10),
    per_minute=st.one_of(st.none(), st.integers(1, 40)),
    arrivals=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60),
    margin=st.sampled_from([0.0, 0.05, 0.1]),
)
def test_no_window_ever_holds_more_than_its_cap(
    per_second: int, per_minute: int | None, arrivals: list[float], margin: float
) -> None:
    """Whatever the callers do, the recorded sends satisfy every window (with the margin)."""
    budget = Budget(per_second=per_second, per_minute=per_minute)
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: budget, margin_s=margin, clock=clock)
    sent = []
    for gap in arrivals:
        clock.now += gap
        while (wait := limiter.try_acquire("b")) > 0:
            clock.now += wait
        sent.append(clock.now)
    for length, cap in budget.windows():
        for i in range(cap, len(sent)):
            assert sent[i] - sent[i - cap] >= length + margin - 1e-9


def test_acquire_sleeps_until_allowed() -> None:
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=2), margin_s=0.0)

    async def burst() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(5):
            await limiter.acquire("b")
        return loop.time() - start

    # 2 at once, 2 a second later, 1 two seconds later: at least 2 s in all.
    assert asyncio.run(burst()) >= 1.9


def test_budget_table_matches_spec_source_a() -> None:
    assert BUDGETS["loginByPassword"] == Budget(per_second=1)
    assert BUDGETS["getOrderBook"] == Budget(per_second=1)
    assert BUDGETS["getLtpData"] == Budget(10, 500, 5000)
    assert BUDGETS["getProfile"] == Budget(per_second=3, per_hour=1000)


def test_acquire_within_a_limit_reports_the_shortfall_instead_of_sleeping() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(lambda _: Budget(per_second=1), margin_s=0.1, clock=clock)

    async def scenario() -> tuple[float, float, list[float], float]:
        first = await limiter.acquire("b", within_s=0.0)  # room now: counted at once
        clock.now = 0.25
        # Next room at 0 + 1 s + 0.1 margin = 1.1, i.e. 0.85 s away: more than 0.5 allows.
        refused = await limiter.acquire("b", within_s=0.5)
        counted = limiter.sent_times("b")
        clock.now = 1.1
        later = await limiter.acquire("b", within_s=0.0)
        return first, refused, counted, later

    first, refused, counted, later = asyncio.run(scenario())
    assert (first, later) == (0.0, 0.0)
    assert abs(refused - 0.85) < 1e-9
    assert counted == [0.0]  # the refused request was not counted
    assert limiter.sent_times("b") == [1.1]  # (0.0 has left the window by then)
