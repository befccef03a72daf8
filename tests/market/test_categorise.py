"""Daily-ADX categorisation: golden series worked by hand, rule boundaries, properties."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from market.categorise import (
    Category,
    FuturesDay,
    Reason,
    Thresholds,
    Verdict,
    categorise,
    decide,
    nearest_contract_volume,
    parse_reason,
    stale_verdict,
)

T = Thresholds()  # 25 / 20 / band 2 / 20-day volume / period 14


def trend(n: int, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closes 1000, 1000 + step, ... with high = close + 1 and low = close - 1."""
    close = 1000.0 + step * np.arange(n)
    return close + 1.0, close - 1.0, close


def test_steady_rise_with_rising_volume_is_ce() -> None:
    # Each bar: high and low both rise by 2, so +DM = 2, -DM = 0, and the true range is
    # max(h - l = 2, |h - prev close| = 3, |l - prev close| = 1) = 3. Wilder smoothing of
    # constant series keeps their ratio: +DI = 100 * 2/3 = 66.67, -DI = 0, so every DX = 100
    # and ADX = 100. Volume 1000 + 10 i: the last (i = 59) is 1590; the 20 before it
    # (i = 39..58) average 1000 + 10 * 48.5 = 1485.
    high, low, close = trend(60, 2.0)
    volume = [1000 + 10 * i for i in range(60)]
    verdict = categorise(high, low, close, volume, T)
    assert verdict.category is Category.CE
    assert verdict.reason is Reason.TREND_UP
    assert verdict.plus_di == pytest.approx(200 / 3, abs=1e-9)
    assert verdict.minus_di == pytest.approx(0.0, abs=1e-9)
    assert verdict.adx == pytest.approx(100.0, abs=1e-9)
    assert verdict.volume == 1590
    assert verdict.volume_avg == pytest.approx(1485.0)
    assert verdict.reason_field.startswith("trend_up: ADX 100.0 > 25")


def test_steady_fall_with_rising_volume_is_pe() -> None:
    # The mirror image: -DM = 2 each bar, +DM = 0, true range 3 → -DI = 66.67, +DI = 0.
    high, low, close = trend(60, -2.0)
    volume = [1000 + 10 * i for i in range(60)]
    verdict = categorise(high, low, close, volume, T)
    assert verdict.category is Category.PE
    assert verdict.reason is Reason.TREND_DOWN
    assert verdict.minus_di == pytest.approx(200 / 3, abs=1e-9)
    assert verdict.plus_di == pytest.approx(0.0, abs=1e-9)


def test_choppy_market_is_no_trade_adx_low() -> None:
    # Closes alternate 1000, 1002 (high/low ±1): up bars have +DM 2, down bars -DM 2, and
    # every true range is 3. Steady state of Wilder's s = s * 13/14 + x on the alternating
    # 2, 0 input: s_a = 2 / (1 - (13/14)^2) = 14.518 and s_b = 13/14 * s_a = 13.481, so
    # DX = 100 * (14.518 - 13.481) / (14.518 + 13.481) = 3.70 and ADX settles near 3.7.
    close = np.array([1000.0 + 2 * (i % 2) for i in range(80)])
    verdict = categorise(close + 1, close - 1, close, [1000] * 79 + [5000], T)
    assert verdict.category is Category.NO_TRADE
    assert verdict.reason is Reason.ADX_LOW
    assert verdict.adx == pytest.approx(3.70, abs=0.05)


def test_strong_trend_on_falling_volume_is_no_trade_volume() -> None:
    high, low, close = trend(60, 2.0)
    volume = [5000 - 10 * i for i in range(60)]  # last 4410 < average of the 20 before
    verdict = categorise(high, low, close, volume, T)
    assert verdict.category is Category.NO_TRADE
    assert verdict.reason is Reason.VOLUME_LOW
    assert verdict.adx == pytest.approx(100.0, abs=1e-9)  # the trend itself is there


def test_too_short_history_is_no_trade_history() -> None:
    # ADX(14) needs 2 * 14 = 28 bars and the volume average 21: 27 bars are too few.
    assert T.min_bars == 28
    high, low, close = trend(27, 2.0)
    verdict = categorise(high, low, close, [1000] * 27, T)
    assert verdict.category is Category.NO_TRADE
    assert verdict.reason is Reason.SHORT_HISTORY
    assert verdict.adx is None
    high, low, close = trend(28, 2.0)
    assert categorise(high, low, close, list(range(28)), T).category is Category.CE


def test_long_volume_lookback_sets_the_history_needed() -> None:
    thresholds = Thresholds(volume_lookback=40)
    assert thresholds.min_bars == 41
    high, low, close = trend(40, 2.0)
    verdict = categorise(high, low, close, list(range(40)), thresholds)
    assert verdict.reason is Reason.SHORT_HISTORY


