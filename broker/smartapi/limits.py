"""The client-side request budget per SmartAPI endpoint (SPEC §5.4, source A: the current docs).

The broker counts requests per client code over rolling 1 s / 1 min / 1 h windows. We spend
no more than it allows, so a well-behaved run never meets a rejection. Two deliberate
departures from the published table, both on the cautious side:

* placeOrder, modifyOrder and cancelOrder share one bucket (the docs say they are counted
  together against the 9/s cap);
* quote is budgeted at 1/s: the Live Market Data page says 1 request per second, the table
  10/s, and the lower figure is the one that cannot get us rejected.

getOIData is not listed; it gets getCandleData's budget (its own bucket, the same numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Budget:
    """At most this many requests in any rolling second / minute / hour (None: no cap)."""

    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None

    def windows(self) -> tuple[tuple[float, int], ...]:
        """``(window length in seconds, cap)`` for each capped window."""
        caps = ((1.0, self.per_second), (60.0, self.per_minute), (3600.0, self.per_hour))
        return tuple((length, cap) for length, cap in caps if cap is not None)


ORDERS_BUCKET = "orders"

# Endpoint name (config.Endpoint.name) → bucket name, where they differ.
_SHARED_BUCKETS: Mapping[str, str] = MappingProxyType(
    {
        "placeOrder": ORDERS_BUCKET,
        "modifyOrder": ORDERS_BUCKET,
        "cancelOrder": ORDERS_BUCKET,
    }
)

BUDGETS: Mapping[str, Budget] = MappingProxyType(
    {
        "loginByPassword": Budget(per_second=1),
        "generateTokens": Budget(per_second=1, per_hour=1000),
        "getProfile": Budget(per_second=3, per_hour=1000),
        "logout": Budget(per_second=1),
        "getRMS": Budget(per_second=2),
        ORDERS_BUCKET: Budget(per_second=9, per_minute=500, per_hour=1000),
        "getOrderBook": Budget(per_second=1),
        "getLtpData": Budget(per_second=10, per_minute=500, per_hour=5000),
        "getPosition": Budget(per_second=1),
        "getTradeBook": Budget(per_second=1),
        "convertPosition": Budget(per_second=10, per_minute=500, per_hour=5000),
        "searchScrip": Budget(per_second=1),
        "details": Budget(per_second=10, per_minute=500, per_hour=5000),
        "getHolding": Budget(per_second=1),
        "getAllHolding": Budget(per_second=1),
        "quote": Budget(per_second=1, per_minute=500, per_hour=5000),
        "batch": Budget(per_second=10, per_minute=500, per_hour=5000),
        "getCandleData": Budget(per_second=3, per_minute=180, per_hour=5000),
        "getOIData": Budget(per_second=3, per_minute=180, per_hour=5000),
        "optionGreek": Budget(per_second=1),
    }
)

# An endpoint missing from the table is still throttled, at the most common strict cap.
UNLISTED_BUDGET = Budget(per_second=1)


def bucket_for(endpoint_name: str) -> str:
    """The budget bucket an endpoint's requests count against."""
    return _SHARED_BUCKETS.get(endpoint_name, endpoint_name)


def budget_for(bucket: str) -> Budget:
    """The budget of one bucket."""
    return BUDGETS.get(bucket, UNLISTED_BUDGET)


# SPEC §3.1: the longest span (calendar days) one getCandleData request may cover, per interval.
CANDLE_MAX_DAYS: Mapping[str, int] = MappingProxyType(
    {
        "ONE_MINUTE": 30,
        "THREE_MINUTE": 60,
        "FIVE_MINUTE": 100,
        "TEN_MINUTE": 100,
        "FIFTEEN_MINUTE": 200,
        "THIRTY_MINUTE": 200,
        "ONE_HOUR": 400,
        "ONE_DAY": 2000,
    }
)

# SPEC §3.4: tokens per quote request, all exchanges together.
QUOTE_MAX_TOKENS = 50
