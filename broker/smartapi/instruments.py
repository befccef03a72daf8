"""The daily instrument master: streamed download, parse, validate (SPEC §7).

The master is one JSON array (~40 MB, public, no auth). It is streamed to a temporary file
beside the destination and renamed into place only when complete, so a dropped download never
leaves half a master behind. Parsing and validation are :mod:`market.instruments`'; this module
adds the network and the verdict: bad rows and set-level problems are returned for the
warehouse to record, and a file that is not a master at all raises :class:`MasterUnusable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from broker.smartapi.config import SmartApiConfig
from broker.smartapi.errors import BrokerUnavailable, BrokerUnreachable, MasterUnusable, RetryLater
from market.instruments import (
    Instrument,
    MasterFormatError,
    Problem,
    TradingCalendar,
    parse_master_json,
    validate_master,
)

log = logging.getLogger(__name__)

MASTER_FILE_NAME = "OpenAPIScripMaster.json"
# ~40 MB on a slow home line: give the whole download, retries included, ten minutes.
MASTER_DEADLINE_S = 600.0
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class MasterDownload:
    """A master file on disk and what it took to get it."""

    path: Path
    size: int
    sha256: str
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class InstrumentMaster:
    """A parsed, validated master: the instruments, and every problem found along the way."""

    instruments: tuple[Instrument, ...]
    problems: tuple[Problem, ...]
    source: MasterDownload | None = None

    @property
    def row_problems(self) -> tuple[Problem, ...]:
        """Problems of single rows (skipped)."""
        return tuple(p for p in self.problems if p.row is not None)

    @property
    def set_problems(self) -> tuple[Problem, ...]:
        """Problems of the set as a whole (duplicates, off-grid strikes …)."""
        return tuple(p for p in self.problems if p.row is None)


async def download_master(
    url: str,
    destination: Path,
    *,
    http: httpx.AsyncClient | None = None,
    config: SmartApiConfig | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> MasterDownload:
    """Stream the master from ``url`` to ``destination`` atomically, retrying transient failures."""
    cfg = config or SmartApiConfig()
    timeout = httpx.Timeout(cfg.timeout_s, read=max(60.0, cfg.timeout_s))
    client = http or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
    try:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetryLater),
            wait=wait_exponential_jitter(
                multiplier=cfg.backoff_initial_s,
                max=cfg.backoff_max_s,
                jitter=cfg.backoff_initial_s,
            ),
            stop=stop_after_attempt(cfg.max_retries + 1) | stop_before_delay(MASTER_DEADLINE_S),
            sleep=sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                size, digest = await _stream_to(client, url, destination)
    finally:
        if http is None:
            await client.aclose()
    fetched_at = (clock or (lambda: datetime.now(UTC)))()
    log.info("instrument master downloaded: %d bytes to %s", size, destination)
    return MasterDownload(destination, size, digest, fetched_at)


async def _stream_to(client: httpx.AsyncClient, url: str, destination: Path) -> tuple[int, str]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".master-", suffix=".part", dir=destination.parent)
    temp = Path(temp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                async with client.stream("GET", url, headers={"Accept": "application/json"}) as rsp:
                    if rsp.status_code >= 500 or rsp.status_code == 429:
                        raise BrokerUnavailable(
                            "instrument master: server error", http_status=rsp.status_code
                        )
                    if rsp.status_code != 200:
                        raise MasterUnusable(
                            "instrument master: download refused", http_status=rsp.status_code
                        )
                    async for chunk in rsp.aiter_bytes(_CHUNK):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise BrokerUnreachable(
                    f"instrument master: cannot connect ({type(exc).__name__})"
                ) from exc
            except httpx.TransportError as exc:  # timeouts and dropped connections included
                raise BrokerUnavailable(
                    f"instrument master: download broke off after {size} bytes "
                    f"({type(exc).__name__})"
                ) from exc
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return size, digest.hexdigest()


def load_master(
    path: Path, calendar: TradingCalendar, *, source: MasterDownload | None = None
) -> InstrumentMaster:
    """Parse and validate a master file; MasterUnusable when it is not a master at all."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MasterUnusable(f"instrument master {path}: cannot be read ({exc.strerror})") from exc
    return parse_master(data, calendar, source=source)


def parse_master(
    data: bytes, calendar: TradingCalendar, *, source: MasterDownload | None = None
) -> InstrumentMaster:
    """Parse and validate master bytes (see :func:`load_master`)."""
    try:
        parsed = parse_master_json(data)
    except MasterFormatError as exc:
        raise MasterUnusable(f"instrument master: {exc}") from exc
    if not parsed.instruments:
        raise MasterUnusable(
            f"instrument master has no usable rows ({len(parsed.problems)} rejected)"
        )
    problems = (*parsed.problems, *validate_master(parsed.instruments, calendar))
    if problems:
        log.warning(
            "instrument master: %d instruments, %d problems (first: %s)",
            len(parsed.instruments),
            len(problems),
            problems[0],
        )
    return InstrumentMaster(parsed.instruments, tuple(problems), source)


async def fetch_master(
    url: str,
    destination: Path,
    calendar: TradingCalendar,
    *,
    http: httpx.AsyncClient | None = None,
    config: SmartApiConfig | None = None,
) -> InstrumentMaster:
    """Download, parse and validate today's master in one go."""
    download = await download_master(url, destination, http=http, config=config)
    return await asyncio.to_thread(load_master, destination, calendar, source=download)
