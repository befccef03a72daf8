"""Indicators: array forms against hand-worked values, incremental forms against TA-Lib.

Agreement tolerance: 1e-9 absolute for RSI, +DI, -DI and ADX, which live in 0..100, and
1e-9 relative (with a 1e-9 absolute floor for values near zero) for EMA and ATR, which are in
price units and may be tens of thousands of rupees for an index. The two forms do the same
operations in the same order; what remains is TA-Lib's fused multiply-add (a few ulps).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from market.indicators import (
    IncrementalATR,
    IncrementalDMI,
    IncrementalEMA,
    IncrementalRSI,
    adx,
    atr,
    ema,
    minus_di,
    plus_di,
    rsi,
)

TOL = 1e-9

Bars = tuple[np.ndarray, np.ndarray, np.ndarray]


@st.composite
def ohlc_bars(draw: st.DrawFn) -> Bars:
    """Valid OHLC bars: flat stretches, large jumps, optional tick rounding, positive prices."""
    n = draw(st.integers(30, 400))
    seed = draw(st.integers(0, 2**32 - 1))
    start = draw(st.sampled_from([0.85, 7.5, 101.0, 2_480.0, 24_950.0, 52_000.0]))
    flat_prefix = draw(st.sampled_from([0, 0, 0, 3, 20, n]))  # n: never a move at all
    flat_p = draw(st.sampled_from([0.0, 0.2, 0.6]))
    jump_p = draw(st.sampled_from([0.0, 0.02, 0.1]))
    on_tick = draw(st.booleans())
    rng = np.random.default_rng(seed)

    closes = np.empty(n)
    opens = np.empty(n)
    highs = np.empty(n)
    lows = np.empty(n)
    price = start
    for i in range(n):
        u = rng.random()
        flat = i < flat_prefix or u < flat_p
        if flat:
            ret = 0.0
        elif u < flat_p + jump_p:
            ret = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.3))
        else:
            ret = float(rng.normal(0.0, 0.01))
        open_ = price if not (u < flat_p + jump_p and not flat) else price * (1 + ret / 2)
        price = max(price * (1 + ret), 0.05)
        body_hi, body_lo = max(open_, price), min(open_, price)
        wick_up = 0.0 if flat else abs(rng.normal(0.0, 0.004)) * price
        wick_dn = 0.0 if flat else abs(rng.normal(0.0, 0.004)) * price
        opens[i], closes[i] = open_, price
        highs[i] = body_hi + wick_up
        lows[i] = max(body_lo - wick_dn, body_lo * 0.5)
    if on_tick:
        # Rounding to a tick is monotone, so the bar stays valid; it creates exact ties.
        def tick(a: np.ndarray) -> np.ndarray:
            return np.maximum(np.round(a / 0.05) * 0.05, 0.05)

        opens, highs, lows, closes = tick(opens), tick(highs), tick(lows), tick(closes)
    assert (highs >= np.maximum(opens, closes)).all()
    assert (lows <= np.minimum(opens, closes)).all()
    assert (lows > 0).all()
    return highs, lows, closes


def _assert_agrees(
    streamed: list[float | None], reference: np.ndarray, *, relative: bool, name: str
) -> None:
    assert len(streamed) == len(reference)
    warmup = int(np.isnan(reference).sum())
    # TA-Lib's NaNs form a prefix; the incremental form must be None over exactly that prefix.
    assert np.isnan(reference[:warmup]).all(), name
    assert all(v is None for v in streamed[:warmup]), name
    assert all(v is not None for v in streamed[warmup:]), name
    for i in range(warmup, len(reference)):
        got, want = streamed[i], float(reference[i])
        assert got is not None
        limit = TOL * max(1.0, abs(want)) if relative else TOL
        assert abs(got - want) <= limit, f"{name}[{i}]: {got!r} vs TA-Lib {want!r}"


periods = st.sampled_from([2, 3, 5, 7, 9, 14, 20, 28])


@settings(max_examples=100, deadline=None)
@given(bars=ohlc_bars(), period=periods)
def test_incremental_ema_and_rsi_match_talib(bars: Bars, period: int) -> None:
    _, _, close = bars
    e, r = IncrementalEMA(period), IncrementalRSI(period)
    ema_stream = [e.update(float(c)) for c in close]
    rsi_stream = [r.update(float(c)) for c in close]
    _assert_agrees(ema_stream, talib.EMA(close, period), relative=True, name="ema")
    _assert_agrees(rsi_stream, talib.RSI(close, period), relative=False, name="rsi")
    # The array wrappers are TA-Lib itself, unchanged.
    np.testing.assert_array_equal(ema(close, period), talib.EMA(close, period))
    np.testing.assert_array_equal(rsi(close, period), talib.RSI(close, period))


@settings(max_examples=100, deadline=None)
@given(bars=ohlc_bars(), period=periods)
def test_incremental_atr_matches_talib(bars: Bars, period: int) -> None:
    high, low, close = bars
    a = IncrementalATR(period)
    stream = [
        a.update(float(h), float(lo), float(c)) for h, lo, c in zip(high, low, close, strict=True)
    ]
    _assert_agrees(stream, talib.ATR(high, low, close, period), relative=True, name="atr")
    np.testing.assert_array_equal(
        atr(high, low, close, period), talib.ATR(high, low, close, period)
    )


@settings(max_examples=100, deadline=None)
@given(bars=ohlc_bars(), period=periods)
def test_incremental_dmi_matches_talib(bars: Bars, period: int) -> None:
    high, low, close = bars
    d = IncrementalDMI(period)
    adx_s, plus_s, minus_s = [], [], []
    for h, lo, c in zip(high, low, close, strict=True):
        adx_s.append(d.update(float(h), float(lo), float(c)))
        plus_s.append(d.plus_di)
        minus_s.append(d.minus_di)
        assert d.adx == adx_s[-1]
    _assert_agrees(adx_s, talib.ADX(high, low, close, period), relative=False, name="adx")
    _assert_agrees(plus_s, talib.PLUS_DI(high, low, close, period), relative=False, name="+di")
    _assert_agrees(minus_s, talib.MINUS_DI(high, low, close, period), relative=False, name="-di")
    np.testing.assert_array_equal(
        adx(high, low, close, period), talib.ADX(high, low, close, period)
    )
    np.testing.assert_array_equal(
        plus_di(high, low, close, period), talib.PLUS_DI(high, low, close, period)
    )
    np.testing.assert_array_equal(
        minus_di(high, low, close, period), talib.MINUS_DI(high, low, close, period)
    )


# --- golden cases worked by hand -----------------------------------------------------------


def test_ema_of_a_ramp() -> None:
    # Seed = (1 + 2 + 3) / 3 = 2; k = 2 / (3 + 1) = 0.5;
    # 2 + (4 - 2) * 0.5 = 3; 3 + (5 - 3) * 0.5 = 4.
    out = ema([1.0, 2.0, 3.0, 4.0, 5.0], 3)
    np.testing.assert_array_equal(out, [np.nan, np.nan, 2.0, 3.0, 4.0])
    e = IncrementalEMA(3)
    assert [e.update(x) for x in [1.0, 2.0, 3.0, 4.0, 5.0]] == [None, None, 2.0, 3.0, 4.0]
    assert e.is_ready and e.value == 4.0 and e.lookback == 2


def test_rsi_of_a_strictly_rising_series_is_100() -> None:
    closes = [100.0 + 1.5 * i for i in range(30)]
    out = rsi(closes, 14)
    assert np.isnan(out[:14]).all()
    assert (out[14:] == 100.0).all()
    r = IncrementalRSI(14)
    assert [r.update(c) for c in closes][14:] == [100.0] * 16


def test_rsi_worked_by_hand() -> None:
    # Period 2, closes 1, 2, 1, 2: changes +1, -1, +1.
    # Seed: gain = 1/2, loss = 1/2 -> RSI = 100 * 0.5 / 1.0 = 50.
    # Next: gain = (0.5 * 1 + 1) / 2 = 0.75, loss = (0.5 * 1 + 0) / 2 = 0.25 -> 75.
    np.testing.assert_allclose(rsi([1.0, 2.0, 1.0, 2.0], 2), [np.nan, np.nan, 50.0, 75.0])
    r = IncrementalRSI(2)
    assert [r.update(c) for c in [1.0, 2.0, 1.0, 2.0]] == [None, None, 50.0, 75.0]


def test_rsi_without_any_change_is_zero() -> None:
    # TA-Lib's convention: no gain and no loss gives 0 rather than a division by zero.
    np.testing.assert_array_equal(rsi([5.0] * 6, 3), [np.nan] * 3 + [0.0] * 3)
    r = IncrementalRSI(3)
    assert [r.update(5.0) for _ in range(6)] == [None] * 3 + [0.0] * 3


def test_atr_of_constant_range_bars_is_that_range() -> None:
    # Close stays at 100 inside a 99..101 bar: every true range is 2, so every average is 2.
    high, low, close = [101.0] * 20, [99.0] * 20, [100.0] * 20
    out = atr(high, low, close, 5)
    assert np.isnan(out[:5]).all()
    assert (out[5:] == 2.0).all()
    a = IncrementalATR(5)
    assert [a.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)][5:] == [2.0] * 15


def test_atr_with_gaps_worked_by_hand() -> None:
    # Period 2. TR1 = max(11-10, |11-9.5|, |10-9.5|) = 1.5; TR2 = max(1, |12-10.5|, |11-10.5|)
    # = 1.5 -> ATR = (1.5 + 1.5) / 2 = 1.5; TR3 = max(11.5-9, |11.5-11|, |9-11|) = 2.5
    # -> ATR = (1.5 * 1 + 2.5) / 2 = 2.0.
    high, low, close = [10.0, 11.0, 12.0, 11.5], [9.0, 10.0, 11.0, 9.0], [9.5, 10.5, 11.0, 10.0]
    np.testing.assert_array_equal(atr(high, low, close, 2), [np.nan, np.nan, 1.5, 2.0])
    a = IncrementalATR(2)
    assert [a.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)] == [
        None,
        None,
        1.5,
        2.0,
    ]


DMI_BARS = ([10.0, 11.0, 12.0, 11.5, 10.0], [8.0, 9.0, 10.0, 9.0, 8.0], [9.0, 10.5, 11.0, 9.5, 8.5])


def test_dmi_worked_by_hand() -> None:
    # Period 2.
    # bar1: up 1, down -1 -> +DM 1; TR max(2, 2, 0) = 2. Seed sums: +DM 1, -DM 0, TR 2.
    # bar2: up 1 -> +DM = 1 - 1/2 + 1 = 1.5; -DM 0; TR = 2 - 1 + max(2, 1.5, 0.5) = 3.
    #       +DI = 50, -DI = 0, DX = 100.
    # bar3: down 1 -> +DM = 0.75, -DM = 1; TR = 3 - 1.5 + max(2.5, 0.5, 2) = 4.
    #       +DI = 18.75, -DI = 25, DX = 100 * 6.25 / 43.75 = 100/7; ADX = (100 + 100/7) / 2 = 400/7.
    # bar4: down 1 -> +DM = 0.375, -DM = 1.5; TR = 4 - 2 + max(2, 0.5, 1.5) = 4.
    #       +DI = 9.375, -DI = 37.5, DX = 100 * 28.125 / 46.875 = 60;
    #       ADX = (400/7 + 60) / 2 = 410/7.
    high, low, close = DMI_BARS
    nan = math.nan
    np.testing.assert_allclose(plus_di(high, low, close, 2), [nan, nan, 50.0, 18.75, 9.375])
    np.testing.assert_allclose(minus_di(high, low, close, 2), [nan, nan, 0.0, 25.0, 37.5])
    np.testing.assert_allclose(adx(high, low, close, 2), [nan, nan, nan, 400 / 7, 410 / 7])

    d = IncrementalDMI(2)
    assert d.lookback == 3 and d.di_lookback == 2
    seen = []
    for h, lo, c in zip(high, low, close, strict=True):
        seen.append((d.update(h, lo, c), d.plus_di, d.minus_di, d.is_ready))
    assert seen[0] == (None, None, None, False)
    assert seen[1] == (None, None, None, False)
    assert seen[2] == (None, 50.0, 0.0, False)
    assert seen[3][0] == pytest.approx(400 / 7, abs=TOL)
    assert seen[3][1:] == (18.75, 25.0, True)
    assert seen[4][0] == pytest.approx(410 / 7, abs=TOL)
    assert seen[4][1:] == (9.375, 37.5, True)


def test_dmi_of_bars_that_never_move_is_zero() -> None:
    # No range and no directional movement from the start: TA-Lib reports 0, not NaN.
    flat = [50.0] * 12
    assert (adx(flat, flat, flat, 3)[5:] == 0.0).all()
    d = IncrementalDMI(3)
    out = [d.update(50.0, 50.0, 50.0) for _ in range(12)]
    assert out[:5] == [None] * 5 and out[5:] == [0.0] * 7
    assert d.plus_di == 0.0 and d.minus_di == 0.0


def test_lookbacks_match_talib_warmups() -> None:
    n, p = 60, 9
    bars = np.full(n, 2.0), np.full(n, 1.0), np.linspace(1.2, 1.8, n)
    assert IncrementalEMA(p).lookback == np.isnan(ema(bars[2], p)).sum()
    assert IncrementalRSI(p).lookback == np.isnan(rsi(bars[2], p)).sum()
    assert IncrementalATR(p).lookback == np.isnan(atr(*bars, p)).sum()
    assert IncrementalDMI(p).lookback == np.isnan(adx(*bars, p)).sum()
    assert IncrementalDMI(p).di_lookback == np.isnan(plus_di(*bars, p)).sum()


def test_short_input_is_all_warmup() -> None:
    out = adx([2.0, 3.0], [1.0, 1.0], [1.5, 2.0], 14)
    assert out.dtype == np.float64 and len(out) == 2 and np.isnan(out).all()
    assert len(ema([], 3)) == 0


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 0, -3, 100_001])
def test_period_out_of_range_is_rejected(period: int) -> None:
    with pytest.raises(ValueError, match=f"period must be between 2 and 100000, got {period}"):
        ema([1.0, 2.0, 3.0], period)
    for cls in (IncrementalEMA, IncrementalRSI, IncrementalATR, IncrementalDMI):
        with pytest.raises(ValueError, match="period must be between"):
            cls(period)


@pytest.mark.parametrize("period", [2.5, True, "14", None])
def test_non_integer_period_is_rejected(period: object) -> None:
    with pytest.raises(ValueError, match="period must be an integer"):
        rsi([1.0, 2.0, 3.0], period)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period must be an integer"):
        IncrementalRSI(period)  # type: ignore[arg-type]


def test_unequal_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="equal lengths, got 3, 2, 3"):
        atr([2.0, 2.0, 2.0], [1.0, 1.0], [1.5, 1.5, 1.5], 2)
    with pytest.raises(ValueError, match="equal lengths, got 2, 2, 1"):
        plus_di([2.0, 2.0], [1.0, 1.0], [1.5], 2)


def test_two_dimensional_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"close must be 1-D, got an array of shape \(2, 2\)"):
        ema([[1.0, 2.0], [3.0, 4.0]], 2)
    with pytest.raises(ValueError, match="high must be 1-D"):
        adx(np.ones((3, 1)), np.ones(3), np.ones(3), 2)


def test_non_finite_and_non_numeric_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"close\[2\] is nan"):
        rsi([1.0, 2.0, math.nan, 4.0], 2)
    with pytest.raises(ValueError, match=r"low\[0\] is -inf"):
        minus_di([2.0, 2.0], [-math.inf, 1.0], [1.5, 1.5], 2)
    with pytest.raises(ValueError, match="close must be a 1-D sequence of numbers"):
        ema(["a", "b", "c"], 2)
