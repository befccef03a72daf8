"""Named bad (and unusually calm) days the simulator can play on its session date.

A scenario changes only the session day; every earlier day of the history is untouched, so a
strategy warmed up on history meets the scenario exactly as it would meet such a day live.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the session day departs from the model's ordinary day. Moves are in log terms."""

    name: str
    description: str
    open_gap: float | None = None  # replaces the overnight gap of every tradable underlying
    session_move: float | None = None  # replaces the open→close move of every tradable underlying
    intraday_vol: float = 1.0  # multiplies intraday excursions (underlyings and VIX)
    vix_gap: float | None = None  # replaces VIX's overnight gap
    vix_move: float | None = None  # replaces VIX's open→close move
    crash_depth: float = 0.0  # depth of a V-shaped intraday dip (0 = none)
    vix_crash_jump: float = 0.0  # VIX rise at the bottom of that dip


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "gap_up",
            "every underlying opens 2.5% above its previous close",
            open_gap=0.025,
            vix_gap=-0.06,
        ),
        Scenario(
            "gap_down",
            "every underlying opens 2.5% below its previous close",
            open_gap=-0.025,
            vix_gap=0.10,
        ),
        Scenario(
            "vix_spike",
            "INDIA VIX climbs about 60% through the day while indices slide 2%",
            session_move=-0.02,
            intraday_vol=1.6,
            vix_gap=0.05,
            vix_move=0.42,
        ),
        Scenario(
            "flash_crash",
            "a 6% collapse within minutes late in the morning, mostly recovered in half an hour",
            session_move=-0.01,
            crash_depth=0.06,
            vix_crash_jump=0.35,
        ),
        Scenario(
            "quiet",
            "no gap, almost no range, VIX drifting lower",
            open_gap=0.0,
            session_move=0.0,
            intraday_vol=0.2,
            vix_gap=0.0,
            vix_move=-0.08,
        ),
    )
}

# Where the flash crash sits, as fractions of the session: the fall starts at 25%, bottoms out
# at 27% and has recovered three quarters of the fall by 36% (10:48, 10:56, 11:30 on a normal day).
CRASH_START, CRASH_BOTTOM, CRASH_RECOVERED = 0.25, 0.27, 0.36


def scenario_by_name(name: str | None) -> Scenario | None:
    """The named scenario, None for None; ValueError naming the allowed names otherwise."""
    if name is None:
        return None
    try:
        return SCENARIOS[name]
    except KeyError:
        allowed = ", ".join(sorted(SCENARIOS))
        raise ValueError(f"unknown scenario {name!r}; allowed: {allowed}") from None
