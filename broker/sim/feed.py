"""The market-data WebSocket 2.0 at ``/smart-stream`` (SPEC §6).

Handshake: headers ``Authorization`` (the JWT, raw or ``Bearer …``), ``x-api-key``,
``x-client-code``, ``x-feed-token`` — or, with none of those headers, the query string
``?clientCode=…&feedToken=…&apiKey=…``. A failure is answered with HTTP 401 and an
``x-error-message`` header (``Invalid Header - Invalid Auth token`` / ``… Client Code`` /
``… API Key`` / ``… Feed Token``), checked in that order. A client code may hold three
connections; a fourth is accepted and at once closed with code 1008.

Messages in: text ``ping`` (answered ``pong``; protocol pings are answered by the WebSocket
layer) and subscribe/unsubscribe JSON (§6.3). Malformed JSON or a request that is not a valid
subscribe/unsubscribe gets ``E1001``; a subscribe that would take the connection past 1000
(exchangeType, token, mode) subscriptions gets ``E1002`` and changes nothing. Duplicates are
not counted. Tokens the master does not list, or list on another segment, are accepted but never
tick. Mode 4 (depth 20, deprecated) is refused with ``E1001``.

Messages out: every ``interval`` of wall time a pacing step sends, for each subscription, one
binary frame per tick that happened in session time since the previous step — 51/123/379 bytes
per mode (``broker.smartapi.codec``), ticks in time order. After a clock jump forward the feed
skips ahead rather than replaying hours of ticks; after a jump back it resumes from the new time.

Faults: ``malformed`` (a frame truncated or given a bad mode byte), ``ws_silent_after_s`` (open
but nothing sent, not even ``pong``), ``ws_drop_after_s`` (connection dropped without a close
frame), all measured from when the connection opened.
"""

from __future__ import annotations

import asyncio
import json
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from broker.sim.bars import epoch_ms
from broker.sim.clock import IST
from broker.sim.hub import SocketHub, serve_connection
from broker.smartapi.codec import (
    FRAME_LENGTH,
    SNAP_QUOTE_MODE,
    empty_ticks,
    encode_ticks,
)

if TYPE_CHECKING:
    from broker.sim.model import TickEvents
    from broker.sim.server import SimState

FEED_PATH = "/smart-stream"
MAX_CONNECTIONS = 3
MAX_SUBSCRIPTIONS = 1000
FEED_MODES = tuple(FRAME_LENGTH)  # 1 LTP, 2 QUOTE, 3 SNAP_QUOTE

#: SPEC §6.3 exchangeType codes by master ``exch_seg``.
EXCHANGE_TYPES: dict[str, int] = {
    "NSE": 1,
    "NFO": 2,
    "BSE": 3,
    "BFO": 4,
    "MCX": 5,
    "NCDEX": 7,
    "CDS": 13,
}

BAD_AUTH_TOKEN = "Invalid Header - Invalid Auth token"
BAD_CLIENT_CODE = "Invalid Header - Invalid Client Code"
BAD_API_KEY = "Invalid Header - Invalid API Key"
BAD_FEED_TOKEN = "Invalid Header - Invalid Feed Token"

E1001 = ("E1001", "Invalid Request Payload.")
E1002 = ("E1002", "Invalid Request. Subscription Limit Exceeded.")

# Frames sent between two yields to the event loop, so one busy connection cannot starve others.
_YIELD_EVERY = 512


Subscription = tuple[int, str, int]  # (exchangeType, token, mode)


@dataclass(frozen=True, slots=True)
class _TokenInfo:
    """What a frame needs about a token beyond its ticks (fixed for the session day)."""

    token: bytes
    exchange_type: int
    prev_close: int
    upper_circuit: int
    lower_circuit: int
    week52_high: int
    week52_low: int
    has_depth: bool


@dataclass(eq=False)
class FeedConnection:
    """One open feed socket and its subscriptions."""

    websocket: WebSocket
    client_code: str
    opened: float
    cursor_ms: int
    subscriptions: dict[Subscription, None] = field(default_factory=dict)
    sequence: int = 0
    drop_requested: bool = False
    frames_sent: int = 0


