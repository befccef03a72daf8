"""SmartAPI WebSocket 2.0 market-data client (SPEC §6) and the reconnect machinery it shares.

`MarketFeed` keeps one socket to `/smart-stream` alive for as long as it runs:

* header auth (`Authorization`, `x-api-key`, `x-client-code`, `x-feed-token`);
* subscribe / unsubscribe by mode (LTP, QUOTE, SNAP_QUOTE) and exchange type, re-sent
  in full after every reconnect;
* a text `ping` every `ping_interval` seconds, a watchdog that drops a socket that has
  been open but silent for `silence_timeout` seconds (a known SmartAPI failure after
  the nightly token rollover), and reconnection with jittered exponential backoff that
  resets after a good connection;
* binary frames are only collected while the socket has data buffered, then decoded as
  one batch by `codec.decode_ticks` and handed to `on_batch` (or `batches()`), so the
  hot path has no per-frame Python decoding;
* client-side limits checked before anything is sent: 1000 (token, mode) subscriptions
  per connection, 3 connections per client code in this process.

Retry or give up is decided in one place, `classify_failure`: network errors, 5xx and
a socket dropped mid-session are retried; a handshake refused with 401/403 is an auth
failure that stops the socket (no retry storm); 429 is retried after a longer pause.

Errors, grouped by what the caller should do:

    errors.BrokerError
    └── FeedError                    base of everything raised here
        ├── FeedAuthError            credentials refused (also an errors.AuthError): log in
        │                            again, then start a new socket
        ├── FeedRefused              handshake refused for another reason (bad URL, 4xx)
        └── FeedLimitError           a client-side limit would be broken (also an
            │                        errors.InvalidRequest); nothing was sent
            ├── SubscriptionLimitError   more than 1000 (token, mode) pairs on one connection
            └── ConnectionLimitError     more than 3 sockets for one client code

    ServerMessageError               not raised: an E1001/E1002 object from the server,
                                     counted, logged and passed to `on_error`

Secrets (jwt, feed token, API key) never reach a log line or an exception message: the
websockets protocol logger, which prints handshake headers at DEBUG, goes through a
redacting adapter, as does any server text we log. Pass the session's `errors.Redactor`
as `redactor=` to share one list of secrets with the REST client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Literal, NamedTuple, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from broker.smartapi.codec import TickBatch, decode_ticks
from broker.smartapi.errors import AuthError, BrokerError, InvalidRequest, Redactor

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS_PER_CONNECTION = 1000
MAX_CONNECTIONS_PER_CLIENT = 3
# Subscribe requests remembered for matching E1001/E1002 replies (the server sends no ack).
_REMEMBERED_REQUESTS = 256


class Mode(IntEnum):
    """WebSocket 2.0 subscription modes (DEPTH-20 is deprecated and not offered)."""

    LTP = 1
    QUOTE = 2
    SNAP_QUOTE = 3


class ExchangeType(IntEnum):
    """WebSocket 2.0 `exchangeType` codes (SPEC §6.3)."""

    NSE_CM = 1
    NSE_FO = 2
    BSE_CM = 3
    BSE_FO = 4
    MCX_FO = 5
    NCX_FO = 7
    CDE_FO = 13


class Subscription(NamedTuple):
    """One (token, mode) pair on one exchange segment; the unit of the 1000 limit."""

    exchange_type: int
    token: str
    mode: int


# --------------------------------------------------------------------------- errors


class FeedError(BrokerError):
    """Base of the WebSocket client errors."""


class FeedAuthError(FeedError, AuthError):
    """The handshake refused our credentials (HTTP 401/403); the socket has stopped."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message, http_status=status)
        self.status = status
        # The server's `x-error-message`, e.g. "Invalid Header - Invalid Feed Token".
        self.reason = reason


