"""Black-Scholes-Merton pricing, Greeks, implied volatility and tick rounding."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from market.pricing import (
    Greeks,
    ImpliedVolError,
    OptionKind,
    bs_price,
    greeks,
    implied_vol,
    norm_cdf,
    to_tick_paise,
)

# --- known values --------------------------------------------------------------------------


def test_textbook_at_the_money_values() -> None:
    # S=100, K=100, T=1, r=5 %, σ=20 %: d1 = (0 + (0.05 + 0.02)) / 0.2 = 0.35, d2 = 0.15;
    # call = 100 N(0.35) - 100 e^-0.05 N(0.15) = 63.683 - 95.123 * 0.55962 = 10.4506;
    # put = call - 100 + 95.123 = 5.5735.
    assert bs_price("CE", 100, 100, 1.0, 0.05, 0.2) == pytest.approx(10.4506, abs=5e-5)
    assert bs_price("PE", 100, 100, 1.0, 0.05, 0.2) == pytest.approx(5.5735, abs=5e-5)


def test_hull_stock_option_example() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10 %, σ=20 %, T=0.5.
    # d1 = (ln 1.05 + 0.12 * 0.5) / (0.2 √0.5) = 0.7693, d2 = 0.6278; c = 4.76, p = 0.81.
    assert bs_price("CE", 42, 40, 0.5, 0.10, 0.2) == pytest.approx(4.76, abs=5e-3)
    assert bs_price("PE", 42, 40, 0.5, 0.10, 0.2) == pytest.approx(0.81, abs=5e-3)


def test_hull_index_option_with_dividend_yield() -> None:
    # Hull, index option: S=930, K=900, r=8 %, q=3 %, σ=20 %, T=2/12.
    # d1 = (ln(930/900) + (0.08 - 0.03 + 0.02) * 2/12) / (0.2 √(2/12)) = 0.5444, d2 = 0.4628;
    # c = 930 e^(-0.005) 0.7069 - 900 e^(-0.01333) 0.6782 = 51.83.
    assert bs_price("CE", 930, 900, 2 / 12, 0.08, 0.2, q=0.03) == pytest.approx(51.83, abs=5e-3)


def test_zero_rate_at_the_money_closed_form() -> None:
    # r = q = 0, S = K: d1 = σ√T/2, d2 = -d1, so call = S (2 N(d1) - 1) = S erf(σ√T / (2√2)).
    # σ = 0.2, T = 1: 100 · erf(0.1 / √2) = 7.9655674554...; the put equals the call.
    expected = 100 * math.erf(0.1 / math.sqrt(2))
    assert expected == pytest.approx(7.96556746, abs=1e-8)
    assert bs_price("CE", 100, 100, 1.0, 0.0, 0.2) == pytest.approx(expected, rel=1e-12)
    assert bs_price("PE", 100, 100, 1.0, 0.0, 0.2) == pytest.approx(expected, rel=1e-12)


def test_textbook_greeks() -> None:
    # Same ATM case: N'(0.35) = 0.37524; delta = N(0.35) = 0.63683;
    # gamma = 0.37524 / (100 · 0.2) = 0.018762; vega = 100 · 0.37524 · 1 = 37.524 per unit
    # -> 0.37524 per vol point; theta = -100 · 0.37524 · 0.2 / 2 - 0.05 · 95.123 · 0.55962
    # = -6.4140 a year -> -0.017573 a day; rho = 100 e^-0.05 N(0.15) = 53.232 -> 0.53232.
    g = greeks("CE", 100, 100, 1.0, 0.05, 0.2)
    assert g.delta == pytest.approx(0.63683, abs=1e-5)
    assert g.gamma == pytest.approx(0.018762, abs=1e-6)
    assert g.vega == pytest.approx(0.37524, abs=1e-5)
    assert g.theta == pytest.approx(-6.4140 / 365, abs=1e-6)
    assert g.rho == pytest.approx(0.53232, abs=1e-5)
    p = greeks("PE", 100, 100, 1.0, 0.05, 0.2)
    assert p.delta == pytest.approx(0.63683 - 1, abs=1e-5)
    assert p.gamma == pytest.approx(g.gamma, rel=1e-12)
    assert p.vega == pytest.approx(g.vega, rel=1e-12)
    # Put theta = -3.7524 + 0.05 · 95.123 · N(-0.15) = -3.7524 + 4.7561 · 0.44038 = -1.6579.
    assert p.theta == pytest.approx(-1.6579 / 365, abs=1e-6)
    assert p.rho == pytest.approx(-(95.123 - 53.232) / 100, abs=1e-5)


def test_norm_cdf_far_tail_keeps_precision() -> None:
    # Φ(-10) = 7.6198530241605e-24; 0.5 (1 + erf(x/√2)) would give 0.
    assert norm_cdf(-10.0) == pytest.approx(7.6198530241605e-24, rel=1e-10)
    assert norm_cdf(0.0) == 0.5


# --- limits --------------------------------------------------------------------------------


def test_at_expiry_the_value_is_intrinsic() -> None:
    assert bs_price("CE", 105, 100, 0.0, 0.07, 0.3) == 5.0
    assert bs_price("PE", 105, 100, 0.0, 0.07, 0.3) == 0.0
    assert bs_price("PE", 95.5, 100, 0.0, 0.07, 0.3) == 4.5
    assert bs_price("CE", 105, 100, 1e-12, 0.07, 0.3) == pytest.approx(5.0, abs=1e-9)
    g = greeks("CE", 105, 100, 0.0, 0.07, 0.3)
    assert g == Greeks(delta=1.0, gamma=0.0, vega=0.0, theta=g.theta, rho=0.0)
    assert greeks("CE", 95, 100, 0.0, 0.07, 0.3) == Greeks(0.0, 0.0, 0.0, 0.0, 0.0)


def test_zero_vol_is_the_discounted_forward_intrinsic() -> None:
    # Call: 100 - 90 e^-0.05 = 100 - 85.6106... = 14.3893...; the put is worthless.
    expected = 100 - 90 * math.exp(-0.05)
    assert bs_price("CE", 100, 90, 1.0, 0.05, 0.0) == pytest.approx(expected, rel=1e-15)
    assert bs_price("PE", 100, 90, 1.0, 0.05, 0.0) == 0.0
    assert bs_price("CE", 100, 90, 1.0, 0.05, 1e-9) == pytest.approx(expected, rel=1e-12)
    g = greeks("CE", 100, 90, 1.0, 0.05, 0.0)
    assert g.delta == 1.0 and g.gamma == 0.0 and g.vega == 0.0
    # d/dr of 100 - 90 e^-r = 90 e^-0.05 per unit -> per point 0.856...
    assert g.rho == pytest.approx(90 * math.exp(-0.05) * 0.01, rel=1e-12)
    # Time passing raises the discounted strike: theta = -r K e^-rT per year.
    assert g.theta == pytest.approx(-0.05 * 90 * math.exp(-0.05) / 365, rel=1e-12)
    assert greeks("PE", 100, 90, 1.0, 0.05, 0.0) == Greeks(0.0, 0.0, 0.0, 0.0, 0.0)


# --- properties ----------------------------------------------------------------------------

spots = st.floats(50.0, 60_000.0)
moneyness = st.floats(0.6, 1.6)
expiries = st.floats(1 / 365, 2.0)
rates = st.floats(0.0, 0.12)
yields = st.floats(0.0, 0.05)
vols = st.floats(0.03, 1.5)


@settings(max_examples=300, deadline=None)
@given(spot=spots, m=moneyness, t=expiries, r=rates, q=yields, vol=vols)
def test_put_call_parity(spot: float, m: float, t: float, r: float, q: float, vol: float) -> None:
    strike = spot * m
    call = bs_price("CE", spot, strike, t, r, vol, q)
    put = bs_price("PE", spot, strike, t, r, vol, q)
    forward_gap = spot * math.exp(-q * t) - strike * math.exp(-r * t)
    # Relative to the spot: C - P itself can be ~0 at the money-forward.
    assert abs((call - put) - forward_gap) <= 1e-8 * spot


@settings(max_examples=300, deadline=None)
@given(
    spot=spots,
    m=moneyness,
    t=expiries,
    r=rates,
    q=yields,
    vol=vols,
    kind=st.sampled_from(["CE", "PE"]),
)
def test_implied_vol_round_trips(
    spot: float, m: float, t: float, r: float, q: float, vol: float, kind: OptionKind
) -> None:
    strike = spot * m
    vega = greeks(kind, spot, strike, t, r, vol, q).vega
    assume(vega > 1e-4 * spot * 0.01)  # per vol point; below this vol is barely identified
    price = bs_price(kind, spot, strike, t, r, vol, q)
    assert implied_vol(kind, price, spot, strike, t, r, q) == pytest.approx(vol, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    spot=spots,
    m=moneyness,
    t=expiries,
    r=rates,
    q=yields,
    vol=vols,
    kind=st.sampled_from(["CE", "PE"]),
)
def test_implied_vol_reprices_even_when_vega_is_tiny(
    spot: float, m: float, t: float, r: float, q: float, vol: float, kind: OptionKind
) -> None:
    strike = spot * m
    price = bs_price(kind, spot, strike, t, r, vol, q)
    lower = bs_price(kind, spot, strike, t, r, 0.0, q)
    assume(price > lower + 1e-9 * spot)
    iv = implied_vol(kind, price, spot, strike, t, r, q)
    assert bs_price(kind, spot, strike, t, r, iv, q) == pytest.approx(
        price, rel=1e-9, abs=1e-12 * spot
    )


@settings(max_examples=200, deadline=None)
@given(
    spot=spots,
    m=moneyness,
    t=st.floats(7 / 365, 2.0),
    r=rates,
    q=yields,
    vol=st.floats(0.05, 1.0),
    kind=st.sampled_from(["CE", "PE"]),
)
def test_greeks_match_finite_differences(
    spot: float, m: float, t: float, r: float, q: float, vol: float, kind: OptionKind
) -> None:
    strike = spot * m

    def value(s: float = spot, tt: float = t, rr: float = r, v: float = vol) -> float:
        return bs_price(kind, s, strike, tt, rr, v, q)

    g = greeks(kind, spot, strike, t, r, vol, q)
    # Steps scale with the price's own width, σ√T, so short, low-vol options stay resolved.
    hs = spot * vol * math.sqrt(t) * 1e-3
    delta = (value(s=spot + hs) - value(s=spot - hs)) / (2 * hs)
    gamma = (value(s=spot + hs) - 2 * value() + value(s=spot - hs)) / (hs * hs)
    hv = 1e-5
    vega = (value(v=vol + hv) - value(v=vol - hv)) / (2 * hv) * 0.01
    ht = 1e-5
    theta = -(value(tt=t + ht) - value(tt=t - ht)) / (2 * ht) / 365
    hr = 1e-5
    rho = (value(rr=r + hr) - value(rr=r - hr)) / (2 * hr) * 0.01
    assert g.delta == pytest.approx(delta, abs=1e-6)
    # Gamma's second difference loses ~half the digits; compare on the scale of delta / spot.
    assert g.gamma == pytest.approx(gamma, rel=1e-3, abs=1e-4 / spot)
    assert g.vega == pytest.approx(vega, rel=1e-5, abs=1e-9 * spot)
    assert g.theta == pytest.approx(theta, rel=1e-5, abs=1e-9 * spot)
    assert g.rho == pytest.approx(rho, rel=1e-5, abs=1e-9 * spot)


# --- implied vol failures ------------------------------------------------------------------


def test_price_above_upper_bound_is_rejected_with_inputs_named() -> None:
    with pytest.raises(ImpliedVolError) as info:
        implied_vol("CE", 101.0, 100.0, 100.0, 0.25, 0.065)
    err = info.value
    assert (err.kind, err.price, err.spot, err.strike, err.t_years, err.rate) == (
        "CE",
        101.0,
        100.0,
        100.0,
        0.25,
        0.065,
    )
    message = str(err)
    assert "CE price 101.0" in message and "spot=100.0" in message and "strike=100.0" in message
    assert "upper bound 100.0" in message
    assert isinstance(err, ValueError)


def test_price_below_intrinsic_is_rejected() -> None:
    # Put intrinsic (discounted) = 120 e^-0.0065·... > 19, so 10 is impossible.
    with pytest.raises(ImpliedVolError, match="below the no-arbitrage lower bound"):
        implied_vol("PE", 10.0, 100.0, 120.0, 0.1, 0.065)
    with pytest.raises(ImpliedVolError, match=r"below the no-arbitrage lower bound 0\.0"):
        implied_vol("CE", -0.5, 100.0, 120.0, 0.1, 0.065)


def test_put_upper_bound_is_the_discounted_strike() -> None:
    bound = 100 * math.exp(-0.065 * 0.5)
    with pytest.raises(ImpliedVolError, match="upper bound"):
        implied_vol("PE", bound, 80.0, 100.0, 0.5, 0.065)
    assert implied_vol("PE", bound * 0.6, 80.0, 100.0, 0.5, 0.065) > 0.0


def test_at_expiry_there_is_no_implied_vol() -> None:
    with pytest.raises(ImpliedVolError, match="t_years must be > 0"):
        implied_vol("CE", 5.0, 105.0, 100.0, 0.0, 0.065)


def test_price_at_the_lower_bound_is_zero_vol() -> None:
    lower = 100 - 90 * math.exp(-0.05)
    assert implied_vol("CE", lower, 100, 90, 1.0, 0.05) == 0.0


def test_very_high_vol_is_recovered() -> None:
    price = bs_price("CE", 100, 100, 0.5, 0.05, 4.0)
    assert implied_vol("CE", price, 100, 100, 0.5, 0.05) == pytest.approx(4.0, abs=1e-6)


def test_price_too_near_upper_bound_fails_cleanly() -> None:
    with pytest.raises(ImpliedVolError, match="implies a volatility above"):
        # S = K, r = 0: call = S (2 N(σ√T/2) - 1); 1e-15 (relative) short of S needs
        # σ√T ≈ 16, so σ ≈ 1600 at T = 1e-4.
        implied_vol("CE", 100.0 - 1e-13, 100.0, 100.0, 1e-4, 0.0)


# --- input validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "CALL"}, "kind must be 'CE' or 'PE', got 'CALL'"),
        ({"spot": 0.0}, "spot must be > 0, got 0.0"),
        ({"strike": -5.0}, "strike must be > 0, got -5.0"),
        ({"t_years": -0.01}, "t_years must be >= 0, got -0.01"),
        ({"vol": -0.2}, "vol must be >= 0, got -0.2"),
        ({"rate": math.nan}, "rate must be finite, got nan"),
        ({"q": math.inf}, "q must be finite, got inf"),
        ({"spot": "100"}, "spot must be a number, got '100'"),
    ],
)
def test_bad_inputs_are_rejected(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "kind": "CE",
        "spot": 100.0,
        "strike": 100.0,
        "t_years": 0.5,
        "rate": 0.065,
        "vol": 0.2,
        "q": 0.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        bs_price(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        greeks(**args)  # type: ignore[arg-type]


# --- tick rounding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rupees", "tick", "paise"),
    [
        (123.45, 5, 12345),  # already on the tick
        (123.47, 5, 12345),  # 12347 / 5 = 2469.4 -> 2469 ticks
        (123.475, 5, 12350),  # 12347.5 / 5 = 2469.5 -> half up -> 2470 ticks
        (1.025, 5, 105),  # 102.5 / 5 = 20.5 -> 21 ticks
        (1.024, 5, 100),  # 102.4 / 5 = 20.48 -> 20 ticks
        (1.005, 1, 101),  # 100.5 paise -> 101 (naive round(1.005 * 100) gives 100)
        (25.05, 10, 2510),  # 2505 / 10 = 250.5 -> 251 ticks
        (0.0, 5, 0),
        (0.02, 5, 0),  # 2 / 5 = 0.4 -> 0 ticks
        (24_950.0, 5, 2_495_000),
        (Decimal("7.325"), 5, 735),  # 732.5 / 5 = 146.5 -> 147 ticks
    ],
)
def test_to_tick_paise(rupees: float, tick: int, paise: int) -> None:
    result = to_tick_paise(rupees, tick)
    assert result == paise and type(result) is int


@pytest.mark.parametrize("tick", [0, -5, 2.5, True, "5"])
def test_to_tick_paise_rejects_bad_tick(tick: object) -> None:
    with pytest.raises(ValueError, match="tick_paise must be a positive integer"):
        to_tick_paise(10.0, tick)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", [-0.05, math.nan, math.inf])
def test_to_tick_paise_rejects_bad_price(price: float) -> None:
    with pytest.raises(ValueError, match="price_rupees must be a finite number >= 0"):
        to_tick_paise(price, 5)
