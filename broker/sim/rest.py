"""The SmartAPI REST surface of the simulator (SPEC §1–§5) and the instrument master (§7).

Every call is counted (``SimStats``: in all and per endpoint, whatever becomes of it) and goes
through the same gate, in this order:

1. the ``http5xx`` fault roll (HTML body, status 500/502/503/504): the request is *not* acted on;
2. headers (§1.2): ``X-PrivateKey`` must be the API key (else the gateway body
   ``{"success": false, "message": "Invalid API Key", "errorCode": "AG8001", "data": ""}``);
   ``X-UserType`` must be ``USER`` (AB1005); ``X-SourceID``, ``X-ClientLocalIP``,
   ``X-ClientPublicIP`` and ``X-MACAddress`` must be present (AB1007, any value);
3. ``/rest/secure/...``: ``Authorization: Bearer <jwt>`` must name a live session — missing gives
   the gateway body with AG8003, bad or expired with AG8001, both with HTTP 401;
4. rate limit per client code (``broker.sim.ratelimit``), plus the ``ratelimit`` fault roll:
   HTTP 403, ``text/plain``, ``Access denied because of exceeding access rate``;
5. the handler, in a worker thread. Answers use the §1.3 envelope with HTTP 200 —
   ``{"status": true, "message": "SUCCESS", "errorcode": "", "data": …}`` or
   ``{"status": false, "message": …, "errorcode": "AB…", "data": null}``;
6. the ``latency_ms`` fault holds the answer (whichever it is) that long. The request has
   already been acted on, so a client that gives up waiting has still placed its order: the
   "accepted, answer lost" case a SmartAPI client must survive.

A client that goes away before its request body has arrived is not an error: the request is
dropped unanswered and nothing is logged.

Numbers in request bodies may be strings or numbers (§4.6). Prices in market-data answers are
rupees as JSON numbers (``paise / 100``, whose JSON text is the exact two-decimal value); order
records carry them as strings. Empty order book, trade book, positions and holdings answer
``"data": null`` (§1.3).

getCandleData and getOIData refuse a span whose calendar dates lie more than the §3.1 cap apart
(``todate`` date − ``fromdate`` date > cap days) with AB1007 naming the cap; an unknown token, or
one not listed on the given exchange, is AB1009.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from broker.sim.auth import (
    INVALID_API_KEY,
    TOKEN_MISSING,
    AuthFailure,
    Session,
)
from broker.sim.bars import INTERVALS
from broker.sim.orders import ApiError, format_order_time
from broker.sim.ratelimit import RATE_LIMIT_BODY, RATE_LIMIT_STATUS

if TYPE_CHECKING:
    from broker.sim.exchange import PlaceResult, SimExchange
    from broker.sim.master import SimInstrument
    from broker.sim.model import Quote
    from broker.sim.server import SimState

AUTH_PREFIX = "/rest/auth/angelbroking"
SECURE_PREFIX = "/rest/secure/angelbroking"
MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"

#: Max calendar days per getCandleData request by interval (SPEC §3.1).
CANDLE_DAY_CAPS: dict[str, int] = {
    "ONE_MINUTE": 30,
    "THREE_MINUTE": 60,
    "FIVE_MINUTE": 100,
    "TEN_MINUTE": 100,
    "FIFTEEN_MINUTE": 200,
    "THIRTY_MINUTE": 200,
    "ONE_HOUR": 400,
    "ONE_DAY": 2000,
}
MAX_QUOTE_TOKENS = 50
QUOTE_MODES = ("LTP", "OHLC", "FULL")
REQUIRED_HEADERS = ("X-SourceID", "X-ClientLocalIP", "X-ClientPublicIP", "X-MACAddress")

_5XX_BODIES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def ok(data: Any) -> dict[str, Any]:
    """The §1.3 success envelope."""
    return {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}


def fail(code: str, message: str) -> dict[str, Any]:
    """The §1.3 failure envelope."""
    return {"status": False, "message": message, "errorcode": code, "data": None}


def gateway_fail(code: str, message: str) -> dict[str, Any]:
    """The gateway's token/key error body, with its own key names (§1.3)."""
    return {"success": False, "message": message, "errorCode": code, "data": ""}


