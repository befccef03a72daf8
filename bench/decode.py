"""Benchmark: batch `decode_ticks` against the per-frame `struct` reference decoder.

Run: `.venv/bin/python bench/decode.py` — prints one JSON object.
Both decoders see the same frames in the same run; each figure is the median of several runs.
`snap_half_swapped_flags` is SNAP_QUOTE only, every other frame with its best-five flags
swapped (bids 0, asks 1): those ticks are kept and counted, so they must cost nothing extra.
"""

from __future__ import annotations

import json
import platform
import statistics
import struct
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from broker.smartapi.codec import (
    FRAME_LENGTH,
    LTP_MODE,
    QUOTE_MODE,
    SNAP_QUOTE_MODE,
    decode_frame_reference,
    decode_ticks,
    empty_ticks,
    encode_ticks,
)

FRAMES = 100_000
RUNS = 7
REFERENCE_RUNS = 5
# A feed reader decodes whatever arrived since its last wake-up: about this many frames.
FEED_BATCH = 1_000
MIX = {LTP_MODE: 0.6, QUOTE_MODE: 0.3, SNAP_QUOTE_MODE: 0.1}


def _random_ticks(count: int, rng: np.random.Generator) -> np.ndarray:
    """Plausible option ticks: a few hundred tokens, prices in paise, full books."""
    ticks = empty_ticks(count)
    tokens = rng.integers(35_000, 36_000, size=count)
    ticks["token"] = np.char.encode(tokens.astype(str), "ascii")
    ticks["exchange_type"] = 2
    ticks["sequence_number"] = np.arange(count)
    ticks["exchange_timestamp"] = 1_767_000_000_000 + np.arange(count) * 3
    price = rng.integers(500, 50_000, size=count)
    for name in (
        "last_traded_price",
        "average_traded_price",
        "open_price_of_the_day",
        "high_price_of_the_day",
        "low_price_of_the_day",
        "closed_price",
    ):
        ticks[name] = price
    ticks["last_traded_quantity"] = rng.integers(1, 5_000, size=count)
    ticks["volume_trade_for_the_day"] = rng.integers(0, 10**8, size=count)
    ticks["total_buy_quantity"] = rng.integers(0, 10**6, size=count)
    ticks["total_sell_quantity"] = rng.integers(0, 10**6, size=count)
    ticks["open_interest"] = rng.integers(0, 10**7, size=count)
    for side, step in (("buy", -5), ("sell", 5)):
        ticks[f"best_5_{side}_price"] = price[:, None] + step * np.arange(1, 6)
        ticks[f"best_5_{side}_quantity"] = rng.integers(1, 10_000, size=(count, 5))
        ticks[f"best_5_{side}_orders"] = rng.integers(1, 50, size=(count, 5))
    ticks["upper_circuit_limit"] = price * 2
    ticks["lower_circuit_limit"] = price // 2
    return ticks


def _frames(mix: dict[int, float], rng: np.random.Generator) -> list[bytes]:
    ticks = _random_ticks(FRAMES, rng)
    modes = rng.choice(list(mix), size=FRAMES, p=list(mix.values()))
    frames: list[bytes] = [b""] * FRAMES
    for mode in mix:
        rows = np.flatnonzero(modes == mode)
        for row, frame in zip(rows.tolist(), encode_ticks(ticks[rows], mode), strict=True):
            frames[row] = frame
    return frames


def _swap_flags(frame: bytes) -> bytes:
    """A SNAP_QUOTE frame with its ten best-five flags swapped (bids 0, asks 1)."""
    swapped = bytearray(frame)
    for level in range(10):
        struct.pack_into("<h", swapped, 147 + 20 * level, int(level >= 5))
    return bytes(swapped)


def _median_seconds(work: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _reference(frames: Sequence[bytes]) -> list[dict[str, object]]:
    return [decode_frame_reference(frame) for frame in frames]


def _measure(frames: list[bytes], flag_mismatches: int = 0) -> dict[str, float]:
    batch = decode_ticks(frames)
    assert batch.malformed == 0 and len(batch) == len(frames)
    assert batch.flag_mismatches == flag_mismatches
    chunks = [frames[i : i + FEED_BATCH] for i in range(0, len(frames), FEED_BATCH)]
    batch_s = _median_seconds(lambda: decode_ticks(frames), RUNS)
    chunked_s = _median_seconds(lambda: [decode_ticks(chunk) for chunk in chunks], RUNS)
    reference_s = _median_seconds(lambda: _reference(frames), REFERENCE_RUNS)
    return {
        "frames": len(frames),
        "decode_ticks_frames_per_s": round(len(frames) / batch_s),
        f"decode_ticks_in_{FEED_BATCH}_frame_batches_frames_per_s": round(len(frames) / chunked_s),
        "reference_frames_per_s": round(len(frames) / reference_s),
        "speedup": round(reference_s / batch_s, 1),
    }


def _measure_encode(rng: np.random.Generator) -> dict[str, int]:
    ticks = _random_ticks(FRAMES, rng)
    report = {}
    for mode in FRAME_LENGTH:
        seconds = _median_seconds(partial(encode_ticks, ticks, mode), RUNS)
        report[f"mode_{mode}_frames_per_s"] = round(FRAMES / seconds)
    return report


def main() -> None:
    rng = np.random.default_rng(20260401)
    mixed = _frames(MIX, rng)
    ltp_only = _frames({LTP_MODE: 1.0}, rng)
    snap = _frames({SNAP_QUOTE_MODE: 1.0}, rng)
    half_swapped = [_swap_flags(f) if i % 2 else f for i, f in enumerate(snap)]
    report = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "runs": {"decode_ticks": RUNS, "reference": REFERENCE_RUNS, "statistic": "median"},
        "mix": {f"mode_{mode}_{FRAME_LENGTH[mode]}B": share for mode, share in MIX.items()},
        "mixed": _measure(mixed),
        "ltp_only": _measure(ltp_only),
        "snap_only": _measure(snap),
        "snap_half_swapped_flags": _measure(half_swapped, flag_mismatches=FRAMES // 2),
        "encode_ticks": _measure_encode(rng),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
