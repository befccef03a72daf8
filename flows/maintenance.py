"""The ``maintenance`` flow: keep the warehouse lean and backed up, and look ahead for trouble.

Steps, each a task with its summary in the Prefect UI:

1. retention — drop partitions older than ``[retention]`` allows (ticks, intraday bars);
2. compaction — fold partitions made of several files into one;
3. backup — a dated snapshot ``<data>/backups/YYYY-MM-DD.tar``, keeping the newest
   ``keep_backups``;
4. disk space — warn when less than ``min_free_gb`` is free where the data lives;
5. calendar coverage — warn when the NSE holidays of this year or next are not in the
   calendar (without them every weekday looks like a trading day);
6. broker session — warn when the next session will need a person to log in
   (no TOTP secret on this machine) or credentials are missing.

With ``dry_run`` nothing is removed, rewritten or written: the report says what would be.
Warnings go to the notifier as one alert. The report is ``<data>/reports/maintenance-
YYYY-MM-DD.md`` and holds the restore instructions.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.notify import Alert, notify_on_failure, send_alert
from flows.reports import markdown_table, publish_markdown, publish_table, write_report
from flows.tasks.settings import flow_warehouse, load_flow_settings
from flows.trading_days import today_ist, trading_calendar

if TYPE_CHECKING:
    from optbot.config import Settings
    from warehouse import Warehouse

GB = 1024**3

RESTORE_INSTRUCTIONS = """\
To restore a snapshot (stop the worker and flows first):

```
mkdir restored && tar -xf {backups}/YYYY-MM-DD.tar -C restored
mv {data} {data}.before-restore && mv restored {data}
optbot warehouse check --data-dir {data}   # rebuilds the DuckDB catalog views
```
"""


@dataclass(slots=True)
class StepResult:
    """One maintenance step: what it did (or would do) and anything worth a warning."""

    step: str
    summary: str
    warnings: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


# --------------------------------------------------------------------------- tasks


@task(name="retention", cache_policy=NO_CACHE)
def retention_step(wh: Warehouse, today: date, settings: Settings, dry_run: bool) -> StepResult:
    """Plan, and unless dry-run carry out, retention per ``[retention]``."""
    plan = wh.retention(
        today,
        dry_run=dry_run,
        ticks_days=settings.retention.ticks_days,
        intraday_bars_months=settings.retention.intraday_bars_months,
    )
    per_view: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in plan.files:
        bucket = per_view[item.view]
        bucket[0] += 1
        bucket[1] += item.rows or 0
        bucket[2] += item.bytes
    verb = "would remove" if dry_run else "removed"
    rows = [
        {"view": view, "files": f, "rows": r, "bytes": b}
        for view, (f, r, b) in sorted(per_view.items())
    ]
    summary = (
        f"{verb} {len(plan.files)} file(s), {plan.total_rows} rows, {_size(plan.total_bytes)}"
        if plan.files
        else "nothing has expired"
    )
    return StepResult("retention", summary, rows=rows)


@task(name="compaction", cache_policy=NO_CACHE)
def compaction_step(wh: Warehouse, dry_run: bool) -> StepResult:
    """Merge multi-file partitions (dry-run: count them)."""
    from warehouse import DATASETS

    if dry_run:
        pending: dict[str, int] = {}
        for name in DATASETS:
            per_folder: dict[Path, int] = defaultdict(int)
            for path in wh.files(name):
                per_folder[path.parent] += 1
            count = sum(1 for n in per_folder.values() if n > 1)
            if count:
                pending[name] = count
        rows = [{"dataset": k, "partitions": v} for k, v in sorted(pending.items())]
        total = sum(pending.values())
        summary = f"would compact {total} partition(s)" if total else "nothing to compact"
        return StepResult("compaction", summary, rows=rows)
    report = wh.compact()
    summary = (
        f"compacted {len(report.partitions)} partition(s): {report.files_before} → "
        f"{report.files_after} files"
    )
    warnings = [f"quarantined {q.path}: {q.reason}" for q in report.quarantine.files]
    return StepResult("compaction", summary, warnings=warnings)


@task(name="backup", cache_policy=NO_CACHE)
def backup_step(root: Path, today: date, keep: int, dry_run: bool) -> StepResult:
    """Dated tar snapshot of the datasets and HALT markers; prune beyond ``keep``."""
    from warehouse.backup import plan_backup, take_backup

    plan = plan_backup(root, today, keep=keep) if dry_run else take_backup(root, today, keep=keep)
    pruned = ", ".join(p.name for p in plan.prune) or "none"
    if dry_run:
        summary = (
            f"would write {plan.target.name} ({len(plan.files)} files, {_size(plan.bytes)}); "
            f"would prune: {pruned}"
        )
    else:
        summary = (
            f"wrote {plan.target} ({len(plan.files)} files, {_size(plan.archive_bytes)}); "
            f"pruned: {pruned}"
        )
    return StepResult(
        "backup",
        summary,
        rows=[{"snapshot": plan.target.name, "files": len(plan.files), "pruned": pruned}],
    )


@task(name="disk-space", cache_policy=NO_CACHE)
def disk_step(root: Path, min_free_gb: float) -> StepResult:
    """Free space on the data directory's file system against the threshold."""
    usage = shutil.disk_usage(root)
    summary = f"{_size(usage.free)} free of {_size(usage.total)}"
    warnings = []
    if usage.free < min_free_gb * GB:
        warnings.append(
            f"low disk space at {root}: {_size(usage.free)} free, below the "
            f"{min_free_gb:g} GiB threshold"
        )
    return StepResult("disk", summary, warnings=warnings, rows=[{"free_bytes": usage.free}])


