"""A sliding-window-log rate limiter that spends the broker's budget and never more.

Why a log and why our own: the broker (and the simulator) count requests per client code over
*rolling* 1 s / 1 min / 1 h windows — a request is refused when the window ending at its arrival
already holds ``cap`` requests. A sliding log asks the very same question before sending, so the
two cannot disagree. Token and leaky buckets (``aiolimiter``, for one) either allow bursts the
broker refuses or leave budget unused; the libraries that keep a true log (``pyrate-limiter``,
the moving window of ``limits``) are not dependencies here, and the whole idea fits in a few
dozen lines with no I/O of its own.

Which time to log: the broker counts a request when it *receives* it, which is some time after
we send it — network, and under CPU load the event loop, can delay it by far more than any fixed
margin. What we do know is that it was received no later than its response arrived. So each
request takes a :class:`Ticket`, the caller *settles* it when the exchange ends (answer or
failure), and the log holds settle times; while a request is in flight its entry counts as
"+infinity" and blocks. A request may go at time ``t`` when, for every window ``W`` with cap
``n``, the ``n``-th most recent entry settled at or before ``t − W − margin``. Then every other
request in a window of ``W`` around its arrival settled (so arrived) after ``t − W − margin``,
and there are fewer than ``n`` of those, whatever the delays. The small margin covers clock
granularity only. Otherwise the caller sleeps for the shortfall (a lower bound while an entry is
in flight: it cannot settle before now) and asks again — or, given a limit on how long it may
wait (its call's deadline), is told the shortfall at once. The check-and-record step holds a
plain lock and never awaits, so one limiter can be shared by every coroutine and thread that
uses the same account — as the broker's count is.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from broker.smartapi.limits import Budget, budget_for

DEFAULT_MARGIN_S = 0.05


@dataclass(frozen=True)
class Ticket:
    """One request's place in a bucket's log; ``wait_s > 0`` means it was refused (not counted)."""

    bucket: str
    issued_at: float
    wait_s: float = 0.0
    serial: int = field(default=-1, compare=False)

    @property
    def granted(self) -> bool:
        """True when the request was counted and may be sent."""
        return self.wait_s == 0


@dataclass
class _Log:
    settled: list[float] = field(default_factory=list)  # sorted settle times
    in_flight: set[int] = field(default_factory=set)  # serials of granted, unsettled tickets


class SlidingWindowLimiter:
    """Per-bucket sliding logs of settle times; ``acquire`` waits until a request may go."""

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
        self._logs: dict[str, _Log] = {}
        self._serials = itertools.count()
        self._lock = threading.Lock()

    def try_acquire(self, bucket: str, now: float | None = None) -> Ticket:
        """Count a request at ``now`` and return its ticket, or a refused one saying how long
        to wait first (a lower bound while a request in flight is what blocks)."""
        at = self._clock() if now is None else now
        windows = self._budgets(bucket).windows()
        with self._lock:
            log = self._logs.setdefault(bucket, _Log())
            if windows:
                longest = max(length for length, _ in windows)
                horizon = bisect.bisect_right(log.settled, at - longest - self._margin)
                del log.settled[:horizon]
            else:
                log.settled.clear()
            flying = len(log.in_flight)
            wait = 0.0
            for length, cap in windows:
                if flying >= cap:
                    # The blocking request settles no earlier than now.
                    wait = max(wait, length + self._margin)
                elif flying + len(log.settled) >= cap:
                    oldest = log.settled[-(cap - flying)]
                    wait = max(wait, oldest + length + self._margin - at)
            if wait > 0:
                return Ticket(bucket, at, wait)
            serial = next(self._serials)
            log.in_flight.add(serial)
            return Ticket(bucket, at, 0.0, serial)

    def settle(self, ticket: Ticket, at: float | None = None) -> None:
        """Record that ``ticket``'s exchange ended at ``at`` (default now); repeats are no-ops.

        A request known never to have reached the broker (connection refused) may be settled
        at its ``issued_at``."""
        if not ticket.granted:
            return
        when = self._clock() if at is None else at
        with self._lock:
            log = self._logs.get(ticket.bucket)
            if log is None or ticket.serial not in log.in_flight:
                return
            log.in_flight.discard(ticket.serial)
            bisect.insort(log.settled, when)

    async def acquire(self, bucket: str, *, within_s: float | None = None) -> Ticket:
        """Wait (asynchronously) until a request in ``bucket`` may be sent; return its ticket.

        The caller must :meth:`settle` a granted ticket when the exchange ends (or use
        :meth:`slot`). With ``within_s``, never wait past that many seconds from now: when the
        budget has no room by then, return at once a refused ticket (nothing counted) whose
        ``wait_s`` is how long the wait would still be, at least.
        """
        end = None if within_s is None else self._clock() + within_s
        while not (ticket := self.try_acquire(bucket)).granted:
            if end is not None and self._clock() + ticket.wait_s > end:
                return ticket
            await asyncio.sleep(ticket.wait_s)
        return ticket

    @asynccontextmanager
    async def slot(self, bucket: str, *, within_s: float | None = None) -> AsyncIterator[Ticket]:
        """``acquire`` as a context: a granted ticket is settled on leaving, however it is left."""
        ticket = await self.acquire(bucket, within_s=within_s)
        try:
            yield ticket
        finally:
            self.settle(ticket)

    def acquire_blocking(self, bucket: str) -> Ticket:
        """``acquire`` for synchronous callers (without a deadline); settle the ticket after."""
        while not (ticket := self.try_acquire(bucket)).granted:
            time.sleep(ticket.wait_s)
        return ticket

    def settled_times(self, bucket: str) -> list[float]:
        """The recorded settle times still inside the longest window (for inspection)."""
        with self._lock:
            log = self._logs.get(bucket)
            return list(log.settled) if log else []

    def in_flight(self, bucket: str) -> int:
        """How many granted requests of ``bucket`` are not settled yet (for inspection)."""
        with self._lock:
            log = self._logs.get(bucket)
            return len(log.in_flight) if log else 0


_SHARED: dict[str, SlidingWindowLimiter] = {}
_SHARED_LOCK = threading.Lock()


def limiter_for_account(client_code: str) -> SlidingWindowLimiter:
    """The process-wide limiter of one account: the broker counts per client code, so do we."""
    with _SHARED_LOCK:
        limiter = _SHARED.get(client_code)
        if limiter is None:
            limiter = _SHARED[client_code] = SlidingWindowLimiter()
        return limiter
