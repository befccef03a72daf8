"""The ``intraday-worker`` flow: at 09:00 on a trading day, launch the streaming worker.

The one place where the batch side starts the streaming side (DESIGN §2). It decides only
whether to launch:

* the date must be in a year the NSE calendar covers — otherwise it refuses loudly, since
  without the holidays every weekday would look like a trading day;
* on a holiday or weekend it ends at once, saying why;
* while a HALT marker is active (a reconciliation break nobody has acknowledged) it does not
  launch, and alerts: ``optbot ack <id>`` after review clears the way;
* otherwise it calls the worker's public entry point, ``streaming.worker.main``, passing the
  keyword arguments of ``mode``, ``session_date``, ``config_path`` and ``data_dir`` that
  ``main`` accepts (a coroutine function is run to completion). If that module is not
  installed, the run fails with "streaming worker not installed".
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.notify import Alert, notify_on_failure, send_alert
from flows.tasks.settings import load_flow_settings
from flows.trading_days import today_ist, trading_calendar

WORKER_MODULE = "streaming.worker"
WORKER_ENTRY = "main"


class CalendarNotCovered(RuntimeError):
    """The calendar has no holiday data for the year asked about."""


class WorkerNotInstalled(RuntimeError):
    """``streaming.worker.main`` cannot be imported."""


def load_worker_entry() -> Any:
    """``streaming.worker.main``, or ``WorkerNotInstalled`` saying what is missing."""
    try:
        module = importlib.import_module(WORKER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in ("streaming", WORKER_MODULE):
            raise WorkerNotInstalled(
                f"streaming worker not installed: module {WORKER_MODULE!r} is missing"
            ) from None
        raise
    entry = getattr(module, WORKER_ENTRY, None)
    if not callable(entry):
        raise WorkerNotInstalled(
            f"streaming worker not installed: {WORKER_MODULE} has no callable {WORKER_ENTRY!r}"
        )
    return entry


def call_worker(entry: Any, offered: dict[str, Any]) -> Any:
    """Call the entry point with the offered keywords it declares (all of them for ``**kw``)."""
    parameters = inspect.signature(entry).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        kwargs = dict(offered)
    else:
        names = {p.name for p in parameters}
        kwargs = {k: v for k, v in offered.items() if k in names}
    result = entry(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


@task(name="session-check", cache_policy=NO_CACHE)
def session_check(settings: Any, day: date) -> tuple[bool, str]:
    """(trading day?, why) from the calendar; raises when the year is not covered."""
    calendar = trading_calendar(settings)
    if not calendar.covers(day.year):
        raise CalendarNotCovered(
            f"the NSE calendar has no holiday data for {day.year}: refusing to guess whether "
            f"{day.isoformat()} is a trading day. Add {day.year}'s holidays to a calendar "
            f"override file ([[holiday]] entries and [coverage] years = [{day.year}])."
        )
    if calendar.is_trading_day(day):
        return True, f"{day.isoformat()} ({day:%A}) is a trading day"
    reason = "a weekend" if day.weekday() >= 5 else "an NSE holiday"
    following = calendar.next_trading_day(day)
    return False, (
        f"{day.isoformat()} ({day:%A}) is {reason}; the next session is {following.isoformat()}"
    )


@flow(name="intraday-worker", on_failure=[notify_on_failure])
def intraday_worker_flow(
    session_date: date | None = None,
    mode: str | None = None,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Launch the streaming worker for a trading session (none on holidays or under a HALT)."""
    from warehouse.halt import active_halts

    logger = get_run_logger()
    settings = load_flow_settings(config_path, data_dir)
    day = session_date or today_ist()
    run_mode = mode or settings.mode
    trading, why = session_check(settings, day)
    if not trading:
        logger.info("not launching the worker: %s", why)
        return {"session_date": day.isoformat(), "status": "closed", "reason": why}

    halts = active_halts(settings.data.dir)
    if halts:
        listed = "; ".join(f"{h.id}: {h.reason}" for h in halts)
        reason = f"{len(halts)} active HALT(s): {listed}"
        logger.error("not launching the worker: %s", reason)
        send_alert(
            Alert(
                subject=f"worker not started for {day.isoformat()}: trading is halted",
                body=reason
                + "\nReview the report, then clear each with: "
                + ", ".join(f"optbot ack {h.id}" for h in halts),
                severity="critical",
                source="intraday-worker",
            ),
            settings,
        )
        return {
            "session_date": day.isoformat(),
            "status": "halted",
            "reason": reason,
            "halts": [h.id for h in halts],
        }

    entry = load_worker_entry()
    logger.info("launching the streaming worker (%s mode) for %s", run_mode, day)
    result = call_worker(
        entry,
        {
            "mode": run_mode,
            "session_date": day,
            "config_path": Path(config_path) if config_path else None,
            "data_dir": settings.data.dir,
        },
    )
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        raise RuntimeError(f"the streaming worker exited with status {result}")
    return {
        "session_date": day.isoformat(),
        "status": "ran",
        "reason": why,
        "exit": result if isinstance(result, int | str | None) else str(result),
    }
