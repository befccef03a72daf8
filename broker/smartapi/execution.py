"""Live order execution on SmartAPI: place without ever doubling an order, modify, cancel.

The broker's ``ordertag`` carries our intent id. A placeOrder that times out or meets a 5xx
may still have been accepted, so before an intent is sent again it is looked up in the order
book by its tag: found means done, not found means sending again is safe. Callers that
re-send an intent after a restart pass ``maybe_sent=True`` (the default) and get the same
guarantee from the first attempt.

After the broker acknowledges an order, its record is read back (details by unique order id):
a rejection (funds, price band …) arrives as an order with status ``rejected`` and is raised as
:class:`OrderRejected` carrying the order id and the broker's reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from broker.smartapi.errors import (
    BrokerUnavailable,
    BrokerUnreachable,
    InvalidRequest,
    NotFound,
    OrderRejected,
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
        max_sends: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        # The order book can trail an acceptance by a moment; wait this long before asking it.
        self.lookup_delay_s = lookup_delay_s
        self.max_sends = max_sends
        self._sleep = sleep

    async def find_by_tag(self, ordertag: str) -> Order | None:
        """The most recent order of the day carrying ``ordertag``, if any."""
        matches = [o for o in await self.client.order_book() if o.ordertag == ordertag]
        if len(matches) > 1:
            log.warning("%d orders carry tag %s; using the latest", len(matches), ordertag)
        return matches[-1] if matches else None

    async def place(self, request: OrderRequest, *, maybe_sent: bool = True) -> Order:
        """Place ``request`` exactly once; its ``ordertag`` must be the intent id.

        ``maybe_sent=False`` skips the first order-book lookup, for an intent the caller knows
        was never sent (saves one call from the 1/s order-book budget).
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
        last_error: BrokerUnavailable | None = None
        for send in range(1, self.max_sends + 1):
            try:
                ack = await self.client.place_order(request)
            except BrokerUnreachable:
                raise  # provably not sent, and the REST layer has already retried
            except BrokerUnavailable as exc:
                last_error = exc
                log.warning("placeOrder for intent %s unclear (%s); checking the book", tag, exc)
                await self._sleep(self.lookup_delay_s)
                found = await self.find_by_tag(tag)
                if found is not None:
                    log.info("intent %s was accepted as order %s", tag, found.order_id)
                    return _confirmed(found)
                log.info("intent %s is not in the book; sending again (%d)", tag, send + 1)
                continue
            return _confirmed(await self._read_back(ack, tag))
        raise BrokerUnavailable(
            f"placeOrder for intent {tag}: no clear answer after {self.max_sends} sends and "
            f"not in the order book ({last_error})"
        ) from last_error

    async def _read_back(self, ack: OrderAck, tag: str) -> Order:
        try:
            return await self.client.order_details(ack.unique_order_id)
        except (NotFound, BrokerUnavailable) as exc:
            log.info("details for order %s unavailable (%s); using the book", ack.order_id, exc)
        found = await self.find_by_tag(tag)
        if found is None:
            raise BrokerUnavailable(
                f"order {ack.order_id} was acknowledged but is not in the order book yet"
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
