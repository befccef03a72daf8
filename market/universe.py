"""The traded universe cut from the day's instrument master, and whether that master can be used.

From the ~100k rows the broker lists, optbot keeps, for each configured underlying: its index
(or NSE equity), its futures and its options on the F&O segments, plus INDIA VIX. Contracts
that expired before "today" are purged. The snapshot written from this subset is what every
later step trusts, so a master is accepted only when

* the kept subset is free of problems (``validate_master`` on the subset, plus any unreadable
  row that names a kept underlying),
* unreadable rows stay under a small share of the whole file (a sign the file is damaged),
* every configured underlying has a spot instrument and listed options, and INDIA VIX is there.

Pure: no I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from market.instruments import (
    INDEX_TOKENS,
    INDIA_VIX,
    Instrument,
    InstrumentIndex,
    InstrumentNotFound,
    OptionChain,
    Problem,
    monthly_expiries,
    strike_window,
)

# F&O segments whose contracts are kept (NSE's, and BSE's for a BSE index such as SENSEX).
DERIVATIVE_EXCHANGES: Final = frozenset({"NFO", "BFO"})
# Default ceiling on unreadable rows in the whole master before it is treated as damaged.
DEFAULT_MAX_BAD_ROW_SHARE: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class UniverseSelection:
    """The kept instruments and what selecting them found."""

    kept: tuple[Instrument, ...]
    expired_purged: int
    missing_spot: tuple[str, ...]  # configured underlyings without an index or equity row
    missing_options: tuple[str, ...]  # configured underlyings without a listed option
    vix_found: bool

    def count(self, underlying: str) -> int:
        """Kept instruments of one underlying (spot, futures and options)."""
        return sum(1 for inst in self.kept if inst.name == underlying)


def _is_spot(inst: Instrument, underlying: str) -> bool:
    known = INDEX_TOKENS.get(underlying)
    if known is not None:
        return inst.key == known and inst.is_index
    if inst.name != underlying:
        return False
    if inst.is_index:
        return True
    # NSE equity rows carry an empty instrument type and a series suffix (-EQ, -BE …); only
    # the regular -EQ series is the underlying of stock F&O.
    return inst.exchange == "NSE" and inst.instrument_type == "" and inst.symbol.endswith("-EQ")


def select_universe(
    instruments: Iterable[Instrument], underlyings: Sequence[str], today: date
) -> UniverseSelection:
    """Keep the underlyings' spot, futures and options (not expired before ``today``) + VIX."""
    wanted = tuple(dict.fromkeys(name.upper() for name in underlyings))
    names = frozenset(wanted)
    vix_key = INDEX_TOKENS[INDIA_VIX]
    kept: list[Instrument] = []
    purged = 0
    spot_seen: set[str] = set()
    options_seen: set[str] = set()
    vix_found = False
    for inst in instruments:
        if inst.key == vix_key and inst.is_index:
            if not vix_found:
                kept.append(inst)
                vix_found = True
            continue
        if inst.is_derivative:
            if inst.name not in names or inst.exchange not in DERIVATIVE_EXCHANGES:
                continue
            if inst.expiry is not None and inst.expiry < today:
                purged += 1
                continue
            kept.append(inst)
            if inst.is_option:
                options_seen.add(inst.name)
            continue
        for name in wanted:
            if name not in spot_seen and _is_spot(inst, name):
                kept.append(inst)
                spot_seen.add(name)
                break
    return UniverseSelection(
        kept=tuple(kept),
        expired_purged=purged,
        missing_spot=tuple(name for name in wanted if name not in spot_seen),
        missing_options=tuple(name for name in wanted if name not in options_seen),
        vix_found=vix_found,
    )


@dataclass(frozen=True, slots=True)
class MasterVerdict:
    """Whether a master may replace the snapshot in force, and why not when it may not."""

    accepted: bool
    reasons: tuple[str, ...]
    subset_problems: tuple[Problem, ...]
    bad_rows: int
    total_rows: int

    @property
    def bad_row_share(self) -> Decimal:
        """Unreadable rows as a share of all rows (0 for an empty file)."""
        if not self.total_rows:
            return Decimal(0)
        return Decimal(self.bad_rows) / Decimal(self.total_rows)


