"""Benchmark of the history flow against the simulator; prints one JSON object.

Measures, for a full backfill of the default universe (NIFTY, BANKNIFTY, FINNIFTY and INDIA
VIX: two years of daily candles, three months of 1-hour and 1-minute candles, the nearest
futures' daily candles, and the current expiries' ATM±2 options at 1 minute):

* the getCandleData request rate achieved against the broker's limit (3/s and 180/min, which
  is the same 3/s), and the rate-limit rejections seen (target: ≥ 90 % of 3/s, none refused);
* the wall time of the run beside the theoretical minimum (requests / 3 per second).

Twice: with the Prefect global rate limit shared between workers (the default), and with the
client's own limiter alone. Each run starts from an empty warehouse. A full run takes one to
two minutes, so nothing is extrapolated.

Run: .venv/bin/python bench/history.py
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

SESSION = date(2026, 11, 20)
END = date(2026, 11, 19)  # the last session complete when the simulated day opens
LIMIT_PER_S = 3.0
LIMIT_PER_HOUR = 5000


def _config(folder: Path, port: int) -> Path:
    path = folder / "optbot.toml"
    path.write_text(f'[data]\ndir = "{folder / "data"}"\n[sim]\nport = {port}\n', encoding="utf-8")
    return path


def _minimum_s(requests: int) -> float:
    """Least time from first to last request: 3/s (180/min is the same pace), and each block
    of 5000 requests must fit in an hour."""
    if requests < 2:
        return 0.0
    hours, rest = divmod(requests - 1, LIMIT_PER_HOUR)
    return hours * 3600 + rest / LIMIT_PER_S


def run_once(port: int, shared_rate_limit: bool) -> dict[str, Any]:
    from flows.history import history_flow
    from flows.instruments import instruments_flow

    with tempfile.TemporaryDirectory() as tmp:
        config = str(_config(Path(tmp), port))
        instruments_flow(config_path=config, as_of=SESSION)
        started = time.perf_counter()
        summary = history_flow(
            config_path=config, end_date=END, shared_rate_limit=shared_rate_limit
        )
        wall = time.perf_counter() - started
    requests = summary["requests"]
    span = summary["request_span_s"]
    rate = (summary["http_replies"] - 1) / span if span else 0.0
    return {
        "shared_prefect_rate_limit": shared_rate_limit,
        "candle_requests": requests,
        "http_replies": summary["http_replies"],
        "client_seen_rejections": summary["rate_limited"],
        "bars_stored": summary["bars_stored"],
        "complete": summary["complete"],
        "achieved_requests_per_s": round(rate, 3),
        "achieved_share_of_limit": round(rate / LIMIT_PER_S, 3),
        "request_span_s": round(span, 2),
        "wall_s": round(wall, 2),
        "theoretical_min_s": round(_minimum_s(summary["http_replies"]), 2),
    }


def main() -> None:
    warnings.simplefilter("ignore")  # 2027 expiries lie outside the packaged holiday data
    logging.getLogger("optbot.sim").setLevel(logging.ERROR)
    from prefect.testing.utilities import prefect_test_harness

    port = _free_port()
    # The simulator runs in a process of its own, as the broker is remote: sharing this
    # process's interpreter lock would slow the flow for reasons a real run never has.
    sim = subprocess.Popen(
        [sys.executable, "-c", _SIM_SCRIPT.format(port=port, session=SESSION.isoformat())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_port(port)
    out: dict[str, Any] = {
        "universe": "default: NIFTY, BANKNIFTY, FINNIFTY + INDIA VIX, futures, ATM±2 options",
        "history": "daily 2 years; 1h and 1m 3 months; options 1m for current expiries",
        "limit": "getCandleData 3/s, 180/min, 5000/h (SPEC §5.4)",
        "ceiling": (
            "the client's limiter sends a request 1.05 s after the answer to the third "
            "before it arrived (counted from the answer, so load cannot push it inside "
            "the broker's window): at most 3 / (1.05 s + round trip), about 2.85/s or "
            "95 % of the limit on loopback"
        ),
        "runs": [],
    }
    try:
        with prefect_test_harness(server_startup_timeout=180):
            for shared in (True, False):
                _post(port, "/__sim/reset")  # empty rate windows between runs
                before = _sim_candle_requests(port)
                run = run_once(port, shared)
                received = _sim_candle_requests(port) - before
                # No faults are injected, so every request the simulator received beyond the
                # ones that returned candles was a rate-limit refusal.
                run["sim_received_requests"] = received
                run["sim_rejections"] = received - run["candle_requests"]
                out["runs"].append(run)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    print(json.dumps(out, indent=2))


_SIM_SCRIPT = """
import datetime, logging, warnings
warnings.simplefilter("ignore")
from broker.sim.server import SimConfig, SimServer
config = SimConfig(host="127.0.0.1", port={port}, seed=7, speed=60.0,
                   session_date=datetime.date.fromisoformat("{session}"), log_level="error")
SimServer(config).run()
"""


def _sim_candle_requests(port: int) -> int:
    state = json.loads(_get(port, "/__sim/state"))
    return int(state.get("rest_requests_by_endpoint", {}).get("getCandleData", 0))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _get(port, "/__sim/state")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"simulator did not start on port {port} within {timeout_s} s")


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return str(reply.read().decode())


def _post(port: int, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(reply.read().decode())


if __name__ == "__main__":
    main()
