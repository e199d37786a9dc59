"""Live-event figures: delivery latency, fan-out, memory per idle connection, and a soak.

Everything runs against a real `uvicorn` server process (the embedded deployment: SQLite and the
in-process bus, or Redis Streams with `--redis-url`) and real WebSocket clients in this process.
Both share the machine, so client work is part of what is measured. The server process starts
like `apex serve` (same uvicorn options, start-up objects frozen out of garbage collection); the
measuring client process raises its own collection thresholds so its pauses do not show up as
delivery latency.

* latency: N clients (10 per user; 1 for N=1) each receive a steady stream of events: every
  user's run emits an event every `--interval-ms`, the runs' starts spread over one interval;
  latency is client receipt time minus the emit time written into the event, p50 and p99 over
  every delivery after a short warm-up.
* fan-out: the in-process bus alone (publish to 1,000 subscriber queues drained by consumer
  tasks, as connections do), then end to end: 10 users x 10 connections, every user's run
  emitting as fast as it can, counting frames received per second of wall clock and per
  second of the server's CPU time.
* memory: server RSS growth per idle connection (1,000 connections, after connection_ready).
* soak: 10,000 runs of the built-in workflow across 50 users (3 in flight each), every event
  delivered to the user's connection; server RSS after the first 1,000 runs and after all.
* runs (`--runs-per-client R`): the built-in workflow. First 50 users each start a run at the
  same moment: time to first event (sending `user_message` to receiving the run's first event),
  p50 and p99 (with `--bursts B`, the same 50 users do so B times, 2 s apart, and the
  percentiles are over every burst's runs: one burst's figure varies with what the machine
  happens to be doing at that moment); then `--clients N` users, one connection each, each
  start R runs at once: every
  client must receive every run's final event (each process keeps its default cap of runs
  executing at once; the others wait). Figures are printed against their targets and
  the script exits 1 when one is missed. `--processes 2` spreads the clients over two server
  processes sharing Redis and PostgreSQL (both started here unless `--redis-url` and
  `--database-url` name them).

    PYTHONPATH=src:. python benchmarks/bench_events.py [--clients 1,100,1000] [--soak-runs 10000]
    PYTHONPATH=src:. python benchmarks/bench_events.py --clients 1000 --runs-per-client 1 \
        [--redis-url redis://…] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from figures import Figures  # noqa: E402

from apex.api.app import create_app  # noqa: E402
from apex.cli import server_options  # noqa: E402
from apex.config import load_settings  # noqa: E402
from apex.execution.workflow import WorkflowContext, WorkflowOutcome  # noqa: E402
from apex.realtime.events import EventDraft, EventType, RunEvent  # noqa: E402
from apex.realtime.memory import InProcessEventBus  # noqa: E402
from tests.support.accounts import TEST_JWT_SECRET, make_user  # noqa: E402
from tests.support.services import create_pg_database, free_port  # noqa: E402

CONNECTIONS_PER_USER = 10
WARM_UP_SEQ = 3
BURST_USERS = 50
BURST_GAP_S = 2.0
TTFE_P50_TARGET_MS = 50.0
TTFE_P99_TARGET_MS = 250.0
DELIVERY_P99_TARGET_MS = 10.0  # at 1,000 connections
FANOUT_TARGET_PER_S = 20_000.0
IDLE_KIB_TARGET = 50.0
SOAK_GROWTH_TARGET_PCT = 5.0
FINAL_TIMEOUT_S = 120.0


class BenchWorkflow:
    """`tick <interval_ms> <count>`: events on a fixed schedule; `burst <count>`: flat out.
    Each thought is the wall-clock emit time, so a client on this machine measures latency."""

    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        kind, *numbers = context.text.split()
        if kind == "tick":
            interval_s, count = int(numbers[0]) / 1000, int(numbers[1])
            start = time.monotonic()
            for index in range(count):
                await asyncio.sleep(max(0.0, start + index * interval_s - time.monotonic()))
                await context.think(f"{time.time():.6f}")
        else:
            for _ in range(int(numbers[0])):
                await context.think(f"{time.time():.6f}")
        return WorkflowOutcome(final_response="done", report={})


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = load_settings(host="127.0.0.1", port=args.port)
    workflow = BenchWorkflow() if args.workflow == "bench" else None
    gc.freeze()
    uvicorn.run(create_app(settings, workflow=workflow), backlog=4096, **server_options(settings))


class Server:
    def __init__(
        self,
        workflow: str,
        redis_url: str | None,
        database_url: str | None = None,
        *,
        global_cap: bool = False,
    ) -> None:
        self.workflow = workflow
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="apex-bench-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
        self.env.update(
            {
                "APEX_ENV": "test",
                "APEX_LOG_LEVEL": "WARNING",
                "APEX_DATA_DIR": str(self.directory),
                "APEX_JWT_SECRET": TEST_JWT_SECRET,
                "APEX_MAX_RUNS_GLOBAL": "10000",
                "APEX_DATABASE_URL": database_url
                or f"sqlite+aiosqlite:///{self.directory / 'apex.db'}",
                "APEX_ACCESS_TOKEN_TTL_S": "86400",
                "PYTHONPATH": os.pathsep.join(
                    [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
                ),
            }
        )
        if redis_url:
            self.env["APEX_REDIS_URL"] = redis_url
        if global_cap:
            del self.env["APEX_MAX_RUNS_GLOBAL"]
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    async def __aenter__(self) -> Server:
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "serve",
                "--port",
                str(self.port),
                "--workflow",
                self.workflow,
            ],
            env=self.env,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/health/ready")).is_success:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        self.ps = psutil.Process(self.process.pid)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            print(f"  (server {self.process.pid} did not stop within 60 s of SIGTERM: killed)")
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 1_048_576

    async def tokens(self, count: int) -> list[str]:
        """Real accounts in the server's database and access tokens for them."""
        settings = load_settings(
            database_url=self.env["APEX_DATABASE_URL"],
            data_dir=self.directory / "client",
            jwt_secret=TEST_JWT_SECRET,
            access_token_ttl_s=86_400,
            log_level="WARNING",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            users = [await make_user(app) for _ in range(count)]
        return [headers["Authorization"].removeprefix("Bearer ") for _uid, headers in users]


async def connect(server: Server, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        server.ws_url,
        subprotocols=["apex.v1", f"bearer.{token}"],  # type: ignore[list-item]
        ping_interval=None,
        max_size=None,
        open_timeout=60,
    )
    ready = json.loads(await ws.recv())
    assert ready["type"] == "connection_ready", ready
    return ws


async def connect_all(
    server: Server, tokens: list[str], per_user: int
) -> list[list[websockets.ClientConnection]]:
    groups: list[list[websockets.ClientConnection]] = []
    for start in range(0, len(tokens), 20):
        batch = tokens[start : start + 20]
        groups.extend(
            await asyncio.gather(
                *(asyncio.gather(*(connect(server, t) for _ in range(per_user))) for t in batch)
            )
        )
    return [list(group) for group in groups]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def receive_until_final(
    ws: websockets.ClientConnection, latencies: list[float] | None, counter: list[int] | None = None
) -> None:
    while True:
        raw = await ws.recv()
        received = time.time()
        if counter is not None:
            counter[0] += 1
            if '"final":true' in raw:
                return
            continue
        frame = json.loads(raw)
        payload = frame.get("payload", {})
        if payload.get("final"):
            return
        if (
            latencies is not None
            and frame.get("type") == "agent_thinking"
            and frame["seq"] > WARM_UP_SEQ
        ):
            latencies.append((received - float(payload["thought"])) * 1000)


async def bench_latency(
    clients: int, interval_ms: int, ticks: int, redis_url: str | None
) -> dict[str, Any]:
    per_user = 1 if clients == 1 else CONNECTIONS_PER_USER
    async with Server("bench", redis_url) as server:
        groups = await connect_all(
            server, await server.tokens(max(1, clients // per_user)), per_user
        )
        latencies: list[float] = []
        listeners = [
            asyncio.create_task(receive_until_final(ws, latencies))
            for group in groups
            for ws in group
        ]
        cpu_before, started = server.cpu_s(), time.perf_counter()
        for group in groups:
            await group[0].send(
                json.dumps({"type": "user_message", "text": f"tick {interval_ms} {ticks}"})
            )
            await asyncio.sleep(interval_ms / 1000 / len(groups))
        await asyncio.gather(*listeners)
        server_cpu = (server.cpu_s() - cpu_before) / (time.perf_counter() - started)
        for group in groups:
            await asyncio.gather(*(ws.close() for ws in group))
    rate = clients * 1000 / interval_ms
    return {
        "clients": clients,
        "deliveries": len(latencies),
        "offered_per_s": rate,
        "server_cpu_pct": server_cpu * 100,
        "p50_ms": statistics.median(latencies),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


async def bench_bus_fanout(subscribers: int, events: int) -> float:
    """Deliveries per second of the in-process bus into per-connection queues, drained."""
    bus = InProcessEventBus(replay_max=events + 10, replay_ttl_s=600, retained_runs=10)
    queues = [asyncio.Queue[RunEvent](maxsize=1_024) for _ in range(subscribers)]
    for queue in queues:
        await bus.subscribe("user", queue.put_nowait)

    async def drain(queue: asyncio.Queue[RunEvent]) -> None:
        for _ in range(events):
            await queue.get()

    drains = [asyncio.create_task(drain(q)) for q in queues]
    started = time.perf_counter()
    for index in range(events):
        await bus.publish(
            EventDraft(
                type=EventType.AGENT_THINKING,
                run_id="run",
                thread_id="t",
                user_id="user",
                agent_name="supervisor",
                payload={"thought": str(index)},
            )
        )
    await asyncio.gather(*drains)
    return subscribers * events / (time.perf_counter() - started)


async def bench_socket_fanout(
    users: int, per_user: int, burst: int, redis_url: str | None
) -> tuple[float, float]:
    """Frames received per wall-clock second, and per second of the server's CPU time (what
    one process fans out when it has a core to itself: here clients compete for the CPUs)."""
    async with Server("bench", redis_url) as server:
        groups = await connect_all(server, await server.tokens(users), per_user)
        counter = [0]
        listeners = [
            asyncio.create_task(receive_until_final(ws, None, counter))
            for group in groups
            for ws in group
        ]
        cpu_before = server.cpu_s()
        started = time.perf_counter()
        for group in groups:
            await group[0].send(json.dumps({"type": "user_message", "text": f"burst {burst}"}))
        await asyncio.gather(*listeners)
        elapsed = time.perf_counter() - started
        server_cpu = server.cpu_s() - cpu_before
        for group in groups:
            await asyncio.gather(*(ws.close() for ws in group))
    return counter[0] / elapsed, counter[0] / server_cpu


async def bench_idle_memory(connections: int, redis_url: str | None) -> dict[str, float]:
    async with Server("bench", redis_url) as server:
        tokens = await server.tokens(connections // CONNECTIONS_PER_USER)
        warm = await connect(server, tokens[0])
        await warm.close()
        await asyncio.sleep(1)
        before = server.rss_mib()
        groups = await connect_all(server, tokens, CONNECTIONS_PER_USER)
        await asyncio.sleep(2)
        after = server.rss_mib()
        for group in groups:
            await asyncio.gather(*(ws.close() for ws in group))
    return {
        "before_mib": before,
        "after_mib": after,
        "kib_per_connection": (after - before) * 1024 / connections,
    }


async def bench_soak(
    total_runs: int, users: int, checkpoint: int, redis_url: str | None
) -> dict[str, float]:
    async with Server("builtin", redis_url) as server:
        tokens = await server.tokens(users)
        sockets = [await connect(server, token) for token in tokens]
        done = [0]
        marks: dict[str, float] = {}
        started = time.perf_counter()

        async def user_loop(ws: websockets.ClientConnection, share: int) -> None:
            in_flight = 0
            sent = 0
            while sent < share or in_flight:
                while sent < share and in_flight < 3:
                    await ws.send(
                        json.dumps(
                            {
                                "type": "user_message",
                                "text": f"How can I cut my AI costs by {sent % 50}%?",
                            }
                        )
                    )
                    sent += 1
                    in_flight += 1
                raw = await ws.recv()
                if '"final":true' in raw:
                    in_flight -= 1
                    done[0] += 1
                    if done[0] == checkpoint:
                        marks["checkpoint_mib"] = server.rss_mib()
                        marks["checkpoint_s"] = time.perf_counter() - started

        shares = [total_runs // users + (1 if i < total_runs % users else 0) for i in range(users)]
        await asyncio.gather(
            *(user_loop(ws, share) for ws, share in zip(sockets, shares, strict=True))
        )
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1)
        marks["final_mib"] = server.rss_mib()
        marks["runs_per_s"] = total_runs / elapsed
        for ws in sockets:
            await ws.close()
    return marks


async def first_event_and_final(
    ws: websockets.ClientConnection, runs: int, timeout_s: float
) -> tuple[list[float], int]:
    """Start `runs` runs at once; time to each run's first event (ms) and how many finals came."""
    sent_at: dict[int, float] = {}
    by_run: dict[str, float] = {}
    first: list[float] = []
    finals = 0
    for index in range(runs):
        sent_at[index] = time.perf_counter()
        await ws.send(
            json.dumps(
                {
                    "type": "user_message",
                    "client_message_id": index,
                    "text": f"How can I cut my AI costs by {10 + index % 50}%?",
                }
            )
        )
    try:
        async with asyncio.timeout(timeout_s):
            while finals < runs:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "message_accepted":
                    by_run[frame["run_id"]] = sent_at[frame["client_message_id"]]
                elif frame.get("seq") == 1 and frame.get("run_id") in by_run:
                    first.append((time.perf_counter() - by_run[frame["run_id"]]) * 1000)
                if frame.get("payload", {}).get("final") and frame.get("run_id") in by_run:
                    finals += 1
    except (TimeoutError, websockets.ConnectionClosed):
        pass
    return first, finals


async def bench_runs(
    clients: int, runs_per_client: int, servers: list[Server], bursts: int
) -> dict[str, Any]:
    tokens = await servers[0].tokens(max(clients, BURST_USERS))
    sockets = [await connect(servers[i % len(servers)], token) for i, token in enumerate(tokens)]
    # one run per process first, unmeasured: the servers' connection pools are then warm, as a
    # server that has been up for a while has them
    await asyncio.gather(
        *(first_event_and_final(ws, 1, FINAL_TIMEOUT_S) for ws in sockets[-len(servers) :])
    )
    ttfe: list[float] = []
    burst_finals = 0
    for index in range(bursts):
        if index:
            await asyncio.sleep(BURST_GAP_S)
        burst = await asyncio.gather(
            *(first_event_and_final(ws, 1, FINAL_TIMEOUT_S) for ws in sockets[:BURST_USERS])
        )
        ttfe.extend(ms for times, _finals in burst for ms in times)
        burst_finals += sum(finals for _times, finals in burst)
    started = time.perf_counter()
    load = await asyncio.gather(
        *(first_event_and_final(ws, runs_per_client, FINAL_TIMEOUT_S) for ws in sockets[:clients])
    )
    elapsed = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    return {
        "ttfe_p50_ms": statistics.median(ttfe),
        "ttfe_p99_ms": percentile(ttfe, 0.99),
        "burst_finals_lost": BURST_USERS * bursts - burst_finals,
        "finals_lost": clients * runs_per_client - sum(f for _t, f in load),
        "load_s": elapsed,
    }


async def main_runs(args: argparse.Namespace) -> int:
    from tests.support.services import PostgresServer, RedisServer

    redis_url, database_url = args.redis_url, args.database_url
    services: list[Any] = []
    if args.processes > 1 and not redis_url:
        services.append(RedisServer.start())
        redis_url = services[-1].url
    if args.processes > 1 and not database_url:
        services.append(PostgresServer.start())
        database_url = await create_pg_database(services[-1])
    backend = "Redis" if redis_url else "in-process bus"
    print(
        f"apex runs: {args.processes} process(es), {backend}, "
        f"{'PostgreSQL' if database_url else 'SQLite'}; {os.cpu_count()} CPUs shared by servers "
        f"and clients; load average at start {os.getloadavg()[0]:.2f}"
    )
    try:
        servers = [
            Server("builtin", redis_url, database_url, global_cap=True)
            for _ in range(args.processes)
        ]
        for server in servers:
            await server.__aenter__()
        try:
            clients = int(args.clients.split(",")[-1])
            result = await bench_runs(clients, args.runs_per_client, servers, args.bursts)
        finally:
            for server in servers:
                await server.__aexit__()
    finally:
        for service in services:
            service.stop()
    print(
        f"  {BURST_USERS} users starting a run at once ({args.bursts} time(s)); then {clients} "
        f"clients x "
        f"{args.runs_per_client} run(s) at once ({result['load_s']:.1f} s); load average now "
        f"{os.getloadavg()[0]:.2f}"
    )
    shape = f"{args.processes} process(es), {'Redis' if redis_url else 'embedded'}"
    times = f", {args.bursts} times" if args.bursts > 1 else ""
    figures = Figures("runs: first event, finals", shape)
    figures.target(
        f"time to first event p50, {BURST_USERS} users at once{times}",
        result["ttfe_p50_ms"],
        "ms",
        at_most=TTFE_P50_TARGET_MS,
    )
    figures.target(
        f"time to first event p99, {BURST_USERS} users at once{times}",
        result["ttfe_p99_ms"],
        "ms",
        at_most=TTFE_P99_TARGET_MS,
    )
    figures.target(
        f"finals lost ({BURST_USERS} users{times})", result["burst_finals_lost"], "", at_most=0
    )
    figures.target(f"finals lost ({clients} clients)", result["finals_lost"], "", at_most=0)
    return figures.finish()


async def main(args: argparse.Namespace) -> int:
    backend = "Redis Streams" if args.redis_url else "in-process bus, SQLite"
    figures = Figures("live events", "Redis" if args.redis_url else "embedded")
    print(
        f"apex live events ({backend}); {os.cpu_count()} CPUs shared by server and clients; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print(
        f"latency: one event every {args.interval_ms} ms per user for {args.ticks} events, "
        f"{CONNECTIONS_PER_USER} connections per user"
    )
    for clients in [int(n) for n in args.clients.split(",")]:
        result = await bench_latency(clients, args.interval_ms, args.ticks, args.redis_url)
        print(
            f"  {clients:>5} clients: p50 {result['p50_ms']:6.2f} ms   p90 {result['p90_ms']:6.2f} ms"
            f"   p99 {result['p99_ms']:6.2f} ms   max {result['max_ms']:6.1f} ms"
            f"   ({result['deliveries']} deliveries, {result['offered_per_s']:.0f}/s offered, "
            f"server CPU {result['server_cpu_pct']:.0f}%)"
        )
        if clients == 1_000:
            figures.target(
                "event delivery p99, 1,000 connections",
                result["p99_ms"],
                "ms",
                at_most=DELIVERY_P99_TARGET_MS,
            )
    bus_rate = await bench_bus_fanout(1_000, 200)
    print(f"fan-out: in-process bus to 1,000 subscriber queues: {bus_rate:,.0f} deliveries/s")
    wall_rate, cpu_rate = await bench_socket_fanout(
        10, CONNECTIONS_PER_USER, args.burst, args.redis_url
    )
    print(
        f"fan-out: end to end, 10 users x {CONNECTIONS_PER_USER} WebSocket connections, "
        f"bursts of {args.burst}: {wall_rate:,.0f} events/s received, "
        f"{cpu_rate:,.0f} events per server CPU-second"
    )
    figures.target("fan-out end to end", wall_rate, "events/s", at_least=FANOUT_TARGET_PER_S)
    memory = await bench_idle_memory(1_000, args.redis_url)
    print(
        f"memory: 1,000 idle connections: RSS {memory['before_mib']:.1f} -> {memory['after_mib']:.1f} MiB"
        f" = {memory['kib_per_connection']:.1f} KiB per connection"
    )
    figures.target(
        "memory per idle connection", memory["kib_per_connection"], "KiB", at_most=IDLE_KIB_TARGET
    )
    if args.soak_runs:
        soak = await bench_soak(
            args.soak_runs, args.soak_users, min(1_000, args.soak_runs), args.redis_url
        )
        growth = (soak["final_mib"] / soak["checkpoint_mib"] - 1) * 100
        print(
            f"soak: {args.soak_runs:,} runs across {args.soak_users} users at "
            f"{soak['runs_per_s']:.0f} runs/s: RSS {soak['checkpoint_mib']:.1f} MiB after "
            f"{min(1_000, args.soak_runs):,} runs, {soak['final_mib']:.1f} MiB after all ({growth:+.1f}%)"
        )
        figures.target(
            f"soak: RSS growth over {args.soak_runs:,} runs",
            growth,
            "%",
            at_most=SOAK_GROWTH_TARGET_PCT,
        )
    return figures.finish()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--workflow", default="bench", choices=["bench", "builtin"])
    parser.add_argument("--clients", default="1,100,1000")
    parser.add_argument("--interval-ms", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--burst", type=int, default=2_000)
    parser.add_argument("--soak-runs", type=int, default=10_000)
    parser.add_argument("--soak-users", type=int, default=50)
    parser.add_argument("--redis-url")
    parser.add_argument("--database-url", help="with --processes 2 (else PostgreSQL is started)")
    parser.add_argument(
        "--runs-per-client",
        type=int,
        help="measure runs (time to first event, finals lost) instead",
    )
    parser.add_argument("--processes", type=int, default=1, choices=[1, 2])
    parser.add_argument(
        "--bursts", type=int, default=1, help="with --runs-per-client: 50 users at once, B times"
    )
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8_192)), hard))
    if arguments.mode == "serve":
        serve(arguments)
    else:
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        if arguments.runs_per_client:
            sys.exit(asyncio.run(main_runs(arguments)))
        sys.exit(asyncio.run(main(arguments)))
