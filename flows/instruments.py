"""The ``instruments`` flow: refresh the day's instrument snapshot from the broker's master.

Download the master (public, no login), parse it, keep the configured underlyings' index or
equity, futures and options plus INDIA VIX, purge contracts that have expired, validate the
kept subset (``market.instruments.validate_master``) and judge the file as a whole
(``market.universe.judge_master``). An accepted master becomes the dated snapshot in the
``instruments`` dataset. A refused one is kept aside as ``<data>/rejected/master-YYYYMMDD.json``
with a report beside it, nothing is written, and the previous snapshot stays in force; the run
still completes, saying so in its summary and its Markdown artifact, because the data the rest
of the night needs is still there.

Run it: ``optbot flow instruments`` (daily, before the open), or in Python
``instruments_flow(underlyings=["NIFTY"], as_of=date(2026, 11, 20))``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.broker_session import retry_if_broker_flaky, run_async
from flows.notify import Alert, notify_on_failure, send_alert
from flows.tasks.instrument_snapshot import snapshot_date_in_force, write_snapshot
from flows.tasks.settings import flow_warehouse, load_flow_settings
from market.calendar import IST
from market.instruments import Instrument, Problem, parse_master, validate_master
from market.universe import (
    DEFAULT_MAX_BAD_ROW_SHARE,
    MasterVerdict,
    UniverseSelection,
    judge_master,
    select_universe,
)

MASTER_DOWNLOAD = Path("downloads") / "OpenAPIScripMaster.json"
REJECTED_DIR = "rejected"
_REPORT_PROBLEMS = 20  # problems listed in a report; the rest are counted


@dataclass(frozen=True)
class MasterReview:
    """What reading and judging one master file found."""

    selection: UniverseSelection
    verdict: MasterVerdict
    total_rows: int

    @property
    def kept(self) -> tuple[Instrument, ...]:
        return self.selection.kept


def _today_ist() -> date:
    return datetime.now(IST).date()


# --------------------------------------------------------------------------- tasks


@task(
    name="download-master",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_broker_flaky,
)
def download_master_file(master_url: str, destination: Path, settings: Any) -> dict[str, Any]:
    """Stream today's master to ``destination`` (atomically); returns its size and digest."""
    from broker.smartapi.config import SmartApiConfig
    from broker.smartapi.instruments import download_master

    config = SmartApiConfig.from_settings(settings.broker)

    async def fetch() -> Any:
        return await download_master(master_url, destination, config=config)

    done = run_async(fetch)
    get_run_logger().info("instrument master: %d bytes, sha256 %s", done.size, done.sha256[:12])
    return {"path": str(done.path), "bytes": done.size, "sha256": done.sha256}


@task(name="review-master", cache_policy=NO_CACHE, persist_result=False)
def review_master(
    master_path: Path, underlyings: list[str], as_of: date, max_bad_row_share: Decimal
) -> MasterReview:
    """Parse, cut the universe, validate it and judge the file."""
    from market.calendar import default_calendar

    try:
        records = json.loads(master_path.read_bytes())
    except ValueError as exc:
        return _unreadable(underlyings, as_of, f"the master is not valid JSON ({exc})")
    if not isinstance(records, list):
        return _unreadable(underlyings, as_of, "the master is not a JSON array of records")
    parsed = parse_master(records)
    names = {name.upper() for name in underlyings}
    bad_in_universe = [
        problem
        for problem in parsed.problems
        if problem.row is not None and _row_name(records, problem.row) in names
    ]
    selection = select_universe(parsed.instruments, underlyings, as_of)
    subset_problems = validate_master(selection.kept, default_calendar())
    verdict = judge_master(
        selection,
        subset_problems,
        total_rows=len(records),
        bad_rows=len(parsed.problems),
        bad_rows_in_universe=bad_in_universe,
        max_bad_row_share=max_bad_row_share,
    )
    return MasterReview(selection, verdict, len(records))


def _unreadable(underlyings: list[str], as_of: date, reason: str) -> MasterReview:
    selection = select_universe((), underlyings, as_of)
    return MasterReview(selection, MasterVerdict(False, (reason,), (), 0, 0), 0)


def _row_name(records: list[Any], index: int) -> str:
    row = records[index]
    name = row.get("name") if isinstance(row, dict) else None
    return name.upper() if isinstance(name, str) else ""


@task(name="write-instrument-snapshot", cache_policy=NO_CACHE)
def write_instrument_snapshot(data_dir: Path, kept: tuple[Instrument, ...], as_of: date) -> int:
    """Write the accepted subset as the snapshot dated ``as_of``."""
    from warehouse import Warehouse

    return write_snapshot(Warehouse(data_dir), kept, as_of)


