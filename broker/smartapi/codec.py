"""Binary tick codec for the SmartAPI WebSocket 2.0 feed (SPEC §6.5).

Frames are little-endian and exactly 51 (LTP, mode 1), 123 (QUOTE, mode 2) or
379 (SNAP_QUOTE, mode 3) bytes; each longer layout extends the shorter one.

* `decode_ticks` turns a batch of frames into one numpy structured array of
  `TICK_DTYPE`, rows in input order, fields a mode does not carry left at zero.
  Malformed frames are counted and described in the returned `TickBatch`, never
  raised: one bad frame must not take the feed down.
* `encode_tick` / `encode_ticks` are its exact inverse, for the simulator.
* `decode_frame_reference` is a plain per-frame `struct` decoder: the baseline
  in `bench/decode.py` and an independent oracle in the tests.

Fields of `TICK_DTYPE` and `Tick` (SDK spelling in brackets where it differs):

    subscription_mode                u8    1 LTP, 2 QUOTE, 3 SNAP_QUOTE
    exchange_type                    u8    1 nse_cm, 2 nse_fo, 3 bse_cm, ... (SPEC §6.3)
    token                            S25   ASCII digits (`Tick.token` is a str)
    sequence_number                  i64
    exchange_timestamp               i64   epoch milliseconds
    last_traded_price                i64   paise                   -- end of LTP
    last_traded_quantity             i64   units
    average_traded_price             i64   paise
    volume_trade_for_the_day         i64   units
    total_buy_quantity               f64   the feed sends a double
    total_sell_quantity              f64   the feed sends a double
    open_price_of_the_day            i64   paise
    high_price_of_the_day            i64   paise
    low_price_of_the_day             i64   paise
    closed_price                     i64   paise, previous close   -- end of QUOTE
    last_traded_timestamp            i64   epoch seconds
    open_interest                    i64
    open_interest_change_percentage  f64   documented as a dummy value
    best_5_buy_quantity              i64[5]  bids, best first  [best_5_buy_data]
    best_5_buy_price                 i64[5]  paise
    best_5_buy_orders                i16[5]
    best_5_sell_quantity             i64[5]  asks, best first  [best_5_sell_data]
    best_5_sell_price                i64[5]  paise
    best_5_sell_orders               i16[5]
    upper_circuit_limit              i64   paise
    lower_circuit_limit              i64   paise
    week_52_high_price               i64   paise  [52_week_high_price]
    week_52_low_price                i64   paise  [52_week_low_price]  -- end of SNAP_QUOTE

Best-five levels are read by position, as SPEC §6.5 lays them out: the first five
sub-packets are bids, the next five asks. Their buy/sell flags are checked, not
trusted or kept: SDK builds disagree on what the flag means, so a frame whose flags
differ from the SPEC's (a bid level flagged other than 1 unless it is empty, an ask
level flagged other than 0) still decodes in full and is only counted in
`TickBatch.flag_mismatches`.

Malformed-frame reasons: "empty frame", "depth-20 unsupported",
"unknown mode N", "truncated: …", "too long: …", "non-digit token".
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LTP_MODE = 1
QUOTE_MODE = 2
SNAP_QUOTE_MODE = 3
DEPTH_20_MODE = 4

FRAME_LENGTH: dict[int, int] = {LTP_MODE: 51, QUOTE_MODE: 123, SNAP_QUOTE_MODE: 379}
TOKEN_SIZE = 25
BEST_FIVE = 5

# A batch with thousands of bad frames must not build thousands of strings.
MAX_REPORTED_MALFORMED = 100

_ASCII_ZERO = ord("0")

# (name, wire format, offset) of every scalar field, in SPEC §6.5 order.
_WIRE_SCALARS: tuple[tuple[str, str, int], ...] = (
    ("subscription_mode", "u1", 0),
    ("exchange_type", "u1", 1),
    ("token", "S25", 2),
    ("sequence_number", "<i8", 27),
    ("exchange_timestamp", "<i8", 35),
    ("last_traded_price", "<i8", 43),
    ("last_traded_quantity", "<i8", 51),
    ("average_traded_price", "<i8", 59),
    ("volume_trade_for_the_day", "<i8", 67),
    ("total_buy_quantity", "<f8", 75),
    ("total_sell_quantity", "<f8", 83),
    ("open_price_of_the_day", "<i8", 91),
    ("high_price_of_the_day", "<i8", 99),
    ("low_price_of_the_day", "<i8", 107),
    ("closed_price", "<i8", 115),
    ("last_traded_timestamp", "<i8", 123),
    ("open_interest", "<i8", 131),
    ("open_interest_change_percentage", "<f8", 139),
    ("upper_circuit_limit", "<i8", 347),
    ("lower_circuit_limit", "<i8", 355),
    ("week_52_high_price", "<i8", 363),
    ("week_52_low_price", "<i8", 371),
)
_BEST_FIVE_OFFSET = 147

# One 20-byte best-five sub-packet: flag (1 buy / 0 sell per SPEC), quantity, price, orders.
_LEVEL_DTYPE = np.dtype(
    {
        "names": ["flag", "quantity", "price", "orders"],
        "formats": ["<i2", "<i8", "<i8", "<i2"],
        "offsets": [0, 2, 10, 18],
        "itemsize": 20,
    }
)

_BEST_FIVE_FIELDS: tuple[tuple[str, str], ...] = (
    ("quantity", "i8"),
    ("price", "i8"),
    ("orders", "i2"),
)

_FLOAT_FIELDS = frozenset(
    {"total_buy_quantity", "total_sell_quantity", "open_interest_change_percentage"}
)


def _scalar_names(mode: int) -> tuple[str, ...]:
    """Scalar fields a frame of `mode` carries, in wire order."""
    length = FRAME_LENGTH[mode]
    return tuple(
        name for name, fmt, offset in _WIRE_SCALARS if offset + np.dtype(fmt).itemsize <= length
    )


_SCALARS: dict[int, tuple[str, ...]] = {mode: _scalar_names(mode) for mode in FRAME_LENGTH}


def _wire_dtype(mode: int) -> np.dtype[np.void]:
    """Packed little-endian record with the exact byte offsets of a `mode` frame."""
    names = list(_SCALARS[mode])
    formats: list[Any] = [fmt for name, fmt, _ in _WIRE_SCALARS if name in names]
    offsets = [offset for name, _, offset in _WIRE_SCALARS if name in names]
    if mode == SNAP_QUOTE_MODE:
        names.append("best_five")
        formats.append((_LEVEL_DTYPE, (2 * BEST_FIVE,)))
        offsets.append(_BEST_FIVE_OFFSET)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": FRAME_LENGTH[mode]}
    )


_WIRE_DTYPES: dict[int, np.dtype[np.void]] = {mode: _wire_dtype(mode) for mode in FRAME_LENGTH}


def _tick_dtype() -> np.dtype[np.void]:
    fields: list[tuple[Any, ...]] = []
    for name, fmt, _ in _WIRE_SCALARS:
        if name == "upper_circuit_limit":
            for side in ("buy", "sell"):
                for part, fmt_part in _BEST_FIVE_FIELDS:
                    fields.append((f"best_5_{side}_{part}", fmt_part, (BEST_FIVE,)))
        fields.append((name, fmt.lstrip("<")))
    return np.dtype(fields, align=True)


TICK_DTYPE: np.dtype[np.void] = _tick_dtype()
"""Row type of `TickBatch.ticks`: native-endian, aligned, every field of every mode."""

# The same rows as opaque bytes, for whole-record copies.
_TICK_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))

TICK_FIELDS: tuple[str, ...] = tuple(TICK_DTYPE.names or ())

_BEST_FIVE_NAMES = tuple(
    f"best_5_{side}_{part}" for side in ("buy", "sell") for part, _ in _BEST_FIVE_FIELDS
)

# struct layouts shared by the reference decoder and the scalar encoder.
_LTP_FORMAT = "<BB25sqqq"
_QUOTE_FORMAT = _LTP_FORMAT + "qqqddqqqq"
_SNAP_FORMAT = _QUOTE_FORMAT + "qqd" + "hqqh" * (2 * BEST_FIVE) + "qqqq"
_STRUCTS: dict[int, struct.Struct] = {
    LTP_MODE: struct.Struct(_LTP_FORMAT),
    QUOTE_MODE: struct.Struct(_QUOTE_FORMAT),
    SNAP_QUOTE_MODE: struct.Struct(_SNAP_FORMAT),
}
# SNAP_QUOTE unpacks to: 18 scalars up to OI change %, 40 level values, 4 scalars.
_SNAP_HEAD = 18
_SNAP_LEVELS_END = _SNAP_HEAD + 4 * 2 * BEST_FIVE

# Fault codes, computed vectorised; 0 means the frame is good.
_OK, _EMPTY, _DEPTH_20, _UNKNOWN_MODE, _BAD_LENGTH, _BAD_TOKEN = range(6)

# Expected frame length indexed by the mode byte; 0 for modes we do not decode.
_EXPECTED_LENGTH = np.zeros(256, dtype=np.intp)
for _mode, _length in FRAME_LENGTH.items():
    _EXPECTED_LENGTH[_mode] = _length


class MalformedFrame(ValueError):
    """A frame the reference decoder refuses; the message is the reason."""


def _length_reason(mode: int, length: int) -> str:
    expected = FRAME_LENGTH[mode]
    kind = "truncated" if length < expected else "too long"
    return f"{kind}: mode {mode} frame has {length} bytes, expected {expected}"


def _reason(code: int, mode: int, length: int) -> str:
    if code == _EMPTY:
        return "empty frame"
    if code == _DEPTH_20:
        return "depth-20 unsupported"
    if code == _UNKNOWN_MODE:
        return f"unknown mode {mode}"
    if code == _BAD_LENGTH:
        return _length_reason(mode, length)
    return "non-digit token"


_NO_LEVELS: tuple[int, ...] = (0,) * BEST_FIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One decoded (or to-be-encoded) market-data frame; prices in paise."""

    subscription_mode: int = LTP_MODE
    exchange_type: int = 1
    token: str
    sequence_number: int = 0
    exchange_timestamp: int = 0
    last_traded_price: int = 0
    last_traded_quantity: int = 0
    average_traded_price: int = 0
    volume_trade_for_the_day: int = 0
    total_buy_quantity: float = 0.0
    total_sell_quantity: float = 0.0
    open_price_of_the_day: int = 0
    high_price_of_the_day: int = 0
    low_price_of_the_day: int = 0
    closed_price: int = 0
    last_traded_timestamp: int = 0
    open_interest: int = 0
    open_interest_change_percentage: float = 0.0
    best_5_buy_quantity: tuple[int, ...] = _NO_LEVELS
    best_5_buy_price: tuple[int, ...] = _NO_LEVELS
    best_5_buy_orders: tuple[int, ...] = _NO_LEVELS
    best_5_sell_quantity: tuple[int, ...] = _NO_LEVELS
    best_5_sell_price: tuple[int, ...] = _NO_LEVELS
    best_5_sell_orders: tuple[int, ...] = _NO_LEVELS
    upper_circuit_limit: int = 0
    lower_circuit_limit: int = 0
    week_52_high_price: int = 0
    week_52_low_price: int = 0

    @classmethod
    def from_row(cls, row: np.void) -> Tick:
        """Build a Tick from one row of a `TICK_DTYPE` array."""
        values: dict[str, Any] = {}
        for name in TICK_FIELDS:
            value = row[name]
            if name == "token":
                values[name] = bytes(value).decode("ascii")
            elif name in _BEST_FIVE_NAMES:
                values[name] = tuple(int(level) for level in value)
            elif name in _FLOAT_FIELDS:
                values[name] = float(value)
            else:
                values[name] = int(value)
        return cls(**values)

    def as_record(self) -> tuple[Any, ...]:
        """The values in `TICK_DTYPE` field order, ready for `np.array(..., TICK_DTYPE)`."""
        record: list[Any] = []
        for name in TICK_FIELDS:
            value = getattr(self, name)
            record.append(value.encode("ascii") if name == "token" else value)
        return tuple(record)


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Decoded rows (`TICK_DTYPE`, input order) plus what was wrong with the rest."""

    ticks: np.ndarray
    malformed: int = 0
    # (frame index, reason) for the first MAX_REPORTED_MALFORMED malformed frames.
    malformed_frames: tuple[tuple[int, str], ...] = ()
    # Decoded SNAP_QUOTE rows whose best-five flags differ from SPEC §6.5 (kept, by position).
    flag_mismatches: int = 0

    def __len__(self) -> int:
        return len(self.ticks)

    def tick(self, row: int) -> Tick:
        """Row `row` as a `Tick` (convenient, not for the hot path)."""
        return Tick.from_row(self.ticks[row])

    def to_ticks(self) -> list[Tick]:
        """All rows as `Tick`s (convenient, not for the hot path)."""
        return [Tick.from_row(row) for row in self.ticks]


def empty_ticks(count: int) -> np.ndarray:
    """A zeroed `TICK_DTYPE` array of `count` rows, for filling column by column."""
    return np.zeros(count, dtype=TICK_DTYPE)


def ticks_to_array(ticks: Iterable[Tick]) -> np.ndarray:
    """Stack `Tick`s into a `TICK_DTYPE` array (input for `encode_ticks`)."""
    return np.array([tick.as_record() for tick in ticks], dtype=TICK_DTYPE)


# --------------------------------------------------------------------------- decoding


def decode_ticks(frames: Sequence[bytes]) -> TickBatch:
    """Decode a batch of LTP/QUOTE/SNAP_QUOTE frames into one structured array."""
    count = len(frames)
    if count == 0:
        return TickBatch(np.zeros(0, dtype=TICK_DTYPE))
    lengths = np.fromiter(map(len, frames), dtype=np.intp, count=count)
    buffer = b"".join(frames)

    # Fast path: the whole batch is one layout (a feed subscribed in one mode).
    first = int(lengths[0])
    for mode, length in FRAME_LENGTH.items():
        if first == length and len(buffer) == length * count and bool((lengths == length).all()):
            wire = np.frombuffer(buffer, dtype=_WIRE_DTYPES[mode])
            if bool((wire["subscription_mode"] == mode).all()) and not _content_faults(wire).any():
                return TickBatch(
                    _to_ticks(wire, mode), flag_mismatches=_flag_mismatches(wire, mode)
                )
            break
    return _decode_mixed(lengths, buffer)


def _decode_mixed(lengths: np.ndarray, buffer: bytes) -> TickBatch:
    """General path: classify every frame, decode each layout as one block, reorder."""
    count = lengths.size
    starts = np.cumsum(lengths) - lengths
    nonempty = lengths > 0
    modes = np.zeros(count, dtype=np.uint8)
    modes[nonempty] = np.frombuffer(buffer, dtype=np.uint8)[starts[nonempty]]
    expected = _EXPECTED_LENGTH[modes]
    codes = np.select(
        [~nonempty, modes == DEPTH_20_MODE, expected == 0, lengths != expected],
        [_EMPTY, _DEPTH_20, _UNKNOWN_MODE, _BAD_LENGTH],
        _OK,
    ).astype(np.uint8)

    groups: list[tuple[np.ndarray, np.ndarray, int]] = []
    flag_mismatches = 0
    for mode in FRAME_LENGTH:
        rows = np.flatnonzero((codes == _OK) & (modes == mode))
        if rows.size == 0:
            continue
        wire = _gather(buffer, starts[rows], mode)
        faults = _content_faults(wire)
        if faults.any():
            codes[rows] = faults
            keep = faults == _OK
            rows, wire = rows[keep], wire[keep]
        flag_mismatches += _flag_mismatches(wire, mode)
        groups.append((rows, wire, mode))

    good = codes == _OK
    reported = _describe(np.flatnonzero(~good), codes, modes, lengths)
    malformed = count - int(good.sum())
    # Widen each layout into its own slice of one zeroed array, then put the rows
    # back into input order with a single whole-record gather (faster than
    # scattering field by field).
    staged = np.zeros(count - malformed, dtype=TICK_DTYPE)
    first = 0
    for rows, wire, mode in groups:
        _widen(staged[first : first + rows.size], wire, mode)
        first += rows.size
    if len(groups) <= 1:
        return TickBatch(staged, malformed, reported, flag_mismatches)
    staged_rows = np.concatenate([rows for rows, _, _ in groups])
    source = np.empty(staged.size, dtype=np.intp)
    source[(np.cumsum(good) - 1)[staged_rows]] = np.arange(staged.size)
    ticks = staged.view(_TICK_RECORD)[source].view(TICK_DTYPE)
    return TickBatch(ticks, malformed, reported, flag_mismatches)


def _describe(
    bad: np.ndarray, codes: np.ndarray, modes: np.ndarray, lengths: np.ndarray
) -> tuple[tuple[int, str], ...]:
    """(index, reason) for the first MAX_REPORTED_MALFORMED malformed frames."""
    return tuple(
        (int(index), _reason(int(codes[index]), int(modes[index]), int(lengths[index])))
        for index in bad[:MAX_REPORTED_MALFORMED]
    )


def _gather(buffer: bytes, starts: np.ndarray, mode: int) -> np.ndarray:
    """Copy the frames starting at `starts` out of the joined buffer as wire records."""
    dtype = _WIRE_DTYPES[mode]
    # A record view at every byte offset (records overlap); indexing it by the frame
    # starts copies each frame out without a Python loop. Records are opaque voids
    # here because numpy copies those whole, but structured ones field by field.
    every_offset = np.ndarray(
        shape=(len(buffer) - dtype.itemsize + 1,),
        dtype=np.dtype((np.void, dtype.itemsize)),
        buffer=buffer,
        strides=(1,),
    )
    frames: np.ndarray = every_offset[starts].view(dtype)
    return frames


def _content_faults(wire: np.ndarray) -> np.ndarray:
    """Fault code per record for a bad token (0 when fine)."""
    # numpy reads an S25 field up to its last non-NUL byte, so `isdigit` rejects an
    # empty token, any non-digit and any NUL between digits in one C loop.
    token_ok = np.strings.isdigit(wire["token"])
    return np.where(token_ok, _OK, _BAD_TOKEN).astype(np.uint8)


def _flag_mismatches(wire: np.ndarray, mode: int) -> int:
    """How many SNAP_QUOTE records carry best-five flags other than SPEC §6.5's."""
    if mode != SNAP_QUOTE_MODE or wire.size == 0:
        return 0
    levels = wire["best_five"]
    flag = levels["flag"]
    bid = flag[:, :BEST_FIVE]
    # An empty bid level is all zeros on the wire, its flag included.
    bid_empty = (
        (levels["quantity"][:, :BEST_FIVE] == 0)
        & (levels["price"][:, :BEST_FIVE] == 0)
        & (levels["orders"][:, :BEST_FIVE] == 0)
    )
    bids_ok = ((bid == 1) | ((bid == 0) & bid_empty)).all(axis=1)
    asks_ok = (flag[:, BEST_FIVE:] == 0).all(axis=1)
    return int(wire.size - np.count_nonzero(bids_ok & asks_ok))


