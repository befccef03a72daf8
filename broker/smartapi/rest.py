"""The SmartAPI REST client: headers, request budgets, retries, error mapping, typed results.

Two layers:

* :class:`RestTransport` sends one SmartAPI call and turns whatever comes back into data or a
  :mod:`~broker.smartapi.errors` exception. It spends the per-endpoint budget
  (:mod:`~broker.smartapi.ratelimit`) before every attempt and retries what is safe to retry
  with jittered exponential backoff (tenacity), within a bounded number of attempts and a
  total deadline. The deadline bounds the waits for budget too: when the budget has no room
  before it, the call fails at once with :class:`RateLimited` (``retry_after_s`` set, nothing
  sent) instead of sleeping past it; and no attempt's HTTP timeout runs past it. It knows
  nothing of sessions.
* :class:`SmartApiClient` is the API the rest of optbot calls: profile, funds, candles, OI,
  LTP, quote, orders, books, positions. It takes the session token from
  :class:`~broker.smartapi.auth.SmartApiSession`; when the broker refuses the token it has
  the session log in again once, replays the call, and raises :class:`AuthError` if the
  replay is refused too.

What is retried (``RetryPolicy``):

* ``"safe"`` (reads, login): any :class:`RetryLater` — rate limits, 5xx, timeouts, resets.
* ``"unsent"`` (place / modify / cancel): only failures that prove the broker did not act —
  a rate-limit refusal or a connection that was never made. A timeout or a 5xx after sending
  may hide an accepted order, so it is raised for :mod:`~broker.smartapi.execution` to
  resolve by looking the order up before sending again.
* Validation errors (:class:`InvalidRequest`) are never retried.

Large requests are split to fit the broker's caps and the pieces stitched back: candles and
OI by the per-interval day cap (SPEC §3.1), quotes by 50 tokens (SPEC §3.4).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any, Literal
from urllib.parse import quote as url_quote

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from broker.smartapi import config as endpoints
from broker.smartapi.auth import LoginCredentials, SmartApiSession
from broker.smartapi.config import Endpoint, SmartApiConfig, request_headers
from broker.smartapi.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    BrokerUnreachable,
    InvalidRequest,
    RateLimited,
    Redactor,
    RetryLater,
    SessionExpired,
    error_for_code,
)
from broker.smartapi.limits import CANDLE_MAX_DAYS, QUOTE_MAX_TOKENS, bucket_for
from broker.smartapi.models import (
    IST,
    Candle,
    Funds,
    Ltp,
    OpenInterest,
    Order,
    OrderAck,
    Position,
    Profile,
    Quote,
    QuoteResult,
    Trade,
    Unfetched,
    rupees_text,
    text,
)
from broker.smartapi.ratelimit import SlidingWindowLimiter, Ticket, limiter_for_account
from broker.smartapi.tokens import TokenStore

log = logging.getLogger(__name__)

RetryPolicy = Literal["safe", "unsent", "never"]
QuoteMode = Literal["LTP", "OHLC", "FULL"]

# SPEC §5.3: the rate-limit refusal is a plain-text 403 saying so.
_RATE_LIMIT_WORDS = ("exceeding", "access rate", "rate limit")

# Our short interval names → the broker's.
INTERVALS: Mapping[str, str] = {
    "1m": "ONE_MINUTE",
    "3m": "THREE_MINUTE",
    "5m": "FIVE_MINUTE",
    "10m": "TEN_MINUTE",
    "15m": "FIFTEEN_MINUTE",
    "30m": "THIRTY_MINUTE",
    "1h": "ONE_HOUR",
    "1d": "ONE_DAY",
}


def broker_interval(interval: str) -> str:
    """``"1m"`` or ``"ONE_MINUTE"`` → ``"ONE_MINUTE"``; InvalidRequest for anything else."""
    name = INTERVALS.get(interval, interval.upper())
    if name not in CANDLE_MAX_DAYS:
        allowed = ", ".join([*INTERVALS, *CANDLE_MAX_DAYS])
        raise InvalidRequest(f"candle interval {interval!r} is not one of: {allowed}")
    return name


# --------------------------------------------------------------------------- transport


def _envelope_ok(payload: Mapping[str, Any]) -> bool:
    """SPEC §1.3: ``status`` or ``success``; true as a boolean or the string "true"."""
    flag = payload.get("status", payload.get("success"))
    if isinstance(flag, str):
        return flag.strip().lower() == "true"
    return flag is True


def _envelope_data(payload: Mapping[str, Any]) -> Any:
    data = payload.get("data")
    if isinstance(data, str) and data.strip().lower() in ("null", ""):
        return None
    return data


def _is_rate_limit_text(body: bytes) -> bool:
    lowered = body[:500].decode("utf-8", "replace").lower()
    return any(word in lowered for word in _RATE_LIMIT_WORDS)


class RestTransport:
    """Sends SmartAPI calls: headers, budget, retries, and the one place errors are translated."""

    def __init__(
        self,
        config: SmartApiConfig,
        api_key: str,
        *,
        limiter: SlidingWindowLimiter | None = None,
        http: httpx.AsyncClient | None = None,
        redactor: Redactor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._api_key = api_key
        self.limiter = limiter if limiter is not None else SlidingWindowLimiter()
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=config.timeout_s)
        self.redactor = redactor if redactor is not None else Redactor()
        self.redactor.add(api_key)
        self._sleep = sleep
        self.attempts = 0  # requests put on the wire (or tried), for inspection

    async def aclose(self) -> None:
        """Close the HTTP connection pool (when this transport created it)."""
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self,
        endpoint: Endpoint,
        *,
        body: Mapping[str, Any] | None = None,
        jwt: str | None = None,
        path_params: Mapping[str, str] | None = None,
        retry: RetryPolicy = "safe",
    ) -> Any:
        """Send one call (with retries per ``retry``) and return its ``data``."""
        cfg = self.config
        deadline = monotonic() + cfg.deadline_s
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: _should_retry(exc, retry)),
            wait=wait_exponential_jitter(
                multiplier=cfg.backoff_initial_s,
                max=cfg.backoff_max_s,
                jitter=cfg.backoff_initial_s,
            ),
            stop=stop_after_attempt(cfg.max_retries + 1) | stop_before_delay(cfg.deadline_s),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(endpoint, state),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(endpoint, body, jwt, path_params, deadline)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self,
        endpoint: Endpoint,
        body: Mapping[str, Any] | None,
        jwt: str | None,
        path_params: Mapping[str, str] | None,
        deadline: float,
    ) -> Any:
        path = endpoint.path
        if path_params:
            path = path.format(**{k: url_quote(v, safe="") for k, v in path_params.items()})
        url = self.config.rest_url.rstrip("/") + path
        headers = request_headers(self.config, self._api_key, jwt)
        name = endpoint.name
        ticket = await self.limiter.acquire(
            bucket_for(name), within_s=max(0.0, deadline - monotonic())
        )
        if not ticket.granted:
            raise RateLimited(
                f"{name}: request budget full for {ticket.wait_s:.1f} s more, past this call's "
                f"{self.config.deadline_s:g} s deadline; not sent",
                retry_after_s=ticket.wait_s,
            )
        # The broker counts the request when it arrives, no later than its answer: the ticket
        # is settled when the exchange ends, whichever way it ends.
        try:
            response = await self._exchange(endpoint, url, headers, body, deadline, ticket)
        finally:
            self.limiter.settle(ticket)
        return self._interpret(endpoint, response)

    async def _exchange(
        self,
        endpoint: Endpoint,
        url: str,
        headers: Mapping[str, str],
        body: Mapping[str, Any] | None,
        deadline: float,
        ticket: Ticket,
    ) -> httpx.Response:
        name = endpoint.name
        # The HTTP timeout, too, ends at the deadline at the latest.
        timeout = self.config.timeout_s
        request_timeout = self._http.timeout
        if (left := deadline - monotonic()) < timeout:
            timeout = max(0.001, left)
            request_timeout = httpx.Timeout(timeout)
        self.attempts += 1
        try:
            return await self._http.request(
                endpoint.method,
                url,
                headers=headers,
                json=dict(body) if body is not None and endpoint.method == "POST" else None,
                timeout=request_timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached the broker: it spent no budget beyond the moment it was issued.
            self.limiter.settle(ticket, at=ticket.issued_at)
            raise BrokerUnreachable(
                f"{name}: cannot connect to {self._host()} ({type(exc).__name__})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise BrokerUnavailable(
                f"{name}: no answer within {timeout:.3g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise BrokerUnavailable(f"{name}: connection failed ({type(exc).__name__})") from exc

    def _host(self) -> str:
        return httpx.URL(self.config.rest_url).host or self.config.rest_url

    def _interpret(self, endpoint: Endpoint, response: httpx.Response) -> Any:
        status = response.status_code
        content = response.content
        name = endpoint.name
        if status == 429 or (status == 403 and _is_rate_limit_text(content)):
            raise RateLimited(f"{name}: request rate limit exceeded", http_status=status)
        try:
            payload = json.loads(content, parse_float=Decimal) if content else None
        except ValueError as exc:
            raise self._non_json(name, status) from exc
        if not isinstance(payload, dict):
            raise self._non_json(name, status)
        code = text(payload.get("errorcode") or payload.get("errorCode")) or None
        message = self.redactor(text(payload.get("message")) or "no message")
        if _envelope_ok(payload) and status < 400:
            return _envelope_data(payload)
        detail = f"{name}: {message}"
        if code is not None:
            raise error_for_code(code, detail, http_status=status)
        if status >= 500:
            raise BrokerUnavailable(detail, http_status=status)
        if status == 401:
            raise SessionExpired(detail, http_status=status)
        if status == 403:
            raise AuthError(detail, http_status=status)
        raise InvalidRequest(detail, http_status=status)

    @staticmethod
    def _non_json(name: str, status: int) -> BrokerError:
        if status == 401:
            return SessionExpired(f"{name}: unauthorised", http_status=status)
        if status == 403:
            # Not the rate-limit text, so a real refusal (permission, static IP …).
            return AuthError(f"{name}: access refused", http_status=status)
        if 400 <= status < 500:
            return InvalidRequest(f"{name}: request refused", http_status=status)
        return BrokerUnavailable(f"{name}: reply is not SmartAPI JSON", http_status=status)


def _should_retry(exc: BaseException, policy: RetryPolicy) -> bool:
    if policy == "never":
        return False
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        return False  # held back by our own budget, whose room comes only after the deadline
    if policy == "unsent":
        return isinstance(exc, RateLimited | BrokerUnreachable)
    return isinstance(exc, RetryLater)


def _log_retry(endpoint: Endpoint, state: RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "%s: %s (%s); retry %d in %.2f s",
        endpoint.name,
        type(exc).__name__ if exc else "failed",
        exc,
        state.attempt_number,
        wait,
    )


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as SmartAPI takes it; prices in paise, quantity in units (lots × lot size)."""

    exchange: str
    symbol: str
    token: str
    side: Literal["BUY", "SELL"]
    quantity: int
    price_paise: int
    order_type: str = "LIMIT"
    product: str = "INTRADAY"
    duration: str = "DAY"
    variety: str = "NORMAL"
    trigger_price_paise: int | None = None
    ordertag: str = ""

    def body(self) -> dict[str, str]:
        """The placeOrder request body (every value a string, as the broker expects)."""
        body = {
            "variety": self.variety,
            "tradingsymbol": self.symbol,
            "symboltoken": self.token,
            "transactiontype": self.side,
            "exchange": self.exchange,
            "ordertype": self.order_type,
            "producttype": self.product,
            "duration": self.duration,
            "price": rupees_text(self.price_paise) if self.order_type != "MARKET" else "0",
            "squareoff": "0",
            "stoploss": "0",
            "quantity": str(self.quantity),
        }
        if self.trigger_price_paise is not None:
            body["triggerprice"] = rupees_text(self.trigger_price_paise)
        if self.ordertag:
            body["ordertag"] = self.ordertag
        return body


