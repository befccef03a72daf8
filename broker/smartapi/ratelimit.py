"""A sliding-window-log rate limiter that spends exactly the broker's budget and never more.

Why a log and why our own: the broker (and the simulator) count requests per client code over
*rolling* 1 s / 1 min / 1 h windows — a request is refused when the window ending at its arrival
already holds ``cap`` requests. A sliding log asks the very same question before sending, so the
two cannot disagree. Token and leaky buckets (``aiolimiter``, for one) either allow bursts the
broker refuses or leave budget unused; the libraries that keep a true log (``pyrate-limiter``,
the moving window of ``limits``) are not dependencies here, and the whole idea fits in a few
dozen lines with no I/O of its own.

How it works: each bucket keeps the times of the requests it let through. A request may go at
time ``t`` when, for every window ``W`` with cap ``n``, the ``n``-th most recent request went
at or before ``t − W − margin``. Otherwise the caller sleeps for the shortfall and asks again —
or, given a limit on how long it may wait (its call's deadline), is told the shortfall at once.
The ``margin`` absorbs the difference between when we send and when the broker counts (network
jitter). The check-and-record step holds a plain lock and never awaits, so one limiter can be
shared by every coroutine and thread that uses the same account — as the broker's count is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

from broker.smartapi.limits import Budget, budget_for

DEFAULT_MARGIN_S = 0.1


class SlidingWindowLimiter:
    """Per-bucket sliding logs of send times; ``acquire`` waits until a request may go."""

    def __init__(
        self,
        budgets: Callable[[str], Budget] = budget_for,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budgets = budgets
        self._margin = margin_s
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def try_acquire(self, bucket: str, now: float | None = None) -> float:
        """Record a request at ``now`` and return 0, or return how long to wait first."""
        at = self._clock() if now is None else now
        windows = self._budgets(bucket).windows()
        if not windows:
            return 0.0
        longest = max(length for length, _ in windows)
        with self._lock:
            log = self._logs.setdefault(bucket, deque())
            while log and log[0] <= at - longest - self._margin:
                log.popleft()
            wait = 0.0
            for length, cap in windows:
                if len(log) >= cap:
                    wait = max(wait, log[-cap] + length + self._margin - at)
            if wait > 0:
                return wait
            log.append(at)
            return 0.0

    async def acquire(self, bucket: str, *, within_s: float | None = None) -> float:
        """Wait (asynchronously) until a request in ``bucket`` may be sent, count it, return 0.

        With ``within_s``, never wait past that many seconds from now: when the budget has no
        room by then, return at once (nothing counted) with how long the wait would still be.
        """
        end = None if within_s is None else self._clock() + within_s
        while (wait := self.try_acquire(bucket)) > 0:
            if end is not None and self._clock() + wait > end:
                return wait
            await asyncio.sleep(wait)
        return 0.0

    def acquire_blocking(self, bucket: str) -> None:
        """The same for synchronous callers."""
        while (wait := self.try_acquire(bucket)) > 0:
            time.sleep(wait)

    def sent_times(self, bucket: str) -> list[float]:
        """The recorded send times still inside the longest window (for inspection)."""
        with self._lock:
            return list(self._logs.get(bucket, ()))


_SHARED: dict[str, SlidingWindowLimiter] = {}
_SHARED_LOCK = threading.Lock()


def limiter_for_account(client_code: str) -> SlidingWindowLimiter:
    """The process-wide limiter of one account: the broker counts per client code, so do we."""
    with _SHARED_LOCK:
        limiter = _SHARED.get(client_code)
        if limiter is None:
            limiter = _SHARED[client_code] = SlidingWindowLimiter()
        return limiter
