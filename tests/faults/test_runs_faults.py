"""Runs and their events when what they depend on fails, with real `apex serve` processes, a real
PostgreSQL and a real `redis-server --save ''`: Redis stopped and started again empty mid-run,
PostgreSQL stopped for seconds mid-run, a process killed, the pub/sub subscriber disconnected by
Redis's output-buffer limit. Whatever fails, every client ends with exactly one final event and
a gap-free `seq`, and no run of a live process is ended as `worker_lost`."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select

from apex.store.database import Database
from apex.store.models import Run
from tests.support.cluster import Endpoint
from tests.support.fault_cluster import Cluster, get_run
from tests.support.protocol_checks import check_run_stream
from tests.support.run_harness import WsClient
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, RedisServer

QUESTION = "How can I cut my AI costs by 30%?"
OUTAGE_S = 2.0
STEP_DELAY_MS = "400"
RUN_TIMEOUT_S = 60.0


def reached(run_id: str, kind: str):  # type: ignore[no-untyped-def]
    return lambda frame: frame.get("run_id") == run_id and frame.get("type") == kind


async def test_a_redis_restart_mid_run_loses_no_event_and_fails_no_run(
    cluster: Cluster, fault_redis: RedisServer
) -> None:
    a = await cluster.start("a", APEX_STEP_DELAY_MS=STEP_DELAY_MS)
    b = await cluster.start("b", APEX_STEP_DELAY_MS=STEP_DELAY_MS)
    user_id, token = await cluster.user()
    on_a = await WsClient.connect(Endpoint(a), token)  # type: ignore[arg-type]
    on_b = await WsClient.connect(Endpoint(b), token)  # type: ignore[arg-type]
    run_a = (await on_a.start_run(QUESTION))["run_id"]
    run_b = (await on_b.start_run(QUESTION))["run_id"]
    await on_a.recv_until(reached(run_a, "tool_executing"), timeout=30)

    await asyncio.to_thread(fault_redis.halt)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(fault_redis.resume)
    after = (await on_b.start_run(QUESTION))["run_id"]

    for client, run_id in ((on_a, run_a), (on_b, run_b), (on_b, after)):
        events = await client.run_events(run_id, timeout=RUN_TIMEOUT_S)
        check_run_stream(events, run_id=run_id, user_id=user_id, state="completed")
    for run_id in (run_a, run_b, after):
        assert (await get_run(a, token, run_id))["state"] == "completed"
    await on_a.send({"type": "resume", "run_id": run_b, "after_seq": 0})
    resumed = await on_a.events_until_final(run_b, timeout=10)
    assert resumed[-1] == (await on_b.run_events(run_b))[-1]
    for client in (on_a, on_b):
        await client.close()


@dataclass
class DoomedRun:
    """A run started on a process about to die, watched from a process that survives."""

    survivor: ServerProcess
    doomed: ServerProcess
    user_id: str
    token: str
    watcher: WsClient
    run_id: str

    @classmethod
    async def start(cls, cluster: Cluster) -> DoomedRun:
        survivor = await cluster.start("a", APEX_STEP_DELAY_MS=STEP_DELAY_MS)
        doomed = await cluster.start("doomed", APEX_STEP_DELAY_MS="20000")
        user_id, token = await cluster.user()
        watcher = await WsClient.connect(Endpoint(survivor), token)  # type: ignore[arg-type]
        starter = await WsClient.connect(Endpoint(doomed), token)  # type: ignore[arg-type]
        run_id = (await starter.start_run(QUESTION))["run_id"]
        return cls(survivor, doomed, user_id, token, watcher, run_id)

    async def kill_owner(self) -> None:
        assert self.doomed.process is not None
        os.kill(self.doomed.process.pid, signal.SIGKILL)
        await asyncio.to_thread(self.doomed.process.wait)

    async def ended_worker_lost(self) -> list[dict[str, Any]]:
        """The run's events as the watcher got them, checked: a `worker_lost` end, gap-free."""
        events = await self.watcher.run_events(self.run_id, timeout=RUN_TIMEOUT_S)
        check_run_stream(events, run_id=self.run_id, user_id=self.user_id, state="failed")
        assert events[-1]["payload"]["error"]["code"] == "worker_lost"
        stored = await get_run(self.survivor, self.token, self.run_id)
        assert stored["state"] == "failed" and stored["error"]["code"] == "worker_lost"
        await self.watcher.close()
        return events