def rupees(paise: int) -> float:
    """Paise as a JSON rupee number; ``repr`` of the result is the exact two-decimal value."""
    return paise / 100


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request as a handler sees it."""

    state: SimState
    session: Session | None
    body: dict[str, Any]
    path_params: Mapping[str, str]
    now: datetime


Handler = Callable[[Call], Any]


# --------------------------------------------------------------------------- the gate


def _server_error(state: SimState) -> Response | None:
    if not state.faults.roll(state.faults.settings.http5xx):
        return None
    status = state.faults.choice(tuple(_5XX_BODIES))
    text = _5XX_BODIES[status]
    html = f"<html><head><title>{status} {text}</title></head><body><h1>{text}</h1></body></html>"
    return Response(html, status_code=status, media_type="text/html")


async def _delay(state: SimState) -> None:
    latency = state.faults.settings.latency_ms
    if latency:
        await asyncio.sleep(latency / 1000)


def _header_problem(state: SimState, request: Request) -> Response | None:
    headers = request.headers
    if headers.get("x-privatekey", "") != state.credentials.api_key:
        return JSONResponse(gateway_fail(*INVALID_API_KEY), status_code=401)
    if headers.get("x-usertype", "").upper() != "USER":
        return JSONResponse(fail("AB1005", "User Type Must Be USER"))
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        return JSONResponse(
            fail("AB1007", f"Invalid parameters: header {', '.join(missing)} is missing")
        )
    return None


def _rate_limited(state: SimState, client_code: str, endpoint: str) -> Response | None:
    allowed = state.limiter.allow(client_code, endpoint)
    if allowed and not state.faults.roll(state.faults.settings.ratelimit):
        return None
    return PlainTextResponse(RATE_LIMIT_BODY, status_code=RATE_LIMIT_STATUS)


async def _json_body(request: Request) -> dict[str, Any] | Response:
    if request.method == "GET":
        return {}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse(fail("AB1007", "Invalid parameters: the body is not valid JSON"))
    if not isinstance(body, dict):
        return JSONResponse(fail("AB1007", "Invalid parameters: the body must be a JSON object"))
    return body


def endpoint(
    state: SimState, name: str, handler: Handler, *, secure: bool
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` in the gate described in the module docstring."""

    async def gate(request: Request) -> Response:
        broken = _server_error(state)
        if broken is not None:
            return broken
        problem = _header_problem(state, request)
        if problem is not None:
            return problem
        session: Session | None = None
        if secure:
            authorization = request.headers.get("authorization", "")
            if not authorization.strip():
                return JSONResponse(gateway_fail(*TOKEN_MISSING), status_code=401)
            try:
                session = state.sessions.verify_jwt(authorization)
            except AuthFailure as exc:
                return JSONResponse(gateway_fail(exc.code, exc.message), status_code=401)
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        if session is not None:
            client = session.client_code
        elif "refreshToken" in body:
            client = state.sessions.client_of_refresh(str(body["refreshToken"]))
        else:
            client = str(body.get("clientcode", "")).upper()
        limited = _rate_limited(state, client, name)
        if limited is not None:
            return limited
        call = Call(state, session, body, request.path_params, state.now())
        try:
            data = await run_in_threadpool(handler, call)
        except (ApiError, AuthFailure) as exc:
            return JSONResponse(fail(exc.code, exc.message))
        return JSONResponse(ok(data))

    async def serve(request: Request) -> Response:
        state.stats.count_rest(name)
        try:
            response = await gate(request)
        except ClientDisconnect:
            # Gone before its body arrived: nothing was done and nobody is left to answer.
            return Response(status_code=499)
        await _delay(state)
        return response

    return serve


# --------------------------------------------------------------------------- helpers


# Request fields whose values are secrets: a refusal names the field, never the value.
SECRET_FIELDS = frozenset({"password", "totp", "refreshToken"})


def _text(body: Mapping[str, Any], field: str) -> str:
    raw = body.get(field)
    if raw is None:
        return ""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        got = "" if field in SECRET_FIELDS else f", got {raw!r}"
        raise ApiError("AB1007", f"Invalid parameters: {field} must be text{got}")
    return str(raw).strip()


def _required(body: Mapping[str, Any], field: str) -> str:
    value = _text(body, field)
    if not value:
        raise ApiError("AB1007", f"Invalid parameters: {field} is missing")
    return value


def _instrument(state: SimState, exchange: str, token: str) -> SimInstrument:
    inst = state.model.instrument(token)
    if inst is None:
        raise ApiError("AB1009", f"Symbol Not Found: symboltoken {token!r}")
    if inst.exchange != exchange.upper():
        raise ApiError(
            "AB1009",
            f"Symbol Not Found: symboltoken {token} is listed on {inst.exchange}, not {exchange}",
        )
    return inst


