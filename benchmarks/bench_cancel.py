"""Cancel latency: from `stop_run` to the run's final event, with a tool call in the middle.

Starts the real app under uvicorn on a loopback port (embedded shape, or Redis Streams with
`--redis-url`) with a scripted workflow whose tool runs until it is cancelled, then `--runs`
times: start a run over the WebSocket, wait until the tool is executing, send `stop_run` (every
other time `POST /api/runs/{id}/cancel`) and time until the final event `agent_stopped`
arrives. Every run must end `cancelled` with its tool really stopped. Target (the golden path's
cancel: the run ends within a second): p99 <= 1,000 ms.

    PYTHONPATH=src:. python benchmarks/bench_cancel.py [--runs 40] [--redis-url redis://…]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from figures import Figures, percentile  # noqa: E402

from apex.config import Settings  # noqa: E402
from tests.support.run_harness import WsClient, http, live_server, new_user  # noqa: E402
from tests.support.scripted_workflow import (  # noqa: E402
    Agent,
    Call,
    ScriptedWorkflow,
    StoppableTool,
    Think,
)

CANCEL_P99_TARGET_MS = 1_000.0


async def measure(settings: Settings, runs: int) -> tuple[list[float], list[str]]:
    tool = StoppableTool()
    workflow = ScriptedWorkflow(
        [Think("planning"), Agent("data", [Think("querying"), Call("long_query", {"days": 90})])],
        tools={"long_query": tool},
    )
    latencies: list[float] = []
    failures: list[str] = []
    async with live_server(settings, workflow) as server:
        _user_id, token = await new_user(server)
        client = await WsClient.connect(server, token)
        async with http(server, token) as api:
            for index in range(runs):
                tool.rearm()
                run = await client.start_run(f"analyse a year of usage ({index})")
                run_id = run["run_id"]
                await asyncio.wait_for(tool.started.wait(), 10)
                started = time.perf_counter()
                if index % 2 == 0:
                    await client.send({"type": "stop_run", "run_id": run_id})
                else:
                    await api.post(f"/api/runs/{run_id}/cancel")
                await client.recv_until(
                    lambda f, run_id=run_id: (
                        f.get("run_id") == run_id and f.get("payload", {}).get("final") is True
                    ),
                    30,
                )
                latencies.append((time.perf_counter() - started) * 1000)
                state = (await api.get(f"/api/runs/{run_id}")).json()["state"]
                if state != "cancelled" or not tool.cancelled.is_set():
                    failures.append(
                        f"run {index}: state {state}, tool stopped {tool.cancelled.is_set()}"
                    )
        await client.close()
    return latencies, failures


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        values: dict[str, object] = {
            "env": "test",
            "data_dir": Path(tmp),
            "log_level": "WARNING",
            "jwt_secret": "bench-" + "s" * 40,
            "llm_provider": "builtin",
        }
        if args.redis_url:
            values.update(redis_url=args.redis_url, redis_key_prefix=f"b{uuid.uuid4().hex[:12]}")
        settings = Settings(_env_file=None, **values).prepare()  # type: ignore[arg-type]
        latencies, failures = await measure(settings, args.runs)
    shape = "Redis" if args.redis_url else "embedded"
    figures = Figures("cancel", f"{shape}, {args.runs} runs")
    figures.note("stop_run to final event, p50", statistics.median(latencies), "ms")
    figures.target(
        "stop_run to final event, p99",
        percentile(latencies, 0.99),
        "ms",
        at_most=CANCEL_P99_TARGET_MS,
    )
    return figures.finish(failures=failures)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
