"""``optbot demo``: the whole evening pipeline against the local exchange simulator.

It starts the simulator on a free loopback port, points the configuration at it, runs the nightly
flows (instruments, history, gaps, categorise, maintenance) on Prefect's temporary local API, and
writes a Markdown report. Every step it cannot run yet is listed as skipped, with the reason — the
demo never pretends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

# Parts of the mission the demo will run once they exist; each is reported as skipped until then.
NOT_BUILT_YET = (
    ("paper session", "the streaming worker (streaming/) is not built yet"),
    ("session reconciliation", "needs a paper session's journal to reconcile"),
    ("trading report", "needs a paper session's trades"),
)


@dataclass(frozen=True)
class DemoStep:
    """One line of the demo report."""

    name: str
    status: str  # completed | failed | skipped
    detail: str


def _prefect_env() -> None:
    # Prefect's temporary local API: no account, no network, no telemetry.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@contextlib.contextmanager
def _config_pointing_at(sim: Any, data_dir: Path, underlyings: list[str]) -> Iterator[None]:
    """Environment overrides so every settings load in this process targets the simulator.

    The previous values come back afterwards, so a caller in the same process (tests) is
    left as it was.
    """
    overrides = {
        "OPTBOT_BROKER__TARGET": "sim",
        "OPTBOT_MODE": "paper",
        "OPTBOT_SIM__HOST": "127.0.0.1",
        "OPTBOT_SIM__PORT": str(sim.port),
        "OPTBOT_DATA__DIR": str(data_dir),
        "OPTBOT_UNIVERSE__UNDERLYINGS": ",".join(underlyings),
    }
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _nightly(sim: Any, session: date, data_dir: Path) -> list[DemoStep]:
    """Run the nightly flows against the simulator; one report line per step."""
    from flows.nightly import nightly_flow

    # The simulator replays `session` from 09:15, so the nightly run sees the world as of the
    # evening before: data up to the previous trading day, categories for `session`.
    evening = sim.model.calendar.previous_trading_day(session).isoformat()
    state = nightly_flow(
        data_dir=str(data_dir),
        step_parameters={
            "instruments": {"as_of": session.isoformat()},
            "history": {"end_date": evening},
            "gaps": {"as_of": evening},
            "categorise": {"as_of": evening},
        },
        return_state=True,
    )
    if not state.is_completed():
        return [DemoStep("nightly", "failed", (state.message or "failed")[:400])]
    return [
        DemoStep(f"nightly: {row['step']}", row["status"], row["summary"])
        for row in state.result()["steps"]
    ]


def _warehouse_summary(data_dir: Path) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    from warehouse import Warehouse

    wh = Warehouse(data_dir)
    counts: list[tuple[str, int]] = []
    for view in ("instruments", "bars_1d", "bars_1h", "bars_1m", "gaps", "categories"):
        try:
            n = wh.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py()
        except Exception as exc:  # a view that cannot be read is itself worth reporting
            n = -1
            typer.echo(f"  warning: could not count {view}: {exc}", err=True)
        counts.append((view, int(n)))
    try:
        categories = wh.query(
            "SELECT session_date, underlying, category, round(adx, 1) AS adx, reason "
            "FROM categories WHERE session_date = (SELECT max(session_date) FROM categories) "
            "ORDER BY underlying"
        ).to_pylist()
    except Exception:
        categories = []
    return counts, categories


def _report(
    path: Path,
    session: date,
    sim_url: str,
    steps: list[DemoStep],
    counts: list[tuple[str, int]],
    categories: list[dict[str, Any]],
) -> None:
    lines = [
        f"# optbot demo — simulated session {session.isoformat()}",
        "",
        f"Generated {datetime.now().astimezone().isoformat(timespec='seconds')} against the local "
        f"exchange simulator at {sim_url}.",
        "",
        "## Steps",
        "",
        "| step | status | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {s.name} | {s.status} | {s.detail.replace('|', '/')} |" for s in steps]
    lines += ["", "## Warehouse", "", "| view | rows |", "|---|---|"]
    lines += [f"| {view} | {n if n >= 0 else 'unreadable'} |" for view, n in counts]
    lines += ["", "## Categories for the next session", ""]
    if categories:
        lines += ["| session | underlying | category | ADX | reason |", "|---|---|---|---|---|"]
        lines += [
            f"| {c['session_date']} | {c['underlying']} | {c['category']} | {c['adx']} | "
            f"{c['reason']} |"
            for c in categories
        ]
    else:
        lines.append("No categories were written.")
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo's warehouse and report go.")
    ] = Path("data/demo"),
    seed: Annotated[int, typer.Option(help="Simulator seed: same seed, same market.")] = 7,
    underlying: Annotated[
        list[str] | None,
        typer.Option("--underlying", help="Underlyings to include (repeatable)."),
    ] = None,
) -> None:
    """Run the evening pipeline against the built-in exchange simulator and write a report.

    Example: optbot demo --data-dir data/demo --seed 7
    """
    _prefect_env()
    from broker.sim.server import SimConfig, SimServer

    underlyings = [u.upper() for u in (underlying or ["NIFTY", "BANKNIFTY", "FINNIFTY"])]
    data_dir = data_dir.resolve()
    steps: list[DemoStep] = []

    typer.echo("starting the exchange simulator on 127.0.0.1 …")
    with SimServer(SimConfig(host="127.0.0.1", port=0, seed=seed, speed=60.0)) as sim:
        session, sim_url = sim.model.session_date, sim.rest_url
        typer.echo(f"  simulator at {sim.rest_url} (session {session}, seed {seed})")
        steps.append(DemoStep("simulator", "completed", f"{sim.rest_url}, session {session}"))
        typer.echo("running the nightly flows on Prefect's temporary local API …")
        with _config_pointing_at(sim, data_dir, underlyings):
            steps.extend(_nightly(sim, session, data_dir))

    for name, why in NOT_BUILT_YET:
        steps.append(DemoStep(name, "skipped", why))

    counts, categories = _warehouse_summary(data_dir)
    report = data_dir / "reports" / f"demo-{session.isoformat()}.md"
    _report(report, session, sim_url, steps, counts, categories)

    typer.echo("")
    for s in steps:
        typer.echo(f"  [{s.status:>9}] {s.name}: {s.detail}")
    typer.echo("")
    for view, n in counts:
        typer.echo(f"  {view:<12} {n:>9} rows")
    typer.echo(f"\nreport: {report}")
    if any(s.status == "failed" for s in steps):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``optbot demo``."""
    app.command("demo")(demo)
