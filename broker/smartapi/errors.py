"""What can go wrong talking to SmartAPI, grouped by what the caller should do about it.

::

    BrokerError                      anything the broker (or the way to it) refused or broke
    ├── AuthError                    fatal for this session: log in again (a person may be needed)
    │   └── SessionExpired           the token was refused; the client re-logs in once by itself
    ├── RetryLater                   transient; the same request may succeed later
    │   ├── RateLimited              over the broker's request budget (403 text body, or 429)
    │   └── BrokerUnavailable        5xx, timeout, dropped connection, garbled reply
    │       └── BrokerUnreachable    no connection was made: the request never left this machine
    ├── MustReconcile                the outcome is unknown: read the broker's books before acting
    │   └── OrderStatusUnknown       a placeOrder may or may not have made an order; never resend
    │                                it blind — look its ordertag up first (DESIGN invariant 2)
    ├── InvalidRequest               the request itself is wrong; resending it cannot help
    ├── NotFound                     no such order / trade / position (AB1013–AB1016)
    ├── OrderRejected                the broker took the order and rejected it (funds, band, …)
    └── MasterUnusable               the instrument master cannot be downloaded or read

Each error carries the SmartAPI error code (``AB1050``, ``AG8001``…) when the broker gave one, and
the HTTP status when there was a response. Foreign exceptions (httpx, json) are translated once,
at the REST boundary, with ``raise … from exc``.

Messages never carry a secret. Everything built from a broker reply passes through a
:class:`Redactor` that knows the session's secret values and blanks them out, so even a broker
that echoed a token back could not leak it into a log or a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

# SPEC §5.1: the codes that mean "your session is gone" — re-login once, then give up.
SESSION_ERROR_CODES: frozenset[str] = frozenset(
    {"AG8001", "AG8002", "AG8003", "AB8050", "AB8051", "AB1010", "AB1011"}
)
# Codes the broker uses for its own trouble ("Something went wrong", "Internal error").
TRANSIENT_ERROR_CODES: frozenset[str] = frozenset({"AB1004", "AB2000", "AB2001", "AB9000"})
NOT_FOUND_CODES: frozenset[str] = frozenset({"AB1013", "AB1014", "AB1015", "AB1016"})
# Codes that can only mean the account or its credentials are the problem.
ACCOUNT_ERROR_CODES: frozenset[str] = frozenset(
    {"AB1000", "AB1001", "AB1002", "AB1005", "AB1006", "AB1031", "AB1032", "AB1050"}
)


class BrokerError(Exception):
    """Base of every SmartAPI client error."""

    def __init__(
        self, message: str, *, code: str | None = None, http_status: int | None = None
    ) -> None:
        self.message = message
        self.code = code or None
        self.http_status = http_status
        super().__init__(message)

    def __str__(self) -> str:
        tags = [part for part in (self.code, _status_tag(self.http_status)) if part]
        return f"{self.message} [{', '.join(tags)}]" if tags else self.message


def _status_tag(status: int | None) -> str:
    return f"HTTP {status}" if status is not None else ""


class AuthError(BrokerError):
    """The session or the login was refused; stop using this session."""


class SessionExpired(AuthError):
    """The broker refused the session token (AG8001 and friends); worth one re-login."""


class RetryLater(BrokerError):
    """A transient failure: back off and try the same request again."""


class RateLimited(RetryLater):
    """The broker's per-account request budget was exceeded (or would be: see ``retry_after_s``).

    ``retry_after_s`` is set when the client itself held the request back because its budget
    has no room soon enough: nothing was sent, and the budget has room again after that long.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, code=code, http_status=http_status)


class BrokerUnavailable(RetryLater):
    """The broker failed or did not answer in time; the request may or may not have acted."""


class BrokerUnreachable(BrokerUnavailable):
    """No connection could be made, so the request was certainly not acted upon."""


class MustReconcile(BrokerError):
    """The broker may or may not have acted; compare with its books before doing anything else."""


class OrderStatusUnknown(MustReconcile):
    """A placeOrder got no clear answer and its ``ordertag`` has not shown up in the order book.

    The order may still appear (an acceptance can trail its answer), or may never have been
    made. Nothing was sent again. Before sending the intent once more, look ``ordertag`` up in
    the order book (``ExecutionClient.place`` with ``maybe_sent=True`` does that first).
    """

    def __init__(
        self,
        message: str,
        *,
        ordertag: str,
        order_id: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.ordertag = ordertag
        self.order_id = order_id
        super().__init__(message, code=code, http_status=http_status)


class InvalidRequest(BrokerError):
    """The broker rejected the request's content (validation); never retried."""


class NotFound(BrokerError):
    """The order, trade, holding or position asked for does not exist (or is not working)."""


class OrderRejected(BrokerError):
    """The broker accepted an order for processing and then rejected it."""

    def __init__(
        self,
        message: str,
        *,
        order_id: str,
        reason: str,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.order_id = order_id
        self.reason = reason
        super().__init__(message, code=code, http_status=http_status)


class MasterUnusable(BrokerError):
    """The instrument master could not be fetched, or is not a usable master file."""


def error_for_code(code: str, message: str, *, http_status: int | None = None) -> BrokerError:
    """The error class a SmartAPI error code calls for, outside login (see :mod:`auth`)."""
    if code in SESSION_ERROR_CODES:
        return SessionExpired(message, code=code, http_status=http_status)
    if code in TRANSIENT_ERROR_CODES:
        return BrokerUnavailable(message, code=code, http_status=http_status)
    if code in NOT_FOUND_CODES:
        return NotFound(message, code=code, http_status=http_status)
    if code in ACCOUNT_ERROR_CODES:
        return AuthError(message, code=code, http_status=http_status)
    return InvalidRequest(message, code=code, http_status=http_status)


class Redactor:
    """Blanks known secret values out of text; shared by everything that talks to one account."""

    # Shorter values (a 4-digit PIN) are still blanked: a PIN in a message is a leak too.
    _MIN_LENGTH = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Remember more secret values (new tokens after a refresh, say)."""
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= self._MIN_LENGTH)

    def __call__(self, text: str) -> str:
        with self._lock:
            # Longest first, so a token containing another secret is blanked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
        for secret in ordered:
            if secret in text:
                text = text.replace(secret, "***")
        return text