def _parse_when(text: str, field: str) -> datetime:
    from broker.sim.clock import IST

    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    raise ApiError(
        "AB1007", f"Invalid parameters: {field} {text!r} must be 'YYYY-MM-DD HH:MM', IST"
    )


def _history_request(call: Call) -> tuple[str, str, datetime, datetime]:
    body = call.body
    exchange = _required(body, "exchange").upper()
    token = _required(body, "symboltoken")
    interval = _required(body, "interval").upper()
    if interval not in INTERVALS:
        raise ApiError(
            "AB1007",
            f"Invalid parameters: interval {interval!r}; allowed: {', '.join(INTERVALS)}",
        )
    start = _parse_when(_required(body, "fromdate"), "fromdate")
    end = _parse_when(_required(body, "todate"), "todate")
    if end < start:
        raise ApiError("AB1007", "Invalid parameters: todate is before fromdate")
    span = (end.date() - start.date()).days
    cap = CANDLE_DAY_CAPS[interval]
    if span > cap:
        raise ApiError(
            "AB1007",
            f"Invalid parameters: fromdate to todate spans {span} days; {interval} allows at "
            f"most {cap} days per request",
        )
    _instrument(call.state, exchange, token)
    return token, interval, start, end


# --------------------------------------------------------------------------- handlers: auth


def _login(call: Call) -> dict[str, str]:
    body = call.body
    session = call.state.sessions.login(
        _text(body, "clientcode"), _text(body, "password"), _text(body, "totp")
    )
    data = {
        "jwtToken": session.jwt,
        "refreshToken": session.refresh_token,
        "feedToken": session.feed_token,
    }
    if "state" in body:
        data["state"] = _text(body, "state")
    return data


def _generate_tokens(call: Call) -> dict[str, str]:
    session = call.state.sessions.refresh(_text(call.body, "refreshToken"))
    return {
        "jwtToken": session.jwt,
        "refreshToken": session.refresh_token,
        "feedToken": session.feed_token,
    }


def _profile(call: Call) -> dict[str, Any]:
    creds = call.state.credentials
    assert call.session is not None
    return {
        "clientcode": creds.client_code,
        "name": creds.name,
        "email": creds.email,
        "mobileno": creds.mobileno,
        "exchanges": list(creds.exchanges),
        "products": list(creds.products),
        "lastlogintime": format_order_time(call.session.last_login),
        "brokerid": "B2C",
    }


def _logout(call: Call) -> str:
    assert call.session is not None
    call.state.sessions.logout(call.session)
    return ""


def _rms(call: Call) -> dict[str, str]:
    return call.state.with_exchange(lambda ex: ex.rms(call.now))


# --------------------------------------------------------------------------- handlers: market


def _candles(call: Call) -> list[list[Any]]:
    token, interval, start, end = _history_request(call)
    return call.state.model.candles(token, interval, start, end, now=call.now)


def _oi(call: Call) -> list[dict[str, Any]]:
    token, interval, start, end = _history_request(call)
    return call.state.model.oi_series(token, interval, start, end, now=call.now)


def _ltp(call: Call) -> dict[str, Any]:
    exchange = _required(call.body, "exchange").upper()
    inst = _instrument(call.state, exchange, _required(call.body, "symboltoken"))
    q = call.state.model.quote(inst.token, call.now)
    return {
        "exchange": inst.exchange,
        "tradingsymbol": inst.symbol,
        "symboltoken": inst.token,
        "open": rupees(q.open_paise),
        "high": rupees(q.high_paise),
        "low": rupees(q.low_paise),
        "close": rupees(q.close_paise),
        "ltp": rupees(q.ltp_paise),
    }


def _depth(levels: Any) -> list[dict[str, Any]]:
    return [
        {"price": rupees(lv.price_paise), "quantity": lv.quantity, "orders": lv.orders}
        for lv in levels
    ]


