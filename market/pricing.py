"""Black-Scholes-Merton values, Greeks and implied volatility for European options.

NSE index options (NIFTY, BANKNIFTY, …) are European; the model takes a continuous
dividend yield ``q`` (0 for indices by default, a yield for stock options). Model values are
floats by nature; anything that becomes a price in an order goes through ``to_tick_paise``,
which turns rupees into integer paise on the instrument's tick.

Units: ``t_years`` is time to expiry in years, ``rate``, ``vol`` and ``q`` are annual decimals
(0.065 for 6.5 %). Greeks are reported the way traders quote them: vega and rho per one
percentage point (0.01), theta per calendar day (annual theta / 365).

Degenerate inputs have clean limits rather than divisions by zero: at expiry (``t_years == 0``)
the value is the intrinsic value; with zero volatility it is the discounted forward intrinsic
value ``max(S·e^(-qT) - K·e^(-rT), 0)`` for a call (and the mirror for a put).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal

OptionKind = Literal["CE", "PE"]

DAYS_PER_YEAR: Final = 365.0
# Implied volatilities above this (10,000 % a year) are treated as "no solution".
MAX_IMPLIED_VOL: Final = 100.0

_SQRT2: Final = math.sqrt(2.0)
_INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)
_VOL_TOLERANCE: Final = 1e-13
_MAX_ITERATIONS: Final = 200

__all__ = [
    "DAYS_PER_YEAR",
    "MAX_IMPLIED_VOL",
    "Greeks",
    "ImpliedVolError",
    "OptionKind",
    "bs_price",
    "greeks",
    "implied_vol",
    "norm_cdf",
    "norm_pdf",
    "to_tick_paise",
]


class ImpliedVolError(ValueError):
    """The price admits no Black-Scholes volatility (outside the no-arbitrage bounds)."""

    def __init__(
        self,
        reason: str,
        *,
        kind: str,
        price: float,
        spot: float,
        strike: float,
        t_years: float,
        rate: float,
        q: float,
    ) -> None:
        self.kind = kind
        self.price = price
        self.spot = spot
        self.strike = strike
        self.t_years = t_years
        self.rate = rate
        self.q = q
        super().__init__(
            f"no implied volatility for {kind} price {price!r} "
            f"(spot={spot!r}, strike={strike!r}, t_years={t_years!r}, rate={rate!r}, q={q!r}): "
            f"{reason}"
        )


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of one option (per unit of underlying, not per lot)."""

    delta: float  # d value / d spot
    gamma: float  # d delta / d spot
    vega: float  # value change for +1 volatility point (+0.01)
    theta: float  # value change for one calendar day passing
    rho: float  # value change for +1 rate point (+0.01)


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution function."""
    # erfc keeps full relative precision in the far left tail, where 1 + erf(x) cancels.
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


# --- validation ----------------------------------------------------------------------------


def _check_kind(kind: str) -> bool:
    """Return True for a call, False for a put."""
    if kind == "CE":
        return True
    if kind == "PE":
        return False
    raise ValueError(f"kind must be 'CE' or 'PE', got {kind!r}")


def _check_number(name: str, value: float, *, minimum: float | None, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None:
        if strict and value <= minimum:
            raise ValueError(f"{name} must be > {minimum:g}, got {value!r}")
        if not strict and value < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return value


def _check_market(
    spot: float, strike: float, t_years: float, rate: float, q: float
) -> tuple[float, float, float, float, float]:
    return (
        _check_number("spot", spot, minimum=0.0, strict=True),
        _check_number("strike", strike, minimum=0.0, strict=True),
        _check_number("t_years", t_years, minimum=0.0, strict=False),
        _check_number("rate", rate, minimum=None, strict=False),
        _check_number("q", q, minimum=None, strict=False),
    )


# --- model ---------------------------------------------------------------------------------


def _d1_d2(
    spot: float, strike: float, t: float, rate: float, vol: float, q: float, sig: float
) -> tuple[float, float]:
    d1 = (math.log(spot / strike) + (rate - q + 0.5 * vol * vol) * t) / sig
    return d1, d1 - sig


def _price(
    is_call: bool, spot: float, strike: float, t: float, rate: float, vol: float, q: float
) -> float:
    spot_pv = spot * math.exp(-q * t)
    strike_pv = strike * math.exp(-rate * t)
    sig = vol * math.sqrt(t)
    if sig == 0.0:
        # Expiry or zero volatility: the forward ends where it is, so only intrinsic remains.
        return max(spot_pv - strike_pv, 0.0) if is_call else max(strike_pv - spot_pv, 0.0)
    d1, d2 = _d1_d2(spot, strike, t, rate, vol, q, sig)
    if is_call:
        value = spot_pv * norm_cdf(d1) - strike_pv * norm_cdf(d2)
    else:
        value = strike_pv * norm_cdf(-d2) - spot_pv * norm_cdf(-d1)
    # Far out of the money the difference of two tiny terms can round below zero.
    return max(value, 0.0)


def _vega_per_unit(
    spot: float, strike: float, t: float, rate: float, vol: float, q: float
) -> float:
    sqrt_t = math.sqrt(t)
    sig = vol * sqrt_t
    if sig == 0.0:
        return 0.0
    d1, _ = _d1_d2(spot, strike, t, rate, vol, q, sig)
    return spot * math.exp(-q * t) * norm_pdf(d1) * sqrt_t


def bs_price(
    kind: OptionKind,
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    vol: float,
    q: float = 0.0,
) -> float:
    """Black-Scholes-Merton value of a European call (CE) or put (PE), in the spot's units."""
    is_call = _check_kind(kind)
    spot, strike, t_years, rate, q = _check_market(spot, strike, t_years, rate, q)
    vol = _check_number("vol", vol, minimum=0.0, strict=False)
    return _price(is_call, spot, strike, t_years, rate, vol, q)