class FeedRefused(FeedError):
    """The handshake was refused for a reason retrying will not fix (e.g. HTTP 404)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, http_status=status)
        self.status = status


class FeedLimitError(FeedError, InvalidRequest):
    """A client-side limit would be exceeded; nothing was sent."""

    def __init__(self, message: str, *, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


class SubscriptionLimitError(FeedLimitError):
    """More (token, mode) subscriptions than one connection may hold."""


class ConnectionLimitError(FeedLimitError):
    """More concurrent sockets than one client code may open."""


@dataclass(frozen=True, slots=True)
class ServerMessageError:
    """An error object the server sent as text (E1001 bad payload, E1002 limit exceeded)."""

    code: str
    message: str
    correlation_id: str = ""
    # The subscriptions the refused request asked for, when it could be matched.
    refused: frozenset[Subscription] = frozenset()


# --------------------------------------------------------------------------- reconnecting


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff between connection attempts.

    Attempt n waits `min(max_delay, initial * factor**n)` scaled by a random factor in
    `[1 - jitter, 1]`, so many clients dropped together do not return together.
    `throttled_delay` is the floor after the server says "too many" (HTTP 429).
    """

    initial: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    throttled_delay: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before connection attempt number `attempt` (0-based) is retried."""
        ceiling = min(self.max_delay, self.initial * self.factor ** min(attempt, 64))
        return ceiling * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do about a failed or lost connection."""

    retry: bool
    min_delay: float = 0.0
    # The error to raise when not retrying; None means re-raise the original exception.
    error: FeedError | None = None


def classify_failure(
    exc: BaseException,
    *,
    service: str,
    backoff: Backoff,
    redact: Callable[[str], str] | None = None,
) -> Verdict:
    """Decide whether a connection failure is worth retrying (the one place that decides).

    `redact` cleans the server's `x-error-message` before it goes into an error message.
    """
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        reason = exc.response.headers.get("x-error-message", "") or ""
        if redact is not None:
            reason = redact(reason)
        if status == 401:
            detail = reason or "invalid token"
            return Verdict(
                retry=False,
                error=FeedAuthError(
                    f"{service} refused the login ({detail}); log in again",
                    status=status,
                    reason=reason,
                ),
            )
        if status == 403:
            detail = reason or "token expired"
            return Verdict(
                retry=False,
                error=FeedAuthError(
                    f"{service} refused the session ({detail}); log in again",
                    status=status,
                    reason=reason,
                ),
            )
        if status == 429:
            return Verdict(retry=True, min_delay=backoff.throttled_delay)
        if status >= 500:
            return Verdict(retry=True)
        return Verdict(
            retry=False,
            error=FeedRefused(f"{service} refused the handshake", status=status),
        )
    if isinstance(exc, InvalidURI):
        return Verdict(retry=False, error=FeedRefused(f"{service} URL is not a WebSocket URL"))
    # InvalidHandshake covers a server that closes the socket mid-handshake (as SmartAPI
    # does to a connection beyond its limit); ConnectionClosed a socket lost mid-session.
    if isinstance(exc, OSError | TimeoutError | EOFError | InvalidHandshake | ConnectionClosed):
        return Verdict(retry=True)
    return Verdict(retry=False)


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logger for the websockets library: formats each record and strips secrets from it."""

    def __init__(self, target: logging.Logger, redact: Redactor) -> None:
        super().__init__(target, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        self.logger.log(level, "%s", self._redact(text), **kwargs)


class _ConnectionSlots:
    """Process-wide count of open sockets per (service, client code)."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _held: ClassVar[dict[tuple[str, str], int]] = {}

    @classmethod
    def acquire(cls, service: str, client_code: str, limit: int) -> None:
        with cls._lock:
            key = (service, client_code)
            held = cls._held.get(key, 0)
            if held >= limit:
                raise ConnectionLimitError(
                    f"{service}: connection {held + 1} for client code {client_code!r} "
                    f"refused; at most {limit} connections are allowed per client code",
                    count=held + 1,
                    limit=limit,
                )
            cls._held[key] = held + 1

    @classmethod
    def release(cls, service: str, client_code: str) -> None:
        with cls._lock:
            key = (service, client_code)
            held = cls._held.get(key, 0)
            if held <= 1:
                cls._held.pop(key, None)
            else:
                cls._held[key] = held - 1

    @classmethod
    def held(cls, service: str, client_code: str) -> int:
        with cls._lock:
            return cls._held.get((service, client_code), 0)