@task(name="keep-master-aside", cache_policy=NO_CACHE)
def keep_master_aside(data_dir: Path, master_path: Path, as_of: date, report: str) -> str:
    """Copy a refused master to ``<data>/rejected/master-YYYYMMDD.json`` with its report."""
    folder = data_dir / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"master-{as_of:%Y%m%d}"
    kept_copy = folder / f"{stem}.json"
    temp = folder / f".{stem}.json.tmp"
    shutil.copyfile(master_path, temp)
    temp.replace(kept_copy)
    (folder / f"{stem}.report.md").write_text(report, encoding="utf-8")
    return str(kept_copy)


# --------------------------------------------------------------------------- report


def render_report(
    review: MasterReview, as_of: date, in_force: date | None, rejected_path: str | None
) -> str:
    """The run's Markdown report (artifact and, for a refused master, the file beside it)."""
    verdict = review.verdict
    selection = review.selection
    status = "accepted" if verdict.accepted else "REFUSED"
    lines = [
        f"# Instrument master for {as_of.isoformat()}: {status}",
        "",
        f"* rows in the master: {review.total_rows} "
        f"({verdict.bad_rows} unreadable, {verdict.bad_row_share:.2%})",
        f"* instruments kept: {len(selection.kept)}; expired contracts purged: "
        f"{selection.expired_purged}",
        f"* snapshot in force: {in_force.isoformat() if in_force else 'none'}",
    ]
    if rejected_path:
        lines.append(f"* master kept aside at `{rejected_path}`")
    lines += ["", "| underlying | instruments |", "|---|---:|"]
    names = sorted({inst.name for inst in selection.kept})
    lines += [f"| {name} | {selection.count(name)} |" for name in names]
    if verdict.reasons:
        lines += ["", "## Why it was refused", ""]
        lines += [f"* {reason}" for reason in verdict.reasons]
    if verdict.subset_problems:
        lines += ["", "## Problems in the kept instruments", ""]
        shown = verdict.subset_problems[:_REPORT_PROBLEMS]
        lines += [f"* {_problem_text(problem)}" for problem in shown]
        hidden = len(verdict.subset_problems) - len(shown)
        if hidden:
            lines.append(f"* … and {hidden} more")
    return "\n".join(lines) + "\n"


def _problem_text(problem: Problem) -> str:
    return str(problem).replace("|", "\\|")


# --------------------------------------------------------------------------- flow


@flow(name="instruments", log_prints=False, on_failure=[notify_on_failure])
def instruments_flow(
    underlyings: list[str] | None = None,
    as_of: date | None = None,
    max_bad_row_share: float = float(DEFAULT_MAX_BAD_ROW_SHARE),
    master_file: str | None = None,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Refresh the dated instrument snapshot; a master that fails validation is kept aside.

    ``underlyings`` defaults to ``[universe] underlyings``; ``as_of`` (the snapshot's date, and
    the day before which contracts count as expired) to today in IST. ``master_file`` checks a
    saved master instead of downloading one (e.g. a rejected file after a calendar fix).
    """
    logger = get_run_logger()
    settings = load_flow_settings(config_path, data_dir)
    names = list(underlyings or settings.universe.underlyings)
    day = as_of or _today_ist()
    data = Path(settings.data.dir)
    if master_file:
        path = Path(master_file)
        source = str(path)
    else:
        fetched = download_master_file(settings.broker.master_url, data / MASTER_DOWNLOAD, settings)
        path = Path(fetched["path"])
        source = settings.broker.master_url
    review = review_master(path, names, day, Decimal(str(max_bad_row_share)))
    wh = flow_warehouse(settings)

    rejected_path: str | None = None
    written = 0
    if review.verdict.accepted:
        written = write_instrument_snapshot(data, review.kept, day)
        logger.info("snapshot %s written: %d instruments", day.isoformat(), written)
    else:
        draft = render_report(review, day, snapshot_date_in_force(wh, day), None)
        rejected_path = keep_master_aside(data, path, day, draft)
        logger.error(
            "instrument master refused (%s); kept aside at %s, previous snapshot stays",
            "; ".join(review.verdict.reasons),
            rejected_path,
        )
        # The run still completes (yesterday's snapshot stays in force), so a person must be told.
        send_alert(
            Alert(
                subject=f"instrument master of {day.isoformat()} refused",
                body="; ".join(review.verdict.reasons),
                source="instruments",
                links=(rejected_path,),
            ),
            settings,
        )
    in_force = snapshot_date_in_force(wh, day)
    report = render_report(review, day, in_force, rejected_path)
    create_markdown_artifact(
        markdown=report, key="instruments-report", description=f"Instrument master {day}"
    )
    return {
        "status": "accepted" if review.verdict.accepted else "rejected",
        "as_of": day.isoformat(),
        "source": source,
        "snapshot_in_force": in_force.isoformat() if in_force else None,
        "instruments_written": written,
        "kept": len(review.kept),
        "by_underlying": {n: review.selection.count(n) for n in sorted(set(names))},
        "expired_purged": review.selection.expired_purged,
        "total_rows": review.total_rows,
        "bad_rows": review.verdict.bad_rows,
        "reasons": list(review.verdict.reasons),
        "rejected_path": rejected_path,
    }