def _ist_minute(moment: datetime) -> str:
    """SPEC §3.1 request time: ``YYYY-MM-DD HH:MM`` IST (naive input is taken as IST)."""
    local = moment.astimezone(IST) if moment.tzinfo else moment
    return local.strftime("%Y-%m-%d %H:%M")


def candle_chunks(start: datetime, end: datetime, max_days: int) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end]`` into consecutive spans each inside ``max_days`` calendar days.

    Spans do not overlap: each ends at 23:59 of its last day and the next starts at 00:00 of
    the following day, so the broker returns each candle in exactly one span.
    """
    first = start.astimezone(IST) if start.tzinfo else start.replace(tzinfo=IST)
    last = end.astimezone(IST) if end.tzinfo else end.replace(tzinfo=IST)
    if last < first:
        raise InvalidRequest(f"candle range ends ({last:%Y-%m-%d %H:%M}) before it starts")
    spans = []
    cursor = first
    while True:
        final_day: date = cursor.date() + timedelta(days=max_days - 1)
        span_end = datetime.combine(final_day, time(23, 59), tzinfo=IST)
        if span_end >= last:
            spans.append((cursor, last))
            return spans
        spans.append((cursor, span_end))
        cursor = datetime.combine(final_day + timedelta(days=1), time(0), tzinfo=IST)


def _records(data: Any) -> list[Mapping[str, Any]]:
    """The records of a list reply; empty books come back as ``data: null`` (SPEC §1.3)."""
    if not isinstance(data, list):
        return []
    return [row for row in data if isinstance(row, Mapping)]


def _pairs(instruments: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for exchange, token in instruments:
        seen[(exchange.upper(), str(token))] = None
    return list(seen)


# --------------------------------------------------------------------------- client


class SmartApiClient:
    """Typed SmartAPI calls with session recovery. Use ``async with`` or call ``aclose``."""

    def __init__(self, transport: RestTransport, session: SmartApiSession) -> None:
        self.transport = transport
        self.session = session

    @classmethod
    def open(
        cls,
        config: SmartApiConfig,
        credentials: LoginCredentials,
        *,
        store: TokenStore | None = None,
        limiter: SlidingWindowLimiter | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> SmartApiClient:
        """Wire up transport, session and the account's shared request budget.

        ``sleep`` is the pause between retries (replaceable to observe or steer retries).
        """
        redactor = Redactor(credentials.secret_values())
        if limiter is None:
            limiter = limiter_for_account(credentials.client_code)
        transport = RestTransport(
            config,
            credentials.api_key.get_secret_value(),
            limiter=limiter,
            http=http,
            redactor=redactor,
            sleep=sleep,
        )
        session = SmartApiSession(transport, credentials, store=store, clock=clock)
        return cls(transport, session)

    async def __aenter__(self) -> SmartApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP connections (the session stays stored)."""
        await self.transport.aclose()

    async def call(
        self,
        endpoint: Endpoint,
        body: Mapping[str, Any] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
        retry: RetryPolicy = "safe",
    ) -> Any:
        """One authenticated call; on a refused token, re-login once and replay."""
        jwt = await self.session.jwt()
        try:
            return await self.transport.call(
                endpoint, body=body, jwt=jwt, path_params=path_params, retry=retry
            )
        except SessionExpired as exc:
            log.warning("%s: session refused (%s); logging in again", endpoint.name, exc.code)
            await self.session.recover(jwt)
        fresh = await self.session.jwt()
        try:
            return await self.transport.call(
                endpoint, body=body, jwt=fresh, path_params=path_params, retry=retry
            )
        except SessionExpired as again:
            self.session.mark_unusable()
            raise AuthError(
                f"{endpoint.name}: session refused again after logging in anew",
                code=again.code,
                http_status=again.http_status,
            ) from again

    # ---- account

    async def profile(self) -> Profile:
        """getProfile."""
        return Profile.parse(await self.call(endpoints.PROFILE) or {})

    async def funds(self) -> Funds:
        """getRMS: cash and margins."""
        return Funds.parse(await self.call(endpoints.RMS) or {})

    # ---- market data

    async def candles(
        self, exchange: str, token: str, interval: str, start: datetime, end: datetime
    ) -> list[Candle]:
        """getCandleData over any span: split by the interval's day cap, stitched, de-duplicated."""
        rows = await self._historical(endpoints.CANDLES, exchange, token, interval, start, end)
        by_start: dict[datetime, Candle] = {}
        for row in rows:
            if not isinstance(row, Sequence) or isinstance(row, str):
                raise BrokerUnavailable(f"getCandleData: unreadable row {str(row)[:60]!r}")
            try:
                candle = Candle.parse(row)
            except ValueError as exc:
                raise BrokerUnavailable(f"getCandleData: unreadable row ({exc})") from exc
            by_start[candle.start] = candle
        return [by_start[key] for key in sorted(by_start)]

    async def open_interest(
        self, exchange: str, token: str, interval: str, start: datetime, end: datetime
    ) -> list[OpenInterest]:
        """getOIData over any span, split and stitched like candles."""
        rows = await self._historical(endpoints.OI, exchange, token, interval, start, end)
        by_time: dict[datetime, OpenInterest] = {}
        for row in rows:
            if isinstance(row, Mapping):
                point = OpenInterest.parse(row)
                by_time[point.time] = point
        return [by_time[key] for key in sorted(by_time)]

    async def _historical(
        self,
        endpoint: Endpoint,
        exchange: str,
        token: str,
        interval: str,
        start: datetime,
        end: datetime,
    ) -> list[Any]:
        name = broker_interval(interval)
        rows: list[Any] = []
        for span_start, span_end in candle_chunks(start, end, CANDLE_MAX_DAYS[name]):
            body = {
                "exchange": exchange,
                "symboltoken": str(token),
                "interval": name,
                "fromdate": _ist_minute(span_start),
                "todate": _ist_minute(span_end),
            }
            rows.extend(await self.call(endpoint, body) or [])
        return rows

    async def ltp(self, exchange: str, symbol: str, token: str) -> Ltp:
        """getLtpData for one instrument."""
        body = {"exchange": exchange, "tradingsymbol": symbol, "symboltoken": str(token)}
        return Ltp.parse(await self.call(endpoints.LTP, body) or {})

    async def quote(
        self, instruments: Iterable[tuple[str, str]], mode: QuoteMode = "FULL"
    ) -> QuoteResult:
        """Market quotes for ``(exchange, token)`` pairs, 50 per request, results merged."""
        pairs = _pairs(instruments)
        fetched: list[Quote] = []
        unfetched: list[Unfetched] = []
        for offset in range(0, len(pairs), QUOTE_MAX_TOKENS):
            grouped: dict[str, list[str]] = {}
            for exchange, token in pairs[offset : offset + QUOTE_MAX_TOKENS]:
                grouped.setdefault(exchange, []).append(token)
            data = await self.call(endpoints.QUOTE, {"mode": mode, "exchangeTokens": grouped})
            data = data if isinstance(data, Mapping) else {}
            fetched.extend(Quote.parse(q) for q in _records(data.get("fetched")))
            unfetched.extend(Unfetched.parse(u) for u in _records(data.get("unfetched")))
        return QuoteResult(tuple(fetched), tuple(unfetched))

    # ---- orders

    async def place_order(self, order: OrderRequest) -> OrderAck:
        """placeOrder. Retried only when the broker provably did not act (see module doc)."""
        if len(order.ordertag) >= 20:
            raise InvalidRequest(
                f"ordertag {order.ordertag!r} has {len(order.ordertag)} characters; "
                "SmartAPI allows at most 19"
            )
        data = await self.call(endpoints.PLACE_ORDER, order.body(), retry="unsent")
        return OrderAck.parse(data or {})

    async def modify_order(
        self,
        order: Order,
        *,
        price_paise: int | None = None,
        quantity: int | None = None,
        trigger_price_paise: int | None = None,
        order_type: str | None = None,
    ) -> OrderAck:
        """modifyOrder: change price, quantity, trigger or type of a working order."""
        new_type = order_type or order.order_type
        body = {
            "variety": order.variety or "NORMAL",
            "orderid": order.order_id,
            "ordertype": new_type,
            "producttype": order.product,
            "duration": order.duration or "DAY",
            "price": rupees_text(price_paise if price_paise is not None else order.price_paise),
            "quantity": str(quantity if quantity is not None else order.quantity),
            "tradingsymbol": order.symbol,
            "symboltoken": order.token,
            "exchange": order.exchange,
        }
        trigger = order.trigger_price_paise if trigger_price_paise is None else trigger_price_paise
        if trigger is not None and new_type.startswith("STOPLOSS"):
            body["triggerprice"] = rupees_text(trigger)
        return OrderAck.parse(await self.call(endpoints.MODIFY_ORDER, body, retry="unsent") or {})

    async def cancel_order(self, order_id: str, variety: str = "NORMAL") -> OrderAck:
        """cancelOrder."""
        body = {"variety": variety, "orderid": order_id}
        return OrderAck.parse(await self.call(endpoints.CANCEL_ORDER, body, retry="unsent") or {})

    async def order_book(self) -> list[Order]:
        """getOrderBook: every order of the day (``data: null`` when there are none)."""
        return [Order.parse(r) for r in _records(await self.call(endpoints.ORDER_BOOK))]

    async def order_details(self, unique_order_id: str) -> Order:
        """details/{uniqueorderid}: one order."""
        data = await self.call(
            endpoints.ORDER_DETAILS, path_params={"uniqueorderid": unique_order_id}
        )
        if not isinstance(data, Mapping):
            raise BrokerUnavailable(f"details: no order record for {unique_order_id}")
        return Order.parse(data)

    async def trade_book(self) -> list[Trade]:
        """getTradeBook: today's fills."""
        return [Trade.parse(r) for r in _records(await self.call(endpoints.TRADE_BOOK))]

    async def positions(self) -> list[Position]:
        """getPosition: today's positions."""
        return [Position.parse(r) for r in _records(await self.call(endpoints.POSITIONS))]
