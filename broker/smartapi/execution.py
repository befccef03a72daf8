"""Live order execution on SmartAPI: place without ever doubling an order, modify, cancel.

DESIGN invariant 2 — a retry never creates a second order. The broker's ``ordertag`` carries
our intent id, and a placeOrder is sent again only when it provably never left:

* **never sent** — no connection was made (:class:`BrokerUnreachable`: refused, connect
  timeout). The REST layer sends it again itself, within its retry budget and deadline.
* **maybe sent** — the request went out and the answer was lost: a read timeout, a dropped
  connection, a 5xx, a garbled reply. Success only means "accepted" (SPEC §4.3), and an
  acceptance can reach the order book after its answer was lost, so *not in the book yet*
  proves nothing. The order book is watched for the tag (one look per ``lookup_delay_s``,
  within its 1/s budget) for ``settle_s`` seconds: found means done; still missing raises
  :class:`OrderStatusUnknown`. It is **never** sent again automatically: the caller
  reconciles (order updates, the book a little later) and may then call :meth:`place` again,
  which looks the tag up before sending anything.

Callers that re-send an intent (after a restart, or after :class:`OrderStatusUnknown`) pass
``maybe_sent=True`` (the default) and the tag is looked up before the first send.

After the broker acknowledges an order, its record is read back (details by unique order id):
a rejection (funds, price band …) arrives as an order with status ``rejected`` and is raised as
:class:`OrderRejected` carrying the order id and the broker's reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from broker.smartapi.errors import (
    BrokerError,
    BrokerUnavailable,
    BrokerUnreachable,
    InvalidRequest,
    NotFound,
    OrderRejected,
    OrderStatusUnknown,
    RetryLater,
)
from broker.smartapi.models import Order, OrderAck
from broker.smartapi.rest import OrderRequest, SmartApiClient

log = logging.getLogger(__name__)

MAX_ORDERTAG_LENGTH = 19  # SPEC §4.3: "< 20 characters", else AB4008


class ExecutionClient:
    """Places, modifies and cancels real orders through one :class:`SmartApiClient`."""

    def __init__(
        self,
        client: SmartApiClient,
        *,
        lookup_delay_s: float = 1.0,
        settle_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        # The order book can trail an acceptance, and allows one read a second: look this often.
        self.lookup_delay_s = lookup_delay_s
        # How long an unclear placeOrder is watched for (default: the client's order_settle_s).
        self.settle_s = client.transport.config.order_settle_s if settle_s is None else settle_s
        self._sleep = sleep
        self._clock = clock

    async def find_by_tag(self, ordertag: str) -> Order | None:
        """The most recent order of the day carrying ``ordertag``, if any."""
        matches = [o for o in await self.client.order_book() if o.ordertag == ordertag]
        if len(matches) > 1:
            log.warning("%d orders carry tag %s; using the latest", len(matches), ordertag)
        return matches[-1] if matches else None

    async def place(self, request: OrderRequest, *, maybe_sent: bool = True) -> Order:
        """Place ``request`` at most once; its ``ordertag`` must be the intent id.

        ``maybe_sent=False`` skips the first order-book lookup, for an intent the caller knows
        was never sent (saves one call from the 1/s order-book budget). Raises
        :class:`OrderStatusUnknown` when the send got no clear answer and the order did not
        show up within ``settle_s``; :class:`BrokerUnreachable` when it could not be sent.
        """
        tag = request.ordertag
        if not tag or len(tag) > MAX_ORDERTAG_LENGTH:
            raise InvalidRequest(
                f"ordertag {tag!r}: the intent id must be 1 to {MAX_ORDERTAG_LENGTH} characters"
            )
        if maybe_sent:
            existing = await self.find_by_tag(tag)
            if existing is not None:
                log.info("intent %s already at the broker as order %s", tag, existing.order_id)
                return _confirmed(existing)
        try:
            ack = await self.client.place_order(request)
        except BrokerUnreachable:
            raise  # never sent; the REST layer has already sent it again as far as it may
        except BrokerUnavailable as exc:
            log.warning("placeOrder for intent %s unclear (%s); watching the book for it", tag, exc)
            return _confirmed(await self._settle(tag, exc))
        return _confirmed(await self._read_back(ack, tag))

    async def _settle(self, tag: str, cause: BrokerUnavailable) -> Order:
        """The order of a maybe-sent intent, once it shows up; OrderStatusUnknown if it does not."""
        give_up_at = self._clock() + self.settle_s
        looks = 0
        trouble = ""
        while True:
            await self._sleep(self.lookup_delay_s)
            looks += 1
            try:
                found = await self.find_by_tag(tag)
            except RetryLater as exc:
                found, trouble = None, f"; last look failed: {exc}"
                log.info("order book unavailable while settling intent %s (%s)", tag, exc)
            except BrokerError as exc:
                raise OrderStatusUnknown(
                    f"placeOrder for intent {tag}: no clear answer ({cause}) and the order book "
                    f"cannot be read ({exc}); not sent again — reconcile before retrying",
                    ordertag=tag,
                ) from exc
            if found is not None:
                log.info("intent %s was accepted as order %s", tag, found.order_id)
                return found
            if self._clock() >= give_up_at:
                break
        log.error("intent %s: placeOrder unclear and not in the book; not sent again", tag)
        raise OrderStatusUnknown(
            f"placeOrder for intent {tag}: no clear answer ({cause}) and not in the order book "
            f"after {looks} looks over {self.settle_s:g} s{trouble}; not sent again — "
            "reconcile before retrying",
            ordertag=tag,
        ) from cause

    async def _read_back(self, ack: OrderAck, tag: str) -> Order:
        try:
            return await self.client.order_details(ack.unique_order_id)
        except (NotFound, BrokerUnavailable) as exc:
            log.info("details for order %s unavailable (%s); using the book", ack.order_id, exc)
        found = await self.find_by_tag(tag)
        if found is None:
            raise OrderStatusUnknown(
                f"order {ack.order_id} for intent {tag} was acknowledged but its record cannot "
                "be read yet; reconcile before acting on it",
                ordertag=tag,
                order_id=ack.order_id,
            )
        return found

    async def order(self, order: Order) -> Order:
        """The latest record of ``order``."""
        if order.unique_order_id:
            return await self.client.order_details(order.unique_order_id)
        for candidate in await self.client.order_book():
            if candidate.order_id == order.order_id:
                return candidate
        raise NotFound(f"order {order.order_id} is not in the order book")

    async def cancel(self, order: Order) -> Order:
        """Cancel a working order; returns its record afterwards (cancelled, or filled first)."""
        for _ in range(2):
            try:
                await self.client.cancel_order(order.order_id, order.variety or "NORMAL")
            except (BrokerUnavailable, NotFound) as exc:
                # Unclear, or the order had stopped working: the order's record decides.
                log.info("cancel of order %s: %s; reading it back", order.order_id, exc)
            current = await self.order(order)
            if current.is_terminal:
                return current
            await self._sleep(self.lookup_delay_s)
            current = await self.order(order)
            if current.is_terminal:
                return current
        return current

    async def modify(
        self,
        order: Order,
        *,
        price_paise: int | None = None,
        quantity: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> Order:
        """Change a working order; an unclear answer is settled by reading the order back."""
        try:
            await self.client.modify_order(
                order,
                price_paise=price_paise,
                quantity=quantity,
                trigger_price_paise=trigger_price_paise,
            )
        except BrokerUnavailable as exc:
            log.info("modify of order %s unclear (%s); reading it back", order.order_id, exc)
            await self._sleep(self.lookup_delay_s)
            current = await self.order(order)
            if current.is_terminal or _has(current, price_paise, quantity):
                return current
            await self.client.modify_order(
                current,
                price_paise=price_paise,
                quantity=quantity,
                trigger_price_paise=trigger_price_paise,
            )
        return await self.order(order)


def _has(order: Order, price_paise: int | None, quantity: int | None) -> bool:
    return (price_paise is None or order.price_paise == price_paise) and (
        quantity is None or order.quantity == quantity
    )


def _confirmed(order: Order) -> Order:
    if order.is_rejected:
        raise OrderRejected(
            f"order {order.order_id} rejected: {order.text or 'no reason given'}",
            order_id=order.order_id,
            reason=order.text,
        )
    return order