def _to_ticks(wire: np.ndarray, mode: int) -> np.ndarray:
    """Widen a block of wire records of one mode into new `TICK_DTYPE` rows."""
    ticks = np.zeros(wire.size, dtype=TICK_DTYPE)
    _widen(ticks, wire, mode)
    return ticks


def _widen(ticks: np.ndarray, wire: np.ndarray, mode: int) -> None:
    """Copy a block of wire records of one mode into zeroed `TICK_DTYPE` rows."""
    for name in _SCALARS[mode]:
        ticks[name] = wire[name]
    if mode == SNAP_QUOTE_MODE:
        levels = wire["best_five"]
        for part, _ in _BEST_FIVE_FIELDS:
            values = levels[part]
            ticks[f"best_5_buy_{part}"] = values[:, :BEST_FIVE]
            ticks[f"best_5_sell_{part}"] = values[:, BEST_FIVE:]


def decode_frame_reference(frame: bytes) -> dict[str, Any]:
    """Decode one frame with `struct.unpack`; raises `MalformedFrame` with the reason.

    Returns only the fields the frame's mode carries (token as str, best-five as tuples,
    bids then asks by position whatever their flags say).
    """
    if not frame:
        raise MalformedFrame("empty frame")
    mode = frame[0]
    if mode == DEPTH_20_MODE:
        raise MalformedFrame("depth-20 unsupported")
    if mode not in FRAME_LENGTH:
        raise MalformedFrame(f"unknown mode {mode}")
    if len(frame) != FRAME_LENGTH[mode]:
        raise MalformedFrame(_length_reason(mode, len(frame)))
    values = _STRUCTS[mode].unpack(frame)
    token = values[2].rstrip(b"\0")
    if not token.isdigit():
        raise MalformedFrame("non-digit token")
    if mode != SNAP_QUOTE_MODE:
        tick = dict(zip(_SCALARS[mode], values, strict=True))
        tick["token"] = token.decode("ascii")
        return tick

    tick = dict(zip(_SCALARS[mode], values[:_SNAP_HEAD] + values[_SNAP_LEVELS_END:], strict=True))
    tick["token"] = token.decode("ascii")
    levels = values[_SNAP_HEAD:_SNAP_LEVELS_END]
    for side, first in (("buy", 0), ("sell", BEST_FIVE)):
        side_levels = levels[4 * first : 4 * (first + BEST_FIVE)]
        tick[f"best_5_{side}_quantity"] = side_levels[1::4]
        tick[f"best_5_{side}_price"] = side_levels[2::4]
        tick[f"best_5_{side}_orders"] = side_levels[3::4]
    return tick


