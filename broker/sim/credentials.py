"""The simulator's account: the login it accepts and the profile it reports.

The demo values are public on purpose — they open nothing but a local simulator — and are printed
by ``optbot sim`` at start. Each can be overridden (``--client-code``, ``--pin``, ``--totp-secret``,
``--api-key``) to rehearse a client against other values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time as _time
from dataclasses import dataclass, field

DEMO_CLIENT_CODE = "DEMO01"
DEMO_PIN = "1234"
DEMO_TOTP_SECRET = "OPTBOTSIMDEMOKEYTOTPSECRET234567"
DEMO_API_KEY = "optbot-sim-key"

TOTP_STEP_S = 30
TOTP_DIGITS = 6


class CredentialError(ValueError):
    """A credential the simulator cannot use; the message names the field and what is allowed."""


def _check_totp_secret(secret: str) -> str:
    compact = secret.replace(" ", "").upper()
    padded = compact + "=" * (-len(compact) % 8)
    try:
        base64.b32decode(padded)
    except (binascii.Error, ValueError):
        raise CredentialError(
            "totp_secret: must be a base32 string (letters A-Z and digits 2-7), e.g. "
            f"{DEMO_TOTP_SECRET}"
        ) from None
    if not compact:
        raise CredentialError("totp_secret: must not be empty")
    return compact


@dataclass(frozen=True, slots=True)
class SimCredentials:
    """The one account the simulator knows: client code, PIN, TOTP secret, API key."""

    client_code: str = DEMO_CLIENT_CODE
    pin: str = DEMO_PIN
    totp_secret: str = DEMO_TOTP_SECRET
    api_key: str = DEMO_API_KEY
    name: str = "Demo Trader"
    email: str = "demo@optbot.invalid"
    mobileno: str = "9999999999"
    exchanges: tuple[str, ...] = field(default=("NSE", "NFO"))
    products: tuple[str, ...] = field(default=("CARRYFORWARD", "INTRADAY", "MARGIN", "DELIVERY"))

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9]{1,20}", self.client_code):
            raise CredentialError(
                f"client_code: {self.client_code!r} — must be 1-20 letters or digits, e.g. "
                f"{DEMO_CLIENT_CODE}"
            )
        if not re.fullmatch(r"\d{4,6}", self.pin):
            raise CredentialError("pin: must be 4 to 6 digits, e.g. 1234")
        object.__setattr__(self, "totp_secret", _check_totp_secret(self.totp_secret))
        if not self.api_key or any(c.isspace() for c in self.api_key):
            raise CredentialError("api_key: must be a non-empty string without spaces")

    def totp_at(self, for_time: float) -> str:
        """The TOTP code of the 30 s step holding ``for_time`` (epoch seconds)."""
        return totp_code(self.totp_secret, for_time)

    def totp_now(self) -> str:
        """The TOTP code valid at this moment of wall time."""
        return self.totp_at(_time.time())

    def totp_matches(self, code: str, for_time: float, *, window: int = 1) -> bool:
        """True when ``code`` is this account's code for a step within ``window`` of now."""
        if not (len(code) == TOTP_DIGITS and code.isdigit()):
            return False
        return any(
            hmac.compare_digest(code, self.totp_at(for_time + k * TOTP_STEP_S))
            for k in range(-window, window + 1)
        )


def totp_code(secret: str, for_time: float) -> str:
    """RFC 6238 TOTP (HMAC-SHA1, 30 s step, T0 = 0, 6 digits) of a base32 secret.

    Written out here rather than taken from pyotp, which refuses secrets shorter than 112 bits:
    the simulator accepts whatever base32 secret a user rehearses with.
    """
    compact = secret.replace(" ", "").upper()
    key = base64.b32decode(compact + "=" * (-len(compact) % 8))
    counter = int(for_time // TOTP_STEP_S)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFF_FFFF
    return f"{number % 10**TOTP_DIGITS:0{TOTP_DIGITS}d}"


DEMO_CREDENTIALS = SimCredentials()
