"""A WebSocket kept open by a connect loop with one retry classifier (SPEC §6, §8).

`ReconnectingSocket` is the machinery the market feed (`feed.MarketFeed`) and the
order-status stream (`order_updates.OrderUpdates`) share:

* a connect/serve loop with jittered exponential backoff (`Backoff`) that resets after
  a connection that delivered messages;
* a text `ping` every `ping_interval` seconds and a watchdog that drops a socket open
  but silent for `silence_timeout` seconds (a known SmartAPI failure after the nightly
  token rollover);
* credentials asked for on every connect: fixed tokens, or a `CredentialsProvider`
  called with `refresh=False` before each handshake and once with `refresh=True` after
  the handshake is refused, so a socket outlives a session rollover;
* a process-wide cap on sockets per client code (SmartAPI allows 3 per service).

Retry or give up is decided in one place, `classify_failure`: network errors, 5xx, a
socket dropped mid-session and a provider's `errors.RetryLater` are retried; 429 after
a longer pause; a handshake refused with 401/403 is an auth failure. With a provider,
the first auth failure since the last good handshake asks it for fresh credentials and
tries again at once; a second one stops the socket with `FeedAuthError` (no retry storm).

Errors, grouped by what the caller should do:

    errors.BrokerError
    └── FeedError                    base of the WebSocket client errors
        ├── FeedAuthError            credentials refused (also an errors.AuthError): log in
        │                            again, then start a new socket
        ├── FeedRefused              handshake refused for another reason (bad URL, 4xx)
        └── FeedLimitError           a client-side limit would be broken (also an
            │                        errors.InvalidRequest); nothing was sent
            ├── ConnectionLimitError     more than 3 sockets for one client code
            └── feed.SubscriptionLimitError

Secrets (jwt, feed token, API key) never reach a log line or an exception message: the
websockets protocol logger, which prints handshake headers at DEBUG, goes through a
redacting adapter; tokens a provider hands over are added to the redactor before use.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from broker.smartapi.errors import (
    AuthError,
    BrokerError,
    InvalidRequest,
    RateLimited,
    Redactor,
    RetryLater,
)

if TYPE_CHECKING:
    from broker.smartapi.auth import SmartApiSession

logger = logging.getLogger(__name__)

MAX_CONNECTIONS_PER_CLIENT = 3


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


class ConnectionLimitError(FeedLimitError):
    """More concurrent sockets than one client code may open."""


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
    # Credentials were refused: fresh ones (from a provider) may get the socket back.
    renew_credentials: bool = False


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
                renew_credentials=True,
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
                renew_credentials=True,
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
    # Raised by a credentials provider whose REST login or refresh hit a transient failure.
    if isinstance(exc, RateLimited):
        return Verdict(retry=True, min_delay=backoff.throttled_delay)
    if isinstance(exc, RetryLater):
        return Verdict(retry=True)
    return Verdict(retry=False)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class FeedCredentials:
    """The session tokens a handshake carries (raw jwt, without "Bearer ")."""

    jwt: str = field(repr=False)
    feed_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "jwt", self.jwt.removeprefix("Bearer ").strip())
        object.__setattr__(self, "feed_token", self.feed_token.strip())


# Called with refresh=False before every handshake (return the current tokens) and with
# refresh=True once after the server refused them (renew the session, return the new ones).
CredentialsProvider = Callable[[bool], Awaitable[FeedCredentials]]


def session_credentials(session: SmartApiSession) -> CredentialsProvider:
    """A provider backed by the REST session: its current tokens, renewed via `recover`."""
    handed_out = ""

    async def provide(refresh: bool) -> FeedCredentials:
        nonlocal handed_out
        if refresh and handed_out:
            # A no-op when a REST call already renewed the session these tokens came from.
            await session.recover(handed_out)
        jwt = await session.jwt()
        tokens = session.tokens
        feed_token = tokens.feed_token.get_secret_value() if tokens is not None else ""
        handed_out = jwt
        return FeedCredentials(jwt=jwt, feed_token=feed_token)

    return provide


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
    credential_refreshes: int = 0  # provider calls with refresh=True after a refused handshake
    last_message_at: float | None = None  # wall-clock epoch seconds of the latest message


MaybeAwaitable = Awaitable[None] | None


async def invoke_callback(callback: Callable[..., MaybeAwaitable], *args: object) -> None:
    """Call a sync or async callback and await its result when it is awaitable."""
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


def pick_credentials(
    service: str,
    *,
    jwt: str | None,
    feed_token: str | None,
    credentials: CredentialsProvider | None,
    feed_token_required: bool,
) -> FeedCredentials | CredentialsProvider:
    """Fixed tokens or a provider, whichever the caller gave (exactly one of the two)."""
    if credentials is not None:
        if jwt is not None or feed_token is not None:
            raise ValueError(f"{service}: give either jwt=/feed_token= or credentials=, not both")
        return credentials
    if jwt is None or (feed_token_required and feed_token is None):
        needed = "jwt= and feed_token=" if feed_token_required else "jwt="
        raise ValueError(f"{service}: give {needed}, or a credentials= provider")
    return FeedCredentials(jwt=jwt, feed_token=feed_token or "")


class ReconnectingSocket:
    """A WebSocket kept open by a connect/serve loop; subclasses handle the messages.

    Subclasses implement `_headers` (the handshake headers for a set of credentials) and
    `_read` (consume messages until the socket fails), and may override `_on_open`,
    `_extra_tasks`, `_received_count`, `_drain` and `_finished`.
    """

    SERVICE: ClassVar[str] = "websocket"
    MAX_CONNECTIONS: ClassVar[int] = MAX_CONNECTIONS_PER_CLIENT

    def __init__(
        self,
        url: str,
        *,
        credentials: FeedCredentials | CredentialsProvider,
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
        self._redact = redactor if redactor is not None else Redactor()
        self._redact.add(*secrets)
        if isinstance(credentials, FeedCredentials):
            self._fixed: FeedCredentials | None = credentials
            self._provider: CredentialsProvider | None = None
            self._redact.add(credentials.jwt, credentials.feed_token)
        else:
            self._fixed = None
            self._provider = credentials
        self._renew_pending = False
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
        # Fresh credentials were already tried since the last good handshake: a second
        # refusal is final, so a session that cannot be renewed does not loop.
        renewed = False
        while not stop.is_set():
            try:
                ws = await self._until_stopped(self._open())
            except Exception as exc:
                verdict = classify_failure(
                    exc, service=self.SERVICE, backoff=self._backoff, redact=self._redact
                )
                if verdict.renew_credentials and self._provider is not None and not renewed:
                    renewed = True
                    self._renew_pending = True
                    logger.warning(
                        "%s: credentials refused (%s); asking for fresh ones",
                        self.SERVICE,
                        self._redact(_describe(exc)),
                    )
                    continue
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
            renewed = False
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
        credentials = await self._credentials()
        self._stats.connect_attempts += 1
        return await connect(
            self._url,
            additional_headers=self._headers(credentials),
            open_timeout=self._open_timeout,
            close_timeout=self._close_timeout,
            # Liveness is the text ping below (the SmartAPI way) plus the watchdog.
            ping_interval=None,
            compression=None,
            max_queue=self._max_queue,
            proxy=self._proxy,
            logger=self._wire_logger,
        )

    async def _credentials(self) -> FeedCredentials:
        """The tokens for the next handshake: the fixed ones, or the provider's."""
        if self._provider is None:
            assert self._fixed is not None
            return self._fixed
        refresh = self._renew_pending
        if refresh:
            self._stats.credential_refreshes += 1
        credentials = await self._provider(refresh)
        if not isinstance(credentials, FeedCredentials):
            raise TypeError(
                f"{self.SERVICE}: the credentials provider returned "
                f"{type(credentials).__name__}, expected FeedCredentials"
            )
        # Renewed: a handshake that now fails for another reason must not renew again.
        self._renew_pending = False
        self._redact.add(credentials.jwt, credentials.feed_token)
        return credentials

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

    def _headers(self, credentials: FeedCredentials) -> dict[str, str]:
        """The handshake headers carrying `credentials`."""
        raise NotImplementedError

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


__all__ = [
    "MAX_CONNECTIONS_PER_CLIENT",
    "Backoff",
    "ConnectionLimitError",
    "CredentialsProvider",
    "FeedAuthError",
    "FeedCredentials",
    "FeedError",
    "FeedLimitError",
    "FeedRefused",
    "MaybeAwaitable",
    "ReconnectingSocket",
    "SocketStats",
    "Verdict",
    "classify_failure",
    "invoke_callback",
    "pick_credentials",
    "session_credentials",
]
