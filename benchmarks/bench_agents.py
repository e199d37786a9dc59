"""The golden path's latency: a question over a real WebSocket, answered from 1M usage rows.

Starts the real app (embedded shape: SQLite, DuckDB ledger, in-process bus, the built-in
deterministic engine) under uvicorn on a loopback port, loads the demo workload for one user,
then asks the golden-path question over /ws again and again, timing from sending the
`user_message` to the run's first event (the supervisor's `agent_started`) and to its final
event (the report). Also prints the per-agent split of the last run.

    PYTHONPATH=src python benchmarks/bench_agents.py            # 1,000,000 rows, 7 runs
    PYTHONPATH=src python benchmarks/bench_agents.py --rows 200000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
import websockets

from apex.api.app import create_app
from apex.config import Settings
from apex.store.repositories.users import UserRepository

QUESTION = "How can I cut my AI costs by 30%?"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def ask(url: str, token: str) -> tuple[float, float, list[dict[str, Any]]]:
    protocols = ["apex.v1", f"bearer.{token}"]
    async with websockets.connect(url, subprotocols=protocols,  # type: ignore[arg-type]
                                  max_size=None) as ws:
        json.loads(await ws.recv())
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "user_message", "text": QUESTION}))
        first = final = 0.0
        events: list[dict[str, Any]] = []
        while not final:
            frame = json.loads(await ws.recv())
            if "seq" not in frame:
                continue
            now = time.perf_counter() - started
            first = first or now
            events.append({**frame, "_at": now})
            if frame["payload"].get("final") is True:
                final = now
        return first, final, events


def agent_split(events: list[dict[str, Any]]) -> str:
    began: dict[str, float] = {}
    parts = []
    for event in events:
        name = event["agent_name"]
        if event["type"] == "agent_started" and name != "supervisor":
            began[name] = event["_at"]
        elif event["type"] == "agent_completed" and name in began:
            parts.append(f"{name} {1000 * (event['_at'] - began[name]):.0f} ms")
    return ", ".join(parts)


async def main(rows: int, runs: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="apex-bench-agents-"))
    try:
        await measure(rows, runs, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def measure(rows: int, runs: int, data_dir: Path) -> None:
    settings = Settings(_env_file=None, env="test", data_dir=data_dir, log_level="WARNING",
                        jwt_secret="bench-secret-" + "x" * 40,
                        demo_max_rows=max(rows, 1)).prepare()  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                               log_level="warning", ws_ping_interval=None))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        user = await UserRepository(app.state.db).create(
            email=f"{uuid.uuid4().hex[:10]}@bench.example", password_hash=None, name=None)
        token = str(app.state.access_tokens.issue(user.id).token)
        loading = time.perf_counter()
        await app.state.usage_importer.load_demo(user.id, rows=rows, seed=42)
        print(f"loaded {rows:,} demo rows in {time.perf_counter() - loading:.1f} s")
        url = f"ws://127.0.0.1:{port}/ws"
        await ask(url, token)  # warm-up: query templates, caches
        firsts, finals = [], []
        events: list[dict[str, Any]] = []
        for _ in range(runs):
            first, final, events = await ask(url, token)
            firsts.append(first * 1000)
            finals.append(final * 1000)
        server.should_exit = True
        await task
    report = events[-1]["payload"]["report"]
    print(f"golden path over /ws, {rows:,} rows, {runs} runs, built-in engine")
    print(f"  first event: median {statistics.median(firsts):.1f} ms, "
          f"p99 {percentile(firsts, 0.99):.1f} ms (target 20 ms)")
    print(f"  final event: median {statistics.median(finals):.0f} ms, "
          f"p99 {percentile(finals, 0.99):.0f} ms (target 1,000 ms)")
    print(f"  events per run: {len(events)}; recommendations: {len(report['recommendations'])}; "
          f"totals: {report['totals']['requests']:,} requests")
    print(f"  last run by agent: {agent_split(events)}")
    print("  last run by tool: " + ", ".join(
        f"{e['payload']['tool_name']} {e['payload']['duration_ms']:.0f} ms"
        for e in events if e["type"] == "tool_completed"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.runs))
