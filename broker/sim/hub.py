"""What the simulator's WebSocket endpoints share: the set of open sockets and their faults.

The market feed (``feed.py``) and the order-status stream (``order_updates.py``) each keep a
``SocketHub`` of their connections: counting them per client code, flagging them for a drop
fault, telling whether the silent fault applies, closing them at shutdown, and running each
accepted socket's sender and receiver until either ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as _time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from starlette.websockets import WebSocket

if TYPE_CHECKING:
    from broker.sim.server import SimState


class _Connection(Protocol):
    websocket: WebSocket
    client_code: str
    opened: float
    drop_requested: bool


_Conn = TypeVar("_Conn", bound=_Connection)


def connection_age(conn: _Connection) -> float:
    """Seconds since the socket was accepted."""
    return _time.monotonic() - conn.opened


try:  # uvicorn closes the socket silently (no close frame) when the app raises this
    from uvicorn.protocols.utils import ClientDisconnected as _Abort
except ImportError:  # pragma: no cover - another ASGI server

    class _Abort(OSError):  # type: ignore[no-redef]
        """Abort the connection."""


def abort_connection() -> OSError:
    """The exception that makes the server drop a WebSocket without a close frame."""
    return _Abort()


async def serve_connection(
    connections: set[_Conn],
    conn: _Conn,
    sender: Coroutine[Any, Any, str],
    receiver: Coroutine[Any, Any, None],
    names: tuple[str, str],
) -> None:
    """Run an accepted socket's sender and receiver until either ends; abort it on ``"drop"``.

    ``conn`` is listed in ``connections`` while it runs. A sender that returns ``"drop"`` makes
    the server drop the socket without a close frame, as a drop fault asks.
    """
    connections.add(conn)
    send = asyncio.create_task(sender, name=names[0])
    receive = asyncio.create_task(receiver, name=names[1])
    try:
        done, _ = await asyncio.wait({send, receive}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        connections.discard(conn)
        for task in (send, receive):
            task.cancel()
        for task in (send, receive):
            with contextlib.suppress(BaseException):
                await task
    finished = send in done and not send.cancelled() and send.exception() is None
    if finished and send.result() == "drop":
        raise abort_connection()


class SocketHub(Generic[_Conn]):
    """The open sockets of one endpoint; ``drop_kind`` is the drop fault that reaches them."""

    def __init__(self, state: SimState, drop_kind: str) -> None:
        self.state = state
        self._connections: set[_Conn] = set()
        self._drop_kind = drop_kind
        state.on_drop(self._on_drop)

    def connection_count(self, client_code: str | None = None) -> int:
        """Open connections (of one client code, or all)."""
        return sum(
            1
            for c in self._connections
            if client_code is None or c.client_code == client_code.upper()
        )

    def _on_drop(self, kind: str) -> None:
        if kind in (self._drop_kind, "all"):
            for conn in list(self._connections):
                conn.drop_requested = True

    def _drop_due(self, conn: _Conn) -> bool:
        """A drop was asked for, or the drop fault's age has come."""
        after = self.state.faults.settings.ws_drop_after_s
        return conn.drop_requested or (after is not None and connection_age(conn) >= after)

    def _silent(self, conn: _Conn) -> bool:
        after = self.state.faults.settings.ws_silent_after_s
        return after is not None and connection_age(conn) >= after

    async def close_all(self) -> None:
        """Close every socket (server shutdown)."""
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.websocket.close(1001)
