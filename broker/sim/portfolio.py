"""The simulated account's day positions and funds, from confirmed fills only.

Positions are kept per (token, product type) as buy and sell totals in integer paise, so averages
and P&L are exact: P&L = sell value − buy value + net quantity × LTP; realised P&L is the matched
quantity at the average sell price minus the same quantity at the average buy price (rounded
half-up to the paisa once per position); unrealised = P&L − realised, so the two add up exactly.

Funds are cash-based: every buy fill pays its full value and every sell fill receives it, and
open BUY orders block their value. Charges are not debited intraday (they appear on the
contract note), matching the broker's intraday RMS view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from broker.sim.orders import (
    SimTrade,
    TradedInstrument,
    format_average,
    format_rupees,
    instrument_fields,
)


def _round_half_up(x: Fraction) -> int:
    sign = -1 if x < 0 else 1
    return sign * int(abs(x) + Fraction(1, 2))


@dataclass(slots=True)
class SimPosition:
    """One day position: what was bought and sold of a contract under one product type."""

    instrument: TradedInstrument
    producttype: str
    buy_qty: int = 0
    sell_qty: int = 0
    buy_paise: int = 0
    sell_paise: int = 0
    last_fill_paise: int = 0

    def apply(self, trade: SimTrade) -> None:
        """Book one fill."""
        if trade.transactiontype == "BUY":
            self.buy_qty += trade.quantity
            self.buy_paise += trade.value_paise
        else:
            self.sell_qty += trade.quantity
            self.sell_paise += trade.value_paise
        self.last_fill_paise = trade.price_paise

    @property
    def net_qty(self) -> int:
        return self.buy_qty - self.sell_qty

    @property
    def net_value_paise(self) -> int:
        """Sell value − buy value: the cash this position has brought in so far."""
        return self.sell_paise - self.buy_paise

    def realised_paise(self) -> int:
        """P&L of the matched quantity at average buy and sell prices."""
        matched = min(self.buy_qty, self.sell_qty)
        if matched == 0:
            return 0
        sell_avg = Fraction(self.sell_paise, self.sell_qty)
        buy_avg = Fraction(self.buy_paise, self.buy_qty)
        return _round_half_up(matched * (sell_avg - buy_avg))

    def pnl_paise(self, ltp_paise: int) -> int:
        """Total P&L marked at ``ltp_paise``."""
        return self.net_value_paise + self.net_qty * ltp_paise

    def open_cost_paise(self) -> int:
        """What the still-open quantity cost (cash out − cash in + realised P&L)."""
        return self.realised_paise() - self.net_value_paise

    def record(self, ltp_paise: int) -> dict[str, str]:
        """The getPosition record (SPEC §4.5) marked at ``ltp_paise``; every value a string."""
        inst = self.instrument
        buy_avg = format_average(self.buy_paise, self.buy_qty)
        sell_avg = format_average(self.sell_paise, self.sell_qty)
        net_price = format_average(abs(self.net_value_paise), abs(self.net_qty))
        pnl = self.pnl_paise(ltp_paise)
        realised = self.realised_paise()
        return {
            "exchange": inst.exchange,
            "symboltoken": inst.token,
            "producttype": self.producttype,
            "tradingsymbol": inst.symbol,
            "symbolname": inst.name,
            **instrument_fields(inst),
            "priceden": "1",
            "pricenum": "1",
            "genden": "1",
            "gennum": "1",
            "precision": "2",
            "multiplier": "-1",
            "boardlotsize": "1",
            "buyqty": str(self.buy_qty),
            "sellqty": str(self.sell_qty),
            "buyamount": format_rupees(self.buy_paise),
            "sellamount": format_rupees(self.sell_paise),
            "symbolgroup": "",
            "lotsize": str(inst.lot),
            "cfbuyqty": "0",
            "cfsellqty": "0",
            "cfbuyamount": "0.00",
            "cfsellamount": "0.00",
            "buyavgprice": buy_avg,
            "sellavgprice": sell_avg,
            "avgnetprice": net_price,
            "netvalue": format_rupees(self.net_value_paise),
            "netqty": str(self.net_qty),
            "totalbuyvalue": format_rupees(self.buy_paise),
            "totalsellvalue": format_rupees(self.sell_paise),
            "cfbuyavgprice": "0.00",
            "cfsellavgprice": "0.00",
            "totalbuyavgprice": buy_avg,
            "totalsellavgprice": sell_avg,
            "netprice": net_price,
            "ltp": format_rupees(ltp_paise),
            "pnl": format_rupees(pnl),
            "realised": format_rupees(realised),
            "unrealised": format_rupees(pnl - realised),
        }


class Portfolio:
    """All day positions of the account plus its cash."""

    def __init__(self, capital_paise: int) -> None:
        self.capital_paise = capital_paise
        self._positions: dict[tuple[str, str], SimPosition] = {}

    def apply(self, trade: SimTrade) -> None:
        """Book one fill into its position (created on the first fill)."""
        key = (trade.instrument.token, trade.producttype)
        position = self._positions.get(key)
        if position is None:
            position = SimPosition(trade.instrument, trade.producttype)
            self._positions[key] = position
        position.apply(trade)

    def positions(self) -> list[SimPosition]:
        """Positions in the order they were opened."""
        return list(self._positions.values())

    def net_qty(self, token: str, producttype: str) -> int:
        position = self._positions.get((token, producttype))
        return 0 if position is None else position.net_qty

    def cash_paise(self) -> int:
        """Capital − everything bought + everything sold."""
        return self.capital_paise + sum(p.net_value_paise for p in self._positions.values())

    def rms_record(
        self, ltp_of: Callable[[SimPosition], int], blocked_paise: int
    ) -> dict[str, str]:
        """The getRMS record (SPEC §4.5), numeric strings in rupees.

        ``availablecash`` and ``net`` are what can still be spent: cash less the value blocked
        by open BUY orders. ``utilisedoptionpremium`` is the cost of open option quantity;
        ``utiliseddebits`` is everything in use (open cost of all positions + blocked).
        """
        positions = self.positions()
        realised = sum(p.realised_paise() for p in positions)
        unrealised = sum(p.pnl_paise(ltp_of(p)) - p.realised_paise() for p in positions)
        option_premium = sum(p.open_cost_paise() for p in _options(positions))
        open_cost = sum(p.open_cost_paise() for p in positions)
        available = self.cash_paise() - blocked_paise
        zero = "0.00"
        return {
            "net": format_rupees(available),
            "availablecash": format_rupees(available),
            "availableintradaypayin": zero,
            "availablelimitmargin": zero,
            "collateral": zero,
            "m2munrealized": format_rupees(unrealised),
            "m2mrealized": format_rupees(realised),
            "utiliseddebits": format_rupees(open_cost + blocked_paise),
            "utilisedspan": zero,
            "utilisedoptionpremium": format_rupees(option_premium),
            "utilisedholdingsales": zero,
            "utilisedexposure": zero,
            "utilisedturnover": zero,
            "utilisedpayout": zero,
        }


def _options(positions: Iterable[SimPosition]) -> list[SimPosition]:
    return [p for p in positions if p.instrument.option_type is not None]