def test_missing_volume_is_no_trade() -> None:
    high, low, close = trend(60, 2.0)
    assert categorise(high, low, close, None, T).reason is Reason.NO_VOLUME
    volume: list[int | None] = [1000 + i for i in range(60)]
    volume[-5] = None
    verdict = categorise(high, low, close, volume, T)
    assert verdict.reason is Reason.NO_VOLUME
    assert "1 of the last 21" in verdict.text
    # a gap older than the look-back window does not matter
    volume = [1000 + i for i in range(60)]
    volume[10] = None
    assert categorise(high, low, close, volume, T).category is Category.CE


@pytest.mark.parametrize(
    ("adx_value", "plus", "minus", "volume", "avg", "category", "reason"),
    [
        (25.0001, 30.0, 10.0, 200, 100.0, Category.CE, Reason.TREND_UP),
        (25.0, 30.0, 10.0, 200, 100.0, Category.NO_TRADE, Reason.ADX_BETWEEN),
        (22.0, 30.0, 10.0, 200, 100.0, Category.NO_TRADE, Reason.ADX_BETWEEN),
        (20.0, 30.0, 10.0, 200, 100.0, Category.NO_TRADE, Reason.ADX_BETWEEN),
        (19.999, 30.0, 10.0, 200, 100.0, Category.NO_TRADE, Reason.ADX_LOW),
        (float("nan"), 0.0, 0.0, 200, 100.0, Category.NO_TRADE, Reason.ADX_LOW),
        (40.0, 10.0, 30.0, 200, 100.0, Category.PE, Reason.TREND_DOWN),
        (40.0, 21.0, 19.0, 200, 100.0, Category.NO_TRADE, Reason.DI_BAND),  # spread = band
        (40.0, 21.01, 19.0, 200, 100.0, Category.CE, Reason.TREND_UP),
        (40.0, 30.0, 10.0, 100, 100.0, Category.NO_TRADE, Reason.VOLUME_LOW),  # equal ≠ above
        (40.0, 30.0, 10.0, 101, 100.0, Category.CE, Reason.TREND_UP),
        # the first reason wins: ADX low beats a DI band beats low volume beats "between"
        (15.0, 20.0, 20.0, 0, 100.0, Category.NO_TRADE, Reason.ADX_LOW),
        (22.0, 20.0, 20.0, 0, 100.0, Category.NO_TRADE, Reason.DI_BAND),
        (22.0, 30.0, 10.0, 0, 100.0, Category.NO_TRADE, Reason.VOLUME_LOW),
    ],
)
def test_rule_boundaries(
    adx_value: float,
    plus: float,
    minus: float,
    volume: int,
    avg: float,
    category: Category,
    reason: Reason,
) -> None:
    assert decide(adx_value, plus, minus, volume, avg, T)[:2] == (category, reason)


def test_between_thresholds_text() -> None:
    _, reason, text = decide(22.0, 30.0, 10.0, 200, 100.0, T)
    assert reason is Reason.ADX_BETWEEN
    assert text.startswith("adx between thresholds")


def test_thresholds_come_from_settings_values() -> None:
    # a stricter trend threshold turns the same numbers into "between"
    strict = Thresholds(adx_trend=45.0, adx_no_trend=30.0, di_band=5.0)
    assert decide(40.0, 30.0, 10.0, 200, 100.0, strict)[1] is Reason.ADX_BETWEEN
    assert decide(40.0, 24.0, 20.0, 200, 100.0, strict)[1] is Reason.DI_BAND
    with pytest.raises(ValueError, match="adx_no_trend"):
        Thresholds(adx_trend=20.0, adx_no_trend=25.0)
    with pytest.raises(ValueError, match="volume_lookback"):
        Thresholds(volume_lookback=0)


def test_reason_field_round_trips() -> None:
    verdict = Verdict(Category.NO_TRADE, Reason.ADX_LOW, "ADX 12.0 below 20: no trend")
    assert parse_reason(verdict.reason_field) == (Reason.ADX_LOW, "ADX 12.0 below 20: no trend")
    with pytest.raises(ValueError, match="known code"):
        parse_reason("bogus: text")


def test_stale_verdict() -> None:
    verdict = stale_verdict(date(2026, 11, 18), date(2026, 11, 20))
    assert (verdict.category, verdict.reason) == (Category.NO_TRADE, Reason.STALE_DATA)
    assert "2026-11-18" in verdict.text
    assert stale_verdict(None, date(2026, 11, 20)).reason is Reason.STALE_DATA


def test_mismatched_lengths_are_refused() -> None:
    high, low, close = trend(40, 1.0)
    with pytest.raises(ValueError, match="length"):
        categorise(high[:-1], low, close, None)
    with pytest.raises(ValueError, match="volume"):
        categorise(high, low, close, [1] * 39)