# --------------------------------------------------------------------------- encoding


def _check_mode(mode: int) -> int:
    if mode not in FRAME_LENGTH:
        raise ValueError(f"cannot encode mode {mode}: allowed modes are 1 (LTP), 2, 3")
    return mode


def _token_bytes(token: str) -> bytes:
    if not (1 <= len(token) <= TOKEN_SIZE and token.isascii() and token.isdigit()):
        raise ValueError(f"token {token!r} must be 1..{TOKEN_SIZE} ASCII digits")
    return token.encode("ascii")


def encode_tick(tick: Tick, mode: int | None = None) -> bytes:
    """Encode `tick` as one frame of `mode` (default: the tick's own subscription mode).

    Fields the mode does not carry are dropped, so one full SNAP_QUOTE tick can be
    sent to LTP, QUOTE and SNAP_QUOTE subscribers alike.
    """
    mode = _check_mode(tick.subscription_mode if mode is None else mode)
    values: list[Any] = [mode, tick.exchange_type, _token_bytes(tick.token)]
    values.extend(getattr(tick, name) for name in _SCALARS[mode][3:])
    if mode == SNAP_QUOTE_MODE:
        tail = values[_SNAP_HEAD:]
        del values[_SNAP_HEAD:]
        for side in ("buy", "sell"):
            quantities = getattr(tick, f"best_5_{side}_quantity")
            prices = getattr(tick, f"best_5_{side}_price")
            orders = getattr(tick, f"best_5_{side}_orders")
            if not len(quantities) == len(prices) == len(orders) == BEST_FIVE:
                raise ValueError(f"best-five {side} levels must have {BEST_FIVE} entries each")
            for level in zip(quantities, prices, orders, strict=True):
                # An empty level is all zeros on the wire, flag included.
                flag = int(side == "buy" and any(level))
                values.extend((flag, *level))
        values.extend(tail)
    try:
        return _STRUCTS[mode].pack(*values)
    except struct.error as exc:
        raise ValueError(f"tick {tick.token} does not fit mode {mode}: {exc}") from exc


def encode_ticks(ticks: np.ndarray, mode: int) -> list[bytes]:
    """Encode every row of a `TICK_DTYPE` array as a frame of `mode` (vectorised)."""
    mode = _check_mode(mode)
    wire = np.zeros(len(ticks), dtype=_WIRE_DTYPES[mode])
    wire["subscription_mode"] = mode
    for name in _SCALARS[mode][1:]:
        wire[name] = ticks[name]
    if _content_faults(wire).any():
        raise ValueError(f"every token must be 1..{TOKEN_SIZE} ASCII digits")
    if mode == SNAP_QUOTE_MODE:
        levels = wire["best_five"]
        for part, _ in _BEST_FIVE_FIELDS:
            levels[part][:, :BEST_FIVE] = ticks[f"best_5_buy_{part}"]
            levels[part][:, BEST_FIVE:] = ticks[f"best_5_sell_{part}"]
        bids = levels[:, :BEST_FIVE]
        occupied = (bids["quantity"] != 0) | (bids["price"] != 0) | (bids["orders"] != 0)
        levels["flag"][:, :BEST_FIVE] = occupied
    joined = wire.tobytes()
    length = FRAME_LENGTH[mode]
    return [joined[start : start + length] for start in range(0, len(joined), length)]