async def test_a_killed_process_loses_its_runs_to_the_survivor(cluster: Cluster) -> None:
    run = await DoomedRun.start(cluster)
    await run.watcher.recv_until(reached(run.run_id, "agent_thinking"), timeout=30)
    await run.kill_owner()
    await run.ended_worker_lost()


async def recorded_seq(database_url: str, run_id: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return int(await session.scalar(select(Run.last_seq).where(Run.id == run_id)) or 0)
    finally:
        await db.dispose()


async def test_seq_goes_on_when_redis_restarts_and_the_owner_dies_before_publishing_again(
    cluster: Cluster, fault_redis: RedisServer
) -> None:
    run = await DoomedRun.start(cluster)
    # triage done: the run now waits 20 s before its next event, with only the supervisor open
    await run.watcher.recv_until(reached(run.run_id, "agent_completed"), timeout=RUN_TIMEOUT_S)
    seen = max(f["seq"] for f in run.watcher.frames if f.get("run_id") == run.run_id and "seq" in f)

    await asyncio.to_thread(fault_redis.restart)  # the run's numbering in Redis is gone
    async with asyncio.timeout(RUN_TIMEOUT_S):
        while await recorded_seq(cluster.database_url, run.run_id) < seen:
            await asyncio.sleep(0.1)
    await run.kill_owner()
    # gap-free from 1 (checked there): the numbering went on above what clients had seen
    assert (await run.ended_worker_lost())[-1]["seq"] > seen


async def test_a_subscriber_dropped_for_its_output_buffer_misses_no_final(
    cluster: Cluster, fault_redis: RedisServer
) -> None:
    """Redis closes a pub/sub client whose unread output passes the limit; set it tiny, start
    many runs at once, and every client must still end each of its runs."""
    admin = aioredis.from_url(fault_redis.url)
    try:
        await admin.config_set("client-output-buffer-limit", "pubsub 4kb 2kb 1")
        process = await cluster.start("crowded")
        users = await cluster.users(30)
        clients = [
            await WsClient.connect(Endpoint(process), token)  # type: ignore[arg-type]
            for _user_id, token in users
        ]
        runs = await asyncio.gather(*(client.start_run(QUESTION) for client in clients))
        streams = await asyncio.gather(
            *(
                client.run_events(run["run_id"], timeout=RUN_TIMEOUT_S)
                for client, run in zip(clients, runs, strict=True)
            )
        )
        for (user_id, _token), run, events in zip(users, runs, streams, strict=True):
            check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="completed")
        assert "redis_bus_reconnecting" in process.log_path.read_text(), (
            "the fault did not happen: Redis never closed the subscriber"
        )
        for client in clients:
            await client.close()
    finally:
        await admin.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")
        await admin.aclose()


async def test_a_database_outage_mid_run_still_ends_it_with_one_final_event(
    cluster: Cluster, fault_postgres: PostgresServer
) -> None:
    process = await cluster.start("a", APEX_STEP_DELAY_MS=STEP_DELAY_MS)
    user_id, token = await cluster.user()
    client = await WsClient.connect(Endpoint(process), token)  # type: ignore[arg-type]
    run_id = (await client.start_run(QUESTION))["run_id"]
    await client.recv_until(reached(run_id, "tool_executing"), timeout=30)

    await asyncio.to_thread(fault_postgres.halt)
    await asyncio.sleep(5)
    await asyncio.to_thread(fault_postgres.resume)

    events = await client.run_events(run_id, timeout=RUN_TIMEOUT_S)
    check_run_stream(events, run_id=run_id, user_id=user_id)
    stored = await get_run(process, token, run_id)
    assert stored["state"] == events[-1]["payload"]["state"]
    await client.close()
