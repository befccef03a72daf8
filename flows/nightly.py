"""The ``nightly`` flow: the evening's batch, one step after another.

instruments → history → gaps → categorise → maintenance, each run as a subflow so its own
tasks and artifacts show under the parent in the Prefect UI, plus a table of the steps.

A step runs only when the steps it needs completed: history needs instruments; gaps and
categorise need history; maintenance needs nothing and always runs. A failed step does not
stop the independent ones, but the run ends Failed, naming what failed, what was skipped
and what ran (the failure hook alerts a person with that message).
"""

from __future__ import annotations

import importlib
import inspect
import time
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger

from flows.notify import notify_on_failure
from flows.reports import markdown_table, publish_markdown, publish_table


@dataclass(frozen=True, slots=True)
class Step:
    """One nightly step: which flow, and which steps must have completed first."""

    name: str
    module: str
    function: str
    needs: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("instruments", "flows.instruments", "instruments_flow"),
    Step("history", "flows.history", "history_flow", needs=("instruments",)),
    Step("gaps", "flows.gaps", "gaps_flow", needs=("history",)),
    Step("categorise", "flows.categorise", "categorise_flow", needs=("history",)),
    Step("maintenance", "flows.maintenance", "maintenance_flow"),
)
STEP_NAMES = tuple(step.name for step in STEPS)


class NightlyFailed(RuntimeError):
    """At least one nightly step failed."""


@dataclass(slots=True)
class StepRecord:
    """What happened to one step."""

    step: str
    status: str  # completed, failed, skipped
    seconds: float
    summary: str


def load_step_flow(step: Step) -> Any:
    """The step's flow object; ``ModuleNotFoundError`` when its module is not installed."""
    module = importlib.import_module(step.module)
    return getattr(module, step.function)


def step_signature(step_flow: Any) -> inspect.Signature:
    """The parameters a step's flow takes."""
    return inspect.signature(step_flow.fn)


def summarise(result: Any) -> str:
    """A one-line digest of a step's result (the first few plain values)."""
    if isinstance(result, dict):
        parts = [
            f"{key}={value}"
            for key, value in result.items()
            if isinstance(value, str | int | float | bool) and len(str(value)) <= 60
        ]
        return ", ".join(parts[:5]) or f"{len(result)} fields"
    if result is None:
        return "done"
    return str(result)[:120]


def _check_selection(steps: list[str] | None, step_parameters: dict[str, dict[str, Any]]) -> None:
    unknown = [name for name in (steps or []) + list(step_parameters) if name not in STEP_NAMES]
    if unknown:
        raise ValueError(
            f"unknown nightly step(s) {', '.join(unknown)}; steps: {', '.join(STEP_NAMES)}"
        )


def _parameters_for(
    step: Step, step_flow: Any, common: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    accepted = step_signature(step_flow).parameters
    unknown = [name for name in extra if name not in accepted]
    if unknown:
        raise ValueError(
            f"step {step.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted)}"
        )
    chosen = {k: v for k, v in common.items() if k in accepted and v is not None}
    chosen.update(extra)
    return chosen


@flow(name="nightly", on_failure=[notify_on_failure])
def nightly_flow(
    steps: list[str] | None = None,
    step_parameters: dict[str, dict[str, Any]] | None = None,
    config_path: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Run the evening's steps in order (``steps``: a subset; ``step_parameters``: per step)."""
    logger = get_run_logger()
    extra_by_step = dict(step_parameters or {})
    _check_selection(steps, extra_by_step)
    selected = [s for s in STEPS if steps is None or s.name in steps]
    common = {"config_path": config_path, "data_dir": data_dir}

    # Resolve every step's flow and parameters first: a typo fails before any work starts.
    plans: list[tuple[Step, Any, dict[str, Any] | None, str]] = []
    for step in selected:
        try:
            step_flow = load_step_flow(step)
        except (ModuleNotFoundError, AttributeError) as exc:
            plans.append((step, None, None, f"flow not installed: {step.module} ({exc})"))
            continue
        params = _parameters_for(step, step_flow, common, extra_by_step.get(step.name, {}))
        plans.append((step, step_flow, params, ""))

    records: list[StepRecord] = []
    completed: set[str] = set()
    for step, step_flow, params, problem in plans:
        missing = [need for need in step.needs if need in STEP_NAMES and need not in completed]
        # A need that was not selected this run is taken as done (e.g. steps=["history"]).
        missing = [m for m in missing if any(s.name == m for s in selected)]
        if missing:
            records.append(StepRecord(step.name, "skipped", 0.0, f"needs {', '.join(missing)}"))
            logger.warning("%s skipped: %s did not complete", step.name, ", ".join(missing))
            continue
        if step_flow is None or params is None:
            records.append(StepRecord(step.name, "failed", 0.0, problem))
            logger.error("%s failed: %s", step.name, problem)
            continue
        started = time.monotonic()
        logger.info("%s starting", step.name)
        state = step_flow(**params, return_state=True)
        seconds = round(time.monotonic() - started, 2)
        if state.is_completed():
            completed.add(step.name)
            summary = summarise(state.result())
            records.append(StepRecord(step.name, "completed", seconds, summary))
            logger.info("%s completed in %.1f s: %s", step.name, seconds, summary)
        else:
            message = (state.message or state.name or "failed").strip()
            records.append(StepRecord(step.name, "failed", seconds, message[:300]))
            logger.error("%s failed after %.1f s: %s", step.name, seconds, message)

    rows = [
        {"step": r.step, "status": r.status, "seconds": r.seconds, "summary": r.summary}
        for r in records
    ]
    publish_table("nightly-steps", rows, "Nightly steps")
    publish_markdown(
        "nightly-summary",
        "# Nightly\n\n"
        + markdown_table(
            ["step", "status", "seconds", "summary"],
            [(r.step, r.status, r.seconds, r.summary) for r in records],
        )
        + "\n",
        "Nightly run",
    )
    failed = [r for r in records if r.status == "failed"]
    if failed:
        skipped = [r.step for r in records if r.status == "skipped"]
        ran = [r.step for r in records if r.status == "completed"]
        raise NightlyFailed(
            "nightly steps failed: "
            + "; ".join(f"{r.step} ({r.summary})" for r in failed)
            + f". Skipped: {', '.join(skipped) or 'none'}. Completed: {', '.join(ran) or 'none'}."
        )
    return {"steps": rows}