class FeedHub(SocketHub[FeedConnection]):
    """All feed connections of one simulator, and the frame building they share."""

    def __init__(self, state: SimState) -> None:
        super().__init__(state, drop_kind="feed")
        self._info: dict[str, _TokenInfo | None] = {}

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute(FEED_PATH, self.serve)]

    # --- handshake -----------------------------------------------------------------------

    def _auth_problem(self, websocket: WebSocket) -> tuple[str | None, str]:
        """(error message or None, client code) for a handshake."""
        headers = websocket.headers
        sessions = self.state.sessions
        creds = self.state.credentials
        header_names = ("authorization", "x-api-key", "x-client-code", "x-feed-token")
        if any(name in headers for name in header_names):
            jwt = headers.get("authorization", "")
            client_code = headers.get("x-client-code", "")
            api_key = headers.get("x-api-key", "")
            feed_token = headers.get("x-feed-token", "")
            try:
                session = sessions.verify_jwt(jwt)
            except Exception:
                return BAD_AUTH_TOKEN, client_code
            if client_code.upper() != session.client_code.upper():
                return BAD_CLIENT_CODE, client_code
        else:
            params = websocket.query_params
            client_code = params.get("clientCode", "")
            api_key = params.get("apiKey", "")
            feed_token = params.get("feedToken", "")
            if client_code.upper() != creds.client_code.upper():
                return BAD_CLIENT_CODE, client_code
        if api_key != creds.api_key:
            return BAD_API_KEY, client_code
        owner = sessions.verify_feed_token(feed_token)
        if owner is None or owner.client_code.upper() != client_code.upper():
            return BAD_FEED_TOKEN, client_code
        return None, client_code.upper()

    async def serve(self, websocket: WebSocket) -> None:
        """One feed connection, from handshake to close."""
        problem, client_code = self._auth_problem(websocket)
        if problem is not None:
            denial = PlainTextResponse(
                problem, status_code=401, headers={"x-error-message": problem}
            )
            await websocket.send_denial_response(denial)
            return
        await websocket.accept()
        if self.connection_count(client_code) >= MAX_CONNECTIONS:
            await websocket.close(
                1008, f"Connection limit exceeded: at most {MAX_CONNECTIONS} per client code"
            )
            return
        conn = FeedConnection(websocket, client_code, _time.monotonic(), epoch_ms(self.state.now()))
        await serve_connection(
            self._connections,
            conn,
            self._pace(conn),
            self._receive(conn),
            ("sim-feed-pacer", "sim-feed-receiver"),
        )

    # --- incoming ------------------------------------------------------------------------

    async def _receive(self, conn: FeedConnection) -> None:
        ws = conn.websocket
        while True:
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                text = data.decode("utf-8", "replace")
            reply = self.handle_text(conn, text)
            if reply is not None and not self._silent(conn):
                try:
                    await ws.send_text(reply)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return

    def handle_text(self, conn: FeedConnection, text: str) -> str | None:
        """Act on one text message; the reply to send, if any."""
        if text.strip() == "ping":
            return "pong"
        try:
            request = json.loads(text)
        except (json.JSONDecodeError, ValueError):
            return _error("", *E1001)
        if not isinstance(request, dict):
            return _error("", *E1001)
        correlation = request.get("correlationID", "")
        correlation = correlation if isinstance(correlation, str) else str(correlation)
        parsed = _parse_request(request)
        if parsed is None:
            return _error(correlation, *E1001)
        action, wanted = parsed
        if action == 0:
            for sub in wanted:
                conn.subscriptions.pop(sub, None)
            return None
        new = [sub for sub in dict.fromkeys(wanted) if sub not in conn.subscriptions]
        if len(conn.subscriptions) + len(new) > MAX_SUBSCRIPTIONS:
            return _error(correlation, *E1002)
        for sub in new:
            conn.subscriptions[sub] = None
        return None

    # --- outgoing ------------------------------------------------------------------------

    async def _pace(self, conn: FeedConnection) -> str:
        """Send each step's frames until the connection ends; ``"drop"`` asks for an abort."""
        state = self.state
        interval = state.config.feed_interval_s
        ws = conn.websocket
        while True:
            await asyncio.sleep(interval)
            faults = state.faults.settings
            if self._drop_due(conn):
                return "drop"
            now_ms = epoch_ms(state.now())
            if now_ms < conn.cursor_ms:  # the clock was wound back
                conn.cursor_ms = now_ms
                continue
            if now_ms == conn.cursor_ms:
                continue
            catch_up = max(60_000, int(state.timeline.speed * 2_000))
            start_ms = max(conn.cursor_ms, now_ms - catch_up)
            subscriptions = list(conn.subscriptions)
            first_seq = conn.sequence
            frames: list[bytes] = []
            if subscriptions:
                frames = await asyncio.to_thread(
                    self.frames, subscriptions, start_ms, now_ms, first_seq
                )
            conn.cursor_ms = now_ms
            conn.sequence += len(frames)
            if not frames or self._silent(conn):
                continue
            if faults.malformed > 0:
                frames = [self._maybe_corrupt(f, faults.malformed) for f in frames]
            try:
                for i, frame in enumerate(frames, 1):
                    await ws.send_bytes(frame)
                    if i % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return "closed"
            conn.frames_sent += len(frames)
            state.stats.feed_frames += len(frames)

    def _maybe_corrupt(self, frame: bytes, probability: float) -> bytes:
        faults = self.state.faults
        if not faults.roll(probability):
            return frame
        if faults.randrange(2) == 0:
            return frame[: 1 + faults.randrange(len(frame) - 1)]
        return bytes([9]) + frame[1:]  # no such subscription mode

    # --- frame building (runs in a worker thread) ----------------------------------------

    def token_info(self, token: str, exchange_type: int) -> _TokenInfo | None:
        """Static frame fields of a token, or None when it cannot tick on that segment."""
        key = f"{exchange_type}:{token}"
        if key in self._info:
            return self._info[key]
        info: _TokenInfo | None = None
        model = self.state.model
        inst = model.instrument(token)
        if inst is not None and EXCHANGE_TYPES.get(inst.exchange) == exchange_type:
            ref = model.reference(token, model.session_date)
            info = _TokenInfo(
                token=token.encode("ascii"),
                exchange_type=exchange_type,
                prev_close=ref.prev_close,
                upper_circuit=ref.upper_circuit,
                lower_circuit=ref.lower_circuit,
                week52_high=ref.week52_high,
                week52_low=ref.week52_low,
                has_depth=inst.kind != "index",
            )
        self._info[key] = info
        return info

    def frames(
        self, subscriptions: Iterable[Subscription], start_ms: int, end_ms: int, first_seq: int
    ) -> list[bytes]:
        """Frames for the ticks in ``[start_ms, end_ms)`` of ``subscriptions``, in time order."""
        by_token: dict[str, _TokenInfo] = {}
        modes_of: dict[str, set[int]] = {}
        for exchange_type, token, mode in subscriptions:
            info = self.token_info(token, exchange_type)
            if info is None:
                continue
            by_token[token] = info
            modes_of.setdefault(token, set()).add(mode)
        if not by_token:
            return []
        tokens = list(by_token)
        start = datetime.fromtimestamp(start_ms / 1000, IST)
        end = datetime.fromtimestamp(end_ms / 1000, IST)
        events = self.state.model.tick_events(tokens, start, end)
        n = len(events.ts_ms)
        if n == 0:
            return []
        infos = [by_token[t] for t in tokens]
        ticks = self._tick_array(events, infos, first_seq)
        positions: list[np.ndarray] = []
        frames: list[bytes] = []
        for mode in FEED_MODES:
            member = np.array([mode in modes_of[t] for t in tokens], dtype=bool)
            if not member.any():
                continue
            rows = np.flatnonzero(member[events.token_index])
            if rows.size == 0:
                continue
            chosen = ticks[rows]
            if mode == SNAP_QUOTE_MODE:
                self._fill_depth(chosen, events, rows, tokens, infos)
            frames.extend(encode_ticks(chosen, mode))
            positions.append(rows)
        if len(positions) == 1:
            return frames
        order = np.argsort(np.concatenate(positions), kind="stable")
        return [frames[i] for i in order.tolist()]

    @staticmethod
    def _tick_array(events: TickEvents, infos: list[_TokenInfo], first_seq: int) -> np.ndarray:
        n = len(events.ts_ms)
        idx = events.token_index
        static = {
            "token": np.array([i.token for i in infos], dtype="S25"),
            "exchange_type": np.array([i.exchange_type for i in infos], dtype=np.uint8),
            "closed_price": np.array([i.prev_close for i in infos], dtype=np.int64),
            "upper_circuit_limit": np.array([i.upper_circuit for i in infos], dtype=np.int64),
            "lower_circuit_limit": np.array([i.lower_circuit for i in infos], dtype=np.int64),
        }
        ticks = empty_ticks(n)
        for name, values in static.items():
            ticks[name] = values[idx]
        ticks["subscription_mode"] = 1
        ticks["sequence_number"] = first_seq + np.arange(n, dtype=np.int64)
        ticks["exchange_timestamp"] = events.ts_ms
        ticks["last_traded_price"] = events.ltp_paise
        ticks["last_traded_quantity"] = events.last_qty
        ticks["average_traded_price"] = events.avg_paise
        ticks["volume_trade_for_the_day"] = events.cum_volume
        ticks["total_buy_quantity"] = events.total_buy_qty
        ticks["total_sell_quantity"] = events.total_sell_qty
        ticks["open_price_of_the_day"] = events.open_paise
        ticks["high_price_of_the_day"] = events.high_paise
        ticks["low_price_of_the_day"] = events.low_paise
        ticks["last_traded_timestamp"] = events.ts_ms // 1000
        ticks["open_interest"] = events.oi
        week_high = np.array([i.week52_high for i in infos], dtype=np.int64)[idx]
        week_low = np.array([i.week52_low for i in infos], dtype=np.int64)[idx]
        ticks["week_52_high_price"] = np.maximum(week_high, events.high_paise)
        ticks["week_52_low_price"] = np.minimum(week_low, events.low_paise)
        return ticks

    def _fill_depth(
        self,
        chosen: np.ndarray,
        events: TickEvents,
        rows: np.ndarray,
        tokens: list[str],
        infos: list[_TokenInfo],
    ) -> None:
        model = self.state.model
        token_index = events.token_index[rows].tolist()
        ts = events.ts_ms[rows].tolist()
        ltp = events.ltp_paise[rows].tolist()
        for row, (k, at_ms, price) in enumerate(zip(token_index, ts, ltp, strict=True)):
            if not infos[k].has_depth:
                continue
            book = model.book(tokens[k], at_ms, price)
            chosen["best_5_buy_price"][row] = [lv.price_paise for lv in book.bids]
            chosen["best_5_buy_quantity"][row] = [lv.quantity for lv in book.bids]
            chosen["best_5_buy_orders"][row] = [lv.orders for lv in book.bids]
            chosen["best_5_sell_price"][row] = [lv.price_paise for lv in book.asks]
            chosen["best_5_sell_quantity"][row] = [lv.quantity for lv in book.asks]
            chosen["best_5_sell_orders"][row] = [lv.orders for lv in book.asks]


def _error(correlation: str, code: str, message: str) -> str:
    return json.dumps({"correlationID": correlation, "errorCode": code, "errorMessage": message})


def _parse_request(request: dict[str, Any]) -> tuple[int, list[Subscription]] | None:
    """(action, subscriptions) of a §6.3 request, or None when it is not a valid one."""
    action = request.get("action")
    params = request.get("params")
    if isinstance(action, bool) or action not in (0, 1) or not isinstance(params, dict):
        return None
    mode = params.get("mode")
    if isinstance(mode, bool) or mode not in FEED_MODES:
        return None
    token_list = params.get("tokenList")
    if not isinstance(token_list, list) or not token_list:
        return None
    out: list[Subscription] = []
    known_types = set(EXCHANGE_TYPES.values())
    for entry in token_list:
        if not isinstance(entry, dict):
            return None
        exchange_type = entry.get("exchangeType")
        tokens = entry.get("tokens")
        if isinstance(exchange_type, bool) or exchange_type not in known_types:
            return None
        if not isinstance(tokens, list):
            return None
        for token in tokens:
            if not isinstance(token, str) or not token.isdigit() or len(token) > 25:
                return None
            out.append((int(exchange_type), token, int(mode)))
    return int(action), out
