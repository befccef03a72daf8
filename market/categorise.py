"""Daily-ADX categorisation: which side, if any, to buy on an underlying in the next session.

From an underlying's daily bars, ADX(14), +DI(14) and -DI(14) (TA-Lib, ``market.indicators``)
and the last session's volume against its average give one verdict for the following session:

* **CE** (buy calls): ADX > ``adx_trend``, +DI > -DI by more than ``di_band``, volume above
  its average.
* **PE** (buy puts): the same with -DI above +DI.
* **NO_TRADE** otherwise, with the first reason that applies, in this order:

  ====================  =====================================================================
  ``short_history``     fewer bars than the indicators and the volume average need
  ``no_volume``         no volume for the last ``volume_lookback + 1`` sessions (an index whose
                        futures volume is missing)
  ``adx_low``           ADX < ``adx_no_trend``: no trend
  ``di_band``           |+DI - -DI| <= ``di_band``: neither side leads
  ``volume_low``        last volume <= its average: the move lacks participation
  ``adx_between``       ``adx_no_trend`` <= ADX <= ``adx_trend``, nothing else wrong
  ====================  =====================================================================

The volume average is the plain mean of the ``volume_lookback`` sessions *before* the last
one, so the day being judged does not dilute its own benchmark. An index has no volume of its
own; callers pass the nearest futures contract's daily volume instead
(:func:`nearest_contract_volume` builds that series from the contracts' daily bars).

A verdict's reason is stored as one text field, ``"<code>: <explanation>"``: the code is a
stable machine-readable :class:`Reason`, the explanation quotes the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from market.indicators import adx, minus_di, plus_di

__all__ = [
    "Category",
    "FuturesDay",
    "Reason",
    "Thresholds",
    "Verdict",
    "categorise",
    "decide",
    "nearest_contract_volume",
    "parse_reason",
    "stale_verdict",
]


class Category(StrEnum):
    """What the intraday worker may do on an underlying in the session."""

    CE = "CE"
    PE = "PE"
    NO_TRADE = "NO_TRADE"


class Reason(StrEnum):
    """Machine-readable reason codes of a verdict."""

    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    SHORT_HISTORY = "short_history"
    STALE_DATA = "stale_data"
    NO_VOLUME = "no_volume"
    ADX_LOW = "adx_low"
    DI_BAND = "di_band"
    VOLUME_LOW = "volume_low"
    ADX_BETWEEN = "adx_between"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The ``[categorise]`` settings plus the indicator period."""

    adx_trend: float = 25.0
    adx_no_trend: float = 20.0
    di_band: float = 2.0
    volume_lookback: int = 20
    period: int = 14

    def __post_init__(self) -> None:
        if not 0 < self.adx_no_trend <= self.adx_trend <= 100:
            raise ValueError(
                f"need 0 < adx_no_trend ({self.adx_no_trend}) <= adx_trend ({self.adx_trend})"
                " <= 100"
            )
        if not 0 <= self.di_band <= 100:
            raise ValueError(f"di_band {self.di_band} must be within 0..100")
        if self.volume_lookback < 1:
            raise ValueError(f"volume_lookback {self.volume_lookback} must be at least 1")
        if self.period < 2:
            raise ValueError(f"period {self.period} must be at least 2")

    @property
    def min_bars(self) -> int:
        """Daily bars needed: ADX's first value (2n - 1 bars back) and the volume average."""
        return max(2 * self.period, self.volume_lookback + 1)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One underlying's category for the next session, with the numbers behind it."""

    category: Category
    reason: Reason
    text: str
    adx: float | None = None
    plus_di: float | None = None
    minus_di: float | None = None
    volume: int | None = None
    volume_avg: float | None = None

    @property
    def reason_field(self) -> str:
        """The stored reason: ``"<code>: <explanation>"``."""
        return f"{self.reason.value}: {self.text}"


