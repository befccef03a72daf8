"""SmartAPI order-status WebSocket client (SPEC §8).

`OrderUpdates` keeps one socket to `/smart-order-update` open, answers for its liveness
with a text `ping` every `ping_interval` seconds, and turns every JSON push into a typed
`OrderUpdate` for `on_update`. The first message after each connect is the `AB00` ack
(all-empty order data); it is delivered too, so a caller can tell "connected" from
"no orders yet".

The order book is the truth, this stream only a fast hint: pushes sent while the socket
was down are not replayed. After every reconnect the `on_reconnect` hook is awaited
before any update from the new socket is delivered — re-read the order book there (the
stream then continues from a state the caller knows). Apply updates idempotently: the
same order state may arrive from the book and from the stream.

Handshake failures are classified as for the market feed (`reconnect.classify_failure`):
401 (invalid token) and 403 (expired token) are auth failures; 429 (connection limit
breached) is retried after `Backoff.throttled_delay`; network errors and 5xx are
retried with jittered exponential backoff. With fixed tokens an auth failure stops the
socket with `FeedAuthError`; with a `credentials=` provider (e.g.
`reconnect.session_credentials(session)`) the socket first asks it once for fresh
tokens and retries, so the stream survives the nightly token rollover.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection

from broker.smartapi.errors import Redactor
from broker.smartapi.reconnect import (
    Backoff,
    CredentialsProvider,
    FeedCredentials,
    FeedError,
    ReconnectingSocket,
    SocketStats,
    invoke_callback,
    pick_credentials,
)

logger = logging.getLogger(__name__)

# SPEC §8 `order-status` codes.
AB_CODES: Mapping[str, str] = {
    "AB00": "connected",
    "AB01": "open",
    "AB02": "cancelled",
    "AB03": "rejected",
    "AB04": "modified",
    "AB05": "complete",
    "AB06": "after market order req received",
    "AB07": "cancelled after market order",
    "AB08": "modify after market order req received",
    "AB09": "open pending",
    "AB10": "trigger pending",
    "AB11": "modify pending",
}
ACK_CODE = "AB00"
TERMINAL_STATUSES = frozenset({"complete", "rejected", "cancelled", "cancelled after market order"})


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One order-status push; prices in paise, quantities in units."""

    order_id: str
    unique_order_id: str
    # `orderData.status`, lower-case ("open", "complete", ...); "" on the connect ack.
    status: str
    # `order-status`, e.g. "AB05"; trust `status` alongside it (the docs disagree on codes).
    ab_code: str
    ordertag: str
    quantity: int
    filled: int
    average_price_paise: int
    # Reject reason or other broker text (`orderData.text`, else `error-message`).
    text: str
    raw: Mapping[str, Any]

    @property
    def is_ack(self) -> bool:
        """True for the `AB00` message sent right after connecting (no order in it)."""
        return self.ab_code == ACK_CODE and not self.order_id

    @property
    def is_terminal(self) -> bool:
        """True once the order can change no more (complete, rejected, cancelled)."""
        return self.status in TERMINAL_STATUSES


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _units(value: object) -> int:
    """A quantity sent as "75", 75, "75.0", "" or null."""
    text = _text(value)
    if not text:
        return 0
    try:
        return int(Decimal(text))
    except (InvalidOperation, ValueError):
        return 0


def _paise(value: object) -> int:
    """A rupee price sent as "194.50", 194.5, "" or null, in integer paise."""
    text = _text(value)
    if not text:
        return 0
    try:
        rupees = Decimal(text)
    except InvalidOperation:
        return 0
    if not rupees.is_finite():
        return 0
    return int((rupees * 100).to_integral_value(rounding=ROUND_HALF_UP))