def judge_master(
    selection: UniverseSelection,
    subset_problems: Sequence[Problem],
    *,
    total_rows: int,
    bad_rows: int,
    bad_rows_in_universe: Sequence[Problem] = (),
    max_bad_row_share: Decimal = DEFAULT_MAX_BAD_ROW_SHARE,
) -> MasterVerdict:
    """Accept the master only if its kept subset is clean and the file as a whole is sound.

    ``subset_problems`` are ``validate_master`` findings on the kept subset;
    ``bad_rows_in_universe`` the unreadable rows whose ``name`` is a kept underlying (they
    would silently shrink the subset, so one is enough to refuse the file).
    """
    if not Decimal(0) <= max_bad_row_share <= Decimal(1):
        raise ValueError(f"max_bad_row_share must be between 0 and 1, got {max_bad_row_share}")
    problems = (*bad_rows_in_universe, *subset_problems)
    reasons: list[str] = []
    if problems:
        reasons.append(f"{len(problems)} problem(s) in the kept instruments, first: {problems[0]}")
    share = Decimal(bad_rows) / Decimal(total_rows) if total_rows else Decimal(0)
    if total_rows == 0:
        reasons.append("the master has no rows")
    elif share > max_bad_row_share:
        reasons.append(
            f"{bad_rows} of {total_rows} rows are unreadable "
            f"({share:.2%} > the {max_bad_row_share:.2%} allowed)"
        )
    if selection.missing_spot:
        reasons.append(f"no index or equity row for {', '.join(selection.missing_spot)}")
    if selection.missing_options:
        reasons.append(f"no listed options for {', '.join(selection.missing_options)}")
    if not selection.vix_found:
        reasons.append("INDIA VIX is not listed")
    return MasterVerdict(
        accepted=not reasons,
        reasons=tuple(reasons),
        subset_problems=tuple(problems),
        bad_rows=bad_rows,
        total_rows=total_rows,
    )


# ---------------------------------------------------------------------------------------------
# What to download for an underlying


def spot_instrument(index: InstrumentIndex, underlying: str) -> Instrument:
    """The underlying's index (``NIFTY`` → Nifty 50) or its NSE ``-EQ`` equity row."""
    try:
        return index.index_instrument(underlying)
    except InstrumentNotFound:
        pass
    for inst in index:
        if _is_spot(inst, underlying.upper()):
            return inst
    raise InstrumentNotFound(f"no index or NSE equity listed for {underlying!r}")


def nearest_future(index: InstrumentIndex, underlying: str, today: date) -> Instrument | None:
    """The underlying's future with the nearest expiry on or after ``today``, if any."""
    for future in index.futures(underlying):
        if future.expiry is not None and future.expiry >= today:
            return future
    return None


def current_expiries(chains: Mapping[date, OptionChain], today: date) -> list[date]:
    """The option expiries traded now: the nearest one, and the nearest monthly if different."""
    listed = sorted(expiry for expiry in chains if expiry >= today)
    if not listed:
        return []
    chosen = {listed[0]}
    monthly = [expiry for expiry in monthly_expiries(chains) if expiry >= today]
    if monthly:
        chosen.add(monthly[0])
    return sorted(chosen)


def options_around_atm(
    index: InstrumentIndex, underlying: str, price_paise: int, today: date, strikes_each_side: int
) -> list[Instrument]:
    """Calls and puts of the current expiries at the ATM strike and ``strikes_each_side``
    listed strikes either side of it, ATM taken from ``price_paise`` (the latest close)."""
    chains = index.option_chains(underlying)
    legs: list[Instrument] = []
    for expiry in current_expiries(chains, today):
        chain = chains[expiry]
        for strike in strike_window(chain, price_paise, strikes_each_side):
            legs.extend(side[strike] for side in (chain.calls, chain.puts) if strike in side)
    return legs
