"""The simulator server over real loopback sockets: auth, rate limits, market data, orders,
the WebSocket 2.0 feed, the order-status WebSocket, faults and the control API.

Clients here are plain httpx and the ``websockets`` sync client, never our own SmartAPI client.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from broker.sim.auth import SessionStore
from broker.sim.clock import IST, ManualClock
from broker.sim.credentials import DEMO_CREDENTIALS, SimCredentials, totp_code
from broker.sim.faults import FaultInjector, FaultSpecError, parse_faults
from broker.sim.ratelimit import RATE_LIMIT_BODY, Limit, RateLimiter
from broker.sim.server import SimServer
from broker.smartapi.codec import FRAME_LENGTH, MalformedFrame, decode_frame_reference

AUTH = "/rest/auth/angelbroking"
SECURE = "/rest/secure/angelbroking"
LOGIN = f"{AUTH}/user/v1/loginByPassword"
NIFTY = "99926000"
FROZEN = 1e-4  # a speed at which the session clock barely moves during a test


# --------------------------------------------------------------------------- helpers


def headers(sim: SimServer, jwt: str | None = None) -> dict[str, str]:
    """The SPEC §1.2 headers, plus the Bearer token when given."""
    out = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": "127.0.0.1",
        "X-ClientPublicIP": "127.0.0.1",
        "X-MACAddress": "00:00:00:00:00:00",
        "X-PrivateKey": sim.api_key,
    }
    if jwt is not None:
        out["Authorization"] = f"Bearer {jwt}"
    return out


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.rest_url, timeout=10) as client:
        yield client


@pytest.fixture
def tokens(sim: SimServer) -> dict[str, str]:
    return sim.issue_session()


@pytest.fixture
def unlimited(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the rate limits for a test that is about something else (getOrderBook is 1/s)."""
    monkeypatch.setattr(sim.state, "limiter", RateLimiter({}))


def away_from_totp_edge() -> None:
    """Wait out the last 1.5 s of a 30 s TOTP step so a code cannot age between two checks."""
    left = 30 - time.time() % 30
    if left < 1.5:
        time.sleep(left + 0.05)


def login(http: httpx.Client, sim: SimServer, **body: Any) -> dict[str, Any]:
    payload = {"clientcode": sim.client_code, "password": sim.pin, "totp": sim.totp_now()}
    payload.update(body)
    sim.reset_rate_limits()  # login allows 1/s; these tests log in back to back
    return http.post(LOGIN, json=payload, headers=headers(sim)).json()


def get(http: httpx.Client, sim: SimServer, jwt: str, path: str) -> httpx.Response:
    return http.get(f"{SECURE}{path}", headers=headers(sim, jwt))


def post(http: httpx.Client, sim: SimServer, jwt: str, path: str, body: Any) -> httpx.Response:
    return http.post(f"{SECURE}{path}", json=body, headers=headers(sim, jwt))


def feed_headers(sim: SimServer, tokens: dict[str, str], **override: str) -> dict[str, str]:
    out = {
        "Authorization": tokens["jwtToken"],
        "x-api-key": sim.api_key,
        "x-client-code": sim.client_code,
        "x-feed-token": tokens["feedToken"],
    }
    out.update(override)
    return out


def open_feed(sim: SimServer, url: str | None = None, **headers: str) -> ClientConnection:
    """A feed socket whose reader never pauses, so closing it mid-stream is prompt."""
    return connect(url or sim.ws_url, additional_headers=headers or None, max_queue=None)


def subscribe(ws: ClientConnection, mode: int, groups: dict[int, list[str]], cid: str = "") -> None:
    request = {
        "correlationID": cid,
        "action": 1,
        "params": {
            "mode": mode,
            "tokenList": [{"exchangeType": k, "tokens": v} for k, v in groups.items()],
        },
    }
    ws.send(json.dumps(request))


