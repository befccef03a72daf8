"""Price paths: the daily history of every underlying and each day's intraday path.

The world is one deterministic function of the seed. Daily shocks are drawn per (seed, underlying,
calendar year) and picked by day of year, so a date's shock does not depend on which session the
simulator plays or on how much history is asked for; the sequential part (volatility, regimes,
INDIA VIX's mean reversion) runs from a fixed epoch. Price levels are anchored so every underlying
trades at its universe base price on ``universe.BASE_PRICE_DATE``.

Regimes cycle up → down → range with a per-underlying phase, so across the universe some
underlyings always trend each way and some range. Intraday, the path is a Brownian bridge in log
price from the day's open (previous close × overnight gap) to its close, one tick per second, with
a U-shaped volatility profile. INDIA VIX follows an Ornstein-Uhlenbeck process in log level whose
shocks are negatively correlated with the market's, daily and intraday.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from broker.sim.universe import BASE_PRICE_DATE, VIX_MEAN, Underlying, tradable, vix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The history is generated from here on; earlier dates have no data.
EPOCH = date(2017, 1, 2)
#: Length of one regime in calendar days; a full up/down/range cycle is three of these.
REGIME_DAYS = 84
UP, DOWN, RANGE = 0, 1, 2

# Stream identifiers: every random stream is keyed (seed, stream, ...) with stable integers.
STREAM_MARKET = 1
STREAM_DAILY = 2
STREAM_VIX = 3
STREAM_INTRADAY = 4
STREAM_TRADES = 5
STREAM_OI = 6
STREAM_REGIME = 7

_TREND_DRIFT = 0.4  # daily drift of a trend, in units of that day's volatility
_RANGE_PULL = 0.5  # share of the distance to the range's target closed each day
_RANGE_SWING = 2.0  # amplitude of a range's swings, in daily volatilities
_RANGE_PERIOD = 9  # trading days from one swing high to the next
_GAP_JUMP_PROB = 0.06
_VIX_KAPPA = 0.08
_VIX_VOL = 0.07
_VIX_MARKET_CORR = -0.7
_VIX_GAP_PER_INDEX_GAP = -3.0
_VIX_INTRADAY_VOL = 0.05


def stream(seed: int, *keys: int) -> np.random.Generator:
    """A generator for the random stream keyed by ``(seed, *keys)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def regime_of(underlying: Underlying, seed_phase: int, day: date) -> int:
    """UP, DOWN or RANGE: where ``day`` falls in the underlying's regime cycle."""
    return ((day.toordinal() + underlying.phase + seed_phase) // REGIME_DAYS) % 3


def seed_phase(seed: int) -> int:
    """Offset of the regime cycle for this seed."""
    return int(stream(seed, STREAM_REGIME).integers(0, 3 * REGIME_DAYS))


@dataclass(frozen=True, slots=True, eq=False)
class DailySeries:
    """Daily open/close of one underlying over the trading days of the world."""

    ordinals: IntArray  # date.toordinal() of each trading day, ascending
    open_paise: IntArray
    close_paise: IntArray
    bridge_vol: FloatArray  # intraday excursion scale (log) of each day
    regime: npt.NDArray[np.int8]

    def index_of(self, day: date) -> int | None:
        """Position of ``day`` in the series, None when it is not one of its trading days."""
        ordinal = day.toordinal()
        i = int(np.searchsorted(self.ordinals, ordinal))
        if i < len(self.ordinals) and self.ordinals[i] == ordinal:
            return i
        return None


def _on_grid(rupees: FloatArray, grid: int) -> IntArray:
    ticks = np.floor(rupees * (100.0 / grid) + 0.5).astype(np.int64)
    out: IntArray = np.maximum(ticks, 1) * grid
    return out


class _Draws:
    """Per-calendar-year random draws, indexed by (year, day of year)."""

    def __init__(self, seed: int, keys: tuple[int, ...], width: int) -> None:
        self._seed = seed
        self._keys = keys
        self._width = width
        self._years: dict[int, FloatArray] = {}

    def for_days(self, days: list[date]) -> FloatArray:
        out = np.empty((len(days), self._width))
        for i, d in enumerate(days):
            year = self._years.get(d.year)
            if year is None:
                rng = stream(self._seed, *self._keys, d.year)
                year = rng.standard_normal((366, self._width))
                self._years[d.year] = year
            out[i] = year[d.timetuple().tm_yday - 1]
        return out


def build_daily_world(seed: int, days: list[date]) -> dict[str, DailySeries]:
    """Daily series of every underlying (keyed by token) over ``days``, trading days from EPOCH."""
    if not days or days[0] < EPOCH:
        raise ValueError(f"the world starts at {EPOCH}; got days from {days[:1]}")
    unders = tradable()
    n, k = len(days), len(unders)
    market = _Draws(seed, (STREAM_MARKET,), 1).for_days(days)[:, 0]
    shocks = np.stack(
        [_Draws(seed, (STREAM_DAILY, u.key), 3).for_days(days) for u in unders], axis=1
    )  # (n, k, 3): return shock, gap shock, gap-jump selector
    vix_draws = _Draws(seed, (STREAM_VIX,), 2).for_days(days)
    phase = seed_phase(seed)
    ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    phases = np.array([u.phase for u in unders], dtype=np.int64)
    regimes = (((ordinals[:, None] + phases[None, :] + phase) // REGIME_DAYS) % 3).astype(np.int8)

    sigma_base = np.array([u.daily_vol for u in unders])
    beta = np.array([u.market_beta for u in unders])
    idio = np.sqrt(1.0 - beta**2)
    jump_cut = -math.sqrt(2.0) * _erfinv_approx(1.0 - 2.0 * _GAP_JUMP_PROB)

    open_x = np.empty((n, k))
    close_x = np.empty((n, k))
    bridge = np.empty((n, k))
    vix_open = np.empty(n)
    vix_close = np.empty(n)
    x = np.zeros(k)
    level = np.zeros(k)
    prev_regime = np.full(k, -1)
    range_age = np.zeros(k)
    log_vix = math.log(VIX_MEAN)
    log_vix_mean = log_vix
    for j in range(n):
        reg = regimes[j]
        scale = min(max((math.exp(log_vix) / VIX_MEAN) ** 0.8, 0.6), 2.5)
        sig = sigma_base * scale
        level = np.where((reg == RANGE) & (prev_regime != RANGE), x, level)
        range_age = np.where(reg == RANGE, range_age + 1, 0)
        # A range swings between support and resistance around the level it started at.
        target = level + _RANGE_SWING * sig * np.sin(2 * math.pi * range_age / _RANGE_PERIOD)
        z_ret, z_gap, z_jump = shocks[j, :, 0], shocks[j, :, 1], shocks[j, :, 2]
        # A gap day is a z_jump beyond the cut (probability _GAP_JUMP_PROB).
        is_jump = z_jump < jump_cut
        gap = np.where(is_jump, np.sign(z_gap) * sig * (1.2 + np.abs(z_gap)), 0.2 * sig * z_gap)
        eps = beta * market[j] + idio * z_ret
        drift = np.where(
            reg == UP,
            _TREND_DRIFT * sig,
            np.where(reg == DOWN, -_TREND_DRIFT * sig, -_RANGE_PULL * (x + gap - target)),
        )
        intra_sig = np.where(reg == RANGE, 0.5, 0.75) * sig
        open_x[j] = x + gap
        x = open_x[j] + drift + intra_sig * eps
        close_x[j] = x
        bridge[j] = 0.9 * sig
        prev_regime = reg

        vix_open[j] = log_vix + _VIX_GAP_PER_INDEX_GAP * gap[0] + 0.01 * vix_draws[j, 0]
        shock = _VIX_MARKET_CORR * market[j] + math.sqrt(1 - _VIX_MARKET_CORR**2) * vix_draws[j, 1]
        log_vix = log_vix + _VIX_KAPPA * (log_vix_mean - log_vix) + _VIX_VOL * shock
        vix_close[j] = log_vix

    anchor = int(np.searchsorted(ordinals, BASE_PRICE_DATE.toordinal(), side="right")) - 1
    anchor = max(anchor, 0)
    world: dict[str, DailySeries] = {}
    for i, u in enumerate(unders):
        shift = math.log(u.base_paise / 100.0) - close_x[anchor, i]
        world[u.token] = DailySeries(
            ordinals=ordinals,
            open_paise=_on_grid(np.exp(open_x[:, i] + shift), u.spot_tick_paise),
            close_paise=_on_grid(np.exp(close_x[:, i] + shift), u.spot_tick_paise),
            bridge_vol=bridge[:, i].copy(),
            regime=regimes[:, i].copy(),
        )
    v = vix()
    world[v.token] = DailySeries(
        ordinals=ordinals,
        open_paise=_on_grid(np.exp(vix_open), v.spot_tick_paise),
        close_paise=_on_grid(np.exp(vix_close), v.spot_tick_paise),
        bridge_vol=np.full(n, _VIX_INTRADAY_VOL),
        regime=np.full(n, RANGE, dtype=np.int8),
    )
    return world


def _erfinv_approx(y: float) -> float:
    """Inverse error function by bisection on ``math.erf`` (used once, for a constant)."""
    lo, hi = -6.0, 6.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if math.erf(mid) < y:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@lru_cache(maxsize=16)
def volume_profile(n: int) -> FloatArray:
    """U-shaped intraday activity over ``n`` ticks, mean 1: busy open, quiet lunch, busy close.

    The array is shared (cached): read-only.
    """
    tau = np.linspace(0.0, 1.0, n)
    raw = 1.0 + 2.2 * np.exp(-tau / 0.05) + 1.4 * np.exp(-(1.0 - tau) / 0.06)
    out: FloatArray = raw / raw.mean()
    out.flags.writeable = False
    return out


@lru_cache(maxsize=16)
def _bridge_weights(n: int) -> tuple[FloatArray, FloatArray, float]:
    """(sqrt of variance weights, cumulative variance fraction, total variance) for n ticks."""
    tau = np.linspace(0.0, 1.0, n - 1)
    w = 1.0 + 1.6 * np.exp(-tau / 0.04) + 0.8 * np.exp(-(1.0 - tau) / 0.05)
    v = np.concatenate(([0.0], np.cumsum(w)))
    root, frac = np.sqrt(w), v / v[-1]
    root.flags.writeable = False
    frac.flags.writeable = False
    return root, frac, float(v[-1])


def intraday_shocks(seed: int, key: int, day: date, n: int) -> FloatArray:
    """The ``n - 1`` standard normal increments driving an underlying's path on ``day``."""
    return stream(seed, STREAM_INTRADAY, key, day.toordinal()).standard_normal(n - 1)


def bridge_path(
    shocks: FloatArray,
    open_paise: int,
    close_paise: int,
    vol: float,
    grid: int,
    shape: FloatArray | None = None,
) -> IntArray:
    """Tick prices (paise on ``grid``) of a log Brownian bridge from open to close.

    ``shape`` (log, zero at both ends) is added on top, e.g. a scenario's crash.
    """
    n = len(shocks) + 1
    root, frac, total = _bridge_weights(n)
    scale = vol / math.sqrt(total)
    log_p = np.empty(n)
    log_p[0] = 0.0
    np.cumsum(root * shocks, out=log_p[1:])
    log_p *= scale
    log_open = math.log(open_paise / grid)  # work in units of the grid directly
    log_close = math.log(close_paise / grid)
    log_p += frac * (log_close - log_open - log_p[-1])
    log_p += log_open
    if shape is not None:
        log_p += shape
    np.exp(log_p, out=log_p)
    log_p += 0.5
    np.floor(log_p, out=log_p)
    prices = log_p.astype(np.int64)
    np.maximum(prices, 1, out=prices)
    prices *= grid
    prices[0] = open_paise
    prices[-1] = close_paise
    return prices


def crash_shape(n: int, depth: float, start: float, bottom: float, recovered: float) -> FloatArray:
    """A V-shaped log dip over a session of ``n`` ticks: falls by ``depth`` between the ``start``
    and ``bottom`` fractions of the session, regains three quarters by ``recovered``, then fades
    to zero by the close."""
    tau = np.linspace(0.0, 1.0, n)
    xs = np.array([0.0, start, bottom, recovered, 1.0])
    ys = np.array([0.0, 0.0, -depth, -0.25 * depth, 0.0])
    out: FloatArray = np.interp(tau, xs, ys)
    return out
