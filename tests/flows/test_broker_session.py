"""The flows' broker session, request counting, the shared rate gate and the progress bar."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from prefect.states import Completed, Failed

from broker.smartapi.errors import BrokerUnavailable, RateLimited
from flows.broker_session import (
    RequestCounter,
    broker_session,
    load_login_credentials,
    retry_if_broker_flaky,
    run_async,
)
from flows.history import ProgressEvent, _emit, rich_progress
from flows.tasks.rate_gate import RateGate, shared_rate_gate
from optbot.config import ConfigError, load_settings

if TYPE_CHECKING:
    from broker.sim.server import SimServer

pytestmark = pytest.mark.filterwarnings("ignore::market.calendar.UncoveredYearWarning")
CANDLES = "http://broker/rest/secure/angelbroking/historical/v1/getCandleData"


def test_the_simulator_login_is_its_published_demo_account() -> None:
    settings = load_settings(env={})
    login = load_login_credentials(settings, env={})
    assert login.client_code == "DEMO01" and login.totp_secret is not None


def test_without_a_totp_secret_the_stored_session_is_relied_on() -> None:
    env = {
        "OPTBOT_BROKER__TARGET": "angelone",
        "OPTBOT_CLIENT_CODE": "a123",
        "OPTBOT_PIN": "4321",
        "OPTBOT_API_KEY": "key-xyz",
    }
    settings = load_settings(env=env)
    login = load_login_credentials(settings, env=env)
    assert login.client_code == "A123" and login.totp_secret is None
    assert "4321" not in repr(login) and "key-xyz" not in repr(login)
    missing_pin = {k: v for k, v in env.items() if k != "OPTBOT_PIN"}
    with pytest.raises(ConfigError, match="pin"):
        load_login_credentials(settings, env=missing_pin)


def test_a_session_reuses_the_login_and_counts_replies(sim: SimServer) -> None:
    settings = load_settings(env={"OPTBOT_SIM__PORT": str(sim.port)})
    session = broker_session(settings)
    profile = session.run(lambda client: client.profile())
    again = session.run(lambda client: client.profile())
    assert profile.client_code == again.client_code == "DEMO01"
    # one login at most (the simulator's session store is shared within the process)
    assert session.counter.requests("loginByPassword") <= 1
    assert session.counter.requests("getProfile") == 2
    assert session.counter.refused_for_rate() == 0


def test_request_counter_tells_rate_refusals_apart() -> None:
    counter = RequestCounter()

    async def replies() -> None:
        for status in (200, 403, 200, 502, 429):
            await counter.on_response(
                httpx.Response(status, request=httpx.Request("POST", CANDLES))
            )

    asyncio.run(replies())
    assert counter.requests("getCandleData") == 5
    assert counter.refused_for_rate("getCandleData") == 2
    assert counter.snapshot() == {"getCandleData": {200: 2, 403: 1, 429: 1, 502: 1}}


def test_tasks_are_retried_only_when_the_broker_was_the_trouble() -> None:
    assert retry_if_broker_flaky(None, None, Failed(data=RateLimited("busy")))
    assert retry_if_broker_flaky(None, None, Failed(data=BrokerUnavailable("502")))
    assert not retry_if_broker_flaky(None, None, Failed(data=ValueError("a bug")))
    assert not retry_if_broker_flaky(None, None, Completed(data=1))


def test_run_async_works_inside_a_running_event_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def caller() -> int:
        return run_async(answer)  # a sync helper called from async code

    assert run_async(answer) == 42
    assert asyncio.run(caller()) == 42


def test_the_shared_rate_gate_grants_slots_then_gives_way() -> None:
    gate = shared_rate_gate(f"test-gate-{uuid.uuid4().hex[:8]}", per_second=50)
    assert gate.active
    for _ in range(4):
        gate.take()
    assert gate.granted >= 4
    gate.close()
    assert not gate.active
    gate.take()  # closed: no waiting


def test_a_missing_limit_that_may_not_be_created_means_no_gate() -> None:
    gate = shared_rate_gate(f"absent-{uuid.uuid4().hex[:8]}", per_second=3, create=False)
    assert not gate.active
    gate.take()
    assert RateGate(None).active is False


def test_rich_progress_counts_planned_and_fetched_requests() -> None:
    from rich.console import Console

    out = io.StringIO()
    with rich_progress(Console(file=out, width=120, force_terminal=False)):
        _emit(ProgressEvent("planned", "NIFTY", "1m", requests=3))
        for _ in range(3):
            _emit(ProgressEvent("fetched", "NIFTY", "1m", requests=1, rows=375))
    assert "3/3" in out.getvalue()
    assert "NIFTY 1m" in out.getvalue()