def next_text(ws: ClientConnection, timeout: float = 5.0) -> str:
    """The next text message, skipping binary frames (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, str):
            return message


def option(sim: SimServer, name: str = "NIFTY", offset: int = 0) -> dict[str, str]:
    """An option of the nearest expiry, ``offset`` strikes from the one nearest the spot."""
    records = [
        r
        for r in sim.model.master_records()
        if r["name"] == name and r["instrumenttype"] == "OPTIDX"
    ]
    expiry = min({r["expiry"] for r in records}, key=lambda e: datetime.strptime(e, "%d%b%Y"))
    calls = sorted(
        (r for r in records if r["expiry"] == expiry and r["symbol"].endswith("CE")),
        key=lambda r: float(r["strike"]),
    )
    spot = sim.model.quote(NIFTY if name == "NIFTY" else "99926009", sim.now()).ltp_paise
    nearest = min(range(len(calls)), key=lambda i: abs(float(calls[i]["strike"]) - spot))
    return calls[nearest + offset]


def order_body(
    inst: dict[str, str], side: str, qty: int, ordertype: str, price: str
) -> dict[str, str]:
    return {
        "variety": "NORMAL",
        "tradingsymbol": inst["symbol"],
        "symboltoken": inst["token"],
        "transactiontype": side,
        "exchange": inst["exch_seg"],
        "ordertype": ordertype,
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": price,
        "quantity": str(qty),
        "squareoff": "0",
        "stoploss": "0",
    }


def book_record(http: httpx.Client, sim: SimServer, jwt: str, orderid: str) -> dict[str, str]:
    data = get(http, sim, jwt, "/order/v1/getOrderBook").json()["data"]
    return next(r for r in data if r["orderid"] == orderid)


# --------------------------------------------------------------------------- auth


def test_login_returns_three_jwt_looking_tokens_and_echoes_state(
    http: httpx.Client, sim: SimServer
) -> None:
    away_from_totp_edge()
    answer = login(http, sim, state="xyz")
    assert answer["status"] is True and answer["message"] == "SUCCESS"
    assert answer["errorcode"] == ""
    data = answer["data"]
    assert data["state"] == "xyz"
    for key in ("jwtToken", "refreshToken", "feedToken"):
        parts = data[key].split(".")
        assert len(parts) == 3
        assert parts[0] == "eyJhbGciOiJIUzUxMiJ9"  # {"alg":"HS512"}
    assert len({data["jwtToken"], data["refreshToken"], data["feedToken"]}) == 3
    profile = get(http, sim, data["jwtToken"], "/user/v1/getProfile").json()
    assert profile["status"] is True
    assert profile["data"]["clientcode"] == sim.client_code
    assert profile["data"]["exchanges"] == ["NSE", "NFO"]


def test_login_with_wrong_totp_is_ab1050(http: httpx.Client, sim: SimServer) -> None:
    away_from_totp_edge()
    now = time.time()
    near = {totp_code(sim.totp_secret, now + k * 30) for k in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)
    answer = login(http, sim, totp=wrong)
    assert answer == {
        "status": False,
        "message": "Invalid totp",
        "errorcode": "AB1050",
        "data": None,
    }


def test_login_accepts_the_codes_one_step_either_side_but_not_two(
    http: httpx.Client, sim: SimServer
) -> None:
    away_from_totp_edge()
    now = time.time()
    for seconds in (-30, 30):
        assert login(http, sim, totp=totp_code(sim.totp_secret, now + seconds))["status"] is True
    assert login(http, sim, totp=totp_code(sim.totp_secret, now - 60))["errorcode"] == "AB1050"


def test_login_with_wrong_pin_or_client_code_is_ab1007(http: httpx.Client, sim: SimServer) -> None:
    away_from_totp_edge()
    assert login(http, sim, password="9999")["errorcode"] == "AB1007"
    assert login(http, sim, clientcode="NOBODY")["errorcode"] == "AB1007"


def test_odd_login_input_is_refused_cleanly_not_a_500(http: httpx.Client, sim: SimServer) -> None:
    away_from_totp_edge()
    for field, value, code in [
        ("clientcode", "DEMÖ01", "AB1007"),
        ("password", "１２３４", "AB1007"),  # fullwidth digits: not the PIN
        ("totp", "١٢٣٤٥٦", "AB1050"),  # Arabic-Indic digits pass str.isdigit
    ]:
        answer = login(http, sim, **{field: value})
        assert answer["status"] is False and answer["errorcode"] == code, (field, answer)
    # A lone surrogate survives JSON decoding as text; it must still be just a wrong PIN.
    sim.reset_rate_limits()
    raw = json.dumps({"clientcode": sim.client_code, "password": "\ud800", "totp": "000000"})
    r = http.post(LOGIN, content=raw.encode(), headers=headers(sim))
    assert r.status_code == 200 and r.json()["errorcode"] == "AB1007"
    # Non-ASCII in a bearer token's signature is a bad token (AG8001), not a server error.
    bad = headers(sim)
    r = http.get(
        f"{SECURE}/user/v1/getProfile",
        headers={**bad, "Authorization": "Bearer eyJh.eyJz.sig\xe9".encode("latin-1")},
    )
    assert r.status_code == 401 and r.json()["errorCode"] == "AG8001"


def test_refusals_never_echo_a_secret_value(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    away_from_totp_edge()
    totp = sim.totp_now()
    for field, value, secret in [
        ("password", [int(sim.pin)], sim.pin),
        ("password", {"pin": sim.pin}, sim.pin),
        ("totp", [totp], totp),
    ]:
        answer = login(http, sim, **{field: value})
        assert answer["errorcode"] == "AB1007"
        assert field in answer["message"] and "must be text" in answer["message"]
        assert secret not in json.dumps(answer), f"{field} echoed: {answer}"
    sim.reset_rate_limits()
    refused = http.post(
        f"{AUTH}/jwt/v1/generateTokens",
        json={"refreshToken": [tokens["refreshToken"]]},
        headers=headers(sim),
    )
    assert refused.json()["errorcode"] == "AB1007"
    assert tokens["refreshToken"] not in refused.text


def test_requests_missing_required_headers_are_refused(http: httpx.Client, sim: SimServer) -> None:
    body = {"clientcode": sim.client_code, "password": sim.pin, "totp": sim.totp_now()}
    no_key = {k: v for k, v in headers(sim).items() if k != "X-PrivateKey"}
    r = http.post(LOGIN, json=body, headers=no_key)
    assert r.status_code == 401
    assert r.json() == {
        "success": False,
        "message": "Invalid API Key",
        "errorCode": "AG8001",
        "data": "",
    }
    r = http.post(LOGIN, json=body, headers={**headers(sim), "X-UserType": "ADMIN"})
    assert r.json()["errorcode"] == "AB1005"
    no_mac = {k: v for k, v in headers(sim).items() if k != "X-MACAddress"}
    r = http.post(LOGIN, json=body, headers=no_mac)
    assert r.json()["errorcode"] == "AB1007"
    assert "X-MACAddress" in r.json()["message"]


def test_secure_calls_need_a_live_bearer_token(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    r = http.get(f"{SECURE}/user/v1/getProfile", headers=headers(sim))
    assert r.status_code == 401
    assert r.json() == {
        "success": False,
        "message": "Token missing",
        "errorCode": "AG8003",
        "data": "",
    }
    for bad in ("not-a-token", tokens["jwtToken"][:-2] + "xx", tokens["refreshToken"] + "a"):
        r = get(http, sim, bad, "/user/v1/getProfile")
        assert r.status_code == 401
        body = r.json()
        assert body["success"] is False and body["errorCode"] == "AG8001"
        assert "status" not in body  # the gateway's own key names
    assert get(http, sim, tokens["jwtToken"], "/user/v1/getProfile").json()["status"] is True


def test_refresh_issues_a_new_session_and_retires_the_old_one(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    path = f"{AUTH}/jwt/v1/generateTokens"
    body = {"refreshToken": tokens["refreshToken"]}
    r = http.post(path, json=body, headers=headers(sim, tokens["jwtToken"])).json()
    assert r["status"] is True
    new = r["data"]
    assert new["jwtToken"] != tokens["jwtToken"]
    assert get(http, sim, new["jwtToken"], "/user/v1/getProfile").json()["status"] is True
    assert get(http, sim, tokens["jwtToken"], "/user/v1/getProfile").json()["errorCode"] == "AG8001"
    sim.reset_rate_limits()
    again = http.post(path, json=body, headers=headers(sim)).json()
    assert again["status"] is False and again["errorcode"] == "AB8050"


def test_logout_invalidates_the_session(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    jwt = tokens["jwtToken"]
    r = post(http, sim, jwt, "/user/v1/logout", {"clientcode": sim.client_code}).json()
    assert r == {"status": True, "message": "SUCCESS", "errorcode": "", "data": ""}
    assert get(http, sim, jwt, "/user/v1/getRMS").json()["errorCode"] == "AG8001"
    refreshed = http.post(
        f"{AUTH}/jwt/v1/generateTokens",
        json={"refreshToken": tokens["refreshToken"]},
        headers=headers(sim),
    ).json()
    assert refreshed["errorcode"] == "AB8050"


def test_expire_at_fault_expires_earlier_sessions_only(http: httpx.Client, sim: SimServer) -> None:
    old = sim.issue_session()
    issued = sim.now()
    rollover = (issued + timedelta(seconds=2)).time().replace(microsecond=0)
    sim.set_faults(f"expire_at={rollover:%H:%M:%S}")
    deadline = time.monotonic() + 5
    while sim.now().time() < rollover and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.now().time() >= rollover
    r = get(http, sim, old["jwtToken"], "/user/v1/getProfile")
    assert r.json()["errorCode"] == "AG8001"
    away_from_totp_edge()
    fresh = login(http, sim)["data"]  # issued after the rollover: unaffected
    assert get(http, sim, fresh["jwtToken"], "/user/v1/getProfile").json()["status"] is True


def test_expire_sessions_control_ends_every_jwt(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    assert sim.expire_sessions() >= 1
    assert get(http, sim, tokens["jwtToken"], "/user/v1/getProfile").json()["errorCode"] == "AG8001"


def test_session_store_expiry_rules() -> None:
    clock = ManualClock(datetime(2026, 11, 20).date())
    faults = FaultInjector()
    store = SessionStore(DEMO_CREDENTIALS, clock, faults, wall=lambda: 1_800_000_000.0)
    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=IST))
    early = store.issue()
    faults.set(parse_faults("expire_at=10:30"))
    clock.set(datetime(2026, 11, 20, 10, 29, 59, tzinfo=IST))
    assert store.is_live(early)
    clock.set(datetime(2026, 11, 20, 10, 30, tzinfo=IST))
    assert not store.is_live(early)  # issued before the rollover instant, which has come
    late = store.issue()
    assert store.is_live(late)
    clock.set(datetime(2026, 11, 21, 0, 0, tzinfo=IST))
    assert not store.is_live(late)  # midnight ends every session


def test_totp_code_matches_pyotp_for_a_full_length_secret() -> None:
    import pyotp

    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    for t in (0, 29.9, 30, 1_111_111_109, 1_800_000_000.5):
        assert totp_code(secret, t) == pyotp.TOTP(secret).at(t)
    # RFC 6238 appendix B, SHA-1 key "12345678901234567890", last six digits.
    rfc_key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp_code(rfc_key, 59) == "287082"
    assert totp_code(rfc_key, 1111111109) == "081804"
    creds = SimCredentials(totp_secret=rfc_key)
    assert creds.totp_matches("287082", 59 + 30)  # one step later still accepted
    assert not creds.totp_matches("287082", 59 + 60)


# --------------------------------------------------------------------------- rate limits


def test_rate_limiter_sliding_windows_and_shared_order_bucket() -> None:
    now = [100.0]
    limiter = RateLimiter(wall=lambda: now[0])
    assert [limiter.allow("C1", "getCandleData") for _ in range(4)] == [True] * 3 + [False]
    assert limiter.allow("C2", "getCandleData")  # counted per client code
    now[0] += 0.999
    assert not limiter.allow("C1", "getCandleData")
    now[0] += 0.002  # the first three left the 1 s window; the refusal was not counted
    assert limiter.allow("C1", "getCandleData")
    shared = [limiter.allow("C1", e) for e in ("placeOrder", "modifyOrder", "cancelOrder") * 3]
    assert shared == [True] * 9
    assert not limiter.allow("C1", "cancelOrder")
    minute = RateLimiter({"x": Limit(100, 5)}, wall=lambda: now[0])
    for _ in range(5):
        assert minute.allow("C1", "x")
        now[0] += 1.5
    assert not minute.allow("C1", "x")  # 5 in the last 60 s


def test_candle_burst_gets_the_plain_text_403(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim.state.limiter, "wall", lambda: 5_000.0)  # every request in one instant
    body = {
        "exchange": "NSE",
        "symboltoken": NIFTY,
        "interval": "ONE_DAY",
        "fromdate": "2026-11-16 09:15",
        "todate": "2026-11-18 15:30",
    }
    answers = [
        post(http, sim, tokens["jwtToken"], "/historical/v1/getCandleData", body) for _ in range(5)
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 403, 403]
    refused = answers[3]
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text == RATE_LIMIT_BODY == "Access denied because of exceeding access rate"


def test_place_modify_cancel_share_one_bucket(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim.state.limiter, "wall", lambda: 7_000.0)
    jwt = tokens["jwtToken"]
    paths = ["placeOrder", "modifyOrder", "cancelOrder"] * 3
    for name in paths:  # bodies are invalid: each answers an AB error but still counts
        r = post(http, sim, jwt, f"/order/v1/{name}", {})
        assert r.status_code == 200 and r.json()["status"] is False
    r = post(http, sim, jwt, "/order/v1/cancelOrder", {"variety": "NORMAL", "orderid": "1"})
    assert r.status_code == 403 and r.text == RATE_LIMIT_BODY
    assert get(http, sim, jwt, "/order/v1/getOrderBook").status_code == 200  # other bucket


# --------------------------------------------------------------------------- market data


def test_candles_shape_alignment_and_offset(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    body = {
        "exchange": "NSE",
        "symboltoken": NIFTY,
        "interval": "FIVE_MINUTE",
        "fromdate": "2026-11-19 09:15",
        "todate": "2026-11-19 15:30",
    }
    answer = post(http, sim, tokens["jwtToken"], "/historical/v1/getCandleData", body).json()
    rows = answer["data"]
    assert answer["status"] is True
    assert len(rows) == 75  # 09:15–15:30 is 375 minutes = 75 five-minute bars
    assert rows[0][0] == "2026-11-19T09:15:00+05:30"
    assert rows[-1][0] == "2026-11-19T15:25:00+05:30"
    stamps = [datetime.fromisoformat(r[0]) for r in rows]
    assert stamps == sorted(stamps)
    for ts, o, h, lo, c, v in rows:
        assert ts.endswith("+05:30") and ts[14:19] in {f"{m:02d}:00" for m in range(0, 60, 5)}
        assert lo <= min(o, c) <= max(o, c) <= h
        assert v == 0  # an index trades no volume


def test_candle_day_caps_are_enforced(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    def ask(interval: str, start: str, end: str) -> dict[str, Any]:
        body = {
            "exchange": "NSE",
            "symboltoken": NIFTY,
            "interval": interval,
            "fromdate": start,
            "todate": end,
        }
        return post(http, sim, tokens["jwtToken"], "/historical/v1/getCandleData", body).json()

    assert ask("ONE_MINUTE", "2026-10-21 09:15", "2026-11-20 15:30")["status"] is True  # 30 days
    over = ask("ONE_MINUTE", "2026-10-20 09:15", "2026-11-20 15:30")  # 31 days
    assert over["status"] is False and over["errorcode"] == "AB1007"
    assert "30" in over["message"] and "ONE_MINUTE" in over["message"]
    assert ask("ONE_HOUR", "2025-10-16 09:15", "2026-11-20 15:30")["status"] is True  # 400 days
    assert ask("ONE_HOUR", "2025-10-15 09:15", "2026-11-20 15:30")["errorcode"] == "AB1007"
    assert ask("TWO_HOUR", "2026-11-19 09:15", "2026-11-20 15:30")["errorcode"] == "AB1007"
    assert ask("ONE_DAY", "2026-11-19 09:15", "2026-11-20 15:30")["status"] is True
    body = {
        "exchange": "NFO",
        "symboltoken": NIFTY,
        "interval": "ONE_DAY",
        "fromdate": "2026-11-19 09:15",
        "todate": "2026-11-20 15:30",
    }
    sim.reset_rate_limits()
    wrong_segment = post(http, sim, tokens["jwtToken"], "/historical/v1/getCandleData", body)
    assert wrong_segment.json()["errorcode"] == "AB1009"


def test_quote_fetched_unfetched_modes_and_the_50_token_cap(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    jwt = tokens["jwtToken"]
    opt = option(sim)
    request = {
        "mode": "FULL",
        "exchangeTokens": {"NSE": [NIFTY, "3045", ""], "NFO": [opt["token"], "1"]},
    }
    data = post(http, sim, jwt, "/market/v1/quote", request).json()["data"]
    assert [f["symbolToken"] for f in data["fetched"]] == [NIFTY, "3045", opt["token"]]
    assert {(u["symbolToken"], u["errorCode"]) for u in data["unfetched"]} == {
        ("", "AB4018"),
        ("1", "AB4018"),
    }
    assert next(u for u in data["unfetched"] if u["symbolToken"] == "")["message"] == (
        "Symbol token cannot be empty"
    )
    full = data["fetched"][2]
    assert full["tradingSymbol"] == opt["symbol"]
    assert len(full["depth"]["buy"]) == len(full["depth"]["sell"]) == 5
    assert full["depth"]["buy"][0]["price"] <= full["depth"]["sell"][0]["price"]
    assert {
        "ltp",
        "open",
        "high",
        "low",
        "close",
        "exchFeedTime",
        "52WeekHigh",
        "opnInterest",
    } <= set(full)
    ohlc = post(
        http, sim, jwt, "/market/v1/quote", {"mode": "OHLC", "exchangeTokens": {"NSE": [NIFTY]}}
    )
    assert set(ohlc.json()["data"]["fetched"][0]) == {
        "exchange",
        "tradingSymbol",
        "symbolToken",
        "ltp",
        "open",
        "high",
        "low",
        "close",
    }
    tokens_51 = [r["token"] for r in sim.model.master_records() if r["exch_seg"] == "NFO"][:51]
    too_many = post(
        http, sim, jwt, "/market/v1/quote", {"mode": "LTP", "exchangeTokens": {"NFO": tokens_51}}
    )
    assert too_many.json()["status"] is False and "50" in too_many.json()["message"]
    ok = post(
        http,
        sim,
        jwt,
        "/market/v1/quote",
        {"mode": "LTP", "exchangeTokens": {"NFO": tokens_51[:50]}},
    )
    assert len(ok.json()["data"]["fetched"]) == 50


def test_ltp_matches_the_model_in_rupees(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    sim.set_clock(speed=FROZEN)
    body = {"exchange": "NSE", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045"}
    data = post(http, sim, tokens["jwtToken"], "/order/v1/getLtpData", body).json()["data"]
    quote = sim.model.quote("3045", sim.now())
    assert round(data["ltp"] * 100) == quote.ltp_paise
    assert round(data["close"] * 100) == quote.close_paise
    assert data["tradingsymbol"] == "SBIN-EQ" and data["symboltoken"] == "3045"


def test_master_is_a_json_array_of_string_records(http: httpx.Client, sim: SimServer) -> None:
    r = http.get(sim.master_url)  # no auth headers at all
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    records = r.json()
    assert len(records) == len(sim.model.master_records())
    nifty = next(rec for rec in records if rec["token"] == NIFTY)
    assert nifty["symbol"] == "Nifty 50" and nifty["instrumenttype"] == "AMXIDX"
    assert all(isinstance(v, str) for rec in records[:200] for v in rec.values())


# --------------------------------------------------------------------------- orders


def test_limit_buy_at_the_ask_fills_and_books_shapes(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    sim.reset()
    sim.set_clock(speed=FROZEN)
    jwt = tokens["jwtToken"]
    assert get(http, sim, jwt, "/order/v1/getOrderBook").json()["data"] is None  # empty → null
    assert get(http, sim, jwt, "/order/v1/getPosition").json()["data"] is None
    cash_before = get(http, sim, jwt, "/user/v1/getRMS").json()["data"]["availablecash"]
    opt = option(sim)
    lot = int(opt["lotsize"])
    quote = sim.model.quote(opt["token"], sim.now())
    best_ask = quote.asks[0]
    assert best_ask.quantity >= lot
    price = f"{best_ask.price_paise // 100}.{best_ask.price_paise % 100:02d}"
    placed = post(
        http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot, "LIMIT", price)
    ).json()
    assert placed["status"] is True
    data = placed["data"]
    assert data["script"] == opt["symbol"]
    assert len(data["orderid"]) == 15 and data["orderid"].startswith("261120")
    assert str(uuid.UUID(data["uniqueorderid"])) == data["uniqueorderid"]
    record = book_record(http, sim, jwt, data["orderid"])
    assert record["status"] == "complete" and record["filledshares"] == str(lot)
    assert record["averageprice"] == price
    trades = get(http, sim, jwt, "/order/v1/getTradeBook").json()["data"]
    assert [(t["orderid"], t["fillsize"], t["fillprice"]) for t in trades] == [
        (data["orderid"], str(lot), price)
    ]
    position = get(http, sim, jwt, "/order/v1/getPosition").json()["data"][0]
    assert position["netqty"] == str(lot) and position["symboltoken"] == opt["token"]
    details = get(http, sim, jwt, f"/order/v1/details/{data['uniqueorderid']}").json()
    assert details["data"]["orderid"] == data["orderid"]
    missing = get(http, sim, jwt, f"/order/v1/details/{uuid.uuid4()}").json()
    assert missing["status"] is False and missing["errorcode"] == "AB1013"
    rms = get(http, sim, jwt, "/user/v1/getRMS").json()["data"]
    spent = round(float(cash_before) * 100) - round(float(rms["availablecash"]) * 100)
    assert spent == best_ask.price_paise * lot  # cash pays exactly the fill value


def test_market_order_is_converted_to_a_protected_limit_and_fills(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    sim.reset()
    opt = option(sim, offset=1)
    lot = int(opt["lotsize"])
    placed = post(
        http,
        sim,
        tokens["jwtToken"],
        "/order/v1/placeOrder",
        order_body(opt, "BUY", lot, "MARKET", "0"),
    )
    record = book_record(http, sim, tokens["jwtToken"], placed.json()["data"]["orderid"])
    assert record["ordertype"] == "LIMIT" and float(record["price"]) > 0
    assert record["status"] == "complete"


def test_business_rejections_still_return_an_orderid(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    sim.reset()
    opt = option(sim)
    lot = int(opt["lotsize"])
    jwt = tokens["jwtToken"]
    odd = post(
        http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot + 1, "LIMIT", "10")
    ).json()
    assert odd["status"] is True
    record = book_record(http, sim, jwt, odd["data"]["orderid"])
    assert record["status"] == "rejected" and "lot size" in record["text"]
    malformed = post(
        http,
        sim,
        jwt,
        "/order/v1/placeOrder",
        {**order_body(opt, "BUY", lot, "LIMIT", "10"), "variety": "AMO"},
    )
    assert malformed.json()["status"] is False and malformed.json()["errorcode"] == "AB1008"
    sim.set_faults("reject=1")
    forced = post(
        http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot, "LIMIT", "10")
    ).json()
    assert book_record(http, sim, jwt, forced["data"]["orderid"])["status"] == "rejected"


def test_order_status_socket_pushes_ab00_then_lifecycle_events(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    sim.reset()
    sim.set_clock(speed=FROZEN)
    jwt = tokens["jwtToken"]
    opt = option(sim, offset=-2)
    lot = int(opt["lotsize"])
    with connect(sim.order_ws_url, additional_headers={"Authorization": f"Bearer {jwt}"}) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["order-status"] == "AB00" and hello["user-id"] == sim.client_code
        assert set(hello["orderData"].values()) == {""} and "uniqueorderid" in hello["orderData"]
        ws.send("ping")
        assert ws.recv(timeout=5) == "pong"

        ask = sim.model.quote(opt["token"], sim.now()).asks[0].price_paise
        price = f"{ask // 100}.{ask % 100:02d}"
        filled = post(
            http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot, "LIMIT", price)
        )
        orderid = filled.json()["data"]["orderid"]
        got = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
        assert [(m["order-status"], m["orderData"]["orderid"]) for m in got] == [
            ("AB01", orderid),
            ("AB05", orderid),
        ]
        assert got[1]["orderData"]["status"] == "complete" and got[1]["status-code"] == "200"

        resting = post(
            http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot, "LIMIT", "0.05")
        )
        rest_id = resting.json()["data"]["orderid"]
        assert json.loads(ws.recv(timeout=5))["order-status"] == "AB01"
        modify = {
            **order_body(opt, "BUY", lot, "LIMIT", "0.10"),
            "orderid": rest_id,
        }
        assert (
            post(http, sim, jwt, "/order/v1/modifyOrder", modify).json()["data"]["orderid"]
            == rest_id
        )
        assert [json.loads(ws.recv(timeout=5))["order-status"] for _ in range(2)] == [
            "AB04",
            "AB01",
        ]
        cancel = post(
            http, sim, jwt, "/order/v1/cancelOrder", {"variety": "NORMAL", "orderid": rest_id}
        )
        assert cancel.json()["status"] is True
        cancelled = json.loads(ws.recv(timeout=5))
        assert (
            cancelled["order-status"] == "AB02" and cancelled["orderData"]["status"] == "cancelled"
        )

        rejected = post(
            http, sim, jwt, "/order/v1/placeOrder", order_body(opt, "BUY", lot - 1, "LIMIT", "1")
        )
        message = json.loads(ws.recv(timeout=5))
        assert message["order-status"] == "AB03"
        assert message["orderData"]["orderid"] == rejected.json()["data"]["orderid"]


def test_order_status_handshake_failures(sim: SimServer, tokens: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as bad:
        connect(sim.order_ws_url, additional_headers={"Authorization": "Bearer nope"})
    assert bad.value.response.status_code == 401
    expired = sim.issue_session()
    sim.expire_sessions()
    with pytest.raises(InvalidStatus) as old:
        connect(
            sim.order_ws_url, additional_headers={"Authorization": f"Bearer {expired['jwtToken']}"}
        )
    assert old.value.response.status_code == 403
    live = sim.issue_session()
    auth = {"Authorization": f"Bearer {live['jwtToken']}"}
    sockets = [connect(sim.order_ws_url, additional_headers=auth) for _ in range(3)]
    try:
        with pytest.raises(InvalidStatus) as many:
            connect(sim.order_ws_url, additional_headers=auth)
        assert many.value.response.status_code == 429
    finally:
        for ws in sockets:
            ws.close()


# --------------------------------------------------------------------------- WebSocket 2.0 feed


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"Authorization": "garbage"}, "Invalid Header - Invalid Auth token"),
        ({"x-client-code": "OTHER1"}, "Invalid Header - Invalid Client Code"),
        ({"x-api-key": "wrong"}, "Invalid Header - Invalid API Key"),
        ({"x-feed-token": "wrong"}, "Invalid Header - Invalid Feed Token"),
    ],
)
def test_feed_handshake_refusal_is_401_with_x_error_message(
    sim: SimServer, tokens: dict[str, str], override: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(sim.ws_url, additional_headers=feed_headers(sim, tokens, **override))
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["x-error-message"] == message


def test_feed_accepts_bearer_form_and_query_string_auth(
    sim: SimServer, tokens: dict[str, str]
) -> None:
    bearer = feed_headers(sim, tokens, Authorization=f"Bearer {tokens['jwtToken']}")
    with open_feed(sim, **bearer) as ws:
        ws.send("ping")
        assert next_text(ws) == "pong"
        assert ws.ping(b"ping").wait(timeout=5)  # protocol-level pings are answered too
    query = (
        f"{sim.ws_url}?clientCode={sim.client_code}&feedToken={tokens['feedToken']}"
        f"&apiKey={sim.api_key}"
    )
    with open_feed(sim, query) as ws:
        ws.send("ping")
        assert next_text(ws) == "pong"


def test_feed_errors_e1001_and_e1002(sim: SimServer, tokens: dict[str, str]) -> None:
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        ws.send("{not json")
        assert json.loads(next_text(ws))["errorCode"] == "E1001"
        subscribe(ws, 4, {1: [NIFTY]}, cid="depth20")
        error = json.loads(next_text(ws))
        assert error == {
            "correlationID": "depth20",
            "errorCode": "E1001",
            "errorMessage": "Invalid Request Payload.",
        }
        # Tokens the master does not list: counted, never tick (keeps the test cheap).
        fake = [str(9_000_000 + i) for i in range(1000)]
        subscribe(ws, 1, {1: fake[:600]})
        subscribe(ws, 1, {1: fake[500:]})  # 100 duplicates are not counted
        ws.send("ping")
        assert next_text(ws) == "pong"  # no error came before it: exactly 1000 now
        subscribe(ws, 2, {1: ["9999999"]}, cid="over")
        over = json.loads(next_text(ws))
        assert over["errorCode"] == "E1002" and over["correlationID"] == "over"
        ws.send(
            json.dumps(
                {
                    "action": 0,
                    "params": {"mode": 1, "tokenList": [{"exchangeType": 1, "tokens": [fake[0]]}]},
                }
            )
        )
        subscribe(ws, 2, {1: ["9999999"]})
        ws.send("ping")
        assert next_text(ws) == "pong"  # room again after one unsubscribe


def test_fourth_feed_connection_is_closed(sim: SimServer, tokens: dict[str, str]) -> None:
    hdr = feed_headers(sim, tokens)
    sockets = [open_feed(sim, **hdr) for _ in range(3)]
    try:
        for ws in sockets:
            ws.send("ping")
            assert next_text(ws) == "pong"
        with open_feed(sim, **hdr) as fourth:
            with pytest.raises(ConnectionClosed) as closed:
                fourth.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        for ws in sockets:
            ws.close()


def collect_frames(ws: ClientConnection, count: int, timeout: float = 10.0) -> list[bytes]:
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, bytes):
            frames.append(message)
    return frames


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_frames_have_the_exact_length_and_decode(
    sim: SimServer, tokens: dict[str, str], mode: int
) -> None:
    sim.set_clock(speed=300)
    opt = option(sim)
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        subscribe(ws, mode, {1: [NIFTY], 2: [opt["token"]]})
        frames = collect_frames(ws, 20)
    assert len(frames) == 20
    assert {len(f) for f in frames} == {FRAME_LENGTH[mode]}
    decoded = [decode_frame_reference(f) for f in frames]
    assert {(d["token"], d["exchange_type"]) for d in decoded} <= {(NIFTY, 1), (opt["token"], 2)}
    assert all(d["subscription_mode"] == mode for d in decoded)
    stamps = [d["exchange_timestamp"] for d in decoded]
    assert stamps == sorted(stamps)
    session_day = sim.model.session_date
    assert all(datetime.fromtimestamp(s / 1000, IST).date() == session_day for s in stamps)
    if mode == 3:
        option_frames = [d for d in decoded if d["token"] == opt["token"]]
        assert option_frames and all(d["best_5_buy_price"][0] > 0 for d in option_frames)


def test_ws_ticks_agree_with_one_minute_candles(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    """Aggregate the feed's ticks into minutes; getCandleData must show the same bars."""
    opt = option(sim)
    sim.set_clock(speed=600)
    ticks: dict[str, list[dict[str, Any]]] = {NIFTY: [], opt["token"]: []}
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        subscribe(ws, 2, {1: [NIFTY], 2: [opt["token"]]})
        first = decode_frame_reference(collect_frames(ws, 1)[0])["exchange_timestamp"]
        end = first + 4 * 60_000
        deadline = time.monotonic() + 15
        last = first
        while last < end and time.monotonic() < deadline:
            message = ws.recv(timeout=5)
            if isinstance(message, bytes):
                tick = decode_frame_reference(message)
                ticks[tick["token"]].append(tick)
                last = tick["exchange_timestamp"]
    sim.set_clock(speed=FROZEN)
    assert last >= end
    # Whole minutes strictly after the first (partly seen) and before the last (maybe cut).
    minutes = range((first // 60_000 + 1) * 60_000, (last // 60_000) * 60_000, 60_000)
    assert len(minutes) >= 2
    start = datetime.fromtimestamp(minutes[0] / 1000, IST)
    stop = datetime.fromtimestamp(minutes[-1] / 1000, IST)
    for token, exchange in ((NIFTY, "NSE"), (opt["token"], "NFO")):
        body = {
            "exchange": exchange,
            "symboltoken": token,
            "interval": "ONE_MINUTE",
            "fromdate": f"{start:%Y-%m-%d %H:%M}",
            "todate": f"{stop:%Y-%m-%d %H:%M}",
        }
        sim.reset_rate_limits()
        rows = post(http, sim, tokens["jwtToken"], "/historical/v1/getCandleData", body).json()[
            "data"
        ]
        candles = {
            int(datetime.fromisoformat(r[0]).timestamp() * 1000): (
                round(r[1] * 100),
                round(r[2] * 100),
                round(r[3] * 100),
                round(r[4] * 100),
                r[5],
            )
            for r in rows
        }
        for minute in minutes:
            inside = [
                t for t in ticks[token] if minute <= t["exchange_timestamp"] < minute + 60_000
            ]
            assert inside, f"no ticks of {token} in minute {minute}"
            prices = [t["last_traded_price"] for t in inside]
            volume = sum(t["last_traded_quantity"] for t in inside)
            assert candles[minute] == (prices[0], max(prices), min(prices), prices[-1], volume)


def test_malformed_fault_corrupts_frames(sim: SimServer, tokens: dict[str, str]) -> None:
    sim.set_clock(speed=300)
    sim.set_faults("malformed=1")
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        subscribe(ws, 1, {1: [NIFTY]})
        frames = collect_frames(ws, 10)
    assert len(frames) == 10
    for frame in frames:
        with pytest.raises(MalformedFrame):
            decode_frame_reference(frame)


def test_drop_fault_closes_without_a_close_frame(sim: SimServer, tokens: dict[str, str]) -> None:
    sim.set_faults("ws_drop_after_s=0.3")
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        subscribe(ws, 1, {1: [NIFTY]})
        with pytest.raises(ConnectionClosedError) as dropped:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                ws.recv(timeout=5)
        assert dropped.value.rcvd is None  # no close frame: an abrupt drop


def test_drop_control_drops_feed_sockets(sim: SimServer, tokens: dict[str, str]) -> None:
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        ws.send("ping")
        assert next_text(ws) == "pong"
        sim.drop_connections("feed")
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=5)


def test_silent_fault_keeps_the_socket_open_but_quiet(
    sim: SimServer, tokens: dict[str, str]
) -> None:
    sim.set_clock(speed=300)
    sim.set_faults("ws_silent_after_s=0.3")
    with open_feed(sim, **feed_headers(sim, tokens)) as ws:
        subscribe(ws, 1, {1: [NIFTY]})
        assert collect_frames(ws, 1, timeout=5)  # talks at first
        time.sleep(0.35)
        while True:  # drain what was sent before it fell silent
            try:
                ws.recv(timeout=0.2)
            except TimeoutError:
                break
        ws.send("ping")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # neither ticks nor pong
        sim.clear_faults()
        ws.send("ping")
        assert next_text(ws) == "pong"  # still open all along


# --------------------------------------------------------------------------- faults and control


def test_fault_spec_grammar() -> None:
    spec = (
        "ratelimit=0.2, http5xx=0.1,latency_ms=200,ws_drop_after_s=30,ws_silent_after_s=20,"
        "malformed=0.01,expire_at=10:30,reject=0.1"
    )
    faults = parse_faults(spec)
    assert (faults.ratelimit, faults.http5xx, faults.latency_ms) == (0.2, 0.1, 200)
    assert (faults.ws_drop_after_s, faults.ws_silent_after_s) == (30, 20)
    assert faults.expire_at is not None and faults.expire_at.isoformat() == "10:30:00"
    assert parse_faults(faults.spec()) == faults
    assert parse_faults("none") == parse_faults("") and not parse_faults("").active
    for bad, named in [
        ("ratelimit=1.5", "ratelimit='1.5'"),
        ("latency=100", "unknown name 'latency'"),
        ("reject", "'reject'"),
        ("expire_at=25:00", "expire_at='25:00'"),
        ("reject=0.1,reject=0.2", "more than once"),
        ("ws_drop_after_s=0", "ws_drop_after_s='0'"),
    ]:
        with pytest.raises(FaultSpecError, match=named.replace("(", r"\(")):
            parse_faults(bad)


def test_http5xx_and_ratelimit_faults(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str]
) -> None:
    sim.set_faults("http5xx=1")
    r = get(http, sim, tokens["jwtToken"], "/user/v1/getProfile")
    assert r.status_code in (500, 502, 503, 504)
    assert http.get(sim.master_url).status_code >= 500
    sim.set_faults("ratelimit=1")
    r = get(http, sim, tokens["jwtToken"], "/user/v1/getProfile")
    assert r.status_code == 403 and r.text == RATE_LIMIT_BODY
    sim.clear_faults()
    assert get(http, sim, tokens["jwtToken"], "/user/v1/getProfile").status_code == 200


