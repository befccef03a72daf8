"""What a quote says about an instrument at an instant, and the per-day reference prices."""

from __future__ import annotations

from dataclasses import dataclass

from broker.sim.book import DepthLevel
from broker.sim.master import SimInstrument


@dataclass(frozen=True, slots=True)
class DayReference:
    """Per-day reference prices of an instrument (paise)."""

    prev_close: int
    upper_circuit: int  # 0 when no band applies (indices)
    lower_circuit: int
    week52_high: int  # over the 52 weeks before the day (the day's own range is added live)
    week52_low: int


@dataclass(frozen=True, slots=True)
class Quote:
    """The state of one instrument at an instant: everything SPEC §3.4 FULL and §6.5 SNAP_QUOTE
    carry. Prices are paise; ``*_ms`` are epoch milliseconds."""

    token: str
    exchange: str
    symbol: str
    ltp_paise: int
    open_paise: int  # day so far; 0 before the first trade
    high_paise: int
    low_paise: int
    close_paise: int  # previous session's close
    volume: int
    avg_paise: int  # volume-weighted average price of the day; 0 with no volume (indices)
    oi: int
    last_trade_qty: int
    last_trade_ms: int  # 0 if nothing has traded yet
    total_buy_qty: int
    total_sell_qty: int
    bids: tuple[DepthLevel, ...]  # best first, five levels, empty levels all zero
    asks: tuple[DepthLevel, ...]
    upper_circuit_paise: int
    lower_circuit_paise: int
    week52_high_paise: int
    week52_low_paise: int

    @property
    def net_change_paise(self) -> int:
        return self.ltp_paise - self.close_paise

    @property
    def percent_change(self) -> float:
        """Change from the previous close in percent (a display figure, not money)."""
        if not self.close_paise:
            return 0.0
        return round(100.0 * self.net_change_paise / self.close_paise, 2)


def price_band(inst: SimInstrument, prev_close: int, underlying_close: int) -> tuple[int, int]:
    """(upper, lower) circuit in paise: ±20% for stocks, ±10% for futures; an option's band
    runs from one tick to the premium plus 15% of its underlying; indices have none."""
    grid = inst.grid_paise
    if inst.kind == "index":
        return 0, 0
    if inst.kind == "option":
        return _round_down(prev_close + underlying_close * 15 // 100, grid), grid
    pct = 20 if inst.kind == "equity" else 10
    upper = _round_down(prev_close * (100 + pct) // 100, grid)
    lower = _round_up(prev_close * (100 - pct) // 100, grid)
    return upper, lower


def _round_down(paise: int, grid: int) -> int:
    return paise // grid * grid


def _round_up(paise: int, grid: int) -> int:
    return -(-paise // grid) * grid