def greeks(
    kind: OptionKind,
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    vol: float,
    q: float = 0.0,
) -> Greeks:
    """Delta, gamma, vega (per 0.01 vol), theta (per calendar day) and rho (per 0.01 rate)."""
    is_call = _check_kind(kind)
    spot, strike, t, rate, q = _check_market(spot, strike, t_years, rate, q)
    vol = _check_number("vol", vol, minimum=0.0, strict=False)
    carry = math.exp(-q * t)
    discount = math.exp(-rate * t)
    spot_pv = spot * carry
    strike_pv = strike * discount
    sqrt_t = math.sqrt(t)
    sig = vol * sqrt_t
    sign = 1.0 if is_call else -1.0

    if sig == 0.0:
        # The value is the discounted forward intrinsic value: linear in spot where the option
        # is in the money, flat where it is out. At the kink the one-sided deltas are averaged
        # and curvature is reported as 0 (it is unbounded there).
        moneyness = sign * (spot_pv - strike_pv)
        if moneyness > 0.0:
            return Greeks(
                delta=sign * carry,
                gamma=0.0,
                vega=0.0,
                theta=sign * (q * spot_pv - rate * strike_pv) / DAYS_PER_YEAR,
                rho=sign * t * strike_pv * 0.01,
            )
        delta = 0.5 * sign * carry if moneyness == 0.0 else 0.0
        return Greeks(delta=delta, gamma=0.0, vega=0.0, theta=0.0, rho=0.0)

    d1, d2 = _d1_d2(spot, strike, t, rate, vol, q, sig)
    density = norm_pdf(d1)
    n1 = norm_cdf(sign * d1)
    n2 = norm_cdf(sign * d2)
    time_decay = -spot_pv * density * vol / (2.0 * sqrt_t)
    theta_year = time_decay - sign * rate * strike_pv * n2 + sign * q * spot_pv * n1
    return Greeks(
        delta=sign * carry * n1,
        gamma=carry * density / (spot * sig),
        vega=spot_pv * density * sqrt_t * 0.01,
        theta=theta_year / DAYS_PER_YEAR,
        rho=sign * t * strike_pv * n2 * 0.01,
    )


