"""One broker session per flow run: log in once, then hand out clients to any task that needs one.

How a flow talks to SmartAPI (or the simulator)::

    from flows.broker_session import open_broker_session

    @flow
    def my_flow(config_path: str | None = None) -> None:
        settings = load_flow_settings(config_path)        # flows.tasks.settings
        broker = open_broker_session(settings)             # a task: credentials + login
        positions = broker.run(lambda client: client.positions())

Credentials are never flow parameters: :func:`open_broker_session` loads them inside the task
through ``optbot.config.load_credentials`` and keeps them only in memory; its result is never
persisted. The handle it returns, :class:`BrokerSession`, holds no connection, only what a
connection needs, so any task (in any worker thread) can open its own client with
:meth:`BrokerSession.connect` (async) or :meth:`BrokerSession.run` (sync), all of them sharing

* the day's session tokens (one login per day, kept in the token store), and
* the account's request budget (the process-wide sliding-window limiter of its client code).

:class:`RequestCounter` counts every REST reply by endpoint and status, so a flow can report how
many requests it spent and how many the broker refused for rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from broker.smartapi.auth import LoginCredentials
from broker.smartapi.config import SmartApiConfig
from broker.smartapi.errors import RetryLater
from broker.smartapi.ratelimit import SlidingWindowLimiter, limiter_for_account
from broker.smartapi.rest import SmartApiClient
from broker.smartapi.tokens import MemoryTokenStore, TokenStore, default_token_store

if TYPE_CHECKING:
    from optbot.config import Settings

T = TypeVar("T")

# Replies the broker sends when a request went over its rate budget (SPEC §5.3).
_RATE_LIMIT_STATUSES = (403, 429)


class RequestCounter:
    """Counts REST replies per endpoint name (``getCandleData``…) and HTTP status; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: Counter[tuple[str, int]] = Counter()
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: count one reply."""
        name = response.request.url.path.rstrip("/").rsplit("/", 1)[-1]
        at = self._clock()
        with self._lock:
            self._counts[(name, response.status_code)] += 1
            self._first.setdefault(name, at)
            self._last[name] = at

    def span_s(self, endpoint: str) -> float:
        """Seconds between the first and the last reply of ``endpoint`` (0 with fewer than two)."""
        with self._lock:
            if endpoint not in self._first:
                return 0.0
            return self._last[endpoint] - self._first[endpoint]

    def requests(self, endpoint: str | None = None) -> int:
        """Replies received (for one endpoint, or all)."""
        with self._lock:
            return sum(n for (name, _), n in self._counts.items() if endpoint in (None, name))

    def refused_for_rate(self, endpoint: str | None = None) -> int:
        """Replies that were rate-limit refusals (HTTP 403/429)."""
        with self._lock:
            return sum(
                n
                for (name, status), n in self._counts.items()
                if endpoint in (None, name) and status in _RATE_LIMIT_STATUSES
            )

    def snapshot(self) -> dict[str, dict[int, int]]:
        """``{endpoint: {status: count}}``."""
        out: dict[str, dict[int, int]] = {}
        with self._lock:
            for (name, status), n in sorted(self._counts.items()):
                out.setdefault(name, {})[status] = n
        return out


@dataclass(frozen=True, eq=False)
class BrokerSession:
    """What a task needs to open a SmartAPI client: where, who, the shared tokens and budget.

    Holds no sockets; :meth:`connect` / :meth:`run` open a client bound to the caller's event
    loop and close it afterwards. Safe to share between threads.
    """

    config: SmartApiConfig
    credentials: LoginCredentials = field(repr=False)
    target: str = "sim"
    store: TokenStore = field(default_factory=MemoryTokenStore, repr=False)
    limiter: SlidingWindowLimiter | None = field(default=None, repr=False)
    counter: RequestCounter = field(default_factory=RequestCounter, repr=False)

    @property
    def client_code(self) -> str:
        """The account the session belongs to (not a secret: it names the account)."""
        return self.credentials.client_code

    @property
    def master_url(self) -> str:
        """Where the instrument master is downloaded from (public, no login)."""
        return self.config.master_url

    def http_client(self, **overrides: Any) -> httpx.AsyncClient:
        """A plain httpx client whose replies are counted (for downloads outside the REST API)."""
        options: dict[str, Any] = {
            "timeout": self.config.timeout_s,
            "event_hooks": {"response": [self.counter.on_response]},
        }
        options.update(overrides)
        return httpx.AsyncClient(**options)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[SmartApiClient]:
        """A SmartAPI client for the running event loop; logs in only if no session is stored."""
        limiter = self.limiter or limiter_for_account(self.credentials.client_code)
        async with self.http_client() as http:
            client = SmartApiClient.open(
                self.config, self.credentials, store=self.store, limiter=limiter, http=http
            )
            async with client:
                yield client

    def run(self, work: Callable[[SmartApiClient], Awaitable[T]]) -> T:
        """Run ``work(client)`` to completion from synchronous code (a task body)."""

        async def main() -> T:
            async with self.connect() as client:
                return await work(client)

        return run_async(main)

    async def ensure_login(self) -> None:
        """Make sure a session exists: reuse today's stored one or log in now."""
        async with self.connect() as client:
            await client.session.jwt()


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())``, also from a thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(main))
    # A loop is running here (an async caller): run ours on a thread of its own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="optbot-broker") as pool:
        return pool.submit(asyncio.run, _as_coroutine(main)).result()


