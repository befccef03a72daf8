"""Readers run while writes and compactions happen: no errors, no partial results.

Writers in many threads and several processes at once each end with a fresh catalog.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.builders import events, minute_bars
from warehouse import BAR_INTERVALS, CatalogBusy, Warehouse

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


# --------------------------------------------------------------------------- concurrent writers

WRITER_THREADS = 10
BARS_PER_WRITE = 5


def _series(prefix: str, index: int) -> tuple[str, str]:
    """(interval, symbol) of one writer: spread over every bars view, a symbol each."""
    return BAR_INTERVALS[index % len(BAR_INTERVALS)], f"{prefix}{index:02d}"


def _write_at_once(root: Path, prefix: str, threads: int) -> list[bool]:
    """Each thread writes its own series at the same moment; returns catalog_refreshed per write."""
    wh = Warehouse(root)
    start = threading.Barrier(threads)
    refreshed: list[bool] = []
    errors: list[BaseException] = []

    def write(index: int) -> None:
        interval, symbol = _series(prefix, index)
        bars = minute_bars(symbol, DAY, minutes=BARS_PER_WRITE)
        start.wait()
        try:
            refreshed.append(wh.write("bars", bars, interval=interval).catalog_refreshed)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return refreshed


def _writer_process(root: str, prefix: str, threads: int, go: object, out: object) -> None:
    """A process of ``_write_at_once``: reports its results and warehouse warnings on ``out``."""
    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logging.getLogger("warehouse").addHandler(handler)
    go.wait()  # type: ignore[attr-defined]
    refreshed = _write_at_once(Path(root), prefix, threads)
    out.put((prefix, refreshed, warnings))  # type: ignore[attr-defined]


def _catalog_series(root: Path) -> dict[str, dict[str, int]]:
    """Rows per symbol in each bars view, read through the catalog file by plain DuckDB."""
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        found: dict[str, dict[str, int]] = {}
        for interval in BAR_INTERVALS:
            rows = con.execute(
                f"SELECT symbol, count(*) FROM bars_{interval} GROUP BY symbol"
            ).fetchall()
            found[interval] = {str(symbol): int(n) for symbol, n in rows}
        return found
    finally:
        con.close()


def _expected(prefixes: list[str], threads: int) -> dict[str, dict[str, int]]:
    expected: dict[str, dict[str, int]] = {interval: {} for interval in BAR_INTERVALS}
    for prefix in prefixes:
        for index in range(threads):
            interval, symbol = _series(prefix, index)
            expected[interval][symbol] = BARS_PER_WRITE
    return expected


def test_writers_in_many_threads_all_refresh_the_catalog(
    wh: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    # The first write of each interval turns its empty placeholder view into one over the
    # files: a refresh skipped there would leave that view empty.
    with caplog.at_level(logging.WARNING, logger="warehouse"):
        refreshed = _write_at_once(wh.root, "T", WRITER_THREADS)
    assert refreshed == [True] * WRITER_THREADS
    assert [r.getMessage() for r in caplog.records] == []
    assert _catalog_series(wh.root) == _expected(["T"], WRITER_THREADS)


def test_writers_in_two_processes_all_refresh_the_catalog(wh: Warehouse) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    go = ctx.Barrier(2)
    out = ctx.Queue()
    prefixes = ["P", "Q"]
    processes = [
        ctx.Process(target=_writer_process, args=(str(wh.root), prefix, WRITER_THREADS, go, out))
        for prefix in prefixes
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    for prefix, refreshed, warnings in results:
        assert refreshed == [True] * WRITER_THREADS, prefix
        assert warnings == [], prefix
    assert _catalog_series(wh.root) == _expected(prefixes, WRITER_THREADS)


def test_a_refresh_waits_for_the_catalog_lock_and_gives_up_after_the_timeout(
    wh: Warehouse,
) -> None:
    wh.refresh_catalog()
    impatient = Warehouse(wh.root, catalog_timeout_s=0.2)
    # another refresher (here: another open file description) holds <data>/.catalog.lock
    fd = os.open(wh.root / ".catalog.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        report = impatient.write("bars", minute_bars("NIFTY", DAY, minutes=5), interval="1m")
        assert not report.catalog_refreshed
        with pytest.raises(CatalogBusy, match=r"\.catalog\.lock"):
            impatient.refresh_catalog()
    finally:
        os.close(fd)
    assert impatient.write(
        "bars", minute_bars("NIFTY", DAY, minutes=5), interval="1m"
    ).catalog_refreshed
    assert _catalog_series(wh.root)["1m"] == {"NIFTY": 5}
