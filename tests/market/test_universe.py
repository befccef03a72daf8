"""Cutting the traded universe from a master, and judging the master (market.universe)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from market.instruments import InstrumentIndex, InstrumentNotFound, Problem, parse_master
from market.universe import (
    current_expiries,
    judge_master,
    nearest_future,
    options_around_atm,
    select_universe,
    spot_instrument,
)

TODAY = date(2026, 11, 20)


def row(token: str, symbol: str, name: str, kind: str, exch: str, **extra: str) -> dict[str, str]:
    record = {
        "token": token,
        "symbol": symbol,
        "name": name,
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": kind,
        "exch_seg": exch,
        "tick_size": "5.000000",
    }
    record.update(extra)
    return record


def option(token: str, name: str, expiry: str, strike: int, side: str) -> dict[str, str]:
    return row(
        token,
        f"{name}{expiry[:5]}{expiry[7:]}{strike}{side}",
        name,
        "OPTIDX",
        "NFO",
        expiry=expiry,
        strike=f"{strike * 100}.000000",
        lotsize="65",
    )


MASTER = [
    row("99926000", "Nifty 50", "NIFTY", "AMXIDX", "NSE", strike="0.000000", tick_size="0"),
    row("99926009", "Nifty Bank", "BANKNIFTY", "AMXIDX", "NSE", strike="0.000000"),
    row("99926017", "India VIX", "INDIA VIX", "AMXIDX", "NSE", strike="0.000000"),
    row("3045", "SBIN-EQ", "SBIN", "", "NSE"),
    row("3046", "SBIN-BE", "SBIN", "", "NSE"),
    row("9001", "NIFTY24NOV26FUT", "NIFTY", "FUTIDX", "NFO", expiry="24NOV2026", lotsize="65"),
    option("9002", "NIFTY", "24NOV2026", 26000, "CE"),
    option("9003", "NIFTY", "24NOV2026", 26000, "PE"),
    option("9004", "NIFTY", "17NOV2026", 26000, "CE"),  # expired before TODAY
    option("9005", "BANKNIFTY", "24NOV2026", 60000, "CE"),
    row("7001", "SBIN24NOV26FUT", "SBIN", "FUTSTK", "NFO", expiry="24NOV2026", lotsize="750"),
    row("8001", "GOLD26DECFUT", "GOLD", "FUTCOM", "MCX", expiry="26DEC2026"),
]


def test_select_universe_keeps_spot_derivatives_and_vix_and_purges_expired() -> None:
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY", "SBIN"], TODAY)
    assert sorted(inst.token for inst in chosen.kept) == sorted(
        ["99926000", "99926017", "3045", "9001", "9002", "9003", "7001"]
    )
    assert chosen.expired_purged == 1  # NIFTY 17NOV2026 CE
    assert chosen.missing_spot == ()
    assert chosen.missing_options == ("SBIN",)  # SBIN has a future but no option listed
    assert chosen.vix_found
    assert chosen.count("NIFTY") == 4


def test_contracts_expiring_today_are_kept() -> None:
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY"], date(2026, 11, 24))
    assert {"9001", "9002", "9003"} <= {inst.token for inst in chosen.kept}


def test_judge_master_accepts_a_clean_master() -> None:
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY", "BANKNIFTY"], TODAY)
    verdict = judge_master(chosen, [], total_rows=len(MASTER), bad_rows=0)
    assert verdict.accepted and verdict.reasons == ()


def test_judge_master_refuses_problems_in_the_subset_and_names_them() -> None:
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY"], TODAY)
    problem = Problem(None, "9002", "strike", "26001", "off the 50 rupee strike grid")
    verdict = judge_master(chosen, [problem], total_rows=len(MASTER), bad_rows=0)
    assert not verdict.accepted
    assert "1 problem(s) in the kept instruments" in verdict.reasons[0]
    assert "9002" in verdict.reasons[0]


def test_judge_master_refuses_a_damaged_file() -> None:
    # 3 bad rows of 200 = 1.5 % > 1 % allowed; 2 of 200 = 1 % is still allowed.
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY"], TODAY)
    refused = judge_master(chosen, [], total_rows=200, bad_rows=3)
    assert not refused.accepted and "1.50% > the 1.00% allowed" in refused.reasons[0]
    assert judge_master(chosen, [], total_rows=200, bad_rows=2).accepted
    assert refused.bad_row_share == Decimal("0.015")


def test_judge_master_refuses_missing_underlyings_and_vix() -> None:
    parsed = parse_master([r for r in MASTER if r["token"] != "99926017"])
    chosen = select_universe(parsed.instruments, ["NIFTY", "FINNIFTY"], TODAY)
    verdict = judge_master(chosen, [], total_rows=10, bad_rows=0)
    assert not verdict.accepted
    assert "no index or equity row for FINNIFTY" in verdict.reasons
    assert "no listed options for FINNIFTY" in verdict.reasons
    assert "INDIA VIX is not listed" in verdict.reasons


def test_judge_master_rejects_an_impossible_share() -> None:
    parsed = parse_master(MASTER)
    chosen = select_universe(parsed.instruments, ["NIFTY"], TODAY)
    with pytest.raises(ValueError, match="between 0 and 1"):
        judge_master(chosen, [], total_rows=1, bad_rows=0, max_bad_row_share=Decimal(2))


# --------------------------------------------------------------------------- what to download


def chain_master() -> list[dict[str, str]]:
    """NIFTY with a weekly (17 Nov) and a monthly (24 Nov, the month's last) expiry, strikes
    25900..26100 every 50, a December monthly too, and two futures."""
    rows = [MASTER[0], MASTER[3]]
    token = 20000
    for expiry in ("17NOV2026", "24NOV2026", "29DEC2026"):
        for strike in range(25900, 26101, 50):
            for side in ("CE", "PE"):
                token += 1
                rows.append(option(str(token), "NIFTY", expiry, strike, side))
    rows.append(row("9101", "NIFTY24NOV26FUT", "NIFTY", "FUTIDX", "NFO", expiry="24NOV2026"))
    rows.append(row("9102", "NIFTY29DEC26FUT", "NIFTY", "FUTIDX", "NFO", expiry="29DEC2026"))
    return rows


def test_current_expiries_are_the_nearest_and_the_nearest_monthly() -> None:
    index = InstrumentIndex(parse_master(chain_master()).instruments)
    chains = index.option_chains("NIFTY")
    assert current_expiries(chains, date(2026, 11, 16)) == [date(2026, 11, 17), date(2026, 11, 24)]
    # on the weekly's expiry day it is still current
    assert current_expiries(chains, date(2026, 11, 17))[0] == date(2026, 11, 17)
    # after the November monthly, December is both nearest and nearest monthly
    assert current_expiries(chains, date(2026, 11, 25)) == [date(2026, 12, 29)]
    assert current_expiries(chains, date(2027, 1, 1)) == []


def test_options_around_atm_take_n_strikes_each_side_of_the_close() -> None:
    index = InstrumentIndex(parse_master(chain_master()).instruments)
    # close 26,010.00: the nearest listed strike is 26,000; one each side -> 25,950..26,050
    legs = options_around_atm(index, "NIFTY", 2_601_000, date(2026, 11, 16), 1)
    strikes = sorted({leg.strike_paise for leg in legs})
    assert strikes == [2_595_000, 2_600_000, 2_605_000]
    assert {leg.expiry for leg in legs} == {date(2026, 11, 17), date(2026, 11, 24)}
    assert len(legs) == 3 * 2 * 2  # strikes x CE/PE x expiries
    # near the top of the chain the window slides inward instead of shrinking
    top = options_around_atm(index, "NIFTY", 2_700_000, date(2026, 11, 25), 1)
    assert sorted({leg.strike_paise for leg in top}) == [2_600_000, 2_605_000, 2_610_000]


def test_spot_and_nearest_future() -> None:
    index = InstrumentIndex(parse_master(chain_master()).instruments)
    assert spot_instrument(index, "NIFTY").token == "99926000"
    assert spot_instrument(index, "SBIN").symbol == "SBIN-EQ"
    with pytest.raises(InstrumentNotFound, match="TCS"):
        spot_instrument(index, "TCS")
    future = nearest_future(index, "NIFTY", date(2026, 11, 24))
    assert future is not None and future.token == "9101"  # expiring that day: still nearest
    later = nearest_future(index, "NIFTY", date(2026, 11, 25))
    assert later is not None and later.token == "9102"
    assert nearest_future(index, "NIFTY", date(2027, 1, 1)) is None