def test_nearest_contract_volume_splices_the_near_month() -> None:
    nov, dec = date(2026, 11, 24), date(2026, 12, 29)
    rows = [
        FuturesDay(date(2026, 11, 23), nov, 100),
        FuturesDay(date(2026, 11, 23), dec, 10),
        FuturesDay(date(2026, 11, 24), dec, 40),
        FuturesDay(date(2026, 11, 24), nov, 50),  # expiry day: still the near month
        FuturesDay(date(2026, 11, 25), nov, 5),  # after its expiry: ignored
        FuturesDay(date(2026, 11, 25), dec, 60),
    ]
    assert nearest_contract_volume(rows) == {
        date(2026, 11, 23): 100,
        date(2026, 11, 24): 50,
        date(2026, 11, 25): 60,
    }


# --- properties --------------------------------------------------------------------------

finite = st.floats(0, 100, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite, finite, finite, st.integers(0, 10**6), st.floats(0, 10**6, allow_nan=False))
def test_decide_categories_imply_their_conditions(
    adx_value: float, plus: float, minus: float, volume: int, avg: float
) -> None:
    category, reason, _ = decide(adx_value, plus, minus, volume, avg, T)
    if category is Category.CE:
        assert adx_value > T.adx_trend and plus - minus > T.di_band and volume > avg
    elif category is Category.PE:
        assert adx_value > T.adx_trend and minus - plus > T.di_band and volume > avg
    else:
        assert reason not in (Reason.TREND_UP, Reason.TREND_DOWN)
        if reason is Reason.ADX_BETWEEN:
            assert T.adx_no_trend <= adx_value <= T.adx_trend
            assert abs(plus - minus) > T.di_band and volume > avg
    trending = adx_value > T.adx_trend and abs(plus - minus) > T.di_band and volume > avg
    assert (category is not Category.NO_TRADE) == trending


@st.composite
def daily_bars(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Integer-priced bars (exact in float64, so a mirror image is exact too)."""
    n = draw(st.integers(20, 90))
    drift = draw(st.integers(-8, 8))
    moves = draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n))
    close = 10_000 + np.cumsum(np.array(moves) + drift)
    up = np.array(draw(st.lists(st.integers(0, 15), min_size=n, max_size=n)))
    down = np.array(draw(st.lists(st.integers(0, 15), min_size=n, max_size=n)))
    volume = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
    return (close + up).astype(float), (close - down).astype(float), close.astype(float), volume


@settings(max_examples=150, deadline=None)
@given(daily_bars())
def test_categorise_agrees_with_talib_and_its_rule(
    bars: tuple[np.ndarray, np.ndarray, np.ndarray, list[int]],
) -> None:
    high, low, close, volume = bars
    verdict = categorise(high, low, close, volume, T)
    if len(close) < T.min_bars:
        assert verdict.reason is Reason.SHORT_HISTORY
        return
    assert verdict.adx == pytest.approx(float(talib.ADX(high, low, close, 14)[-1]))
    assert verdict.plus_di == pytest.approx(float(talib.PLUS_DI(high, low, close, 14)[-1]))
    assert verdict.minus_di == pytest.approx(float(talib.MINUS_DI(high, low, close, 14)[-1]))
    assert verdict.volume == volume[-1]
    assert verdict.volume_avg == pytest.approx(sum(volume[-21:-1]) / 20)
    assert verdict.adx is not None and verdict.plus_di is not None
    assert verdict.minus_di is not None and verdict.volume_avg is not None
    if verdict.category is Category.CE:
        assert verdict.plus_di > verdict.minus_di + T.di_band
    if verdict.category is Category.PE:
        assert verdict.minus_di > verdict.plus_di + T.di_band
    if verdict.category is not Category.NO_TRADE:
        assert verdict.adx > T.adx_trend and verdict.volume > verdict.volume_avg


@settings(max_examples=150, deadline=None)
@given(daily_bars())
def test_mirrored_prices_swap_ce_and_pe(
    bars: tuple[np.ndarray, np.ndarray, np.ndarray, list[int]],
) -> None:
    # Reflecting prices (x → K - x, high and low swapped) turns +DM into -DM and keeps the
    # true range, so +DI and -DI trade places and ADX stays: CE ↔ PE, NO_TRADE stays.
    high, low, close, volume = bars
    k = 30_000.0
    verdict = categorise(high, low, close, volume, T)
    mirror = categorise(k - low, k - high, k - close, volume, T)
    swap = {Category.CE: Category.PE, Category.PE: Category.CE}
    assert mirror.category is swap.get(verdict.category, verdict.category)
    assert mirror.adx == verdict.adx
    assert (mirror.plus_di, mirror.minus_di) == (verdict.minus_di, verdict.plus_di)
