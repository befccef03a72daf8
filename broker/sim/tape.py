"""Compact records of one instrument's day: its ticks (``Tape``) and the day-so-far values after
each tick (``TapeStats``: open/high/low, average price, book totals).

The model caches both per (token, day); history requests need only tapes, the feed and quotes also
need stats. Narrow integer types keep a full session of a thousand contracts in a couple of hundred
megabytes; public results (``TickPath``, ``TickEvents``) are int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from broker.sim.bars import TickPath, running_stats

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

_I32_MAX = np.iinfo(np.int32).max


def _narrow(values: IntArray, what: str) -> Int32Array:
    if len(values) and (values.max() > _I32_MAX or values.min() < 0):
        raise OverflowError(f"{what} does not fit a 32-bit tape column")
    return values.astype(np.int32)


@dataclass(frozen=True, slots=True, eq=False)
class Tape:
    """Ticks of one (token, day)."""

    ts_ms: IntArray
    ltp: Int32Array
    qty: Int32Array
    cum_volume: IntArray
    oi: Int32Array

    def __len__(self) -> int:
        return len(self.ts_ms)

    @property
    def open(self) -> int:
        return int(self.ltp[0]) if len(self.ltp) else 0

    def path(self) -> TickPath:
        """The ticks as a ``TickPath`` (int64 copies)."""
        return TickPath(
            self.ts_ms,
            self.ltp.astype(np.int64),
            self.qty.astype(np.int64),
            self.cum_volume,
            self.oi.astype(np.int64),
        )

    def index_at(self, at_ms: int) -> int:
        """Index of the last tick at or before ``at_ms`` (-1 if none)."""
        return int(np.searchsorted(self.ts_ms, at_ms, side="right")) - 1


@dataclass(frozen=True, slots=True, eq=False)
class TapeStats:
    """Day-so-far values after each tick of a tape."""

    high: Int32Array
    low: Int32Array
    avg: Int32Array
    total_buy: Int32Array
    total_sell: Int32Array


def record_tape(path: TickPath) -> Tape:
    """Compact a day's ticks."""
    return Tape(
        ts_ms=path.ts_ms,
        ltp=_narrow(path.ltp_paise, "price"),
        qty=_narrow(path.last_qty, "trade quantity"),
        cum_volume=path.cum_volume,
        oi=_narrow(path.oi, "open interest"),
    )


def tape_stats(tape: Tape, total_buy: IntArray, total_sell: IntArray) -> TapeStats:
    """Running high/low/average of a tape plus the book totals at each tick."""
    stats = running_stats(tape.path())
    return TapeStats(
        high=_narrow(stats.high_paise, "day high"),
        low=_narrow(stats.low_paise, "day low"),
        avg=_narrow(stats.avg_paise, "average price"),
        total_buy=_narrow(total_buy, "total buy quantity"),
        total_sell=_narrow(total_sell, "total sell quantity"),
    )


EMPTY_TAPE = record_tape(TickPath())
EMPTY_STATS = tape_stats(EMPTY_TAPE, np.empty(0, np.int64), np.empty(0, np.int64))
