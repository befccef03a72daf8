"""A third-party SmartAPI client, written from the public documentation alone, works against the
simulator with nothing changed but its base URLs.

The client below knows nothing of this project: plain ``requests`` with the documented headers,
``pyotp`` for the TOTP, ``websockets.sync.client`` for the feed, and its own ``struct`` layouts
for the binary frames (SPEC §6.5). Only the four URLs and the login values come from the
simulator.

This module runs its own simulator with login values of its own (``--client-code``, ``--pin``,
``--totp-secret``, ``--api-key``), as a user rehearsing with their own values would.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pyotp
import pytest
import requests
from websockets.sync.client import connect

from broker.sim.credentials import SimCredentials
from broker.sim.server import SimConfig, SimServer

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, base32

# --- the independent client ---------------------------------------------------------------------

LTP_PACKET = struct.Struct("<BB25sqqq")  # 51 bytes
QUOTE_PACKET = struct.Struct("<BB25sqqqqqqddqqqq")  # 123 bytes
SNAP_PACKET = struct.Struct("<BB25sqqqqqqddqqqqqqd" + "hqqh" * 10 + "qqqq")  # 379 bytes


class DocsClient:
    """What a developer writes after reading the SmartAPI docs."""

    def __init__(self, root: str, api_key: str) -> None:
        self.root = root
        self.api_key = api_key
        self.jwt = ""
        self.feed_token = ""
        self.http = requests.Session()

    def _headers(self) -> dict[str, str]:
        out = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-UserType": "USER",
            "X-SourceID": "WEB",
            "X-ClientLocalIP": "CLIENT_LOCAL_IP",
            "X-ClientPublicIP": "CLIENT_PUBLIC_IP",
            "X-MACAddress": "MAC_ADDRESS",
            "X-PrivateKey": self.api_key,
        }
        if self.jwt:
            out["Authorization"] = f"Bearer {self.jwt}"
        return out

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(
            method,
            self.root + path,
            headers=self._headers(),
            data=json.dumps(body or {}),
            timeout=10,
        )
        payload = response.json()
        ok = payload.get("status", payload.get("success"))
        if ok is not True:
            code = payload.get("errorcode") or payload.get("errorCode")
            raise RuntimeError(f"{code}: {payload.get('message')}")
        return payload["data"]

    def login(self, client_code: str, pin: str, totp_secret: str) -> None:
        data = self.call(
            "POST",
            "/rest/auth/angelbroking/user/v1/loginByPassword",
            {"clientcode": client_code, "password": pin, "totp": pyotp.TOTP(totp_secret).now()},
        )
        self.jwt, self.feed_token = data["jwtToken"], data["feedToken"]


def parse_packet(frame: bytes) -> dict[str, Any]:
    """Decode one binary tick frame with the documented offsets."""
    layout = {1: LTP_PACKET, 2: QUOTE_PACKET, 3: SNAP_PACKET}[frame[0]]
    values = layout.unpack(frame)
    tick = {
        "mode": values[0],
        "exchange_type": values[1],
        "token": values[2].split(b"\0", 1)[0].decode(),
        "exchange_timestamp": values[4],
        "ltp": values[5] / 100,
    }
    if frame[0] >= 2:
        tick.update(volume=values[8], open=values[11] / 100, close=values[14] / 100)
    if frame[0] == 3:
        levels = values[18:58]
        tick["best_bid"] = levels[2] / 100  # first buy packet: flag, qty, price, orders
        tick["best_bid_flag"] = levels[0]
        tick["best_ask"] = levels[22] / 100
    return tick


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    creds = SimCredentials(client_code="TP0001", pin="4321", totp_secret=SECRET, api_key="tp-key")
    config = SimConfig(seed=11, speed=120, session_date=date(2026, 11, 20), credentials=creds)
    with SimServer(config) as running:
        yield running


def test_a_docs_only_client_trades_and_streams(server: SimServer) -> None:
    client = DocsClient(server.rest_url, "tp-key")
    client.login("TP0001", "4321", SECRET)

    profile = client.call("GET", "/rest/secure/angelbroking/user/v1/getProfile")
    assert profile["clientcode"] == "TP0001"

    master = requests.get(server.master_url, timeout=30, stream=True)
    records = json.loads(b"".join(master.iter_content(65536)))
    nifty = next(r for r in records if r["symbol"] == "Nifty 50" and r["exch_seg"] == "NSE")

    ltp = client.call(
        "POST",
        "/rest/secure/angelbroking/order/v1/getLtpData",
        {"exchange": "NSE", "tradingsymbol": "Nifty 50", "symboltoken": nifty["token"]},
    )["ltp"]
    options = [r for r in records if r["name"] == "NIFTY" and r["instrumenttype"] == "OPTIDX"]
    expiry = min({r["expiry"] for r in options}, key=lambda e: datetime.strptime(e, "%d%b%Y"))
    calls = [r for r in options if r["expiry"] == expiry and r["symbol"].endswith("CE")]
    atm = min(calls, key=lambda r: abs(float(r["strike"]) / 100 - ltp))
    lot = int(atm["lotsize"])

    yesterday = date(2026, 11, 19)
    candles = client.call(
        "POST",
        "/rest/secure/angelbroking/historical/v1/getCandleData",
        {
            "exchange": "NSE",
            "symboltoken": nifty["token"],
            "interval": "FIFTEEN_MINUTE",
            "fromdate": f"{yesterday} 09:15",
            "todate": f"{yesterday} 15:30",
        },
    )
    assert len(candles) == 25 and candles[0][0] == "2026-11-19T09:15:00+05:30"

    quote = client.call(
        "POST",
        "/rest/secure/angelbroking/market/v1/quote/",
        {"mode": "FULL", "exchangeTokens": {"NFO": [atm["token"]]}},
    )["fetched"][0]
    best_ask = quote["depth"]["sell"][0]["price"]

    placed = client.call(
        "POST",
        "/rest/secure/angelbroking/order/v1/placeOrder",
        {
            "variety": "NORMAL",
            "tradingsymbol": atm["symbol"],
            "symboltoken": atm["token"],
            "transactiontype": "BUY",
            "exchange": "NFO",
            "ordertype": "LIMIT",
            "producttype": "CARRYFORWARD",
            "duration": "DAY",
            "price": f"{best_ask:.2f}",
            "squareoff": "0",
            "stoploss": "0",
            "quantity": str(lot),
            "ordertag": "docs-client-1",
        },
    )
    assert len(placed["orderid"]) == 15
    book = client.call("GET", "/rest/secure/angelbroking/order/v1/getOrderBook")
    mine = next(o for o in book if o["orderid"] == placed["orderid"])
    assert mine["ordertag"] == "docs-client-1"
    assert mine["status"] in ("open", "complete")

    headers = {
        "Authorization": f"Bearer {client.jwt}",
        "x-api-key": "tp-key",
        "x-client-code": "TP0001",
        "x-feed-token": client.feed_token,
    }
    ticks: list[dict[str, Any]] = []
    with connect(server.ws_url, additional_headers=headers, max_queue=None) as ws:
        ws.send(
            json.dumps(
                {
                    "correlationID": "docs1",
                    "action": 1,
                    "params": {
                        "mode": 3,
                        "tokenList": [
                            {"exchangeType": 1, "tokens": [nifty["token"]]},
                            {"exchangeType": 2, "tokens": [atm["token"]]},
                        ],
                    },
                }
            )
        )
        deadline = time.monotonic() + 10
        while len(ticks) < 10 and time.monotonic() < deadline:
            message = ws.recv(timeout=5)
            if isinstance(message, bytes):
                assert len(message) == SNAP_PACKET.size == 379
                ticks.append(parse_packet(message))
        ws.send("ping")
        while (reply := ws.recv(timeout=5)) != "pong":
            assert isinstance(reply, bytes)
    assert len(ticks) == 10
    assert {t["token"] for t in ticks} <= {nifty["token"], atm["token"]}
    index_ticks = [t for t in ticks if t["token"] == nifty["token"]]
    assert index_ticks and all(t["exchange_type"] == 1 for t in index_ticks)
    assert all(abs(t["ltp"] - ltp) / ltp < 0.05 for t in index_ticks)
    option_ticks = [t for t in ticks if t["token"] == atm["token"]]
    for t in option_ticks:
        assert t["exchange_type"] == 2 and t["best_bid_flag"] == 1
        assert 0 < t["best_bid"] <= t["best_ask"]
