"""Fixtures shared by the whole suite: the local SmartAPI simulator on a loopback port.

``sim`` yields a running ``broker.sim.server.SimServer`` (one per test module, started on first
use) with a fixed seed and session date, replaying the session from 09:15 IST at 60× real time.
What a test needs from it:

* addresses: ``sim.rest_url``, ``sim.ws_url``, ``sim.order_ws_url``, ``sim.master_url``;
* the login: ``sim.client_code``, ``sim.pin``, ``sim.totp_secret``, ``sim.api_key``,
  ``sim.totp_now()``; ``sim.issue_session()`` mints tokens without a login call;
* faults: ``sim.set_faults("ratelimit=0.2,expire_at=10:30")``, ``sim.clear_faults()``,
  ``sim.expire_sessions()``, ``sim.drop_connections("feed")``, ``sim.reject_next(n, reason)``;
* the clock: ``sim.now()``, ``sim.set_clock(at="10:00", speed=600)``;
* ``sim.reset()`` (fresh exchange, rate windows and faults), ``sim.reset_rate_limits()``.

Each test starts with healthy faults, empty rate-limit windows and the default speed; the
session clock, the sessions and the exchange's orders carry over between the tests of a module.
The same controls are reachable over HTTP under ``/__sim/`` (see ``broker/sim/server.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from broker.sim.server import SimServer

SIM_SEED = 7
SIM_SPEED = 60.0
SIM_SESSION = date(2026, 11, 20)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    """One simulator per test module (started lazily; most modules never touch it)."""
    from broker.sim.server import SimConfig, SimServer

    server = SimServer(
        SimConfig(
            host="127.0.0.1", port=0, seed=SIM_SEED, speed=SIM_SPEED, session_date=SIM_SESSION
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim(sim_server: SimServer) -> Iterator[SimServer]:
    """The module's simulator, healthy and at the default speed at the start of each test."""
    sim_server.clear_faults()
    sim_server.reset_rate_limits()
    sim_server.set_clock(speed=SIM_SPEED)
    yield sim_server
    sim_server.clear_faults()
