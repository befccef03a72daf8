"""The simulated order book around the last traded price: best five and total resting quantity.

Book numbers are not stored: they are a pure function of (seed, token, tick time) through a
counter-based hash (SplitMix64), so any instant's book can be rebuilt on demand, vectorised for a
day's ticks or one at a time for a quote. Liquidity in (0, 1] widens the spread and thins the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
UintArray = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]

LEVELS = 5
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_STREAM_TOTALS = 1
_STREAM_DEPTH = 2


def mix64(x: UintArray) -> UintArray:
    """SplitMix64 finaliser: a well-mixed 64-bit hash of each element."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    out: UintArray = z ^ (z >> np.uint64(31))
    return out


def uniforms(seed: int, key: int, ts_ms: IntArray, stream: int, width: int) -> FloatArray:
    """``(len(ts_ms), width)`` uniforms in [0, 1) keyed by (seed, key, instant, stream)."""
    base = mix64(mix64(np.array([seed], dtype=np.uint64)) ^ np.array([key], dtype=np.uint64))
    per_tick = mix64(base ^ np.asarray(ts_ms, dtype=np.int64).astype(np.uint64))
    lanes = np.arange(1, width + 1, dtype=np.uint64) * np.uint64(stream * 64 + 1)
    bits = mix64(per_tick[:, None] ^ (lanes[None, :] * _GOLDEN))
    out: FloatArray = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)
    return out


def book_totals(
    seed: int, key: int, ts_ms: IntArray, lot: int, liquidity: float
) -> tuple[IntArray, IntArray]:
    """Total resting buy and sell quantity at each instant (multiples of ``lot``)."""
    u = uniforms(seed, key, ts_ms, _STREAM_TOTALS, 2)
    depth_lots = 20.0 + 600.0 * liquidity
    imbalance = 0.35 + 0.3 * u[:, 1]  # buyers' share of the book
    size = depth_lots * (0.6 + 0.8 * u[:, 0])
    buy = np.maximum(np.floor(size * 2 * imbalance), 5).astype(np.int64) * lot
    sell = np.maximum(np.floor(size * 2 * (1 - imbalance)), 5).astype(np.int64) * lot
    return buy, sell


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of the book; an empty level is all zeros."""

    price_paise: int
    quantity: int
    orders: int


EMPTY_LEVEL = DepthLevel(0, 0, 0)


@dataclass(frozen=True, slots=True)
class Book:
    bids: tuple[DepthLevel, ...]  # best first
    asks: tuple[DepthLevel, ...]
    total_buy_qty: int
    total_sell_qty: int


EMPTY_BOOK = Book((EMPTY_LEVEL,) * LEVELS, (EMPTY_LEVEL,) * LEVELS, 0, 0)


def order_book(
    seed: int,
    key: int,
    ts_ms: int,
    ltp_paise: int,
    tick_paise: int,
    lot: int,
    liquidity: float,
) -> Book:
    """The best five bids and asks around ``ltp_paise`` at a tick instant.

    The spread is 1 tick when fully liquid and widens to 9 as liquidity falls; the last price
    lies inside or on the edge of the spread. Bids that would fall below one tick are empty.
    """
    stamp = np.array([ts_ms], dtype=np.int64)
    buy_total, sell_total = (int(a[0]) for a in book_totals(seed, key, stamp, lot, liquidity))
    u = uniforms(seed, key, stamp, _STREAM_DEPTH, 4 * LEVELS + 1)[0]
    spread = 1 + round((1.0 - liquidity) * 8)
    above = min(int(u[-1] * (spread + 1)), spread)  # ticks from ltp up to the best ask
    below = spread - above
    max_gap = 1 + round((1.0 - liquidity) * 3)
    bids = _side(
        ltp_paise - below * tick_paise,
        -tick_paise,
        u[:LEVELS],
        u[2 * LEVELS :],
        buy_total,
        lot,
        max_gap,
        tick_paise,
    )
    asks = _side(
        ltp_paise + above * tick_paise,
        tick_paise,
        u[LEVELS : 2 * LEVELS],
        u[3 * LEVELS : 4 * LEVELS],
        sell_total,
        lot,
        max_gap,
        tick_paise,
    )
    return Book(bids, asks, buy_total, sell_total)


def _side(
    best: int,
    step: int,
    size_u: FloatArray,
    gap_u: FloatArray,
    total: int,
    lot: int,
    max_gap: int,
    tick: int,
) -> tuple[DepthLevel, ...]:
    weights = 0.2 + size_u
    # Visible depth is about half of the resting total; the rest sits further away.
    shares = weights / weights.sum() * 0.5 * (total // lot)
    levels: list[DepthLevel] = []
    price = best
    for i in range(LEVELS):
        if i:
            price += step * (1 + int(gap_u[i] * max_gap))
        if price < tick:
            levels.append(EMPTY_LEVEL)
            continue
        lots = max(1, int(shares[i]))
        orders = 1 + int(gap_u[i] * min(lots, 25))
        levels.append(DepthLevel(price, lots * lot, min(orders, lots)))
    return tuple(levels)
