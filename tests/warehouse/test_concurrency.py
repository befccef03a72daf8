"""Readers run while writes and compactions happen: no errors, no partial results."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

from tests.warehouse.builders import events, minute_bars
from warehouse import Warehouse

DAY = date(2026, 11, 2)
WRITES = 25


def _read_loop(stop: threading.Event, read: object, seen: list[int], errors: list[BaseException]):
    while not stop.is_set():
        try:
            seen.append(read())  # type: ignore[operator]
        except BaseException as exc:  # the test fails on any error a reader meets
            errors.append(exc)
            return


def test_reader_never_sees_an_error_or_a_partial_write(wh: Warehouse) -> None:
    # Write k adds minutes [15k, 15k+15): after write k the partition holds 15(k+1) rows.
    wh.write("bars", minute_bars("NIFTY", DAY, minutes=15), interval="1m")
    seen_read: list[int] = []
    seen_sql: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    readers = [
        threading.Thread(
            target=_read_loop,
            args=(stop, lambda: wh.read("bars", interval="1m").num_rows, seen_read, errors),
        ),
        threading.Thread(
            target=_read_loop,
            args=(
                stop,
                lambda: wh.query("SELECT count(*) AS n FROM bars_1m")["n"][0].as_py(),
                seen_sql,
                errors,
            ),
        ),
    ]
    for reader in readers:
        reader.start()
    try:
        for k in range(1, WRITES):
            bars = minute_bars("NIFTY", DAY, first_minute=15 * k, minutes=15, close=100.0 + k)
            wh.write("bars", bars, interval="1m")
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    valid = {15 * (k + 1) for k in range(WRITES)}
    assert seen_read and set(seen_read) <= valid
    assert seen_sql and set(seen_sql) <= valid
    # each reader saw the partition only grow
    assert seen_read == sorted(seen_read)
    assert seen_sql == sorted(seen_sql)
    assert wh.read("bars", interval="1m").num_rows == 15 * WRITES


def test_reader_during_append_and_compaction_sees_every_row_once(wh: Warehouse) -> None:
    start = datetime(2026, 11, 20, 4, tzinfo=UTC)
    keys = [f"k{i:03d}" for i in range(60)]
    for i in range(0, 60, 5):
        wh.write("events", events(start, keys[i : i + 5]))
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def distinct_and_total() -> int:
        table = wh.read("events")
        assert len(set(table["key"].to_pylist())) == table.num_rows  # no duplicates
        return table.num_rows

    reader = threading.Thread(target=_read_loop, args=(stop, distinct_and_total, seen, errors))
    reader.start()
    try:
        for _ in range(10):
            wh.compact("events")
            wh.write("events", events(start, keys[:5]))  # re-sent events: same keys
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen and set(seen) == {60}
