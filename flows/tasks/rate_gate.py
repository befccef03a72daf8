"""A Prefect global rate limit that lets several workers share one broker request budget.

Two limiters stand between a task and the broker:

1. this gate: slots of a Prefect global concurrency limit in rate-limit mode (slots decay at the
   broker's pace), shared by every process that talks to the same Prefect API;
2. the client's sliding-window limiter (``broker.smartapi.ratelimit``), exact within a process,
   taken immediately before each request.

Prefect grants slots by polling with randomised back-off, which on its own leaves 10-25 % of the
budget unused. So one thread per run fetches slots ahead, a few at a time, into a small local
pool; requests draw from the pool and the exact limiter does the fine pacing. The limit is
created with a burst allowance of a few seconds' worth of requests so the polling can keep up;
across processes the long-run pace is still the broker's.

Without a Prefect API, or when the limit cannot be read or created, the gate does nothing but
say so once in the log.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

BLOCK = 3  # slots fetched per Prefect call
PREFETCH = 9  # slots held ready in this process at most
BURST_SECONDS = 3  # the limit's capacity, in seconds of the budget


class RateGate:
    """Slots of one Prefect rate limit, fetched ahead by a background thread (or a no-op).

    The thread fetches only while some caller waits, keeping at most ``prefetch`` slots ready,
    so an idle run asks Prefect for nothing and closes at once.
    """

    def __init__(self, name: str | None, *, block: int = BLOCK, prefetch: int = PREFETCH) -> None:
        self.name = name
        self._block = max(1, block)
        self._prefetch = max(prefetch, self._block)
        self._cond = threading.Condition()
        self._ready = 0  # granted slots not yet used
        self._waiting = 0  # callers blocked in take()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.granted = 0

    @property
    def active(self) -> bool:
        """True while slots come from Prefect (False: no limit, closed, or it failed)."""
        return self.name is not None and not self._stop.is_set()

    def start(self) -> RateGate:
        """Start the fetching thread (no-op for a gate without a limit)."""
        if self.name is not None and self._thread is None:
            context = contextvars.copy_context()  # keep the Prefect settings of the caller
            self._thread = threading.Thread(
                target=context.run, args=(self._pump,), name="optbot-rate-gate", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop fetching; callers still waiting go on without the shared limit."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            # Only a fetch already under way can hold the thread, and only briefly.
            self._thread.join(timeout=5)
            self._thread = None
        with self._cond:
            unused, self._ready = self._ready, 0
        if unused and self.name is not None:
            self._give_back(unused)

    def _give_back(self, slots: int) -> None:
        """Return slots fetched ahead but never used, so the next run need not wait them out."""
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                client.release_concurrency_slots([self.name or ""], slots, occupancy_seconds=0.0)
        except Exception as exc:  # they decay anyway within a few seconds
            log.info("could not return %d unused rate-limit slots (%s)", slots, exc)

    def take(self) -> None:
        """Block until one slot is granted (returns at once when the gate is off)."""
        if not self.active:
            return
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while self._ready == 0 and self.active:
                    self._cond.wait(timeout=0.5)
                if self._ready:
                    self._ready -= 1
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    async def wait(self) -> None:
        """``take`` for async callers, without blocking their event loop."""
        if self.active:
            await asyncio.to_thread(self.take)

    def _wanted(self) -> bool:
        return self._waiting > 0 and self._ready + self._block <= self._prefetch

    def _pump(self) -> None:
        from prefect.concurrency.sync import rate_limit

        while True:
            with self._cond:
                while not self._stop.is_set() and not self._wanted():
                    self._cond.wait(timeout=0.5)
                if self._stop.is_set():
                    return
            try:
                rate_limit(self.name or "", occupy=self._block, timeout_seconds=30, strict=True)
            except Exception as exc:  # the API went away: fall back to the client's limiter
                log.warning(
                    "Prefect rate limit %r unavailable (%s); going on with the client's limiter",
                    self.name,
                    type(exc).__name__,
                )
                self._stop.set()
                with self._cond:
                    self._cond.notify_all()
                return
            with self._cond:
                self._ready += self._block
                self.granted += self._block
                self._cond.notify_all()


def shared_rate_gate(
    name: str, per_second: int, logger: Any = log, *, create: bool = True
) -> RateGate:
    """A started gate on the Prefect rate limit ``name`` (created at ``per_second`` if absent
    and ``create``); a gate that does nothing when the limit cannot be had."""
    try:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
                capacity = int(limit.limit)
            except ObjectNotFound:
                if not create:
                    raise
                capacity = per_second * BURST_SECONDS
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(
                        name=name, limit=capacity, slot_decay_per_second=float(per_second)
                    )
                )
                logger.info(
                    "created the Prefect rate limit %r (%d/s, bursts of %d) shared by workers",
                    name,
                    per_second,
                    capacity,
                )
    except Exception as exc:  # no API, no permission, no such limit: the client's limiter holds
        logger.info(
            "no Prefect rate limit %r (%s); relying on the client's request limiter",
            name,
            type(exc).__name__,
        )
        return RateGate(None)
    if capacity < 1:
        logger.info("Prefect rate limit %r has no slots; not using it", name)
        return RateGate(None)
    return RateGate(name, block=min(BLOCK, capacity)).start()
