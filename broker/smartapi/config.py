"""SmartAPI endpoints, hosts and the headers every REST call carries (SPEC §1, §2.1, §3, §4.1).

Paths are the broker's, byte for byte; the simulator serves the same paths, so pointing
``rest_url`` at it is the only change between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

HttpMethod = Literal["GET", "POST"]

# Production hosts (SPEC §1.1).
ANGELONE_REST_URL = "https://apiconnect.angelone.in"
ANGELONE_WS_URL = "wss://smartapisocket.angelone.in/smart-stream"
ANGELONE_ORDER_WS_URL = "wss://tns.angelone.in/smart-order-update"
ANGELONE_MASTER_URL = (
    "https://margincalculator.angelone.in/OpenAPI_File/files/OpenAPIScripMaster.json"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST call: a name for logs and rate budgets, its method and its path."""

    name: str
    method: HttpMethod
    path: str
    # Only the login-type calls go without a Bearer token.
    authenticated: bool = True


_AUTH = "/rest/auth/angelbroking"
_SECURE = "/rest/secure/angelbroking"

LOGIN = Endpoint("loginByPassword", "POST", f"{_AUTH}/user/v1/loginByPassword", False)
GENERATE_TOKENS = Endpoint("generateTokens", "POST", f"{_AUTH}/jwt/v1/generateTokens")
PROFILE = Endpoint("getProfile", "GET", f"{_SECURE}/user/v1/getProfile")
LOGOUT = Endpoint("logout", "POST", f"{_SECURE}/user/v1/logout")
RMS = Endpoint("getRMS", "GET", f"{_SECURE}/user/v1/getRMS")
CANDLES = Endpoint("getCandleData", "POST", f"{_SECURE}/historical/v1/getCandleData")
OI = Endpoint("getOIData", "POST", f"{_SECURE}/historical/v1/getOIData")
LTP = Endpoint("getLtpData", "POST", f"{_SECURE}/order/v1/getLtpData")
# The docs print a trailing slash; the official SDKs send none, and so do we.
QUOTE = Endpoint("quote", "POST", f"{_SECURE}/market/v1/quote")
PLACE_ORDER = Endpoint("placeOrder", "POST", f"{_SECURE}/order/v1/placeOrder")
MODIFY_ORDER = Endpoint("modifyOrder", "POST", f"{_SECURE}/order/v1/modifyOrder")
CANCEL_ORDER = Endpoint("cancelOrder", "POST", f"{_SECURE}/order/v1/cancelOrder")
ORDER_BOOK = Endpoint("getOrderBook", "GET", f"{_SECURE}/order/v1/getOrderBook")
TRADE_BOOK = Endpoint("getTradeBook", "GET", f"{_SECURE}/order/v1/getTradeBook")
ORDER_DETAILS = Endpoint("details", "GET", f"{_SECURE}/order/v1/details/{{uniqueorderid}}")
POSITIONS = Endpoint("getPosition", "GET", f"{_SECURE}/order/v1/getPosition")

ENDPOINTS: tuple[Endpoint, ...] = (
    LOGIN,
    GENERATE_TOKENS,
    PROFILE,
    LOGOUT,
    RMS,
    CANDLES,
    OI,
    LTP,
    QUOTE,
    PLACE_ORDER,
    MODIFY_ORDER,
    CANCEL_ORDER,
    ORDER_BOOK,
    TRADE_BOOK,
    ORDER_DETAILS,
    POSITIONS,
)


class BrokerSettingsLike(Protocol):
    """The part of ``[broker]`` settings the client reads (``optbot.config.BrokerSettings``)."""

    @property
    def rest_url(self) -> str: ...
    @property
    def master_url(self) -> str: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def client_local_ip(self) -> str: ...
    @property
    def client_public_ip(self) -> str: ...
    @property
    def mac_address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SmartApiConfig:
    """Where the broker is and how patiently to talk to it."""

    rest_url: str = ANGELONE_REST_URL
    master_url: str = ANGELONE_MASTER_URL
    # SPEC §1.2: the broker does not validate these three; they are sent because they must be.
    client_local_ip: str = "127.0.0.1"
    client_public_ip: str = "127.0.0.1"
    mac_address: str = "00:00:00:00:00:00"
    timeout_s: float = 10.0
    # Attempts after the first, for calls that are safe to repeat.
    max_retries: int = 5
    # No call (retries, budget waits and HTTP timeouts included) runs longer than this; a call
    # whose request budget has no room before it fails at once with RateLimited, unsent.
    deadline_s: float = 60.0
    # After a placeOrder without a clear answer (timeout, 5xx), how long to keep looking for its
    # ordertag in the order book before giving up with OrderStatusUnknown. Counted from when the
    # answer failed, so it runs on well past the HTTP timeout the broker had to accept it.
    order_settle_s: float = 10.0
    # Backoff between retries: jittered exponential from ``backoff_initial_s`` up to the max.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0

    @classmethod
    def from_settings(cls, broker: BrokerSettingsLike, **overrides: float) -> SmartApiConfig:
        """Build from the ``[broker]`` section of the optbot configuration."""
        values: dict[str, object] = {
            "rest_url": broker.rest_url,
            "master_url": broker.master_url,
            "client_local_ip": broker.client_local_ip,
            "client_public_ip": broker.client_public_ip,
            "mac_address": broker.mac_address,
            "timeout_s": broker.timeout_s,
            "max_retries": broker.max_retries,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def request_headers(config: SmartApiConfig, api_key: str, jwt: str | None = None) -> dict[str, str]:
    """The SPEC §1.2 headers; ``Authorization`` only when a session token is given."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": config.client_local_ip,
        "X-ClientPublicIP": config.client_public_ip,
        "X-MACAddress": config.mac_address,
        "X-PrivateKey": api_key,
    }
    if jwt is not None:
        headers["Authorization"] = f"Bearer {jwt}"
    return headers