def implied_vol(
    kind: OptionKind,
    price: float,
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    q: float = 0.0,
) -> float:
    """Volatility at which ``bs_price`` equals ``price``.

    Newton's method started at the inflection point of value against volatility, kept inside
    a bracket that every evaluation narrows and falling back to bisection whenever a step
    would leave it, so it converges even where vega is tiny. Raises ``ImpliedVolError`` when
    the price is outside the no-arbitrage bounds (below the discounted intrinsic value, or at
    or above ``S·e^(-qT)`` for a call, ``K·e^(-rT)`` for a put) or when ``t_years`` is 0.
    """
    is_call = _check_kind(kind)
    spot, strike, t, rate, q = _check_market(spot, strike, t_years, rate, q)
    price = _check_number("price", price, minimum=None, strict=False)

    def fail(reason: str) -> ImpliedVolError:
        return ImpliedVolError(
            reason, kind=kind, price=price, spot=spot, strike=strike, t_years=t, rate=rate, q=q
        )

    if t == 0.0:
        raise fail("t_years must be > 0 (at expiry the value does not depend on volatility)")
    lower = _price(is_call, spot, strike, t, rate, 0.0, q)
    upper = spot * math.exp(-q * t) if is_call else strike * math.exp(-rate * t)
    # Rounding in the caller's arithmetic must not turn an intrinsic-value quote into an error.
    slack = 1e-12 * max(spot, strike)
    if price < lower - slack:
        raise fail(f"below the no-arbitrage lower bound {lower!r}")
    if price >= upper:
        raise fail(f"at or above the no-arbitrage upper bound {upper!r}")
    if price <= lower:
        return 0.0

    def excess(vol: float) -> float:
        return _price(is_call, spot, strike, t, rate, vol, q) - price

    lo, hi = 0.0, 1.0
    while excess(hi) < 0.0:
        lo, hi = hi, hi * 2.0
        if hi > MAX_IMPLIED_VOL:
            raise fail(f"implies a volatility above {MAX_IMPLIED_VOL:g} (price too near {upper!r})")

    # Value is convex in vol below the inflection point and concave above it, so Newton
    # started there heads monotonically to the root.
    log_moneyness = math.log(spot / strike) + (rate - q) * t
    vol = math.sqrt(2.0 * abs(log_moneyness) / t)
    if not lo < vol < hi:
        vol = 0.5 * (lo + hi)
    for _ in range(_MAX_ITERATIONS):
        diff = excess(vol)
        if diff == 0.0:
            return vol
        if diff < 0.0:
            lo = vol
        else:
            hi = vol
        vega = _vega_per_unit(spot, strike, t, rate, vol, q)
        step_to = vol - diff / vega if vega > 0.0 else math.nan
        if not lo < step_to < hi:
            step_to = 0.5 * (lo + hi)
        if abs(step_to - vol) <= _VOL_TOLERANCE * max(1.0, vol) or hi - lo <= _VOL_TOLERANCE:
            return step_to
        vol = step_to
    return vol


# --- ticks ---------------------------------------------------------------------------------


def to_tick_paise(price_rupees: float, tick_paise: int) -> int:
    """Round a rupee price to the nearest multiple of ``tick_paise`` (ties up); integer paise.

    The float is read as the shortest decimal that prints as it (``repr``), so 1.025 rupees
    is treated as exactly 102.5 paise and a 5-paise tick gives 105, as a person would expect.
    """
    if isinstance(tick_paise, bool) or not isinstance(tick_paise, numbers.Integral):
        raise ValueError(f"tick_paise must be a positive integer, got {tick_paise!r}")
    tick_paise = int(tick_paise)
    if tick_paise <= 0:
        raise ValueError(f"tick_paise must be a positive integer, got {tick_paise!r}")
    if isinstance(price_rupees, bool) or not isinstance(price_rupees, numbers.Real | Decimal):
        raise ValueError(f"price_rupees must be a number, got {price_rupees!r}")
    rupees = Decimal(repr(float(price_rupees)))
    if not rupees.is_finite() or rupees < 0:
        raise ValueError(f"price_rupees must be a finite number >= 0, got {price_rupees!r}")
    ticks = (rupees * 100 / tick_paise).to_integral_value(rounding=ROUND_HALF_UP)
    return int(ticks) * tick_paise