async def _as_coroutine(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


# Simulator sessions are kept for the life of the process, per simulator address, so a second
# flow run against the same simulator reuses the morning's login as it would against the broker.
_SIM_STORES: dict[str, MemoryTokenStore] = {}
_SIM_STORES_LOCK = threading.Lock()


def _sim_store(rest_url: str) -> MemoryTokenStore:
    with _SIM_STORES_LOCK:
        store = _SIM_STORES.get(rest_url)
        if store is None:
            store = _SIM_STORES[rest_url] = MemoryTokenStore()
        return store


def load_login_credentials(
    settings: Settings, *, env: Mapping[str, str] | None = None
) -> LoginCredentials:
    """The login for this run, from the environment or keyring (demo values for the simulator).

    Without a TOTP secret on the machine the client code, PIN and API key are enough: the
    session then comes from the one ``optbot login`` stored earlier today.
    """
    import os

    from pydantic import SecretStr

    from optbot.config import ConfigError, load_credentials
    from optbot.secrets import lookup_credential

    if settings.mode == "replay":
        # Replay loads no credentials on purpose; batch jobs that must reach the broker run
        # with the paper-mode login.
        settings = settings.model_copy(update={"mode": "paper"})
    try:
        credentials = load_credentials(settings, env=env)
    except ConfigError:
        environ = os.environ if env is None else env
        found = {
            name: lookup_credential(name, environ).value
            for name in ("client_code", "pin", "api_key")
        }
        if any(value is None for value in found.values()):
            raise
        return LoginCredentials(
            client_code=_secret_text(found["client_code"]).upper(),
            pin=SecretStr(_secret_text(found["pin"])),
            api_key=SecretStr(_secret_text(found["api_key"])),
        )
    assert credentials is not None  # only replay yields None, handled above
    return LoginCredentials.from_config(credentials)


def _secret_text(value: Any) -> str:
    return str(value.get_secret_value())


def broker_session(
    settings: Settings,
    *,
    credentials: LoginCredentials | None = None,
    store: TokenStore | None = None,
    env: Mapping[str, str] | None = None,
    **config_overrides: float,
) -> BrokerSession:
    """Build the session handle from settings (no network). ``config_overrides`` tune the client
    (``max_retries``, ``deadline_s``, ``backoff_initial_s``…)."""
    config = SmartApiConfig.from_settings(settings.broker, **config_overrides)
    login = credentials if credentials is not None else load_login_credentials(settings, env=env)
    if store is None:
        if settings.broker.target == "sim":
            store = _sim_store(config.rest_url)
        else:
            store = default_token_store(settings.data.dir)
    return BrokerSession(
        config=config,
        credentials=login,
        target=settings.broker.target,
        store=store,
        limiter=limiter_for_account(login.client_code),
    )


def retry_if_broker_flaky(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a task only when the broker was the trouble.

    The client already retries single requests; a task that still failed because the broker
    kept refusing or failing (``RetryLater``) is worth another go later. Anything else (a bug,
    a full disk, bad credentials) is not.
    """
    try:
        state.result()
    except RetryLater:
        return True
    except BaseException:
        return False
    return False


@task(
    name="broker-login",
    persist_result=False,  # the session handle holds credentials: never written anywhere
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_broker_flaky,
)
def open_broker_session(settings: Settings) -> BrokerSession:
    """Load the credentials, log in (or reuse today's session) and return the session handle."""
    from prefect import get_run_logger

    session = broker_session(settings)
    run_async(session.ensure_login)
    get_run_logger().info(
        "broker session ready: %s at %s (tokens in %s)",
        session.target,
        session.config.rest_url,
        session.store.describe(),
    )
    return session
