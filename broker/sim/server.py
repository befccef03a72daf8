"""The simulator server: one Starlette app on one port, served by uvicorn.

Everything a SmartAPI client talks to lives at the real paths, so a client needs nothing changed
but its base URLs:

* REST (``/rest/...``, SPEC §2–§4) — ``broker.sim.rest``
* market-data WebSocket 2.0 (``/smart-stream``, SPEC §6) — ``broker.sim.feed``
* order-status WebSocket (``/smart-order-update``, SPEC §8) — ``broker.sim.order_updates``
* instrument master (``/OpenAPI_File/files/OpenAPIScripMaster.json``, SPEC §7)
* a control API that is not SmartAPI, under ``/__sim/`` (state, faults, clock, resets).

``SimServer`` runs the app in a background thread (``start``/``stop`` or ``with``) or in the
foreground (``run``, for ``optbot sim``); port 0 picks a free port and ``port`` tells which. Its
methods are the same controls as ``/__sim/`` for tests in the same process.

Threads: handlers that touch the market model or the exchange run in worker threads (the model
is thread-safe; the exchange is guarded by one lock), so a slow candle request never stalls the
WebSocket pacing loops on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time as _time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from broker.sim.auth import Session, SessionStore
from broker.sim.clock import IST, SESSION_CLOSE, SESSION_OPEN, SimClock, default_session_date
from broker.sim.credentials import DEMO_CREDENTIALS, SimCredentials
from broker.sim.exchange import DEFAULT_CAPITAL_PAISE, OrderEvent, SimExchange
from broker.sim.faults import (
    HEALTHY,
    FaultInjector,
    FaultSettings,
    FaultSpecError,
    faults_from_mapping,
    parse_faults,
)
from broker.sim.feed import FEED_PATH
from broker.sim.model import MarketModel
from broker.sim.order_updates import ORDER_UPDATES_PATH
from broker.sim.ratelimit import RateLimiter
from broker.sim.rest import MASTER_PATH

log = logging.getLogger("optbot.sim")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How to run the simulator. ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 7
    speed: float = 60.0
    session_date: date | None = None  # None: the most recent trading day
    start_at: time = SESSION_OPEN
    scenario: str | None = None
    faults: FaultSettings = HEALTHY
    credentials: SimCredentials = DEMO_CREDENTIALS
    capital_paise: int = DEFAULT_CAPITAL_PAISE
    feed_interval_s: float = 0.025  # wall time between two feed pacing steps
    match_interval_s: float = 0.05  # wall time between two matching passes
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} must be 0..65535 (0 picks a free port)")
        if not self.speed > 0:
            raise ValueError(f"speed {self.speed!r} must be > 0")


# --------------------------------------------------------------------------- clock


class SessionTimeline:
    """The session clock with controls: change speed, jump to a session time.

    Wraps ``SimClock`` (which holds at the close); a jump starts a new ``SimClock`` at the
    chosen time, so time may also be wound back to replay a stretch of the session.
    """

    def __init__(self, session_date: date, speed: float, start_at: time = SESSION_OPEN) -> None:
        self.session_date = session_date
        self._lock = threading.Lock()
        self._clock = SimClock(session_date, speed, start_at=_clamp(start_at))

    def now(self) -> datetime:
        """The current session instant (aware, IST)."""
        with self._lock:
            clock = self._clock
        return clock.now()

    @property
    def speed(self) -> float:
        with self._lock:
            return self._clock.speed

    def set_speed(self, speed: float) -> None:
        """Run at ``speed`` × real time from now on (no jump)."""
        with self._lock:
            self._clock.set_speed(speed)

    def jump(self, at: time) -> None:
        """Continue from session time ``at`` (before 15:30) at the current speed."""
        with self._lock:
            self._clock = SimClock(self.session_date, self._clock.speed, start_at=_clamp(at))


def _clamp(at: time) -> time:
    # SimClock needs its start strictly before the close; "jump to the close" lands a
    # microsecond short of it and holds there.
    if at >= SESSION_CLOSE:
        return time(15, 29, 59, 999_999)
    return at


def parse_session_time(text: str) -> time:
    """``HH:MM`` or ``HH:MM:SS`` → time; ValueError naming the value otherwise."""
    try:
        parsed = time.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None or ":" not in text:
        raise ValueError(f"session time {text!r}: must be HH:MM or HH:MM:SS, e.g. 10:30")
    return parsed


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class SimStats:
    """Counters shown by ``GET /__sim/state``."""

    rest_requests: int = 0
    feed_frames: int = 0
    order_messages: int = 0
    # REST requests received per endpoint name (``placeOrder`` …), refused ones included.
    rest_by_endpoint: dict[str, int] = field(default_factory=dict)

    def count_rest(self, endpoint: str) -> None:
        """One more REST request received for ``endpoint`` (called on the event loop only)."""
        self.rest_requests += 1
        self.rest_by_endpoint[endpoint] = self.rest_by_endpoint.get(endpoint, 0) + 1


class SimState:
    """Everything one simulator instance holds; shared by the REST, feed and order-update parts."""

    def __init__(self, config: SimConfig) -> None:
        from market.calendar import default_calendar

        calendar = default_calendar()
        session_date = config.session_date
        if session_date is None:
            session_date = default_session_date(datetime.now(IST).date(), calendar)
        self.config = config
        self.model = MarketModel(
            seed=config.seed,
            session_date=session_date,
            calendar=calendar,
            scenario=config.scenario,
        )
        self.timeline = SessionTimeline(session_date, config.speed, config.start_at)
        self.faults = FaultInjector(config.faults, seed=config.seed)
        self.sessions = SessionStore(config.credentials, self.timeline, self.faults)
        self.limiter = RateLimiter()
        self.exchange_lock = threading.Lock()
        self.exchange = self.new_exchange()
        self.stats = SimStats()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.feed_hub: Any = None
        self.order_hub: Any = None
        self._master: bytes | None = None
        self._order_listeners: list[Callable[[list[OrderEvent]], None]] = []
        self._drop_listeners: list[Callable[[str], None]] = []

    @property
    def credentials(self) -> SimCredentials:
        return self.sessions.credentials

    def now(self) -> datetime:
        """The session clock's current instant."""
        return self.timeline.now()

    def master_bytes(self) -> bytes:
        """The instrument master as UTF-8 JSON (built once)."""
        if self._master is None:
            records = self.model.master_records()
            self._master = json.dumps(records, separators=(",", ":")).encode()
        return self._master

    # --- the exchange ----------------------------------------------------------------------

    def new_exchange(self) -> SimExchange:
        """A fresh exchange for the session date: no orders, full capital."""
        return SimExchange(
            self.model.instrument,
            self.model.quote,
            capital_paise=self.config.capital_paise,
            session_date=self.model.session_date,
            fill_delay_s=self.faults.settings.fill_delay_s,
        )

    def with_exchange(self, action: Callable[[SimExchange], T]) -> T:
        """Run ``action`` on the exchange under its lock."""
        with self.exchange_lock:
            return action(self.exchange)

    def match(self) -> None:
        """One matching pass of working orders against the market now; publishes events."""
        at = self.now()
        events = self.with_exchange(lambda ex: ex.on_market(at))
        self.publish(events)

    # --- controls --------------------------------------------------------------------------

    def set_faults(self, settings: FaultSettings) -> None:
        """Put ``settings`` in force everywhere (the exchange's fill delay included)."""
        self.faults.set(settings)
        with self.exchange_lock:
            self.exchange.fill_delay_s = settings.fill_delay_s

    def reset(self) -> None:
        """A fresh exchange, forgotten rate windows, healthy faults; sessions and clock stay."""
        self.faults.reset()
        self.limiter.reset()
        with self.exchange_lock:
            self.exchange = self.new_exchange()

    def on_order_events(self, listener: Callable[[list[OrderEvent]], None]) -> None:
        """Register a consumer of order events (the order-status hub)."""
        self._order_listeners.append(listener)

    def publish(self, events: list[OrderEvent]) -> None:
        """Push order events to every order-status connection (thread-safe)."""
        if events:
            for listener in list(self._order_listeners):
                listener(events)

    def on_drop(self, listener: Callable[[str], None]) -> None:
        """Register a WebSocket hub that can drop its connections."""
        self._drop_listeners.append(listener)

    def drop_connections(self, kind: str = "all") -> None:
        """Drop WebSockets without a close frame: ``feed``, ``orders`` or ``all``."""
        if kind not in ("feed", "orders", "all"):
            raise ValueError(f"kind {kind!r}: allowed feed, orders, all")
        for listener in list(self._drop_listeners):
            listener(kind)

    def state_view(self) -> dict[str, Any]:
        """What ``GET /__sim/state`` shows."""
        with self.exchange_lock:
            orders = len(self.exchange.order_book())
            trades = len(self.exchange.trade_book())
        return {
            "session_date": self.model.session_date.isoformat(),
            "now": self.now().isoformat(),
            "speed": self.timeline.speed,
            "seed": self.config.seed,
            "scenario": self.config.scenario,
            "faults": self.faults.settings.as_dict(),
            "fault_spec": self.faults.settings.spec(),
            "client_code": self.credentials.client_code,
            "live_sessions": self.sessions.live_sessions(),
            "feed_connections": self.feed_hub.connection_count() if self.feed_hub else 0,
            "order_connections": self.order_hub.connection_count() if self.order_hub else 0,
            "orders": orders,
            "trades": trades,
            "rest_requests": self.stats.rest_requests,
            "rest_requests_by_endpoint": dict(self.stats.rest_by_endpoint),
            "feed_frames": self.stats.feed_frames,
            "order_messages": self.stats.order_messages,
        }


