"""Fault injection: the bad days a SmartAPI client must survive, on demand.

Grammar of a fault spec (``optbot sim --faults``, ``POST /__sim/faults``): comma-separated
``name=value`` items, spaces ignored, each name at most once; ``""`` or ``none`` means no faults.

=================  =========================  ===============================================
name               value                      effect
=================  =========================  ===============================================
ratelimit          probability 0..1           a REST call gets the 403 rate-limit text anyway
http5xx            probability 0..1           a REST call (or the master) gets a 5xx and is
                                              not acted on
latency_ms         milliseconds, 0..60000     every REST answer (and the master) is held this
                                              long *after* the request was acted on: a client
                                              that times out first has still placed its order
ws_drop_after_s    seconds > 0                WebSockets are dropped (no close frame) this
                                              long after they connect
ws_silent_after_s  seconds > 0                WebSockets stay open but send nothing (no ticks,
                                              no ``pong``) this long after they connect
malformed          probability 0..1           a feed frame is sent truncated or corrupted
expire_at          ``HH:MM`` (session time)   JWTs issued before that session instant stop
                                              working once it is reached (AG8001)
reject             probability 0..1           a placeOrder is rejected (order id + status
                                              ``rejected``)
fill_delay_s       seconds >= 0               orders do not match until this old (wall time)
=================  =========================  ===============================================

Example: ``ratelimit=0.2,http5xx=0.1,latency_ms=200,ws_drop_after_s=30,expire_at=10:30``.

Randomness is one ``random.Random`` seeded from the server seed, so a run is reproducible for a
given sequence of requests.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any


class FaultSpecError(ValueError):
    """A fault spec item that cannot be used; the message names the item and what is allowed."""


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Which faults are on. The defaults are a healthy exchange."""

    ratelimit: float = 0.0
    http5xx: float = 0.0
    latency_ms: int = 0
    ws_drop_after_s: float | None = None
    ws_silent_after_s: float | None = None
    malformed: float = 0.0
    expire_at: time | None = None
    reject: float = 0.0
    fill_delay_s: float = 0.0

    @property
    def active(self) -> bool:
        """True when any fault is on."""
        return self != FaultSettings()

    def spec(self) -> str:
        """This setting in the spec grammar (``""`` when healthy); parses back to itself."""
        items = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(HEALTHY, f.name):
                continue
            if isinstance(value, time):
                text = value.strftime("%H:%M:%S") if value.second else value.strftime("%H:%M")
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value)
            items.append(f"{f.name}={text}")
        return ",".join(items)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (times as ``HH:MM:SS``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, time) else value
        return out


HEALTHY = FaultSettings()

_NAMES = tuple(f.name for f in fields(FaultSettings))
_PROBABILITIES = ("ratelimit", "http5xx", "malformed", "reject")


def _probability(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"fault {name}={text!r}: must be a probability between 0 and 1")
    return value


def _seconds(name: str, text: str, *, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value > 86_400:
        lowest = "0" if allow_zero else "more than 0"
        raise FaultSpecError(f"fault {name}={text!r}: must be seconds, {lowest} up to 86400")
    return value


def _milliseconds(name: str, text: str) -> int:
    if not text.isdigit() or int(text) > 60_000:
        raise FaultSpecError(f"fault {name}={text!r}: must be whole milliseconds, 0 to 60000")
    return int(text)


def _clock_time(name: str, text: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise FaultSpecError(f"fault {name}={text!r}: must be a session time HH:MM, e.g. 10:30")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _value(name: str, text: str) -> Any:
    if name in _PROBABILITIES:
        return _probability(name, text)
    if name == "latency_ms":
        return _milliseconds(name, text)
    if name == "expire_at":
        return _clock_time(name, text)
    return _seconds(name, text, allow_zero=name == "fill_delay_s")


def parse_faults(spec: str) -> FaultSettings:
    """Parse a fault spec (see the module docstring); ``FaultSpecError`` names the bad item."""
    text = spec.strip()
    if text.lower() in ("", "none"):
        return HEALTHY
    seen: dict[str, Any] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise FaultSpecError(f"fault spec {spec!r}: empty item between commas")
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not value:
            raise FaultSpecError(f"fault {item!r}: must be name=value, e.g. ratelimit=0.2")
        if name not in _NAMES:
            raise FaultSpecError(
                f"fault {item!r}: unknown name {name!r}; allowed: {', '.join(_NAMES)}"
            )
        if name in seen:
            raise FaultSpecError(f"fault {item!r}: {name} is given more than once")
        seen[name] = _value(name, value)
    return replace(HEALTHY, **seen)


def faults_from_mapping(data: Mapping[str, Any]) -> FaultSettings:
    """Faults from JSON: ``{"spec": "..."}`` or ``{"ratelimit": 0.2, ...}`` (unset = healthy)."""
    if set(data) == {"spec"}:
        spec = data["spec"]
        if not isinstance(spec, str):
            raise FaultSpecError(f"spec: {spec!r} — must be a string in the fault grammar")
        return parse_faults(spec)
    items = []
    for name, value in data.items():
        if value is None:
            continue
        items.append(f"{name}={value}")
    return parse_faults(",".join(items))


class FaultInjector:
    """The faults in force plus the seeded dice that decide each probabilistic one."""

    def __init__(self, settings: FaultSettings = HEALTHY, *, seed: int = 0) -> None:
        self._settings = settings
        self._seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def set(self, settings: FaultSettings) -> None:
        """Replace the faults in force (takes effect on the next request or frame)."""
        self._settings = settings

    def roll(self, probability: float) -> bool:
        """True with ``probability`` (never draws when it is 0, so healthy runs use no dice)."""
        if probability <= 0.0:
            return False
        with self._lock:
            return self._random.random() < probability

    def choice(self, options: tuple[Any, ...]) -> Any:
        """One of ``options``, from the same seeded stream."""
        with self._lock:
            return self._random.choice(options)

    def randrange(self, stop: int) -> int:
        """An integer in ``[0, stop)`` from the same seeded stream."""
        with self._lock:
            return self._random.randrange(stop)

    def reset(self) -> None:
        """Healthy again, with the dice re-seeded."""
        with self._lock:
            self._settings = HEALTHY
            self._random = random.Random(self._seed)
