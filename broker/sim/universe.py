"""The simulator's universe: which underlyings it trades and their contract specifications.

A small frozen table. Figures are realistic for late 2026 (lot sizes as revised by NSE in 2025,
NSE cash tokens as Angel One lists them); they are the simulator's facts, never used as constants
by the rest of the project, which reads lot sizes, strike steps and ticks from the instrument master
the simulator serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

UnderlyingKind = Literal["index", "equity", "volatility"]

#: The date at which every underlying trades at its ``base_paise`` (the model anchors price levels
#: here so that any session date sees the same world).
BASE_PRICE_DATE = date(2026, 11, 20)


@dataclass(frozen=True, slots=True)
class Underlying:
    """One underlying: its cash/index listing plus the rules of its F&O contracts."""

    name: str  # the master's ``name`` field: NIFTY, SBIN, INDIA VIX
    token: str  # NSE cash/index token
    symbol: str  # trading symbol of the cash/index listing: "Nifty 50", "SBIN-EQ"
    kind: UnderlyingKind
    base_paise: int  # price level on BASE_PRICE_DATE
    daily_vol: float  # typical daily log-return standard deviation
    market_beta: float  # correlation of daily shocks with the common market factor
    spot_tick_paise: int  # price grid of the cash/index series (master shows 0 for indices)
    lot_size: int = 0  # 0 = no F&O
    strike_step_paise: int = 0
    freeze_qty: int = 0  # units per order the exchange accepts at most
    weekly_options: bool = False  # weekly Tuesday expiries on top of the monthly ones
    future_tick_paise: int = 0
    option_tick_paise: int = 0
    option_vol: float = 0.0  # base implied vol of stock options (indices follow INDIA VIX)
    vix_iv_factor: float = 1.0  # index ATM IV ≈ VIX/100 × this factor
    avg_daily_volume: int = 0  # cash shares per day (equities only)
    phase: int = 0  # position in the regime cycle, see ``paths.regime_of``

    @property
    def has_derivatives(self) -> bool:
        """True when futures and options trade on this underlying."""
        return self.lot_size > 0

    @property
    def is_index(self) -> bool:
        return self.kind != "equity"

    @property
    def key(self) -> int:
        """Stable integer key for random-stream seeding."""
        return int(self.token)


def _index(
    name: str,
    token: str,
    symbol: str,
    *,
    base_rupees: int,
    daily_vol: float,
    beta: float,
    lot: int,
    step_rupees: int,
    freeze: int,
    weekly: bool,
    iv_factor: float,
    phase: int,
) -> Underlying:
    return Underlying(
        name=name,
        token=token,
        symbol=symbol,
        kind="index",
        base_paise=base_rupees * 100,
        daily_vol=daily_vol,
        market_beta=beta,
        spot_tick_paise=1,
        lot_size=lot,
        strike_step_paise=step_rupees * 100,
        freeze_qty=freeze,
        weekly_options=weekly,
        future_tick_paise=10,
        option_tick_paise=5,
        vix_iv_factor=iv_factor,
        phase=phase,
    )


def _stock(
    name: str,
    token: str,
    *,
    base_rupees: int,
    daily_vol: float,
    beta: float,
    lot: int,
    step_rupees: int,
    option_vol: float,
    adv: int,
    phase: int,
) -> Underlying:
    return Underlying(
        name=name,
        token=token,
        symbol=f"{name}-EQ",
        kind="equity",
        base_paise=base_rupees * 100,
        daily_vol=daily_vol,
        market_beta=beta,
        spot_tick_paise=5,
        lot_size=lot,
        strike_step_paise=step_rupees * 100,
        # Stock F&O freeze limits are set per scrip; twenty lots is the simulator's choice.
        freeze_qty=lot * 20,
        future_tick_paise=5,
        option_tick_paise=5,
        option_vol=option_vol,
        avg_daily_volume=adv,
        phase=phase,
    )


# Regime phases are spread evenly over the cycle (see paths.REGIME_DAYS) so that on any date some
# underlyings trend up, some trend down and some range: ADX categorisation always sees all three.
UNIVERSE: tuple[Underlying, ...] = (
    _index(
        "NIFTY",
        "99926000",
        "Nifty 50",
        base_rupees=26_000,
        daily_vol=0.0080,
        beta=0.95,
        lot=65,
        step_rupees=50,
        freeze=1_800,
        weekly=True,
        iv_factor=1.0,
        phase=0,
    ),
    _index(
        "BANKNIFTY",
        "99926009",
        "Nifty Bank",
        base_rupees=59_000,
        daily_vol=0.0095,
        beta=0.85,
        lot=30,
        step_rupees=100,
        freeze=600,
        weekly=False,
        iv_factor=1.1,
        phase=95,
    ),
    _index(
        "FINNIFTY",
        "99926037",
        "Nifty Fin Service",
        base_rupees=27_500,
        daily_vol=0.0090,
        beta=0.85,
        lot=60,
        step_rupees=50,
        freeze=1_200,
        weekly=False,
        iv_factor=1.05,
        phase=190,
    ),
    _stock(
        "SBIN",
        "3045",
        base_rupees=950,
        daily_vol=0.014,
        beta=0.6,
        lot=750,
        step_rupees=10,
        option_vol=0.24,
        adv=12_000_000,
        phase=32,
    ),
    _stock(
        "RELIANCE",
        "2885",
        base_rupees=1_550,
        daily_vol=0.013,
        beta=0.65,
        lot=500,
        step_rupees=10,
        option_vol=0.21,
        adv=9_000_000,
        phase=127,
    ),
    _stock(
        "INFY",
        "1594",
        base_rupees=1_600,
        daily_vol=0.015,
        beta=0.5,
        lot=400,
        step_rupees=20,
        option_vol=0.23,
        adv=7_000_000,
        phase=222,
    ),
    _stock(
        "HDFCBANK",
        "1333",
        base_rupees=1_000,
        daily_vol=0.012,
        beta=0.7,
        lot=550,
        step_rupees=10,
        option_vol=0.19,
        adv=15_000_000,
        phase=63,
    ),
    _stock(
        "TCS",
        "11536",
        base_rupees=3_200,
        daily_vol=0.013,
        beta=0.5,
        lot=175,
        step_rupees=20,
        option_vol=0.20,
        adv=2_500_000,
        phase=158,
    ),
    Underlying(
        name="INDIA VIX",
        token="99926017",
        symbol="India VIX",
        kind="volatility",
        base_paise=1_300,
        daily_vol=0.05,
        market_beta=-0.7,
        spot_tick_paise=1,
    ),
)

VIX_TOKEN = "99926017"
#: Long-run level of INDIA VIX the model mean-reverts to.
VIX_MEAN = 13.0
#: Risk-free rate used for futures carry and option pricing.
RISK_FREE_RATE = 0.065

_BY_TOKEN = {u.token: u for u in UNIVERSE}
_BY_NAME = {u.name: u for u in UNIVERSE}


def underlying_by_token(token: str) -> Underlying | None:
    """The underlying whose cash/index token this is, or None."""
    return _BY_TOKEN.get(token)


def underlying_by_name(name: str) -> Underlying:
    """The underlying with this master ``name``; KeyError naming the allowed names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown underlying {name!r}; known: {', '.join(_BY_NAME)}") from None


def vix() -> Underlying:
    """The INDIA VIX entry."""
    return _BY_TOKEN[VIX_TOKEN]


def tradable() -> tuple[Underlying, ...]:
    """Underlyings with F&O contracts, in universe order."""
    return tuple(u for u in UNIVERSE if u.has_derivatives)