# --------------------------------------------------------------------------- control API


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _bad("body must be a JSON object")
    return body if isinstance(body, dict) else _bad("body must be a JSON object")


def _control_routes(sim: SimState) -> list[BaseRoute]:
    """The non-SmartAPI control endpoints under ``/__sim/``."""

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(sim.state_view))

    async def faults(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(sim.faults.settings.as_dict())
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            settings = faults_from_mapping(body)
        except FaultSpecError as exc:
            return _bad(str(exc))
        sim.set_faults(settings)
        return JSONResponse(settings.as_dict())

    async def clock(request: Request) -> JSONResponse:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        unknown = set(body) - {"speed", "at"}
        if unknown:
            return _bad(f"unknown keys {sorted(unknown)}; allowed: speed, at")
        try:
            set_clock(sim, at=body.get("at"), speed=body.get("speed"))
        except ValueError as exc:
            return _bad(str(exc))
        return JSONResponse({"now": sim.now().isoformat(), "speed": sim.timeline.speed})

    async def reset(request: Request) -> JSONResponse:
        await run_in_threadpool(sim.reset)
        return JSONResponse({"reset": True})

    async def expire(request: Request) -> JSONResponse:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        count = sim.sessions.expire_all(refresh=bool(body.get("refresh", False)))
        return JSONResponse({"expired": count})

    async def drop(request: Request) -> JSONResponse:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            sim.drop_connections(str(body.get("kind", "all")))
        except ValueError as exc:
            return _bad(str(exc))
        return JSONResponse({"dropped": True})

    async def reject(request: Request) -> JSONResponse:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        n = body.get("n", 1)
        reason = body.get("reason", "RMS: order rejected by the exchange (simulated)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(reason, str):
            return _bad("n must be a whole number >= 0 and reason a string")
        sim.with_exchange(lambda ex: ex.reject_next(n, reason))
        return JSONResponse({"reject_next": n})

    async def session(request: Request) -> JSONResponse:
        issued = sim.sessions.issue()
        return JSONResponse(_tokens(issued))

    return [
        Route("/__sim/state", state, methods=["GET"]),
        Route("/__sim/faults", faults, methods=["GET", "POST"]),
        Route("/__sim/clock", clock, methods=["POST"]),
        Route("/__sim/reset", reset, methods=["POST"]),
        Route("/__sim/sessions/expire", expire, methods=["POST"]),
        Route("/__sim/sessions/issue", session, methods=["POST"]),
        Route("/__sim/ws/drop", drop, methods=["POST"]),
        Route("/__sim/orders/reject_next", reject, methods=["POST"]),
    ]


def _tokens(session: Session) -> dict[str, str]:
    return {
        "jwtToken": session.jwt,
        "refreshToken": session.refresh_token,
        "feedToken": session.feed_token,
    }


def set_clock(sim: SimState, *, at: Any = None, speed: Any = None) -> None:
    """Change speed and/or jump to a session time (``"HH:MM[:SS]"`` or ``time``)."""
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValueError(f"speed {speed!r}: must be a number > 0")
        if speed > 100_000:
            raise ValueError(f"speed {speed!r}: at most 100000")
    if at is not None:
        when = at if isinstance(at, time) else parse_session_time(str(at))
        sim.timeline.jump(when)
    if speed is not None:
        sim.timeline.set_speed(float(speed))


# --------------------------------------------------------------------------- app


async def _match_loop(sim: SimState) -> None:
    interval = sim.config.match_interval_s
    while True:
        try:
            await asyncio.to_thread(sim.match)
        except Exception:  # one failed pass must not stop matching for the rest of the session
            log.exception("matching pass failed")
        await asyncio.sleep(interval)


def create_app(config: SimConfig | None = None, *, state: SimState | None = None) -> Starlette:
    """The simulator as an ASGI app; ``app.state.sim`` is its ``SimState``."""
    from broker.sim import feed, order_updates, rest

    sim = state if state is not None else SimState(config or SimConfig())
    feed_hub = feed.FeedHub(sim)
    order_hub = order_updates.OrderUpdateHub(sim)
    sim.feed_hub = feed_hub
    sim.order_hub = order_hub

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sim.loop = asyncio.get_running_loop()
        # The session starts when the server does, not when the model was built.
        sim.timeline.jump(sim.config.start_at)
        matcher = asyncio.create_task(_match_loop(sim), name="sim-matching")
        try:
            yield
        finally:
            matcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await matcher

    routes: list[BaseRoute] = [
        *rest.routes(sim),
        *feed_hub.routes(),
        *order_hub.routes(),
        *_control_routes(sim),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    return app


# --------------------------------------------------------------------------- server


class _DenialNoise(logging.Filter):
    """Drop uvicorn's error line for a WebSocket handshake we refused on purpose (401/403/429):
    it reports every ``websocket.http.response`` denial as a handshake the app failed to finish."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


def _quiet_denials() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DenialNoise) for f in logger.filters):
        logger.addFilter(_DenialNoise())


class SimServer:
    """The simulator on a loopback port: ``start()``/``stop()`` (background) or ``run()``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.state = SimState(self.config)
        self.app = create_app(state=self.state)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.host = self.config.host
        self.port = self.config.port

    # --- addresses -------------------------------------------------------------------------

    @property
    def _netloc(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._netloc}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._netloc}{FEED_PATH}"

    @property
    def order_ws_url(self) -> str:
        return f"ws://{self._netloc}{ORDER_UPDATES_PATH}"

    @property
    def master_url(self) -> str:
        return f"http://{self._netloc}{MASTER_PATH}"

    @property
    def urls(self) -> dict[str, str]:
        """The four endpoints a client configures."""
        return {
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "order_ws_url": self.order_ws_url,
            "master_url": self.master_url,
        }

    # --- credentials -----------------------------------------------------------------------

    @property
    def credentials(self) -> SimCredentials:
        return self.state.credentials

    @property
    def client_code(self) -> str:
        return self.credentials.client_code

    @property
    def pin(self) -> str:
        return self.credentials.pin

    @property
    def totp_secret(self) -> str:
        return self.credentials.totp_secret

    @property
    def api_key(self) -> str:
        return self.credentials.api_key

    def totp_now(self) -> str:
        """The TOTP code a login would need right now."""
        return self.credentials.totp_now()

    def issue_session(self) -> dict[str, str]:
        """Tokens of a fresh session, minted without a login call (no login rate limit)."""
        return _tokens(self.state.sessions.issue())

    # --- controls (same as /__sim/) --------------------------------------------------------

    @property
    def model(self) -> MarketModel:
        return self.state.model

    @property
    def exchange(self) -> SimExchange:
        return self.state.exchange

    @property
    def faults(self) -> FaultSettings:
        return self.state.faults.settings

    def now(self) -> datetime:
        """The session clock's instant."""
        return self.state.now()

    def set_faults(self, faults: FaultSettings | str | dict[str, Any]) -> FaultSettings:
        """Put faults in force: a ``FaultSettings``, a spec string or a mapping."""
        if isinstance(faults, str):
            settings = parse_faults(faults)
        elif isinstance(faults, dict):
            settings = faults_from_mapping(faults)
        else:
            settings = faults
        self.state.set_faults(settings)
        return settings

    def clear_faults(self) -> None:
        """A healthy exchange again."""
        self.state.set_faults(HEALTHY)

    def set_clock(self, *, at: time | str | None = None, speed: float | None = None) -> datetime:
        """Jump to a session time and/or change speed; returns the new instant."""
        set_clock(self.state, at=at, speed=speed)
        return self.now()

    def expire_sessions(self, *, refresh: bool = False) -> int:
        """Expire every JWT now (refresh tokens too with ``refresh=True``)."""
        return self.state.sessions.expire_all(refresh=refresh)

    def drop_connections(self, kind: str = "all") -> None:
        """Drop ``feed``, ``orders`` or ``all`` WebSockets without a close frame."""
        self.state.drop_connections(kind)

    def reject_next(self, n: int = 1, reason: str = "RMS: order rejected (simulated)") -> None:
        """Reject the next ``n`` orders."""
        self.state.with_exchange(lambda ex: ex.reject_next(n, reason))

    def reset_rate_limits(self) -> None:
        """Forget every counted request."""
        self.state.limiter.reset()

    def reset(self) -> None:
        """Fresh exchange, rate windows and faults (sessions and clock stay)."""
        self.state.reset()

    def state_view(self) -> dict[str, Any]:
        """Same as ``GET /__sim/state``."""
        return self.state.state_view()

    # --- lifecycle -------------------------------------------------------------------------

    def _uvicorn(self) -> Any:
        import uvicorn

        _quiet_denials()
        config = uvicorn.Config(
            self.app,
            log_level=self.config.log_level,
            access_log=False,
            ws_per_message_deflate=False,  # per-frame compression would cost more than it saves
            timeout_graceful_shutdown=2,
            lifespan="on",
        )
        return uvicorn.Server(config)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        return sock

    def start(self, timeout: float = 15.0) -> SimServer:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._socket = self._bind()
        self._server = self._uvicorn()
        sock = self._socket
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=[sock]), name="optbot-sim", daemon=True
        )
        self._thread.start()
        deadline = _time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("simulator server exited during start-up")
            if _time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"simulator did not start within {timeout} s")
            _time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def run(self, on_started: Callable[[SimServer], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C (``optbot sim``)."""
        self._socket = self._bind()
        self._server = self._uvicorn()
        if on_started is not None:
            callback, server = on_started, self

            original = self._server.startup

            async def startup(sockets: Any = None) -> None:
                await original(sockets=sockets)
                callback(server)

            self._server.startup = startup
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
