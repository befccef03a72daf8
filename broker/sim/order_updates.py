"""The order-status WebSocket at ``/smart-order-update`` (SPEC §8).

Handshake: ``Authorization: Bearer <jwt>`` (the SDKs' extra ``x-api-key``, ``x-client-code`` and
``x-feed-token`` headers are accepted and ignored). A token the simulator never issued gets HTTP
401, an expired or logged-out one HTTP 403, a fourth connection of one client code HTTP 429.

On connect the server sends the ``AB00`` message with an all-empty ``orderData``; afterwards one
JSON message per order event (placed, rejected, triggered, filled, modified, cancelled) of the
connection's client code, and ``pong`` for each text ``ping``. The feed's drop and silent faults
apply here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time as _time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from broker.sim.hub import SocketHub, serve_connection

if TYPE_CHECKING:
    from broker.sim.exchange import OrderEvent
    from broker.sim.server import SimState

ORDER_UPDATES_PATH = "/smart-order-update"
MAX_CONNECTIONS = 3

#: Order-record fields (SPEC §4.5), all empty in the AB00 greeting.
ORDER_FIELDS: tuple[str, ...] = (
    "variety", "ordertype", "producttype", "duration", "price", "triggerprice", "quantity",
    "disclosedquantity", "squareoff", "stoploss", "trailingstoploss", "tradingsymbol",
    "transactiontype", "exchange", "symboltoken", "ordertag", "instrumenttype", "strikeprice",
    "optiontype", "expirydate", "lotsize", "cancelsize", "averageprice", "filledshares",
    "unfilledshares", "orderid", "text", "status", "orderstatus", "updatetime", "exchtime",
    "exchorderupdatetime", "fillid", "filltime", "parentorderid", "uniqueorderid",
    "exchangeorderid",
)  # fmt: skip

_POLL_S = 0.05


def greeting(client_code: str) -> dict[str, Any]:
    """The ``AB00`` message sent right after a connection opens."""
    return {
        "user-id": client_code,
        "status-code": "200",
        "order-status": "AB00",
        "error-message": "",
        "orderData": dict.fromkeys(ORDER_FIELDS, ""),
    }


@dataclass(eq=False)
class OrderConnection:
    """One open order-status socket."""

    websocket: WebSocket
    client_code: str
    opened: float
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    drop_requested: bool = False


class OrderUpdateHub(SocketHub[OrderConnection]):
    """All order-status connections; fans order events out to them."""

    def __init__(self, state: SimState) -> None:
        super().__init__(state, drop_kind="orders")
        state.on_order_events(self._on_events)

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute(ORDER_UPDATES_PATH, self.serve)]

    def _on_events(self, events: list[OrderEvent]) -> None:
        """Called from any thread: hand the events to the event loop."""
        loop = self.state.loop
        if loop is None or loop.is_closed():
            return
        messages = [(e.client_code.upper(), e.message()) for e in events]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(messages)
        else:
            with contextlib.suppress(RuntimeError):  # loop shutting down
                loop.call_soon_threadsafe(self._deliver, messages)

    def _deliver(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for conn in list(self._connections):
            for client_code, message in messages:
                if client_code == conn.client_code:
                    conn.queue.put_nowait(message)

    # --- connection ----------------------------------------------------------------------

    def _denial(self, websocket: WebSocket) -> tuple[int, str] | None:
        sessions = self.state.sessions
        authorization = websocket.headers.get("authorization", "")
        session = sessions.find_jwt(authorization) if authorization.strip() else None
        if session is None:
            return 401, "Invalid token"
        if not sessions.is_live(session):
            return 403, "Token expired"
        if self.connection_count(session.client_code) >= MAX_CONNECTIONS:
            return 429, f"Connection limit breached: at most {MAX_CONNECTIONS} per client code"
        return None

    async def serve(self, websocket: WebSocket) -> None:
        """One order-status connection, from handshake to close."""
        denial = self._denial(websocket)
        if denial is not None:
            status, message = denial
            await websocket.send_denial_response(
                PlainTextResponse(message, status_code=status, headers={"x-error-message": message})
            )
            return
        session = self.state.sessions.find_jwt(websocket.headers["authorization"])
        assert session is not None
        await websocket.accept()
        conn = OrderConnection(websocket, session.client_code.upper(), _time.monotonic())
        await serve_connection(
            self._connections,
            conn,
            self._send(conn),
            self._receive(conn),
            ("sim-orders-sender", "sim-orders-receiver"),
        )

    async def _send(self, conn: OrderConnection) -> str:
        ws = conn.websocket
        try:
            await ws.send_text(json.dumps(greeting(conn.client_code)))
            while True:
                if self._drop_due(conn):
                    return "drop"
                try:
                    message = await asyncio.wait_for(conn.queue.get(), _POLL_S)
                except TimeoutError:
                    continue
                if self._silent(conn):
                    continue
                await ws.send_text(json.dumps(message))
                self.state.stats.order_messages += 1
        except (WebSocketDisconnect, RuntimeError, OSError):
            return "closed"

    async def _receive(self, conn: OrderConnection) -> None:
        ws = conn.websocket
        while True:
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
            if text.strip() == "ping" and not self._silent(conn):
                try:
                    await ws.send_text("pong")
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return
