"""The dated instrument snapshot in the warehouse: write one, and find the one in force.

The instruments flow writes one snapshot per day (``snapshot_date`` = the day it is for); a rerun
on the same day replaces that day's snapshot whole. The snapshot in force on a day is the latest
one dated on or before it; a rejected master writes nothing, so yesterday's snapshot simply stays
in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa

from market.instruments import Instrument, InstrumentIndex, OptionType
from warehouse import Warehouse, WriteReport
from warehouse.schemas import INSTRUMENTS_SCHEMA

DATASET = "instruments"


def snapshot_table(instruments: Iterable[Instrument], snapshot_date: date) -> pa.Table:
    """Instruments as rows of the ``instruments`` dataset."""
    rows = list(instruments)
    columns = {
        "snapshot_date": [snapshot_date] * len(rows),
        "token": [i.token for i in rows],
        "symbol": [i.symbol for i in rows],
        "name": [i.name for i in rows],
        "exchange": [i.exchange for i in rows],
        "instrument_type": [i.instrument_type for i in rows],
        "expiry": [i.expiry for i in rows],
        "strike_paise": [i.strike_paise for i in rows],
        "option_type": [i.option_type.value if i.option_type else None for i in rows],
        "lot_size": [i.lot_size for i in rows],
        "tick_paise": [i.tick_paise for i in rows],
    }
    return pa.table(columns, schema=INSTRUMENTS_SCHEMA)


def write_snapshot(wh: Warehouse, instruments: Iterable[Instrument], snapshot_date: date) -> int:
    """Write the day's snapshot, replacing any earlier one of that day; returns the rows."""
    table = snapshot_table(instruments, snapshot_date)
    # a rerun with fewer underlyings must not leave the dropped ones in the day's snapshot
    report: WriteReport = wh.write(DATASET, table, replace_partitions=True)
    return report.rows_in


def instruments_from_table(table: pa.Table) -> list[Instrument]:
    """Rows of the ``instruments`` dataset back as typed instruments."""
    out: list[Instrument] = []
    for row in table.to_pylist():
        side = row["option_type"]
        out.append(
            Instrument(
                token=row["token"],
                symbol=row["symbol"],
                name=row["name"],
                exchange=row["exchange"],
                instrument_type=row["instrument_type"],
                expiry=row["expiry"],
                strike_paise=row["strike_paise"],
                option_type=OptionType(side) if side else None,
                lot_size=row["lot_size"],
                tick_paise=row["tick_paise"],
            )
        )
    return out


@dataclass(frozen=True)
class Snapshot:
    """The snapshot in force: its date and its instruments, indexed."""

    snapshot_date: date
    index: InstrumentIndex

    def __len__(self) -> int:
        return len(self.index)


def snapshot_date_in_force(wh: Warehouse, as_of: date) -> date | None:
    """The date of the latest snapshot on or before ``as_of``, or None if there is none."""
    found = wh.query(
        f"SELECT max(snapshot_date) AS d FROM {DATASET} "
        f"WHERE snapshot_date <= DATE '{as_of.isoformat()}'"
    )
    value = found["d"][0].as_py() if found.num_rows else None
    return value if isinstance(value, date) else None


def snapshot_in_force(wh: Warehouse, as_of: date) -> Snapshot | None:
    """The latest snapshot on or before ``as_of``, or None if the flow never accepted one."""
    day = snapshot_date_in_force(wh, as_of)
    if day is None:
        return None
    table = wh.read(DATASET, start=day, end=day + timedelta(days=1))
    return Snapshot(day, InstrumentIndex(instruments_from_table(table)))
