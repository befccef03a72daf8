"""Every warehouse dataset: its one pyarrow schema, primary key and partitioning.

Money in orders, trades, positions, charges and ticks is int64 paise; bars kept for
analysis are float64 rupees. Timestamps are UTC microseconds. Partition periods
(day, month, year) are taken in exchange time (IST), so a daily bar stamped at
00:00 IST lands in its own session's month, not the previous one's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from warehouse.errors import UnknownDataset

Period = Literal["day", "month", "year"]

# The hive key used in paths for each period level.
PERIOD_LEVEL_NAMES: dict[Period, str] = {"day": "date", "month": "month", "year": "year"}

UTC_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Level:
    """One directory level of a partition path, ``<name>=<value>``."""

    name: str
    column: str | None  # the column the value comes from; None when the caller passes it
    period: Period | None = None  # set when the value is the period of a time column


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """A dataset's schema, key and layout.

    Path: ``<name>/[<variant_level>=<v>/][<column level>=<value>/...]<period level>=<label>/``.
    Merge datasets hold one ``data.parquet`` per partition; append-only datasets add
    ``part-NNNNNN.parquet`` files that ``compact`` folds back into ``data.parquet``.
    """

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    time_column: str
    period: Period
    column_levels: tuple[str, ...] = ()
    order: tuple[str, ...] = ()  # sort order of stored rows; the key when empty
    append_only: bool = False
    variant_level: str | None = None
    variants: tuple[str, ...] = ()
    variant_periods: tuple[tuple[str, Period], ...] = ()  # e.g. daily bars by year

    @property
    def sort_columns(self) -> tuple[str, ...]:
        """Columns stored rows are sorted by."""
        return self.order or self.key

    def period_for(self, variant: str | None) -> Period:
        """The time period of the last partition level for this variant."""
        return dict(self.variant_periods).get(variant or "", self.period)

    def levels(self, variant: str | None) -> tuple[Level, ...]:
        """All path levels, outermost first, for a variant (None when not variant-split)."""
        levels: list[Level] = []
        if self.variant_level is not None:
            levels.append(Level(self.variant_level, None))
        levels.extend(Level(column, column) for column in self.column_levels)
        period = self.period_for(variant)
        levels.append(Level(PERIOD_LEVEL_NAMES[period], self.time_column, period))
        return tuple(levels)

    def variant_names(self) -> tuple[str | None, ...]:
        """The variants to iterate over: the declared ones, or just ``None``."""
        return self.variants if self.variant_level is not None else (None,)

    def check_variant(self, variant: str | None) -> str | None:
        """Return the variant if valid for this dataset, else raise ``UnknownDataset``."""
        if self.variant_level is None:
            if variant is not None:
                raise UnknownDataset(
                    f"dataset '{self.name}' has no {variant!r} variant; it is not split"
                )
            return None
        if variant not in self.variants:
            allowed = ", ".join(self.variants)
            raise UnknownDataset(
                f"{self.name} {self.variant_level} {variant!r} is not known; allowed: {allowed}"
            )
        return variant

    def view_name(self, variant: str | None) -> str:
        """Catalog view name: ``bars_1m`` for a variant, else the dataset name."""
        return f"{self.name}_{variant}" if variant is not None else self.name


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, kind, nullable=nullable) for name, kind, nullable in fields])


NOT_NULL = False
NULLABLE = True

INSTRUMENTS_SCHEMA = _schema(
    ("snapshot_date", pa.date32(), NOT_NULL),
    ("token", pa.string(), NOT_NULL),
    ("symbol", pa.string(), NOT_NULL),
    ("name", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("instrument_type", pa.string(), NOT_NULL),
    ("expiry", pa.date32(), NULLABLE),
    ("strike_paise", pa.int64(), NULLABLE),
    ("option_type", pa.string(), NULLABLE),
    ("lot_size", pa.int32(), NOT_NULL),
    ("tick_paise", pa.int32(), NOT_NULL),
)

BARS_SCHEMA = _schema(
    ("symbol", pa.string(), NOT_NULL),
    ("token", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("ts", UTC_TS, NOT_NULL),  # bar start
    ("open", pa.float64(), NOT_NULL),
    ("high", pa.float64(), NOT_NULL),
    ("low", pa.float64(), NOT_NULL),
    ("close", pa.float64(), NOT_NULL),
    ("volume", pa.int64(), NOT_NULL),
    ("oi", pa.int64(), NULLABLE),
    ("interpolated", pa.bool_(), NOT_NULL),
    ("source", pa.string(), NOT_NULL),
)

TICKS_SCHEMA = _schema(
    ("token", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("exchange_ts", UTC_TS, NULLABLE),  # absent in feed modes that do not carry it
    ("recv_ts", UTC_TS, NOT_NULL),
    ("ltp_paise", pa.int64(), NOT_NULL),
    ("last_traded_qty", pa.int64(), NULLABLE),
    ("volume", pa.int64(), NULLABLE),
    ("oi", pa.int64(), NULLABLE),
    ("bid_paise", pa.int64(), NULLABLE),
    ("bid_qty", pa.int64(), NULLABLE),
    ("ask_paise", pa.int64(), NULLABLE),
    ("ask_qty", pa.int64(), NULLABLE),
)

CATEGORIES_SCHEMA = _schema(
    ("session_date", pa.date32(), NOT_NULL),
    ("underlying", pa.string(), NOT_NULL),
    ("category", pa.string(), NOT_NULL),  # CE, PE or NO_TRADE
    ("adx", pa.float64(), NULLABLE),
    ("plus_di", pa.float64(), NULLABLE),
    ("minus_di", pa.float64(), NULLABLE),
    ("volume", pa.int64(), NULLABLE),
    ("volume_avg", pa.float64(), NULLABLE),
    ("reason", pa.string(), NOT_NULL),
)

GAPS_SCHEMA = _schema(
    ("symbol", pa.string(), NOT_NULL),
    ("interval", pa.string(), NOT_NULL),
    ("session_date", pa.date32(), NOT_NULL),
    ("start_ts", UTC_TS, NOT_NULL),
    ("end_ts", UTC_TS, NOT_NULL),
    ("minutes", pa.int32(), NOT_NULL),
    ("kind", pa.string(), NOT_NULL),
    ("action", pa.string(), NOT_NULL),
)

ORDERS_SCHEMA = _schema(
    ("mode", pa.string(), NOT_NULL),  # live, paper or replay: their order ids may overlap
    ("order_id", pa.string(), NOT_NULL),
    ("unique_order_id", pa.string(), NULLABLE),
    ("intent_id", pa.string(), NULLABLE),  # our ordertag
    ("session_date", pa.date32(), NOT_NULL),
    ("symbol", pa.string(), NOT_NULL),
    ("token", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("side", pa.string(), NOT_NULL),
    ("order_type", pa.string(), NOT_NULL),
    ("product", pa.string(), NOT_NULL),
    ("variety", pa.string(), NULLABLE),
    ("quantity", pa.int64(), NOT_NULL),
    ("filled_quantity", pa.int64(), NOT_NULL),
    ("price_paise", pa.int64(), NOT_NULL),
    ("trigger_price_paise", pa.int64(), NULLABLE),
    ("average_price_paise", pa.int64(), NULLABLE),
    ("status", pa.string(), NOT_NULL),
    ("status_message", pa.string(), NULLABLE),
    ("placed_at", UTC_TS, NOT_NULL),
    ("updated_at", UTC_TS, NOT_NULL),
)

TRADES_SCHEMA = _schema(
    ("mode", pa.string(), NOT_NULL),
    ("trade_id", pa.string(), NOT_NULL),
    ("order_id", pa.string(), NOT_NULL),
    ("session_date", pa.date32(), NOT_NULL),
    ("symbol", pa.string(), NOT_NULL),
    ("token", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("side", pa.string(), NOT_NULL),
    ("quantity", pa.int64(), NOT_NULL),
    ("price_paise", pa.int64(), NOT_NULL),
    ("filled_at", UTC_TS, NOT_NULL),
)

POSITIONS_SCHEMA = _schema(
    ("mode", pa.string(), NOT_NULL),
    ("session_date", pa.date32(), NOT_NULL),
    ("symbol", pa.string(), NOT_NULL),
    ("token", pa.string(), NOT_NULL),
    ("exchange", pa.string(), NOT_NULL),
    ("product", pa.string(), NOT_NULL),
    ("net_quantity", pa.int64(), NOT_NULL),
    ("buy_quantity", pa.int64(), NOT_NULL),
    ("sell_quantity", pa.int64(), NOT_NULL),
    ("buy_value_paise", pa.int64(), NOT_NULL),
    ("sell_value_paise", pa.int64(), NOT_NULL),
    ("realised_pnl_paise", pa.int64(), NOT_NULL),
    ("unrealised_pnl_paise", pa.int64(), NULLABLE),
    ("ltp_paise", pa.int64(), NULLABLE),
    ("as_of", UTC_TS, NOT_NULL),
)

EVENTS_SCHEMA = _schema(
    ("ts", UTC_TS, NOT_NULL),
    ("kind", pa.string(), NOT_NULL),
    ("key", pa.string(), NOT_NULL),  # the event's idempotency key
    ("payload", pa.string(), NOT_NULL),  # JSON
)

RECONCILIATION_SCHEMA = _schema(
    ("session_date", pa.date32(), NOT_NULL),
    # "check" is an SQL reserved word; check_name keeps queries free of quoting
    ("check_name", pa.string(), NOT_NULL),
    ("status", pa.string(), NOT_NULL),
    ("expected", pa.string(), NULLABLE),
    ("actual", pa.string(), NULLABLE),
    ("detail", pa.string(), NULLABLE),
)

CHARGES_SCHEMA = _schema(
    ("mode", pa.string(), NOT_NULL),
    ("trade_date", pa.date32(), NOT_NULL),
    ("order_id", pa.string(), NOT_NULL),
    ("brokerage_paise", pa.int64(), NOT_NULL),
    ("stt_paise", pa.int64(), NOT_NULL),
    ("exchange_txn_paise", pa.int64(), NOT_NULL),
    ("sebi_paise", pa.int64(), NOT_NULL),
    ("stamp_duty_paise", pa.int64(), NOT_NULL),
    ("gst_paise", pa.int64(), NOT_NULL),
    ("total_paise", pa.int64(), NOT_NULL),
)

BAR_INTERVALS: tuple[str, ...] = ("1m", "5m", "15m", "1h", "1d")
INTRADAY_BAR_INTERVALS: tuple[str, ...] = ("1m", "5m", "15m", "1h")

DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        # One full master a day is ~100k rows: a day's file is already large, so day it is.
        Dataset(
            "instruments",
            INSTRUMENTS_SCHEMA,
            key=("snapshot_date", "exchange", "token"),
            time_column="snapshot_date",
            period="day",
        ),
        # Monthly files: daily 375-row files make reads several times slower.
        Dataset(
            "bars",
            BARS_SCHEMA,
            key=("symbol", "ts"),
            time_column="ts",
            period="month",
            column_levels=("symbol",),
            variant_level="interval",
            variants=BAR_INTERVALS,
            variant_periods=(("1d", "year"),),
        ),
        Dataset(
            "ticks",
            TICKS_SCHEMA,
            key=tuple(TICKS_SCHEMA.names),  # identical rows are the only duplicates a feed has
            order=("recv_ts", "exchange", "token"),
            time_column="recv_ts",
            period="day",
            append_only=True,
        ),
        Dataset(
            "categories",
            CATEGORIES_SCHEMA,
            key=("session_date", "underlying"),
            time_column="session_date",
            period="year",
        ),
        Dataset(
            "gaps",
            GAPS_SCHEMA,
            key=("symbol", "interval", "start_ts"),
            time_column="session_date",
            period="month",
        ),
        Dataset(
            "orders",
            ORDERS_SCHEMA,
            key=("mode", "order_id"),
            time_column="session_date",
            period="month",
        ),
        Dataset(
            "trades",
            TRADES_SCHEMA,
            key=("mode", "order_id", "trade_id"),
            time_column="session_date",
            period="month",
        ),
        Dataset(
            "positions",
            POSITIONS_SCHEMA,
            key=("mode", "session_date", "exchange", "token", "product"),
            time_column="session_date",
            period="month",
        ),
        Dataset(
            "events",
            EVENTS_SCHEMA,
            key=("kind", "key"),
            order=("ts", "kind", "key"),
            time_column="ts",
            period="month",
            append_only=True,
        ),
        Dataset(
            "reconciliation",
            RECONCILIATION_SCHEMA,
            key=("session_date", "check_name"),
            time_column="session_date",
            period="year",
        ),
        Dataset(
            "charges",
            CHARGES_SCHEMA,
            key=("mode", "trade_date", "order_id"),
            time_column="trade_date",
            period="month",
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    """Look a dataset up by name, or raise ``UnknownDataset`` listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise UnknownDataset(f"unknown dataset {name!r}; known: {known}") from None
