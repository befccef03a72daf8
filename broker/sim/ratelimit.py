"""Server-side rate limits: sliding windows per client code per endpoint (SPEC §5.4, source A).

Each (client code, bucket) keeps a log of the wall-clock instants of the requests it let through
during the last hour; a request is refused when any of its windows (1 s, 60 s, 3600 s) already
holds the published number of requests. Refused requests are not logged, so a client that backs
off recovers as soon as the oldest request leaves the window. placeOrder, modifyOrder and
cancelOrder share the ``orders`` bucket. getOIData has no published limit and is held to
getCandleData's figures in its own bucket.

Rate windows use wall time (a client's real request rate), never the simulated session clock.
"""

from __future__ import annotations

import bisect
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass

RATE_LIMIT_BODY = "Access denied because of exceeding access rate"
RATE_LIMIT_STATUS = 403

WINDOWS_S: tuple[float, ...] = (1.0, 60.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Limit:
    """Requests allowed per second, minute and hour (None = no published limit)."""

    per_second: int | None
    per_minute: int | None = None
    per_hour: int | None = None

    def caps(self) -> tuple[int | None, int | None, int | None]:
        return (self.per_second, self.per_minute, self.per_hour)


#: Bucket name → limit. Endpoint names are the last path segment of the SmartAPI route.
LIMITS: dict[str, Limit] = {
    "loginByPassword": Limit(1),
    "generateTokens": Limit(1, None, 1000),
    "getProfile": Limit(3, None, 1000),
    "logout": Limit(1),
    "getRMS": Limit(2),
    "orders": Limit(9, 500, 1000),
    "getOrderBook": Limit(1),
    "getLtpData": Limit(10, 500, 5000),
    "getPosition": Limit(1),
    "getTradeBook": Limit(1),
    "convertPosition": Limit(10, 500, 5000),
    "searchScrip": Limit(1),
    "details": Limit(10, 500, 5000),
    "getHolding": Limit(1),
    "getAllHolding": Limit(1),
    "quote": Limit(10, 500, 5000),
    "getCandleData": Limit(3, 180, 5000),
    "getOIData": Limit(3, 180, 5000),
    "optionGreek": Limit(1),
}

#: Endpoints that count against another endpoint's bucket.
SHARED_BUCKETS: dict[str, str] = {
    "placeOrder": "orders",
    "modifyOrder": "orders",
    "cancelOrder": "orders",
}


def bucket_of(endpoint: str) -> str:
    """The bucket an endpoint counts against (itself unless shared)."""
    return SHARED_BUCKETS.get(endpoint, endpoint)


class RateLimiter:
    """Sliding-window request logs per (client code, bucket); thread-safe."""

    def __init__(
        self,
        limits: dict[str, Limit] | None = None,
        *,
        wall: Callable[[], float] = _time.monotonic,
    ) -> None:
        self._limits = LIMITS if limits is None else limits
        #: The wall-clock source (seconds); replaceable, e.g. frozen in tests.
        self.wall = wall
        self._logs: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client_code: str, endpoint: str) -> bool:
        """Count one request now; False (and not counted) when a window is full."""
        bucket = bucket_of(endpoint)
        limit = self._limits.get(bucket)
        if limit is None:
            return True
        now = self.wall()
        with self._lock:
            log = self._logs.setdefault((client_code, bucket), [])
            horizon = now - WINDOWS_S[-1]
            if log and log[0] <= horizon:
                del log[: bisect.bisect_right(log, horizon)]
            for window, cap in zip(WINDOWS_S, limit.caps(), strict=True):
                if cap is None:
                    continue
                inside = len(log) - bisect.bisect_right(log, now - window)
                if inside >= cap:
                    return False
            log.append(now)
            return True

    def reset(self) -> None:
        """Forget every request (e.g. between tests)."""
        with self._lock:
            self._logs.clear()