class _Silent(Exception):
    """The watchdog found the socket open but silent."""


@dataclass
class SocketStats:
    """Counters shared by both sockets."""

    connect_attempts: int = 0  # handshakes tried, failed ones included
    connections: int = 0  # handshakes that succeeded
    reconnects: int = 0  # successful handshakes after the first
    watchdog_trips: int = 0  # sockets dropped for being silent too long
    pongs: int = 0
    callback_errors: int = 0  # exceptions raised by our callers' callbacks (logged, swallowed)
    last_message_at: float | None = None  # wall-clock epoch seconds of the latest message


MaybeAwaitable = Awaitable[None] | None


async def invoke_callback(callback: Callable[..., MaybeAwaitable], *args: object) -> None:
    """Call a sync or async callback and await its result when it is awaitable."""
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class ReconnectingSocket:
    """A WebSocket kept open by a connect/serve loop; subclasses handle the messages.

    Subclasses implement `_read` (consume messages until the socket fails) and may
    override `_on_open`, `_extra_tasks`, `_received_count`, `_drain` and `_finished`.
    """

    SERVICE: ClassVar[str] = "websocket"
    MAX_CONNECTIONS: ClassVar[int] = MAX_CONNECTIONS_PER_CLIENT

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        secrets: Iterable[str],
        redactor: Redactor | None,
        client_code: str,
        stats: SocketStats,
        on_error: Callable[[Any], MaybeAwaitable] | None,
        ping_interval: float,
        silence_timeout: float | None,
        backoff: Backoff,
        open_timeout: float,
        close_timeout: float,
        max_queue: int,
        proxy: str | Literal[True] | None,
        rng: random.Random | None,
    ) -> None:
        if ping_interval <= 0:
            raise ValueError(f"ping_interval must be > 0 seconds, got {ping_interval}")
        if silence_timeout is not None and silence_timeout <= 0:
            raise ValueError(f"silence_timeout must be > 0 seconds or None, got {silence_timeout}")
        self._url = url
        self._headers = dict(headers)
        self._redact = redactor if redactor is not None else Redactor()
        self._redact.add(*secrets)
        self._wire_logger = _RedactingLogger(logging.getLogger(f"{__name__}.wire"), self._redact)
        self._client_code = client_code
        self._stats = stats
        self._on_error = on_error
        self._ping_interval = ping_interval
        self._silence_timeout = silence_timeout
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._max_queue = max_queue
        self._proxy = proxy
        self._rng = rng or random.Random()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._connected: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._started = False
        self._slot_held = False
        self._last_rx = 0.0
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._url!r}, client_code={self._client_code!r})"

    # ----------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """True while a socket is open and serving."""
        return self._ws is not None

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped the socket for good (e.g. `FeedAuthError`), if any."""
        return self._failure

    async def start(self) -> None:
        """Run the connection loop in a background task (raises `ConnectionLimitError`).

        A fatal error ends the task quietly: it is kept in `failure`, passed to `on_error`
        and raised by `wait_connected()` / `join()`.
        """
        self._claim()
        self._task = asyncio.create_task(self._background(), name=self.SERVICE)

    async def run(self) -> None:
        """Connect and stay connected until `close()`; raises the error that stopped it."""
        self._claim()
        await self._run_loop()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a socket is open (raises the stopping error, or TimeoutError)."""
        _, connected, done = self._events()
        waiters = {
            asyncio.ensure_future(connected.wait()),
            asyncio.ensure_future(done.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if connected.is_set():
            return
        if self._failure is not None:
            raise self._failure
        if done.is_set():
            raise FeedError(f"{self.SERVICE} stopped before it connected")
        raise TimeoutError(f"{self.SERVICE} not connected within {timeout} s")

    async def join(self) -> None:
        """Wait until the connection loop has stopped; raises the error that stopped it."""
        if self._started:
            await self._events()[2].wait()
        if self._failure is not None:
            raise self._failure

    async def close(self) -> None:
        """Close the socket cleanly and stop reconnecting (never raises the stop error)."""
        stop, _, done = self._events()
        stop.set()
        if not self._started:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), self._close_timeout + 1.0)
        task = self._task
        if task is not None and not task.done():
            # Stuck in a close handshake or a callback: stop waiting for it.
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _events(self) -> tuple[asyncio.Event, asyncio.Event, asyncio.Event]:
        """(stop requested, socket open, loop finished), created inside the running loop."""
        if self._stop is None or self._connected is None or self._done is None:
            self._stop = asyncio.Event()
            self._connected = asyncio.Event()
            self._done = asyncio.Event()
        return self._stop, self._connected, self._done

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError(f"{self.SERVICE} was already started; build a new one")
        _ConnectionSlots.acquire(self.SERVICE, self._client_code, self.MAX_CONNECTIONS)
        self._slot_held = True
        self._started = True
        self._events()

    async def _background(self) -> None:
        with contextlib.suppress(Exception):
            await self._run_loop()

    async def _run_loop(self) -> None:
        try:
            await self._connect_loop()
        except Exception as exc:
            self._failure = exc
            await self._report(exc)
            raise
        finally:
            if self._slot_held:
                _ConnectionSlots.release(self.SERVICE, self._client_code)
                self._slot_held = False
            self._events()[2].set()
            await self._finished()

    # ----------------------------------------------------------------- the loop

    async def _connect_loop(self) -> None:
        stop, connected, _ = self._events()
        attempt = 0
        while not stop.is_set():
            self._stats.connect_attempts += 1
            try:
                ws = await self._until_stopped(self._open())
            except Exception as exc:
                verdict = classify_failure(
                    exc, service=self.SERVICE, backoff=self._backoff, redact=self._redact
                )
                if not verdict.retry:
                    if verdict.error is not None:
                        raise verdict.error from exc
                    raise
                delay = max(verdict.min_delay, self._backoff.delay(attempt, self._rng))
                attempt += 1
                logger.warning(
                    "%s: connection attempt failed (%s); retrying in %.2f s",
                    self.SERVICE,
                    self._redact(_describe(exc)),
                    delay,
                )
                await self._sleep(delay)
                continue
            if ws is None:  # stopped while connecting
                break
            self._stats.connections += 1
            if self._stats.connections > 1:
                self._stats.reconnects += 1
            good = False
            try:
                good = await self._serve(ws)
            finally:
                self._ws = None
                connected.clear()
            if stop.is_set():
                break
            # A connection that delivered messages was good: start the backoff afresh.
            if good:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            logger.warning("%s: connection lost; reconnecting in %.2f s", self.SERVICE, delay)
            await self._sleep(delay)

    async def _open(self) -> ClientConnection:
        return await connect(
            self._url,
            additional_headers=self._headers,
            open_timeout=self._open_timeout,
            close_timeout=self._close_timeout,
            # Liveness is the text ping below (the SmartAPI way) plus the watchdog.
            ping_interval=None,
            compression=None,
            max_queue=self._max_queue,
            proxy=self._proxy,
            logger=self._wire_logger,
        )

    async def _until_stopped(self, coro: Awaitable[ClientConnection]) -> ClientConnection | None:
        """Await `coro` unless `close()` is called first (then cancel it and return None)."""
        stop = self._events()[0]
        work = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if work.done():
            return work.result()
        work.cancel()
        with contextlib.suppress(BaseException):
            ws = await work
            await ws.close()
        return None

    async def _sleep(self, delay: float) -> None:
        stop = self._events()[0]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    async def _serve(self, ws: ClientConnection) -> bool:
        """Serve one open socket until it is lost or stopped; True if it delivered messages."""
        stop, connected, _ = self._events()
        self._last_rx = time.monotonic()
        received_before = self._received_count()
        self._ws = ws
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._on_open(ws)
            connected.set()
            tasks = [
                asyncio.create_task(self._read(ws)),
                asyncio.create_task(self._ping(ws)),
                asyncio.create_task(stop.wait()),
                *self._extra_tasks(),
            ]
            if self._silence_timeout is not None:
                tasks.append(asyncio.create_task(self._watch(self._silence_timeout)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is None:
                    continue
                if isinstance(exc, _Silent):
                    self._stats.watchdog_trips += 1
                    logger.warning(
                        "%s: no message for %.1f s; reconnecting", self.SERVICE, exc.args[0]
                    )
                elif classify_failure(exc, service=self.SERVICE, backoff=self._backoff).retry:
                    logger.info("%s: socket closed (%s)", self.SERVICE, _describe(exc))
                else:
                    raise exc
        except ConnectionClosed as exc:
            logger.info("%s: socket closed while opening (%s)", self.SERVICE, _describe(exc))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain()
            with contextlib.suppress(Exception):
                await ws.close()
        return self._received_count() > received_before

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            await ws.send("ping")

    async def _watch(self, silence: float) -> None:
        step = max(0.05, min(1.0, silence / 4))
        while True:
            await asyncio.sleep(step)
            if time.monotonic() - self._last_rx > silence:
                raise _Silent(silence)

    async def _report(self, error: Any) -> None:
        if self._on_error is None:
            return
        try:
            await invoke_callback(self._on_error, error)
        except Exception:
            self._stats.callback_errors += 1
            logger.exception("%s: on_error callback failed", self.SERVICE)

    # ----------------------------------------------------------------- subclass hooks

    async def _on_open(self, ws: ClientConnection) -> None:
        """Called once the handshake succeeded, before the reader starts."""

    async def _read(self, ws: ClientConnection) -> None:
        raise NotImplementedError

    def _extra_tasks(self) -> list[asyncio.Task[Any]]:
        return []

    def _received_count(self) -> int:
        return self._stats.pongs

    async def _drain(self) -> None:
        """Deliver whatever was received before the socket went away."""

    async def _finished(self) -> None:
        """Called once when the loop has stopped for good."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- market feed


@dataclass
class FeedStats(SocketStats):
    """Counters of one `MarketFeed`."""

    frames: int = 0
    ticks: int = 0
    malformed: int = 0
    batches: int = 0
    server_errors: int = 0
    last_malformed_reason: str = ""


OnBatch = Callable[[TickBatch], MaybeAwaitable]
OnFeedError = Callable[[ServerMessageError | FeedError], MaybeAwaitable]

_END = object()


class MarketFeed(ReconnectingSocket):
    """WebSocket 2.0 market-data client delivering decoded ticks in batches.

    Example::

        feed = MarketFeed(url, jwt=jwt, api_key=key, client_code="DEMO01",
                          feed_token=feed_token, on_batch=handle)
        await feed.subscribe(["99926000"], Mode.QUOTE, ExchangeType.NSE_CM)
        await feed.start()
        ...
        await feed.close()

    Without `on_batch`, iterate `feed.batches()` instead. `on_error` receives server
    error objects (`ServerMessageError`, e.g. a subscription refused beyond the limit)
    and the `FeedError` that stopped the feed. Callbacks may be plain functions or
    coroutines; an exception they raise is logged and counted, never fatal to the feed.

    Knobs: `ping_interval` (text `ping`, default 10 s), `silence_timeout` (watchdog,
    default 20 s; None disables it), `backoff` (reconnect delays), `max_subscriptions`,
    `malformed_log_every` (one WARNING per so many malformed frames), `max_pending_frames`
    (stop reading while that many undecoded frames wait for a slow consumer), `proxy`
    (None connects directly; True uses the environment's proxy settings), `redactor`
    (share the session's `errors.Redactor`).
    """

    SERVICE = "market feed"

    def __init__(
        self,
        url: str,
        *,
        jwt: str,
        api_key: str,
        client_code: str,
        feed_token: str,
        on_batch: OnBatch | None = None,
        on_error: OnFeedError | None = None,
        ping_interval: float = 10.0,
        silence_timeout: float | None = 20.0,
        backoff: Backoff | None = None,
        max_subscriptions: int = MAX_SUBSCRIPTIONS_PER_CONNECTION,
        malformed_log_every: int = 1000,
        max_pending_frames: int = 200_000,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_queue: int = 4096,
        proxy: str | Literal[True] | None = None,
        rng: random.Random | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        jwt = jwt.removeprefix("Bearer ").strip()
        self.stats = FeedStats()
        super().__init__(
            url,
            # The raw jwt, as the WS 2.0 docs show (SmartAPI also takes "Bearer <jwt>").
            headers={
                "Authorization": jwt,
                "x-api-key": api_key,
                "x-client-code": client_code,
                "x-feed-token": feed_token,
            },
            secrets=(jwt, api_key, feed_token),
            redactor=redactor,
            client_code=client_code,
            stats=self.stats,
            on_error=on_error,
            ping_interval=ping_interval,
            silence_timeout=silence_timeout,
            backoff=backoff or Backoff(),
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
            proxy=proxy,
            rng=rng,
        )
        if malformed_log_every < 1:
            raise ValueError(f"malformed_log_every must be >= 1, got {malformed_log_every}")
        self._on_batch = on_batch
        self._max_subscriptions = max_subscriptions
        self._malformed_log_every = malformed_log_every
        self._max_pending = max_pending_frames
        self._subscriptions: set[Subscription] = set()
        self._requests: OrderedDict[str, frozenset[Subscription]] = OrderedDict()
        self._request_counter = 0
        self._pending: list[bytes] = []
        self._frames_ready: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self.server_errors: deque[ServerMessageError] = deque(maxlen=100)

    # ----------------------------------------------------------------- subscriptions

    @property
    def subscriptions(self) -> frozenset[Subscription]:
        """The (exchange type, token, mode) pairs to be streamed, re-sent on reconnect."""
        return frozenset(self._subscriptions)

    async def subscribe(
        self,
        tokens: Iterable[str],
        mode: Mode | int,
        exchange_type: ExchangeType | int = ExchangeType.NSE_CM,
    ) -> None:
        """Add subscriptions; raises `SubscriptionLimitError` (sending nothing) past the limit."""
        wanted = self._pairs(tokens, mode, exchange_type)
        new = wanted - self._subscriptions
        total = len(self._subscriptions) + len(new)
        if total > self._max_subscriptions:
            raise SubscriptionLimitError(
                f"subscribing {len(new)} more (token, mode) pairs would make {total} on one "
                f"connection; at most {self._max_subscriptions} are allowed",
                count=total,
                limit=self._max_subscriptions,
            )
        if not new:
            return
        self._subscriptions |= new
        await self._send_request(1, new)

    async def unsubscribe(
        self,
        tokens: Iterable[str],
        mode: Mode | int,
        exchange_type: ExchangeType | int = ExchangeType.NSE_CM,
    ) -> None:
        """Remove subscriptions (tokens not subscribed are ignored)."""
        gone = self._pairs(tokens, mode, exchange_type) & self._subscriptions
        if not gone:
            return
        self._subscriptions -= gone
        await self._send_request(0, gone)

    @staticmethod
    def _pairs(
        tokens: Iterable[str], mode: Mode | int, exchange_type: ExchangeType | int
    ) -> frozenset[Subscription]:
        if isinstance(tokens, str):
            raise TypeError("tokens must be an iterable of token strings, not one string")
        try:
            checked_mode = Mode(int(mode))
        except ValueError:
            raise ValueError(
                f"mode {mode!r} is not allowed: use 1 (LTP), 2 (QUOTE) or 3 (SNAP_QUOTE)"
            ) from None
        try:
            segment = ExchangeType(int(exchange_type))
        except ValueError:
            allowed = ", ".join(f"{e.value} ({e.name})" for e in ExchangeType)
            raise ValueError(
                f"exchange type {exchange_type!r} is not allowed: use one of {allowed}"
            ) from None
        pairs = []
        for token in tokens:
            text = str(token)
            if not (text.isascii() and text.isdigit() and len(text) <= 25):
                raise ValueError(f"token {text!r} must be 1..25 ASCII digits")
            pairs.append(Subscription(int(segment), text, int(checked_mode)))
        return frozenset(pairs)

    async def _send_request(self, action: int, pairs: frozenset[Subscription]) -> None:
        ws = self._ws
        if ws is None:
            return  # sent with everything else when the socket opens
        for message in self._requests_for(action, pairs):
            try:
                await ws.send(message)
            except ConnectionClosed:
                return  # the reconnect re-sends the whole subscription set

    def _requests_for(self, action: int, pairs: Iterable[Subscription]) -> list[str]:
        """One JSON request per mode, tokens grouped by exchange type (SPEC §6.3)."""
        by_mode: dict[int, dict[int, list[str]]] = {}
        for pair in sorted(pairs):
            by_mode.setdefault(pair.mode, {}).setdefault(pair.exchange_type, []).append(pair.token)
        messages = []
        for mode, segments in sorted(by_mode.items()):
            correlation_id = self._next_correlation_id()
            if action == 1:
                self._requests[correlation_id] = frozenset(
                    Subscription(segment, token, mode)
                    for segment, tokens in segments.items()
                    for token in tokens
                )
                while len(self._requests) > _REMEMBERED_REQUESTS:
                    self._requests.popitem(last=False)
            request = {
                "correlationID": correlation_id,
                "action": action,
                "params": {
                    "mode": mode,
                    "tokenList": [
                        {"exchangeType": segment, "tokens": tokens}
                        for segment, tokens in sorted(segments.items())
                    ],
                },
            }
            messages.append(json.dumps(request, separators=(",", ":")))
        return messages

    def _next_correlation_id(self) -> str:
        self._request_counter += 1
        return f"of{self._request_counter % 10**8:08d}"

    # ----------------------------------------------------------------- batches

    async def batches(self) -> AsyncIterator[TickBatch]:
        """Decoded batches as they arrive, when no `on_batch` was given; ends at `close()`."""
        if self._on_batch is not None:
            raise RuntimeError("batches() is for a feed built without on_batch")
        queue = self._batch_queue()
        while True:
            item = await queue.get()
            if item is _END:
                if self._failure is not None:
                    raise self._failure
                return
            yield item

    def _batch_queue(self) -> asyncio.Queue[Any]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    # ----------------------------------------------------------------- socket hooks

    async def _on_open(self, ws: ClientConnection) -> None:
        self._frames_ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        for message in self._requests_for(1, self._subscriptions):
            await ws.send(message)
        if self.stats.reconnects:
            logger.info(
                "%s: reconnected, %d subscriptions re-sent", self.SERVICE, len(self._subscriptions)
            )

    def _extra_tasks(self) -> list[asyncio.Task[Any]]:
        return [asyncio.create_task(self._dispatch())]

    def _received_count(self) -> int:
        return self.stats.frames + len(self._pending) + self.stats.pongs + self.stats.server_errors

    async def _read(self, ws: ClientConnection) -> None:
        # recv() returns without suspending while frames are buffered, so this loop only
        # yields once the socket is drained: the dispatcher then sees the whole burst.
        ready = self._frames_ready
        room = self._room
        assert ready is not None and room is not None
        monotonic = time.monotonic
        while True:
            message = await ws.recv()
            self._last_rx = monotonic()
            if type(message) is bytes:
                # Looked up each time: the dispatcher swaps in a fresh list on every flush.
                self._pending.append(message)
                if not ready.is_set():
                    ready.set()
                if len(self._pending) >= self._max_pending:
                    room.clear()
                    await room.wait()
            else:
                await self._on_text(str(message))

    async def _dispatch(self) -> None:
        ready = self._frames_ready
        room = self._room
        assert ready is not None and room is not None
        while True:
            await ready.wait()
            ready.clear()
            await self._flush()
            room.set()

    async def _drain(self) -> None:
        await self._flush()

    async def _flush(self) -> None:
        frames = self._pending
        if not frames:
            return
        self._pending = []
        batch = decode_ticks(frames)
        stats = self.stats
        stats.frames += len(frames)
        stats.ticks += len(batch)
        stats.batches += 1
        stats.last_message_at = time.time()
        if batch.malformed:
            self._count_malformed(batch)
        if len(batch):
            await self._deliver(batch)

    def _count_malformed(self, batch: TickBatch) -> None:
        stats = self.stats
        before = stats.malformed
        stats.malformed += batch.malformed
        if batch.malformed_frames:
            stats.last_malformed_reason = batch.malformed_frames[-1][1]
        every = self._malformed_log_every
        if before == 0 or before // every != stats.malformed // every:
            logger.warning(
                "%s: %d malformed frames so far (latest: %s); they are skipped",
                self.SERVICE,
                stats.malformed,
                stats.last_malformed_reason or "unknown",
            )

    async def _deliver(self, batch: TickBatch) -> None:
        if self._on_batch is None:
            self._batch_queue().put_nowait(batch)
            return
        try:
            await invoke_callback(self._on_batch, batch)
        except Exception:
            # The consumer's bug must not take the feed down with it.
            self.stats.callback_errors += 1
            logger.exception("%s: on_batch callback failed", self.SERVICE)

    async def _on_text(self, text: str) -> None:
        self.stats.last_message_at = time.time()
        if text == "pong":
            self.stats.pongs += 1
            return
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "errorCode" not in payload:
            logger.warning("%s: unexpected text message %r", self.SERVICE, self._redact(text[:200]))
            return
        correlation_id = str(payload.get("correlationID") or "")
        refused = self._requests.pop(correlation_id, frozenset())
        error = ServerMessageError(
            code=str(payload.get("errorCode") or ""),
            message=str(payload.get("errorMessage") or ""),
            correlation_id=correlation_id,
            refused=refused,
        )
        # A refused subscribe did not take effect: forget it so a reconnect does not retry it.
        self._subscriptions -= refused
        self.stats.server_errors += 1
        self.server_errors.append(error)
        logger.warning(
            "%s: server error %s %s (request %s, %d subscriptions refused)",
            self.SERVICE,
            error.code,
            self._redact(error.message),
            correlation_id or "?",
            len(refused),
        )
        await self._report(error)

    async def _finished(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(_END)


__all__ = [
    "MAX_CONNECTIONS_PER_CLIENT",
    "MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "Backoff",
    "ConnectionLimitError",
    "ExchangeType",
    "FeedAuthError",
    "FeedError",
    "FeedLimitError",
    "FeedRefused",
    "FeedStats",
    "MarketFeed",
    "Mode",
    "ReconnectingSocket",
    "ServerMessageError",
    "SocketStats",
    "Subscription",
    "SubscriptionLimitError",
    "Verdict",
    "classify_failure",
    "invoke_callback",
]