def _place_count(sim: SimServer) -> int:
    return int(sim.state_view()["rest_requests_by_endpoint"].get("placeOrder", 0))


def test_latency_holds_the_answer_after_the_order_is_placed(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    """The lost-answer case: the client gives up, yet the broker has taken the order."""
    jwt = tokens["jwtToken"]
    tag = "L" + uuid.uuid4().hex[:12]
    body = {**order_body(option(sim), "BUY", int(option(sim)["lotsize"]), "LIMIT", "10")}
    body["ordertag"] = tag
    before = _place_count(sim)
    sim.set_faults("latency_ms=1500")
    try:
        with pytest.raises(httpx.ReadTimeout):
            http.post(
                f"{SECURE}/order/v1/placeOrder", json=body, headers=headers(sim, jwt), timeout=0.3
            )
        # The answer is still held, but the order is already in the book.
        sim.clear_faults()
        book = get(http, sim, jwt, "/order/v1/getOrderBook").json()["data"] or []
    finally:
        sim.clear_faults()
    assert [r["ordertag"] for r in book if r["ordertag"] == tag] == [tag]
    assert _place_count(sim) - before == 1


def test_http5xx_fault_does_not_act_on_the_request(
    http: httpx.Client, sim: SimServer, tokens: dict[str, str], unlimited: None
) -> None:
    jwt = tokens["jwtToken"]
    tag = "F" + uuid.uuid4().hex[:12]
    body = {**order_body(option(sim), "BUY", int(option(sim)["lotsize"]), "LIMIT", "10")}
    body["ordertag"] = tag
    before = _place_count(sim)
    sim.set_faults("http5xx=1")
    r = post(http, sim, jwt, "/order/v1/placeOrder", body)
    sim.clear_faults()
    assert r.status_code >= 500
    assert _place_count(sim) - before == 1  # received and counted …
    book = get(http, sim, jwt, "/order/v1/getOrderBook").json()["data"] or []
    assert tag not in [r["ordertag"] for r in book]  # … but not acted on


def test_a_client_gone_before_its_body_is_dropped_quietly(sim: SimServer) -> None:
    """The body never arrives (the client timed out and left): no 500, no order, no traceback."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": LOGIN,
        "raw_path": LOGIN.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers(sim).items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", sim.port),
    }
    before = sim.state_view()["rest_requests_by_endpoint"].get("loginByPassword", 0)
    asyncio.run(sim.app(scope, receive, send))  # the old gate raised ClientDisconnect here
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499
    assert sim.state_view()["rest_requests_by_endpoint"]["loginByPassword"] == before + 1


def test_control_api_over_http(http: httpx.Client, sim: SimServer) -> None:
    state = http.get("/__sim/state").json()
    assert state["session_date"] == "2026-11-20" and state["seed"] == 7
    refused = http.post("/__sim/faults", json={"spec": "ratelimit=2"})
    assert refused.status_code == 400 and "ratelimit" in refused.json()["error"]
    applied = http.post("/__sim/faults", json={"reject": 0.5, "latency_ms": 10}).json()
    assert applied["reject"] == 0.5 and sim.faults.latency_ms == 10
    moved = http.post("/__sim/clock", json={"at": "11:00", "speed": 2}).json()
    assert moved["now"].startswith("2026-11-20T11:00") and moved["speed"] == 2
    assert http.post("/__sim/clock", json={"at": "eleven"}).status_code == 400
    issued = http.post("/__sim/sessions/issue").json()
    assert issued["feedToken"].startswith("eyJ")
    sim.set_clock(at="09:20")