def parse_reason(field: str) -> tuple[Reason, str]:
    """Split a stored reason field back into its code and explanation."""
    code, sep, text = field.partition(": ")
    try:
        return Reason(code), text if sep else ""
    except ValueError:
        raise ValueError(f"reason {field!r} does not start with a known code") from None


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def decide(
    adx_value: float,
    plus: float,
    minus: float,
    volume: int,
    volume_avg: float,
    thresholds: Thresholds,
) -> tuple[Category, Reason, str]:
    """The rule proper, on the indicator values of the last session."""
    t = thresholds
    if math.isnan(adx_value) or adx_value < t.adx_no_trend:
        shown = "undefined" if math.isnan(adx_value) else _fmt(adx_value)
        return Category.NO_TRADE, Reason.ADX_LOW, f"ADX {shown} below {t.adx_no_trend:g}: no trend"
    if abs(plus - minus) <= t.di_band:
        return (
            Category.NO_TRADE,
            Reason.DI_BAND,
            f"+DI {_fmt(plus)} and -DI {_fmt(minus)} within {t.di_band:g} of each other",
        )
    if not volume > volume_avg:
        return (
            Category.NO_TRADE,
            Reason.VOLUME_LOW,
            f"volume {volume:,} not above its {t.volume_lookback}-day average {volume_avg:,.0f}",
        )
    if adx_value <= t.adx_trend:
        return (
            Category.NO_TRADE,
            Reason.ADX_BETWEEN,
            f"adx between thresholds: ADX {_fmt(adx_value)} is between "
            f"{t.adx_no_trend:g} and {t.adx_trend:g}",
        )
    trend = (
        f"ADX {_fmt(adx_value)} > {t.adx_trend:g}, volume {volume:,} > "
        f"{t.volume_lookback}-day average {volume_avg:,.0f}"
    )
    if plus > minus:
        return Category.CE, Reason.TREND_UP, f"{trend}, +DI {_fmt(plus)} > -DI {_fmt(minus)}"
    return Category.PE, Reason.TREND_DOWN, f"{trend}, -DI {_fmt(minus)} > +DI {_fmt(plus)}"


def categorise(
    high: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray,
    close: Sequence[float] | np.ndarray,
    volume: Sequence[int | None] | None,
    thresholds: Thresholds | None = None,
) -> Verdict:
    """Verdict for the session after the last of these daily bars (oldest first).

    ``volume`` is aligned with the bars (None where unknown) or None when there is none at all.
    """
    t = thresholds or Thresholds()
    n = len(close)
    if not len(high) == len(low) == n:
        raise ValueError(f"high, low and close differ in length: {len(high)}, {len(low)}, {n}")
    if volume is not None and len(volume) != n:
        raise ValueError(f"volume has {len(volume)} values for {n} bars")
    if n < t.min_bars:
        return Verdict(
            Category.NO_TRADE,
            Reason.SHORT_HISTORY,
            f"{n} daily bars; {t.min_bars} needed for ADX({t.period}) and the "
            f"{t.volume_lookback}-day volume average",
        )
    adx_value = float(adx(high, low, close, t.period)[-1])
    plus = float(plus_di(high, low, close, t.period)[-1])
    minus = float(minus_di(high, low, close, t.period)[-1])
    shown_adx = None if math.isnan(adx_value) else adx_value
    recent = list(volume[-(t.volume_lookback + 1) :]) if volume is not None else []
    known = [v for v in recent if v is not None]
    if len(known) < t.volume_lookback + 1:
        missing = t.volume_lookback + 1 - len(known)
        return Verdict(
            Category.NO_TRADE,
            Reason.NO_VOLUME,
            f"volume unknown for {missing} of the last {t.volume_lookback + 1} sessions",
            shown_adx,
            plus,
            minus,
        )
    last_volume = int(known[-1])
    average = sum(int(v) for v in known[:-1]) / t.volume_lookback
    category, reason, text = decide(adx_value, plus, minus, last_volume, average, t)
    return Verdict(category, reason, text, shown_adx, plus, minus, last_volume, average)


def stale_verdict(last_day: date | None, as_of: date) -> Verdict:
    """NO_TRADE for an underlying whose daily bars stop before the session being judged."""
    shown = last_day.isoformat() if last_day is not None else "nowhere (no daily bars)"
    return Verdict(
        Category.NO_TRADE,
        Reason.STALE_DATA,
        f"daily bars end {shown}; the categorisation needs them up to {as_of.isoformat()}",
    )


class FuturesDay(NamedTuple):
    """One futures contract's daily volume on one day."""

    day: date
    expiry: date
    volume: int


def nearest_contract_volume(rows: Iterable[FuturesDay]) -> dict[date, int]:
    """Per day, the volume of the contract nearest to expiry (expiry on or after the day).

    This splices the near-month contracts into one continuous series; a contract's bars
    after its expiry (there should be none) are ignored.
    """
    best: dict[date, FuturesDay] = {}
    for row in rows:
        if row.expiry < row.day:
            continue
        held = best.get(row.day)
        if held is None or row.expiry < held.expiry:
            best[row.day] = row
    return {day: best[day].volume for day in sorted(best)}
