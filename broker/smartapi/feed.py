"""SmartAPI WebSocket 2.0 market-data client (SPEC §6).

`MarketFeed` keeps one socket to `/smart-stream` alive for as long as it runs (the
connect loop, backoff, ping, watchdog and retry classifier live in `reconnect`):

* header auth (`Authorization`, `x-api-key`, `x-client-code`, `x-feed-token`), from
  fixed tokens or from a `reconnect.CredentialsProvider` asked on every connect and
  once more after a refused handshake, so the feed survives the nightly token rollover
  (`reconnect.session_credentials(session)` adapts the REST session);
* subscribe / unsubscribe by mode (LTP, QUOTE, SNAP_QUOTE) and exchange type, re-sent
  in full after every reconnect;
* binary frames are only collected while the socket has data buffered, then decoded as
  one batch by `codec.decode_ticks` and handed to `on_batch` (or `batches()`), so the
  hot path has no per-frame Python decoding;
* client-side limits checked before anything is sent: 1000 (token, mode) subscriptions
  per connection, 3 connections per client code in this process.

Errors, grouped by what the caller should do (the `Feed*` tree is drawn in `reconnect`
and re-exported here):

    reconnect.FeedError
    ├── FeedAuthError                credentials refused (and, with a provider, refused
    │                                again after a renewal): log in, start a new socket
    ├── FeedRefused                  handshake refused for another reason (bad URL, 4xx)
    └── FeedLimitError               a client-side limit would be broken; nothing was sent
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
import json
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, NamedTuple

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from broker.smartapi.codec import TickBatch, decode_ticks
from broker.smartapi.errors import Redactor
from broker.smartapi.reconnect import (
    MAX_CONNECTIONS_PER_CLIENT,
    Backoff,
    ConnectionLimitError,
    CredentialsProvider,
    FeedAuthError,
    FeedCredentials,
    FeedError,
    FeedLimitError,
    FeedRefused,
    MaybeAwaitable,
    ReconnectingSocket,
    SocketStats,
    invoke_callback,
    pick_credentials,
)

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS_PER_CONNECTION = 1000
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


class SubscriptionLimitError(FeedLimitError):
    """More (token, mode) subscriptions than one connection may hold."""


@dataclass(frozen=True, slots=True)
class ServerMessageError:
    """An error object the server sent as text (E1001 bad payload, E1002 limit exceeded)."""

    code: str
    message: str
    correlation_id: str = ""
    # The subscriptions the refused request asked for, when it could be matched.
    refused: frozenset[Subscription] = frozenset()


# --------------------------------------------------------------------------- market feed


@dataclass
class FeedStats(SocketStats):
    """Counters of one `MarketFeed`."""

    frames: int = 0
    ticks: int = 0
    malformed: int = 0
    # SNAP_QUOTE ticks whose best-five flags differ from SPEC §6.5; delivered all the same.
    flag_mismatches: int = 0
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

    Give `credentials=` (e.g. `reconnect.session_credentials(session)`) instead of
    `jwt=`/`feed_token=` for a feed that renews its tokens when a reconnect is refused;
    with fixed tokens a refused reconnect stops the feed with `FeedAuthError`.

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
        api_key: str,
        client_code: str,
        jwt: str | None = None,
        feed_token: str | None = None,
        credentials: CredentialsProvider | None = None,
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
        self.stats = FeedStats()
        self._api_key = api_key
        super().__init__(
            url,
            credentials=pick_credentials(
                self.SERVICE,
                jwt=jwt,
                feed_token=feed_token,
                credentials=credentials,
                feed_token_required=True,
            ),
            secrets=(api_key,),
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

    def _headers(self, credentials: FeedCredentials) -> dict[str, str]:
        # The raw jwt, as the WS 2.0 docs show (SmartAPI also takes "Bearer <jwt>").
        return {
            "Authorization": credentials.jwt,
            "x-api-key": self._api_key,
            "x-client-code": self._client_code,
            "x-feed-token": credentials.feed_token,
        }

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
        if batch.flag_mismatches:
            self._count_flag_mismatches(batch)
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

    def _count_flag_mismatches(self, batch: TickBatch) -> None:
        stats = self.stats
        before = stats.flag_mismatches
        stats.flag_mismatches += batch.flag_mismatches
        every = self._malformed_log_every
        if before == 0 or before // every != stats.flag_mismatches // every:
            logger.warning(
                "%s: %d ticks so far with best-five flags unlike SPEC §6.5; "
                "their levels are read by position and the ticks kept",
                self.SERVICE,
                stats.flag_mismatches,
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
    "CredentialsProvider",
    "ExchangeType",
    "FeedAuthError",
    "FeedCredentials",
    "FeedError",
    "FeedLimitError",
    "FeedRefused",
    "FeedStats",
    "MarketFeed",
    "Mode",
    "ServerMessageError",
    "Subscription",
    "SubscriptionLimitError",
]