def parse_order_update(message: str | bytes) -> OrderUpdate:
    """Parse one order-status JSON message; raises ValueError if it is not one."""
    # Decimal keeps prices exact even when the broker sends them as JSON numbers.
    payload = json.loads(message, parse_float=Decimal)
    if not isinstance(payload, dict):
        raise ValueError("order-status message is not a JSON object")
    order = payload.get("orderData")
    if not isinstance(order, dict):
        order = {}
    status = _text(order.get("status") or order.get("orderstatus")).lower()
    return OrderUpdate(
        order_id=_text(order.get("orderid")),
        unique_order_id=_text(order.get("uniqueorderid")),
        status=status,
        ab_code=_text(payload.get("order-status")).upper(),
        ordertag=_text(order.get("ordertag")),
        quantity=_units(order.get("quantity")),
        filled=_units(order.get("filledshares")),
        average_price_paise=_paise(order.get("averageprice")),
        text=_text(order.get("text")) or _text(payload.get("error-message")),
        raw=payload,
    )


@dataclass
class OrderUpdateStats(SocketStats):
    """Counters of one `OrderUpdates` socket."""

    messages: int = 0
    updates: int = 0
    acks: int = 0
    parse_errors: int = 0


OnUpdate = Callable[[OrderUpdate], Awaitable[None] | None]
OnReconnect = Callable[[], Awaitable[None] | None]
OnError = Callable[[FeedError | BaseException], Awaitable[None] | None]


class OrderUpdates(ReconnectingSocket):
    """Order-status WebSocket client delivering `OrderUpdate`s to `on_update`.

    Example::

        updates = OrderUpdates(order_ws_url, jwt=jwt, client_code="DEMO01",
                               on_update=handle, on_reconnect=reread_order_book)
        await updates.start()
        ...
        await updates.close()

    `credentials=` (a `reconnect.CredentialsProvider`) replaces `jwt=`/`feed_token=`
    for a stream that renews its tokens when a reconnect is refused.
    """

    SERVICE = "order updates"

    def __init__(
        self,
        url: str,
        *,
        on_update: OnUpdate,
        jwt: str | None = None,
        api_key: str = "",
        client_code: str = "",
        feed_token: str | None = None,
        credentials: CredentialsProvider | None = None,
        on_reconnect: OnReconnect | None = None,
        on_error: OnError | None = None,
        ping_interval: float = 10.0,
        silence_timeout: float | None = 30.0,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        proxy: str | Literal[True] | None = None,
        rng: random.Random | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.stats = OrderUpdateStats()
        self._api_key = api_key
        super().__init__(
            url,
            credentials=pick_credentials(
                self.SERVICE,
                jwt=jwt,
                feed_token=feed_token,
                credentials=credentials,
                feed_token_required=False,
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
            max_queue=256,
            proxy=proxy,
            rng=rng,
        )
        self._on_update = on_update
        self._on_reconnect = on_reconnect

    def _headers(self, credentials: FeedCredentials) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {credentials.jwt}"}
        # Not required by the docs; the official SDKs send them and they do no harm.
        for name, value in (
            ("x-api-key", self._api_key),
            ("x-client-code", self._client_code),
            ("x-feed-token", credentials.feed_token),
        ):
            if value:
                headers[name] = value
        return headers

    async def _on_open(self, ws: ClientConnection) -> None:
        if self.stats.reconnects and self._on_reconnect is not None:
            logger.info("%s: reconnected; re-reading the order book", self.SERVICE)
            try:
                await invoke_callback(self._on_reconnect)
            except Exception:
                self.stats.callback_errors += 1
                logger.exception("%s: on_reconnect callback failed", self.SERVICE)

    def _received_count(self) -> int:
        return self.stats.messages

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            message = await ws.recv()
            self._last_rx = time.monotonic()
            self.stats.last_message_at = time.time()
            self.stats.messages += 1
            if message == "pong":
                self.stats.pongs += 1
                continue
            try:
                update = parse_order_update(message)
            except ValueError:
                self.stats.parse_errors += 1
                logger.warning(
                    "%s: message is not order-status JSON: %r",
                    self.SERVICE,
                    self._redact(str(message)[:200]),
                )
                continue
            if update.is_ack:
                self.stats.acks += 1
            else:
                self.stats.updates += 1
            try:
                await invoke_callback(self._on_update, update)
            except Exception:
                self.stats.callback_errors += 1
                logger.exception("%s: on_update callback failed", self.SERVICE)


__all__ = [
    "AB_CODES",
    "ACK_CODE",
    "TERMINAL_STATUSES",
    "OrderUpdate",
    "OrderUpdateStats",
    "OrderUpdates",
    "parse_order_update",
]
