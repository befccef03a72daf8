"""SmartAPI WebSocket 2.0 binary codec: golden frames, round trips, oracle agreement, faults."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.smartapi.codec import (
    MAX_REPORTED_MALFORMED,
    TICK_DTYPE,
    TICK_FIELDS,
    MalformedFrame,
    Tick,
    decode_frame_reference,
    decode_ticks,
    empty_ticks,
    encode_tick,
    encode_ticks,
    ticks_to_array,
)

# Field lists written out from SPEC §6.5, independently of the module's tables.
LTP_FIELDS = (
    "sequence_number",
    "exchange_timestamp",
    "last_traded_price",
)
QUOTE_INT_FIELDS = (
    "last_traded_quantity",
    "average_traded_price",
    "volume_trade_for_the_day",
    "open_price_of_the_day",
    "high_price_of_the_day",
    "low_price_of_the_day",
    "closed_price",
)
QUOTE_FLOAT_FIELDS = ("total_buy_quantity", "total_sell_quantity")
SNAP_INT_FIELDS = (
    "last_traded_timestamp",
    "open_interest",
    "upper_circuit_limit",
    "lower_circuit_limit",
    "week_52_high_price",
    "week_52_low_price",
)
SNAP_FLOAT_FIELDS = ("open_interest_change_percentage",)
LEVEL_FIELDS = tuple(
    f"best_5_{side}_{part}" for side in ("buy", "sell") for part in ("quantity", "price", "orders")
)
LENGTH = {1: 51, 2: 123, 3: 379}

INT64 = st.integers(-(2**63), 2**63 - 1)
INT16 = st.integers(-(2**15), 2**15 - 1)
TOKENS = st.text(alphabet="0123456789", min_size=1, max_size=25)
# Any 64-bit pattern: ordinary values, ±inf, quiet and signalling NaNs with payloads.
FLOAT_BITS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**64 - 1).map(lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0]),
)


def float_bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def comparable(tick: Tick) -> tuple[Any, ...]:
    """Tick fields with floats replaced by their bit patterns (NaN != NaN otherwise)."""
    return tuple(
        float_bits(value) if isinstance(value, float) else value
        for value in (getattr(tick, name) for name in TICK_FIELDS)
    )


@st.composite
def ticks_of_mode(draw: st.DrawFn, mode: int) -> Tick:
    values: dict[str, Any] = {
        "subscription_mode": mode,
        "exchange_type": draw(st.integers(0, 255)),
        "token": draw(TOKENS),
    }
    values.update({name: draw(INT64) for name in LTP_FIELDS})
    if mode >= 2:
        values.update({name: draw(INT64) for name in QUOTE_INT_FIELDS})
        values.update({name: draw(FLOAT_BITS) for name in QUOTE_FLOAT_FIELDS})
    if mode == 3:
        values.update({name: draw(INT64) for name in SNAP_INT_FIELDS})
        values.update({name: draw(FLOAT_BITS) for name in SNAP_FLOAT_FIELDS})
        for name in LEVEL_FIELDS:
            # Zeros are common on a real book (empty levels), so draw them often.
            part = INT16 if name.endswith("orders") else INT64
            level = st.one_of(st.just(0), part)
            values[name] = tuple(draw(st.lists(level, min_size=5, max_size=5)))
    return Tick(**values)


ANY_TICK = st.sampled_from((1, 2, 3)).flatmap(ticks_of_mode)


# --------------------------------------------------------------------------- golden frames


def test_golden_ltp_frame_built_from_spec_offsets() -> None:
    # SPEC §6.5: mode@0, exchange@1, token@2 (25 B), seq@27, exchange ts@35, LTP@43; 51 bytes.
    frame = bytearray(51)
    struct.pack_into("<B", frame, 0, 1)
    struct.pack_into("<B", frame, 1, 1)  # nse_cm
    frame[2:10] = b"99926000"  # Nifty 50; bytes 10..26 stay NUL
    struct.pack_into("<q", frame, 27, 0)
    struct.pack_into("<q", frame, 35, 1_710_909_637_000)
    struct.pack_into("<q", frame, 43, 2_445_015)  # ₹24,450.15 in paise

    batch = decode_ticks([bytes(frame)])

    assert batch.malformed == 0
    row = batch.ticks[0]
    assert row["subscription_mode"] == 1
    assert row["exchange_type"] == 1
    assert row["token"] == b"99926000"
    assert row["exchange_timestamp"] == 1_710_909_637_000
    assert row["last_traded_price"] == 2_445_015
    # 2_445_015 paise / 100 = 24_450.15 rupees
    assert batch.tick(0).last_traded_price / 100 == pytest.approx(24_450.15)
    assert row["closed_price"] == 0 and row["best_5_buy_price"].tolist() == [0] * 5


def test_golden_snap_quote_frame_built_from_spec_offsets() -> None:
    frame = bytearray(379)
    frame[0], frame[1] = 3, 2  # SNAP_QUOTE, nse_fo
    frame[2:7] = b"43650"
    struct.pack_into("<qqq", frame, 27, 77, 1_735_201_464_000, 12_350)  # seq, ts, LTP ₹123.50
    struct.pack_into("<qqq", frame, 51, 75, 12_210, 9_000_000)  # LTQ, ATP, volume
    struct.pack_into("<dd", frame, 75, 1_250_000.0, 980_500.0)  # total buy/sell qty (doubles)
    struct.pack_into("<qqqq", frame, 91, 11_000, 13_000, 10_500, 11_800)  # OHL + prev close
    struct.pack_into("<qqd", frame, 123, 1_735_201_464, 4_200_000, 3.25)  # LTT (s), OI, OI %
    # Best five from offset 147, 20 B each: bids 123.45, 123.40, … then asks 123.55, 123.60, …
    for level in range(5):
        bid = 147 + 20 * level
        struct.pack_into("<hqqh", frame, bid, 1, 75 * (level + 1), 12_345 - 5 * level, level + 1)
        ask = 147 + 100 + 20 * level
        struct.pack_into("<hqqh", frame, ask, 0, 150 * (level + 1), 12_355 + 5 * level, 2)
    struct.pack_into("<qqqq", frame, 347, 30_000, 5, 45_000, 900)  # circuits, 52-week hi/lo

    tick = decode_ticks([bytes(frame)]).tick(0)

    assert tick.token == "43650" and tick.subscription_mode == 3 and tick.exchange_type == 2
    assert (tick.sequence_number, tick.last_traded_price) == (77, 12_350)
    assert (tick.last_traded_quantity, tick.average_traded_price) == (75, 12_210)
    assert tick.volume_trade_for_the_day == 9_000_000
    assert (tick.total_buy_quantity, tick.total_sell_quantity) == (1_250_000.0, 980_500.0)
    assert (tick.open_price_of_the_day, tick.high_price_of_the_day) == (11_000, 13_000)
    assert (tick.low_price_of_the_day, tick.closed_price) == (10_500, 11_800)
    assert (tick.last_traded_timestamp, tick.open_interest) == (1_735_201_464, 4_200_000)
    assert tick.open_interest_change_percentage == 3.25
    assert tick.best_5_buy_quantity == (75, 150, 225, 300, 375)
    assert tick.best_5_buy_price == (12_345, 12_340, 12_335, 12_330, 12_325)
    assert tick.best_5_buy_orders == (1, 2, 3, 4, 5)
    assert tick.best_5_sell_quantity == (150, 300, 450, 600, 750)
    assert tick.best_5_sell_price == (12_355, 12_360, 12_365, 12_370, 12_375)
    assert tick.best_5_sell_orders == (2, 2, 2, 2, 2)
    assert (tick.upper_circuit_limit, tick.lower_circuit_limit) == (30_000, 5)
    assert (tick.week_52_high_price, tick.week_52_low_price) == (45_000, 900)
    assert decode_frame_reference(bytes(frame))["best_5_sell_price"] == tick.best_5_sell_price


def test_golden_snap_quote_with_swapped_flags_decodes_by_position() -> None:
    # The same book as above, but flagged the way older SDK builds label it: bids 0, asks 1.
    frame = bytearray(379)
    frame[0], frame[1] = 3, 2
    frame[2:7] = b"43650"
    struct.pack_into("<qqq", frame, 27, 77, 1_735_201_464_000, 12_350)  # LTP ₹123.50
    for level in range(5):
        bid = 147 + 20 * level
        struct.pack_into("<hqqh", frame, bid, 0, 75 * (level + 1), 12_345 - 5 * level, level + 1)
        ask = 147 + 100 + 20 * level
        struct.pack_into("<hqqh", frame, ask, 1, 150 * (level + 1), 12_355 + 5 * level, 2)

    batch = decode_ticks([bytes(frame)])

    # The tick is kept, only the disagreement is counted.
    assert (batch.malformed, batch.malformed_frames, batch.flag_mismatches) == (0, (), 1)
    tick = batch.tick(0)
    assert tick.last_traded_price == 12_350
    # First five sub-packets (offsets 147..246) are bids, next five asks, whatever the flag.
    assert tick.best_5_buy_price == (12_345, 12_340, 12_335, 12_330, 12_325)
    assert tick.best_5_buy_quantity == (75, 150, 225, 300, 375)
    assert tick.best_5_sell_price == (12_355, 12_360, 12_365, 12_370, 12_375)
    assert tick.best_5_sell_quantity == (150, 300, 450, 600, 750)
    reference = decode_frame_reference(bytes(frame))
    assert reference["best_5_buy_price"] == tick.best_5_buy_price
    assert reference["best_5_sell_price"] == tick.best_5_sell_price


def test_encoder_writes_spec_offsets_and_book_flags() -> None:
    tick = Tick(
        subscription_mode=3,
        exchange_type=2,
        token="123",
        last_traded_price=-5,
        best_5_buy_price=(100, 0, 0, 0, 0),
        best_5_sell_quantity=(0, 7, 0, 0, 0),
        week_52_low_price=9,
    )
    frame = encode_tick(tick)
    assert len(frame) == 379
    assert frame[:5] == b"\x03\x02123" and frame[5:27] == bytes(22)
    assert struct.unpack_from("<q", frame, 43) == (-5,)
    # Bid level 0 is occupied (flag 1); bid level 1 is empty, so all zeros incl. its flag.
    assert struct.unpack_from("<hqqh", frame, 147) == (1, 0, 100, 0)
    assert frame[167:187] == bytes(20)
    # Ask level 1: flag 0 (sell), quantity 7.
    assert struct.unpack_from("<hqqh", frame, 267) == (0, 7, 0, 0)
    assert struct.unpack_from("<q", frame, 371) == (9,)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", [1, 2, 3])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_decode_inverts_encode_for_every_mode(mode: int, data: st.DataObject) -> None:
    tick = data.draw(ticks_of_mode(mode))
    frame = encode_tick(tick)
    assert len(frame) == LENGTH[mode]
    batch = decode_ticks([frame])
    assert batch.malformed == 0
    assert comparable(batch.tick(0)) == comparable(tick)


@settings(max_examples=60, deadline=None)
@given(ticks=st.lists(ANY_TICK, min_size=1, max_size=40))
def test_mixed_batch_round_trips_in_input_order(ticks: list[Tick]) -> None:
    batch = decode_ticks([encode_tick(tick) for tick in ticks])
    assert batch.malformed == 0
    assert [comparable(tick) for tick in batch.to_ticks()] == [comparable(t) for t in ticks]


@pytest.mark.parametrize("mode", [1, 2, 3])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_vectorised_encoder_matches_scalar_encoder(mode: int, data: st.DataObject) -> None:
    ticks = data.draw(st.lists(ticks_of_mode(mode), min_size=1, max_size=30))
    assert encode_ticks(ticks_to_array(ticks), mode) == [encode_tick(tick) for tick in ticks]


def test_full_tick_encoded_for_a_shorter_mode_drops_the_extra_fields() -> None:
    full = Tick(
        subscription_mode=3,
        token="26009",
        last_traded_price=5_000_000,
        closed_price=4_900_000,
        open_interest=10,
        best_5_buy_price=(4_999_995, 0, 0, 0, 0),
    )
    ltp, quote = decode_ticks([encode_tick(full, 1), encode_tick(full, 2)]).to_ticks()
    assert (ltp.subscription_mode, ltp.last_traded_price, ltp.closed_price) == (1, 5_000_000, 0)
    assert (quote.subscription_mode, quote.closed_price, quote.open_interest) == (2, 4_900_000, 0)
    assert quote.best_5_buy_price == (0,) * 5


def test_encode_ticks_fills_from_columns() -> None:
    ticks = empty_ticks(3)
    ticks["token"] = [b"1", b"22", b"333"]
    ticks["last_traded_price"] = [100, 200, 300]
    frames = encode_ticks(ticks, 1)
    assert [len(frame) for frame in frames] == [51, 51, 51]
    decoded = decode_ticks(frames).ticks
    assert decoded["token"].tolist() == [b"1", b"22", b"333"]
    assert decoded["last_traded_price"].tolist() == [100, 200, 300]
    assert decoded["subscription_mode"].tolist() == [1, 1, 1]


# --------------------------------------------------------------------------- oracle


def corrupt(frame: bytes, how: str, byte: int) -> bytes:
    """One of the ways a frame can arrive broken ("none" leaves it intact)."""
    if how == "none":
        return frame
    if how == "truncate":
        return frame[: byte % len(frame)]
    if how == "extend":
        return frame + bytes([byte]) * (1 + byte % 9)
    if how == "mode":
        return bytes([byte]) + frame[1:]
    if how == "token":
        position = 2 + byte % 25
        return frame[:position] + bytes([byte]) + frame[position + 1 :]
    if how == "flag":
        if len(frame) != 379:
            return frame  # only SNAP_QUOTE frames carry a book
        offset = 147 + 20 * (byte % 10)
        return frame[:offset] + struct.pack("<h", byte % 4) + frame[offset + 2 :]
    if how == "depth":
        return b"\x04" + frame[1:27] + bytes(443 - 27)
    return b""


BREAKAGES = ("none",) * 4 + ("truncate", "extend", "mode", "token", "flag", "depth", "empty")
FRAMES_SOME_BROKEN = st.lists(
    st.builds(
        corrupt,
        ANY_TICK.map(encode_tick),
        st.sampled_from(BREAKAGES),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=40,
)


def spec_flags_disagree(frame: bytes) -> bool:
    """Oracle from SPEC §6.5: a bid level is flagged 1 (0 if all zeros), an ask level 0."""
    if len(frame) != 379 or frame[0] != 3:
        return False
    for level in range(10):
        flag, quantity, price, orders = struct.unpack_from("<hqqh", frame, 147 + 20 * level)
        if level < 5:
            agrees = flag == 1 or (flag == 0 and quantity == price == orders == 0)
        else:
            agrees = flag == 0
        if not agrees:
            return True
    return False


def assert_row_matches_reference(row: np.void, reference: dict[str, Any]) -> None:
    for name in TICK_FIELDS:
        value = row[name]
        if name not in reference:
            assert not np.any(value), name
        elif name == "token":
            assert value.decode("ascii") == reference[name]
        elif isinstance(reference[name], float):
            assert float_bits(float(value)) == float_bits(reference[name]), name
        elif isinstance(reference[name], tuple):
            assert value.tolist() == list(reference[name]), name
        else:
            assert int(value) == reference[name], name


@settings(max_examples=150, deadline=None)
@given(frames=FRAMES_SOME_BROKEN)
def test_batch_decoder_agrees_with_reference_decoder(frames: list[bytes]) -> None:
    batch = decode_ticks(frames)
    expected_faults = []
    expected_mismatches = 0
    rows = iter(batch.ticks)
    for index, frame in enumerate(frames):
        try:
            reference = decode_frame_reference(frame)
        except MalformedFrame as fault:
            expected_faults.append((index, str(fault)))
            continue
        expected_mismatches += spec_flags_disagree(frame)
        assert_row_matches_reference(next(rows), reference)
    assert next(rows, None) is None
    assert batch.malformed == len(expected_faults)
    assert list(batch.malformed_frames) == expected_faults
    # A disputed flag never drops a frame; it is only counted.
    assert batch.flag_mismatches == expected_mismatches


# --------------------------------------------------------------------------- malformed frames


GOOD_LTP = encode_tick(Tick(token="2885", last_traded_price=130_000))
GOOD_QUOTE = encode_tick(Tick(subscription_mode=2, token="1594", closed_price=150_000))
GOOD_SNAP = encode_tick(
    Tick(subscription_mode=3, token="43650", best_5_buy_quantity=(75, 0, 0, 0, 0))
)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"", "empty frame"),
        (GOOD_LTP[:50], "truncated: mode 1 frame has 50 bytes, expected 51"),
        (GOOD_SNAP[:200], "truncated: mode 3 frame has 200 bytes, expected 379"),
        (GOOD_LTP + b"\0", "too long: mode 1 frame has 52 bytes, expected 51"),
        (GOOD_QUOTE + bytes(8), "too long: mode 2 frame has 131 bytes, expected 123"),
        (b"\x01" + GOOD_QUOTE[1:], "too long: mode 1 frame has 123 bytes, expected 51"),
        (b"\x03" + GOOD_QUOTE[1:], "truncated: mode 3 frame has 123 bytes, expected 379"),
        (b"\x07" + GOOD_LTP[1:], "unknown mode 7"),
        (b"\x00" + GOOD_LTP[1:], "unknown mode 0"),
        (b"\x09" + bytes(99), "unknown mode 9"),
        (b"\x04\x01" + b"99926000".ljust(25, b"\0") + bytes(443 - 27), "depth-20 unsupported"),
        (GOOD_LTP[:2] + b"28A5" + GOOD_LTP[6:], "non-digit token"),
        (GOOD_LTP[:2] + bytes(25) + GOOD_LTP[27:], "non-digit token"),  # empty token
        (GOOD_LTP[:2] + b"28\x005" + GOOD_LTP[6:], "non-digit token"),  # NUL inside
        (GOOD_LTP[:2] + b" 2885" + GOOD_LTP[7:], "non-digit token"),
    ],
)
def test_malformed_frame_is_counted_and_reported_while_good_frames_decode(
    bad: bytes, reason: str
) -> None:
    batch = decode_ticks([GOOD_LTP, bad, GOOD_SNAP, GOOD_QUOTE])

    assert batch.malformed == 1
    assert batch.malformed_frames == ((1, reason),)
    assert batch.ticks["token"].tolist() == [b"2885", b"43650", b"1594"]
    assert batch.ticks["subscription_mode"].tolist() == [1, 3, 2]
    with pytest.raises(MalformedFrame, match=reason):
        decode_frame_reference(bad)


@pytest.mark.parametrize("good", [GOOD_LTP, GOOD_QUOTE, GOOD_SNAP])
def test_one_bad_frame_in_a_single_layout_batch(good: bytes) -> None:
    # Same length as its neighbours, so it reaches the single-layout fast path first.
    bad = good[:2] + b"x" + good[3:]
    batch = decode_ticks([good, good, bad, good])
    assert (batch.malformed, batch.malformed_frames) == (1, ((2, "non-digit token"),))
    assert len(batch) == 3


def with_flag(frame: bytes, level: int, flag: int) -> bytes:
    """`frame` with best-five sub-packet `level` (0..9) flagged `flag`."""
    offset = 147 + 20 * level
    return frame[:offset] + struct.pack("<h", flag) + frame[offset + 2 :]


def swap_all_flags(frame: bytes) -> bytes:
    """Every bid flagged 0 and every ask flagged 1, as older SDK builds label the halves."""
    for level in range(10):
        frame = with_flag(frame, level, int(level >= 5))
    return frame


# GOOD_SNAP has one occupied bid (level 0, 75 units) and nine empty levels.
DISPUTED_FLAGS = [
    pytest.param(with_flag(GOOD_SNAP, 0, 0), id="occupied-bid-flagged-sell"),
    pytest.param(with_flag(GOOD_SNAP, 5, 1), id="ask-flagged-buy"),
    pytest.param(with_flag(GOOD_SNAP, 1, 2), id="flag-neither-0-nor-1"),
    pytest.param(swap_all_flags(GOOD_SNAP), id="all-swapped"),
]


@pytest.mark.parametrize("disputed", DISPUTED_FLAGS)
def test_disputed_flags_are_counted_and_the_tick_kept(disputed: bytes) -> None:
    # Mixed layouts: the general path.
    batch = decode_ticks([GOOD_LTP, disputed, GOOD_SNAP, GOOD_QUOTE])
    assert (batch.malformed, batch.malformed_frames) == (0, ())
    assert batch.flag_mismatches == 1
    assert batch.ticks["token"].tolist() == [b"2885", b"43650", b"43650", b"1594"]
    # Levels by position: the 75-unit level is the best bid whatever its flag says.
    assert batch.tick(1).best_5_buy_quantity == (75, 0, 0, 0, 0)
    assert batch.tick(1).best_5_sell_quantity == (0,) * 5
    assert decode_frame_reference(disputed)["best_5_buy_quantity"] == (75, 0, 0, 0, 0)

    # One layout: the fast path counts the same way.
    single = decode_ticks([GOOD_SNAP, disputed, disputed])
    assert (single.malformed, single.flag_mismatches, len(single)) == (0, 2, 3)


def test_flag_mismatches_are_counted_only_on_frames_that_decode() -> None:
    swapped = swap_all_flags(GOOD_SNAP)
    # A frame dropped for its token adds nothing to the flag count, even if its flags are off.
    bad_token = swapped[:2] + b"x" + swapped[3:]
    batch = decode_ticks([swapped, bad_token, GOOD_SNAP])
    assert (batch.malformed, batch.flag_mismatches, len(batch)) == (1, 1, 2)


def test_only_malformed_frames_gives_no_rows() -> None:
    batch = decode_ticks([b"", b"\x05" * 51, GOOD_LTP[:10]])
    assert len(batch) == 0 and batch.ticks.dtype == TICK_DTYPE
    assert [index for index, _ in batch.malformed_frames] == [0, 1, 2]


def test_reported_reasons_are_capped_but_every_fault_is_counted() -> None:
    frames = [GOOD_LTP, *([b"\x08" * 51] * (MAX_REPORTED_MALFORMED + 50)), GOOD_QUOTE]
    batch = decode_ticks(frames)
    assert batch.malformed == MAX_REPORTED_MALFORMED + 50
    assert len(batch.malformed_frames) == MAX_REPORTED_MALFORMED
    assert batch.malformed_frames[0] == (1, "unknown mode 8")
    assert batch.ticks["token"].tolist() == [b"2885", b"1594"]


def test_empty_batch() -> None:
    batch = decode_ticks([])
    assert (len(batch), batch.malformed, batch.malformed_frames) == (0, 0, ())


def test_empty_bid_level_with_zero_flag_is_accepted() -> None:
    # An empty level is all zeros on the wire (SPEC §6.5), so flag 0 in a bid slot is fine.
    snap = bytearray(GOOD_SNAP)
    assert snap[167:187] == bytes(20)
    batch = decode_ticks([bytes(snap)])
    assert (batch.malformed, batch.flag_mismatches) == (0, 0)


# --------------------------------------------------------------------------- encoder errors


@pytest.mark.parametrize(
    ("tick", "mode", "message"),
    [
        (Tick(token="12a"), None, "ASCII digits"),
        (Tick(token=""), None, "ASCII digits"),
        (Tick(token="1" * 26), None, "ASCII digits"),
        (Tick(token="１２"), None, "ASCII digits"),  # full-width digits are not ASCII
        (Tick(token="1"), 4, "cannot encode mode 4"),
        (Tick(token="1", last_traded_price=2**63), None, "does not fit"),
        (Tick(subscription_mode=3, token="1", best_5_buy_price=(1, 2)), None, "5 entries"),
    ],
)
def test_encoder_rejects_what_it_cannot_put_on_the_wire(
    tick: Tick, mode: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_tick(tick, mode)


def test_vectorised_encoder_rejects_bad_tokens_and_modes() -> None:
    ticks = empty_ticks(2)
    ticks["token"] = [b"1", b"x"]
    with pytest.raises(ValueError, match="ASCII digits"):
        encode_ticks(ticks, 1)
    with pytest.raises(ValueError, match="mode 0"):
        encode_ticks(empty_ticks(1), 0)


def test_signalling_nan_bits_survive_the_round_trip() -> None:
    signalling = struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0001))[0]
    tick = Tick(subscription_mode=2, token="5", total_buy_quantity=signalling)
    decoded = decode_ticks([encode_tick(tick)]).tick(0)
    assert math.isnan(decoded.total_buy_quantity)
    assert float_bits(decoded.total_buy_quantity) == 0x7FF0_0000_0000_0001