def quote_record(inst: SimInstrument, q: Quote, mode: str, now: datetime) -> dict[str, Any]:
    """One ``fetched`` element of the quote API in ``mode`` (SPEC §3.4)."""
    record: dict[str, Any] = {
        "exchange": inst.exchange,
        "tradingSymbol": inst.symbol,
        "symbolToken": inst.token,
        "ltp": rupees(q.ltp_paise),
    }
    if mode == "LTP":
        return record
    record.update(
        open=rupees(q.open_paise),
        high=rupees(q.high_paise),
        low=rupees(q.low_paise),
        close=rupees(q.close_paise),
    )
    if mode == "OHLC":
        return record
    from broker.sim.clock import IST

    traded = datetime.fromtimestamp(q.last_trade_ms / 1000, IST) if q.last_trade_ms else None
    record.update(
        {
            "lastTradeQty": q.last_trade_qty,
            "exchFeedTime": format_order_time(now),
            "exchTradeTime": format_order_time(traded),
            "netChange": rupees(q.net_change_paise),
            "percentChange": q.percent_change,
            "avgPrice": rupees(q.avg_paise),
            "tradeVolume": q.volume,
            "opnInterest": q.oi,
            "lowerCircuit": rupees(q.lower_circuit_paise),
            "upperCircuit": rupees(q.upper_circuit_paise),
            "totBuyQuan": q.total_buy_qty,
            "totSellQuan": q.total_sell_qty,
            "52WeekLow": rupees(q.week52_low_paise),
            "52WeekHigh": rupees(q.week52_high_paise),
            "depth": {"buy": _depth(q.bids), "sell": _depth(q.asks)},
        }
    )
    return record


def _quote(call: Call) -> dict[str, list[dict[str, Any]]]:
    mode = _required(call.body, "mode").upper()
    if mode not in QUOTE_MODES:
        raise ApiError(
            "AB1007", f"Invalid parameters: mode {mode!r}; allowed: {', '.join(QUOTE_MODES)}"
        )
    wanted = call.body.get("exchangeTokens")
    if not isinstance(wanted, dict) or not wanted:
        raise ApiError(
            "AB1007",
            'Invalid parameters: exchangeTokens must be an object like {"NSE": ["3045"]}',
        )
    pairs: list[tuple[str, str]] = []
    for exchange, tokens in wanted.items():
        if not isinstance(tokens, list):
            raise ApiError(
                "AB1007", f"Invalid parameters: exchangeTokens[{exchange!r}] must be a list"
            )
        pairs.extend((str(exchange).upper(), str(t).strip()) for t in tokens)
    if len(pairs) > MAX_QUOTE_TOKENS:
        raise ApiError(
            "AB1007",
            f"Invalid parameters: {len(pairs)} tokens requested; at most {MAX_QUOTE_TOKENS} "
            "per request",
        )
    fetched: list[dict[str, Any]] = []
    unfetched: list[dict[str, Any]] = []
    model = call.state.model
    for exchange, token in pairs:
        inst = model.instrument(token) if token else None
        if inst is None or inst.exchange != exchange:
            message = "Symbol token cannot be empty" if not token else "Invalid symbol token"
            unfetched.append(
                {
                    "exchange": exchange,
                    "symbolToken": token,
                    "message": message,
                    "errorCode": "AB4018",
                }
            )
            continue
        fetched.append(quote_record(inst, model.quote(token, call.now), mode, call.now))
    return {"fetched": fetched, "unfetched": unfetched}


def _search(call: Call) -> list[dict[str, str]]:
    exchange = _required(call.body, "exchange").upper()
    text = _required(call.body, "searchscrip").upper()
    return [
        {"exchange": i.exchange, "tradingsymbol": i.symbol, "symboltoken": i.token}
        for i in call.state.model.instruments()
        if i.exchange == exchange and text in i.symbol.upper()
    ]


# --------------------------------------------------------------------------- handlers: orders


def _place(call: Call) -> dict[str, str]:
    state = call.state
    assert call.session is not None
    client = call.session.client_code

    def place(ex: SimExchange) -> PlaceResult:
        if state.faults.roll(state.faults.settings.reject):
            ex.reject_next(1, "RMS: order rejected by the exchange (simulated fault)")
        return ex.place(call.body, client_code=client, at=call.now)

    result = state.with_exchange(place)
    state.publish(result.events)
    return result.data()


def _modify(call: Call) -> dict[str, str]:
    ack = call.state.with_exchange(lambda ex: ex.modify(call.body, at=call.now))
    call.state.publish(ack.events)
    return ack.data()


def _cancel(call: Call) -> dict[str, str]:
    ack = call.state.with_exchange(lambda ex: ex.cancel_request(call.body, at=call.now))
    call.state.publish(ack.events)
    return ack.data()


def _or_null(records: list[Any]) -> list[Any] | None:
    return records or None


def _order_book(call: Call) -> list[dict[str, str]] | None:
    return _or_null(call.state.with_exchange(lambda ex: ex.order_book()))


def _trade_book(call: Call) -> list[dict[str, str]] | None:
    return _or_null(call.state.with_exchange(lambda ex: ex.trade_book()))


