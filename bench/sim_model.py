"""Benchmark of the simulator's market model; prints one JSON object.

Run: .venv/bin/python bench/sim_model.py
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from broker.sim.clock import IST
from broker.sim.model import MarketModel

SESSION = date(2026, 11, 20)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    warnings.simplefilter("ignore")  # 2027 expiries are outside the packaged holiday data
    out: dict[str, Any] = {}
    out["model_init_s"], model = timed(lambda: MarketModel(seed=1, session_date=SESSION))
    now = datetime.combine(SESSION, datetime.max.time(), tzinfo=IST)
    two_years = now - timedelta(days=730)
    out["daily_candles_2y_index_s"], rows = timed(
        lambda: model.candles("99926000", "ONE_DAY", two_years, now, now=now)
    )
    out["daily_candles_2y_rows"] = len(rows)
    out["daily_candles_2y_stock_s"], _ = timed(
        lambda: model.candles("3045", "ONE_DAY", two_years, now, now=now)
    )
    options = [i for i in model.instruments() if i.kind == "option"]
    sample = options[:200]
    spent, _ = timed(lambda: [model.ticks(o.token, SESSION) for o in sample])
    out["option_day_paths_per_s"] = round(len(sample) / spent, 1)
    tokens = [o.token for o in options[:1000]] + ["99926000", "99926017", "3045"]
    start = datetime.combine(SESSION, datetime.min.time(), tzinfo=IST) + timedelta(hours=9.25)
    end = start + timedelta(hours=6.25)
    out["feed_warmup_1003_tokens_s"], _ = timed(lambda: model.tick_events(tokens, start, end))
    spent, events = timed(lambda: model.tick_events(tokens, start, end))
    out["tick_events_full_day_ticks"] = len(events.ts_ms)
    out["tick_events_ticks_per_s"] = round(len(events.ts_ms) / spent)
    steps = 200
    step = timedelta(milliseconds=50) * 20  # 50 ms of wall time at 20× speed
    t0 = start + timedelta(hours=1)
    spent, _ = timed(
        lambda: [
            model.tick_events(tokens, t0 + k * step, t0 + (k + 1) * step) for k in range(steps)
        ]
    )
    out["pacing_step_1003_tokens_ms"] = round(spent / steps * 1000, 3)
    at = start + timedelta(hours=2)
    spent, _ = timed(lambda: [model.quote(t, at) for t in tokens[:500]])
    out["quotes_per_s"] = round(500 / spent)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
