"""Benchmark: how many ticks per second the simulator's WebSocket 2.0 feed pushes to one client.

Run: `.venv/bin/python bench/sim_feed.py` — prints one JSON object.

The simulator runs in its own process (as `optbot sim` would) at a speed high enough that the
market produces far more ticks than a socket can carry, so the figure is the feed's capacity,
not the market's tick rate. One client (the `websockets` synchronous client, in this process)
subscribes to a few hundred NIFTY/BANKNIFTY option tokens in LTP mode (51-byte frames) and counts
the binary frames it receives in fixed wall-clock windows; before each window the session clock
is wound back to 10:00 so every window replays a busy stretch of the day. Reported: the median
and the spread of the windows, plus the same for QUOTE (123-byte) frames.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import statistics
import time
from typing import Any

import httpx

TOKENS = 300
SPEED = 2_000.0
WINDOW_S = 2.0
RUNS = 5
WARMUP_S = 1.5


def _serve(port_queue: Any, speed: float) -> None:
    from broker.sim.server import SimConfig, SimServer

    server = SimServer(SimConfig(seed=7, speed=speed, port=0))
    server.run(on_started=lambda s: port_queue.put(s.port))


def _option_tokens(master_url: str, count: int) -> list[str]:
    records = httpx.get(master_url, timeout=30).json()
    options = [
        r["token"]
        for r in records
        if r["instrumenttype"] == "OPTIDX" and r["name"] in ("NIFTY", "BANKNIFTY")
    ]
    return options[:count]


def _measure(base: str, port: int, tokens: list[str], mode: int) -> list[float]:
    from websockets.sync.client import connect

    session = httpx.post(f"{base}/__sim/sessions/issue", timeout=10).json()
    headers = {
        "Authorization": session["jwtToken"],
        "x-api-key": "optbot-sim-key",
        "x-client-code": "DEMO01",
        "x-feed-token": session["feedToken"],
    }
    rates: list[float] = []
    url = f"ws://127.0.0.1:{port}/smart-stream"
    with connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
        request = {
            "action": 1,
            "params": {"mode": mode, "tokenList": [{"exchangeType": 2, "tokens": tokens}]},
        }
        ws.send(json.dumps(request))
        for run in range(RUNS + 1):
            httpx.post(f"{base}/__sim/clock", json={"at": "10:00"}, timeout=10)
            window = WARMUP_S if run == 0 else WINDOW_S
            frames = 0
            start = time.perf_counter()
            deadline = start + window
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    message = ws.recv(timeout=left)
                except TimeoutError:
                    break
                if isinstance(message, bytes):
                    frames += 1
            elapsed = time.perf_counter() - start
            if run:  # the first window warms the model's caches
                rates.append(frames / elapsed)
    return rates


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, SPEED), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=60)
        base = f"http://127.0.0.1:{port}"
        tokens = _option_tokens(f"{base}/OpenAPI_File/files/OpenAPIScripMaster.json", TOKENS)
        results: dict[str, Any] = {}
        for mode, name in ((1, "ltp_51B"), (2, "quote_123B")):
            rates = _measure(base, port, tokens, mode)
            results[name] = {
                "median_ticks_per_s": round(statistics.median(rates)),
                "min_ticks_per_s": round(min(rates)),
                "max_ticks_per_s": round(max(rates)),
                "runs": len(rates),
            }
    finally:
        server.terminate()
        server.join(10)
    print(
        json.dumps(
            {
                "benchmark": "sim_feed",
                "tokens": len(tokens),
                "speed": SPEED,
                "window_s": WINDOW_S,
                "python": platform.python_version(),
                **results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