def _details(call: Call) -> dict[str, str]:
    uid = call.path_params.get("uniqueorderid", "")
    record = call.state.with_exchange(lambda ex: ex.order_details(uid))
    if record is None:
        raise ApiError("AB1013", f"Order not found: uniqueorderid {uid!r}")
    return record


def _positions(call: Call) -> list[dict[str, str]] | None:
    return _or_null(call.state.with_exchange(lambda ex: ex.positions(call.now)))


def _convert_position(call: Call) -> None:
    raise ApiError("AB1017", "Position conversion failed: the simulator keeps day positions only")


def _holdings(call: Call) -> None:
    return None  # an F&O day-trading account holds nothing overnight


def _all_holdings(call: Call) -> dict[str, Any]:
    zero = {
        "totalholdingvalue": 0,
        "totalinvvalue": 0,
        "totalprofitandloss": 0,
        "totalpnlpercentage": 0,
    }
    return {"holdings": [], "totalholding": zero}


# --------------------------------------------------------------------------- routes

# (path, method, rate-limit endpoint name, handler, needs a session)
_TABLE: tuple[tuple[str, str, str, Handler, bool], ...] = (
    (f"{AUTH_PREFIX}/user/v1/loginByPassword", "POST", "loginByPassword", _login, False),
    (f"{AUTH_PREFIX}/jwt/v1/generateTokens", "POST", "generateTokens", _generate_tokens, False),
    (f"{SECURE_PREFIX}/user/v1/getProfile", "GET", "getProfile", _profile, True),
    (f"{SECURE_PREFIX}/user/v1/logout", "POST", "logout", _logout, True),
    (f"{SECURE_PREFIX}/user/v1/getRMS", "GET", "getRMS", _rms, True),
    (f"{SECURE_PREFIX}/historical/v1/getCandleData", "POST", "getCandleData", _candles, True),
    (f"{SECURE_PREFIX}/historical/v1/getOIData", "POST", "getOIData", _oi, True),
    (f"{SECURE_PREFIX}/order/v1/getLtpData", "POST", "getLtpData", _ltp, True),
    (f"/order-service{SECURE_PREFIX}/order/v1/getLtpData", "POST", "getLtpData", _ltp, True),
    (f"{SECURE_PREFIX}/market/v1/quote", "POST", "quote", _quote, True),
    (f"{SECURE_PREFIX}/market/v1/quote/", "POST", "quote", _quote, True),
    (f"{SECURE_PREFIX}/order/v1/searchScrip", "POST", "searchScrip", _search, True),
    (f"{SECURE_PREFIX}/order/v1/placeOrder", "POST", "placeOrder", _place, True),
    (f"{SECURE_PREFIX}/order/v1/modifyOrder", "POST", "modifyOrder", _modify, True),
    (f"{SECURE_PREFIX}/order/v1/cancelOrder", "POST", "cancelOrder", _cancel, True),
    (f"{SECURE_PREFIX}/order/v1/getOrderBook", "GET", "getOrderBook", _order_book, True),
    (f"{SECURE_PREFIX}/order/v1/getTradeBook", "GET", "getTradeBook", _trade_book, True),
    (f"{SECURE_PREFIX}/order/v1/details/{{uniqueorderid}}", "GET", "details", _details, True),
    (f"{SECURE_PREFIX}/order/v1/getPosition", "GET", "getPosition", _positions, True),
    (
        f"{SECURE_PREFIX}/order/v1/convertPosition",
        "POST",
        "convertPosition",
        _convert_position,
        True,
    ),
    (f"{SECURE_PREFIX}/portfolio/v1/getHolding", "GET", "getHolding", _holdings, True),
    (f"{SECURE_PREFIX}/portfolio/v1/getAllHolding", "GET", "getAllHolding", _all_holdings, True),
)


def _master_route(state: SimState) -> Route:
    async def master(request: Request) -> Response:
        broken = _server_error(state)
        if broken is not None:
            await _delay(state)
            return broken
        payload = await run_in_threadpool(state.master_bytes)
        await _delay(state)

        def chunks() -> Iterator[bytes]:
            step = 64 * 1024
            for start in range(0, len(payload), step):
                yield payload[start : start + step]

        return StreamingResponse(chunks(), media_type="application/json")

    return Route(MASTER_PATH, master, methods=["GET"])


def routes(state: SimState) -> list[BaseRoute]:
    """Every REST route plus the instrument master, bound to ``state``."""
    out: list[BaseRoute] = [
        Route(path, endpoint(state, name, handler, secure=secure), methods=[method])
        for path, method, name, handler, secure in _TABLE
    ]
    out.append(_master_route(state))
    return out