@task(name="calendar-coverage", cache_policy=NO_CACHE)
def calendar_step(settings: Settings, today: date) -> StepResult:
    """Is there holiday data for this year and next?"""
    calendar = trading_calendar(settings)
    years = (today.year, today.year + 1)
    missing = [year for year in years if not calendar.covers(year)]
    warnings = [
        f"the NSE calendar has no holidays for {year}: add them to a calendar override file "
        f"([[holiday]] entries and [coverage] years = [{year}]) or update the calendar package"
        for year in missing
    ]
    summary = f"covered: {', '.join(str(y) for y in years if y not in missing) or 'none'}" + (
        f"; missing: {', '.join(map(str, missing))}" if missing else ""
    )
    return StepResult("calendar", summary, warnings=warnings)


@task(name="broker-session", cache_policy=NO_CACHE)
def session_step(settings: Settings, today: date) -> StepResult:
    """Will the next session log in by itself, or does a person need to run ``optbot login``?"""
    from flows.broker_session import broker_session
    from optbot.config import ConfigError

    if settings.mode == "replay":
        return StepResult("session", "replay mode: no broker session needed")
    if settings.broker.target == "sim":
        return StepResult("session", "simulator: the demo login is automatic")
    try:
        session = broker_session(settings)
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        return StepResult(
            "session",
            "credentials missing",
            warnings=[f"the next session cannot log in: {problems}"],
        )
    next_day = trading_calendar(settings).next_trading_day(today)
    tokens = session.store.load(session.client_code)
    now = datetime.now(UTC)
    stored = (
        f"stored session valid until {tokens.expires_at:%Y-%m-%d %H:%M} UTC"
        if tokens is not None and tokens.valid_at(now)
        else "no valid stored session"
    )
    if session.credentials.totp_secret is not None:
        return StepResult(
            "session", f"{stored}; the next session ({next_day}) logs in by itself (TOTP)"
        )
    return StepResult(
        "session",
        f"{stored}; no TOTP secret on this machine",
        warnings=[
            f"a fresh login is needed for the session of {next_day.isoformat()}: run "
            "`optbot login` that morning before 09:00 IST (sessions end at midnight IST)"
        ],
    )


# --------------------------------------------------------------------------- flow


def render_report(today: date, dry_run: bool, results: list[StepResult], root: Path) -> str:
    """The maintenance report in Markdown."""
    title = f"# Maintenance {today.isoformat()}" + (" (dry run)" if dry_run else "")
    lines = [title, ""]
    lines.append(markdown_table(["step", "result"], [(r.step, r.summary) for r in results]))
    warnings = [w for r in results for w in r.warnings]
    lines += ["", "## Warnings", ""]
    lines += [f"* {w}" for w in warnings] if warnings else ["None."]
    lines += ["", "## Restore", ""]
    lines.append(RESTORE_INSTRUCTIONS.format(backups=root / "backups", data=root))
    return "\n".join(lines)


@flow(name="maintenance", on_failure=[notify_on_failure])
def maintenance_flow(
    dry_run: bool = False,
    keep_backups: int = 7,
    min_free_gb: float = 5.0,
    today: date | None = None,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Retention, compaction, backup and health checks; ``dry_run`` changes nothing."""
    if keep_backups < 1:
        raise ValueError(f"keep_backups must be at least 1, got {keep_backups}")
    settings = load_flow_settings(config_path, data_dir)
    day = today or today_ist()
    wh = flow_warehouse(settings)
    root = wh.root
    root.mkdir(parents=True, exist_ok=True)
    results = [
        retention_step(wh, day, settings, dry_run),
        compaction_step(wh, dry_run),
        backup_step(root, day, keep_backups, dry_run),
        disk_step(root, min_free_gb),
        calendar_step(settings, day),
        session_step(settings, day),
    ]
    logger = get_run_logger()
    for result in results:
        logger.info("%s: %s", result.step, result.summary)
        if result.rows:
            publish_table(f"maintenance-{result.step}", result.rows, result.summary)
    markdown = render_report(day, dry_run, results, root)
    report = "" if dry_run else str(write_report(root, "maintenance", day, markdown))
    publish_markdown("maintenance-report", markdown, f"Maintenance {day}")
    warnings = [w for r in results for w in r.warnings]
    for warning in warnings:
        logger.warning("%s", warning)
    alerts_failed: list[str] = []
    if warnings:
        alerts_failed = send_alert(
            Alert(
                subject=f"maintenance {day.isoformat()}: {len(warnings)} warning(s)",
                body="\n".join(f"- {w}" for w in warnings),
                severity="warning",
                source="maintenance",
                links=(report,) if report else (),
            ),
            settings,
        )
    return {
        "today": day.isoformat(),
        "dry_run": dry_run,
        "steps": {r.step: r.summary for r in results},
        "warnings": warnings,
        "report": report,
        "alerts_failed": alerts_failed,
    }
