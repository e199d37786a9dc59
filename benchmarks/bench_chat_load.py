"""Many users asking at once: chat runs per second and final-event latency under a burst.

Starts a real `apex serve` process (embedded shape: SQLite, DuckDB ledger, in-process bus,
built-in engine), signs up `--users` users and loads `--rows` demo rows for each through
`POST /api/usage/demo`, then waits until the server has gone quiet (the ledger prepares each
tenant's first answers in the background after a load, as it does for every upload). Each user
then opens a WebSocket, and once all are connected every one of them sends the same cost
question at the same moment. Figures: runs per second (runs ÷ time from the burst to the last
final event), p50 and p99 time from sending to the run's final event, and failed runs (a run
that does not end `completed` with the report of a cost question).

Targets (issue 19): at least 50 runs/s, final event p99 <= 1.5 s, 0 failed runs, with 50 users
of 50,000 rows each.

    PYTHONPATH=src:. python benchmarks/bench_chat_load.py [--users 50] [--rows 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from figures import Figures, percentile  # noqa: E402

from tests.support.server import ServerProcess  # noqa: E402

RUNS_PER_S_TARGET = 50.0
FINAL_P99_TARGET_MS = 1_500.0
QUESTION = "How much did we spend on AI in the last 30 days, by model?"
QUIET_CPU_PERCENT = 5.0


async def sign_up(client: httpx.AsyncClient, index: int, rows: int) -> str:
    """A new user with `rows` demo rows; its access token."""
    signed = (
        await client.post(
            "/api/auth/register",
            json={
                "email": f"load-{index}-{uuid.uuid4().hex[:8]}@bench.example",
                "password": "correct horse battery 9",
            },
        )
    ).json()
    token = str(signed["access_token"])
    loaded = await client.post(
        "/api/usage/demo",
        json={"rows": rows, "seed": index},
        headers={"Authorization": f"Bearer {token}"},
        timeout=600,
    )
    loaded.raise_for_status()
    return token


def wait_until_quiet(pid: int, timeout_s: float = 600.0) -> float:
    """Until the server process uses under QUIET_CPU_PERCENT of a core over a second: the
    answers the ledger prepares after each load are ready. Returns the seconds waited."""
    process = psutil.Process(pid)
    started = time.perf_counter()
    process.cpu_percent(None)
    while time.perf_counter() - started < timeout_s:
        if process.cpu_percent(1.0) < QUIET_CPU_PERCENT:
            break
    return time.perf_counter() - started


async def ask(url: str, token: str, go: asyncio.Event) -> tuple[float, list[str]]:
    """Connect, wait for the burst, ask; the ms from sending to the final event and any
    problems with the run."""
    async with websockets.connect(
        url,
        subprotocols=["apex.v1", f"bearer.{token}"],  # type: ignore[list-item]
        ping_interval=None,
        max_size=None,
        open_timeout=60,
    ) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "connection_ready":
            return float("nan"), [f"no connection_ready: {ready}"]
        await go.wait()
        sent = time.perf_counter()
        await ws.send(
            json.dumps(
                {"type": "user_message", "text": QUESTION, "client_message_id": uuid.uuid4().hex}
            )
        )
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if frame.get("type") == "error":
                return (time.perf_counter() - sent) * 1000, [f"error frame: {frame}"]
            payload = frame.get("payload") or {}
            if payload.get("final") is True:
                elapsed = (time.perf_counter() - sent) * 1000
                problems = []
                if payload.get("state") != "completed":
                    problems.append(f"ended {payload.get('state')}: {payload.get('error')}")
                question = (payload.get("report") or {}).get("question") or {}
                if question.get("intent") not in {"spend", "breakdown"}:
                    problems.append(f"understood as {question.get('intent')!r}")
                return elapsed, problems


async def measure(
    server: ServerProcess, users: int, rows: int
) -> tuple[float, list[float], list[str]]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        loading = time.perf_counter()
        tokens = []
        for first in range(0, users, 4):  # four loads at a time
            tokens += await asyncio.gather(
                *(sign_up(client, index, rows) for index in range(first, min(users, first + 4)))
            )
        print(
            f"{users} users x {rows:,} demo rows loaded in {time.perf_counter() - loading:.1f} s",
            flush=True,
        )
    assert server.process is not None
    quiet = await asyncio.to_thread(wait_until_quiet, server.process.pid)
    print(f"server quiet {quiet:.1f} s later", flush=True)
    go = asyncio.Event()
    asking = [asyncio.create_task(ask(server.ws_url, token, go)) for token in tokens]
    await asyncio.sleep(2.0)  # every connection is open and waiting
    started = time.perf_counter()
    go.set()
    results = await asyncio.gather(*asking)
    wall = time.perf_counter() - started
    latencies = [elapsed for elapsed, _problems in results]
    failures = [f"user {i}: {'; '.join(p)}" for i, (_e, p) in enumerate(results) if p]
    return wall, latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(
            data_dir=Path(tmp) / "data",
            env={
                "APEX_LOG_LEVEL": "WARNING",
                "APEX_LLM_PROVIDER": "builtin",
                "APEX_MAX_RUNS_GLOBAL": str(max(64, args.users)),
                # sign-up cost is set-up, not what is measured
                "APEX_ARGON2_TIME_COST": "1",
                "APEX_ARGON2_MEMORY_KIB": "8192",
            },
        ).start()
        try:
            wall, latencies, failures = asyncio.run(measure(server, args.users, args.rows))
        finally:
            server.stop()
    figures = Figures("chat under a burst", f"{args.users} users x {args.rows:,} rows")
    figures.target("runs/s", len(latencies) / wall, "/s", at_least=RUNS_PER_S_TARGET)
    figures.note("final event p50", statistics.median(latencies), "ms")
    figures.target(
        "final event p99", percentile(latencies, 0.99), "ms", at_most=FINAL_P99_TARGET_MS
    )
    figures.target("failed runs", len(failures), "", at_most=0)
    return figures.finish(failures=failures[:10])


if __name__ == "__main__":
    sys.exit(main())
