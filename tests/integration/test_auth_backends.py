"""Revocation, tickets and rate limits: one protocol, two backends, the same behaviour.

The Redis cases use two instances on one Redis, standing for two processes.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from apex.auth.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from apex.auth.revocation import (
    STARTUP_WAIT_S,
    LocalRevocationList,
    RecordedRevocationList,
    RedisRevocationList,
)
from apex.auth.tickets import LocalTicketStore, RedisTicketStore, TicketStore
from apex.errors import DependencyUnavailable
from apex.store.database import Database
from apex.store.repositories.revocations import RevocationRepository
from tests.support.services import RedisServer, free_port


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


def two_instances(
    request: pytest.FixtureRequest,
    prefix: str,
    local: Callable[[], Any],
    remote: Callable[[aioredis.Redis, str], Any],
) -> tuple[Any, Any]:
    """Two handles on shared state, standing for two processes: the same object in process,
    two instances on one Redis."""
    if request.param == "local":
        shared = local()
        return shared, shared
    client = request.getfixturevalue("redis_client")
    return remote(client, prefix), remote(client, prefix)


async def eventually(check: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


# -- revocation ---------------------------------------------------------------------------


async def test_local_revocation_is_immediate_and_forgets_expired_entries() -> None:
    revocations = LocalRevocationList()
    await revocations.start()
    await revocations.revoke(["jti-1", "sid-1"], time.time() + 60)
    assert revocations.is_revoked("jti-1") and revocations.is_revoked("sid-1")
    assert not revocations.is_revoked("jti-2")
    await revocations.revoke(["old"], time.time() - 1)
    revocations._next_prune = 0.0
    await revocations.revoke(["jti-3"], time.time() + 60)
    assert not revocations.is_revoked("old")
    assert len(revocations) == 3
    await revocations.close()


@asynccontextmanager
async def running(*lists: RecordedRevocationList) -> AsyncIterator[None]:
    for revocations in lists:
        await revocations.start()
    try:
        yield
    finally:
        for revocations in lists:
            await revocations.close()


def recorded(
    database: Database, redis_client: aioredis.Redis, prefix: str, **options: float
) -> RedisRevocationList:
    """One process's revocation list: recorded in the app database, announced through Redis."""
    return RedisRevocationList(RevocationRepository(database), redis_client, prefix, **options)


async def test_redis_revocation_reaches_another_process(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    first = recorded(database, redis_client, prefix)
    second = recorded(database, redis_client, prefix)
    async with running(first, second):
        assert first.synced.is_set() and second.synced.is_set()
        await first.revoke(["jti-a"], time.time() + 60)
        assert first.is_revoked("jti-a")  # at once where it happened
        assert await eventually(lambda: second.is_revoked("jti-a"))
        assert not second.is_revoked("jti-b")


async def test_a_process_starting_later_loads_live_revocations_only(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    first = recorded(database, redis_client, prefix)
    await first.start()
    await first.revoke(["live"], time.time() + 60)
    await first.revoke(["expired"], time.time() - 1)
    await first.close()
    late = recorded(database, redis_client, prefix)
    await late.start()
    try:
        assert late.is_revoked("live")
        assert not late.is_revoked("expired")
    finally:
        await late.close()


async def test_the_database_is_the_record_whatever_redis_forgets(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    """Redis emptied (a restart without persistence) forgets nothing: it only carried news."""
    first = recorded(database, redis_client, prefix)
    await first.start()
    await first.revoke(["before-flush"], time.time() + 60)
    await first.close()
    await redis_client.flushdb()
    late = recorded(database, redis_client, prefix)
    await late.start()
    try:
        assert late.is_revoked("before-flush")
    finally:
        await late.close()


async def test_lost_messages_and_dropped_connections_are_recovered(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    follower = recorded(database, redis_client, prefix, resync_every_s=0.2)
    await follower.start()
    try:
        # a revocation whose message this process never saw: only in the record
        await RevocationRepository(database).record(["never-published"], time.time() + 60)
        assert await eventually(lambda: follower.is_revoked("never-published"))
        killed = await redis_client.client_kill_filter(_type="pubsub")
        assert killed >= 1
        await recorded(database, redis_client, prefix).revoke(["after-drop"], time.time() + 60)
        assert await eventually(lambda: follower.is_revoked("after-drop"), timeout_s=5.0)
    finally:
        await follower.close()


async def test_listeners_hear_of_new_revocations_once(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    first = recorded(database, redis_client, prefix)
    second = recorded(database, redis_client, prefix)
    heard: list[str] = []
    second.on_revoked(lambda: heard.append("second"))
    first.on_revoked(lambda: heard.append("first"))
    async with running(first, second):
        await first.revoke(["jti-l", "sid-l"], time.time() + 60)
        assert await eventually(lambda: "second" in heard)
        await first.revoke(["jti-l"], time.time() + 120)  # already denied: nothing new
        await asyncio.sleep(0.2)
        assert sorted(heard) == ["first", "second"]


async def test_junk_on_the_channel_is_ignored(
    database: Database, redis_client: aioredis.Redis, prefix: str
) -> None:
    follower = recorded(database, redis_client, prefix)
    await follower.start()
    try:
        for junk in (
            b"not json",
            b"[]",
            b"5",
            b'{"ids": 5}',
            b'{"ids": ["x"]}',
            b"\xff\xfe",
            b'{"ids": "xyz", "until": 9e99}',
            b'{"ids": [1, 2], "until": 9e99}',
            b'{"ids": ["x"], "until": "soon"}',
        ):
            await redis_client.publish(f"{prefix}:auth:revocations", junk)
        await recorded(database, redis_client, prefix).revoke(["after-junk"], time.time() + 60)
        assert await eventually(lambda: follower.is_revoked("after-junk"))
        assert not any(follower.is_revoked(i) for i in ("x", "y", "z", "1"))
    finally:
        await follower.close()


async def test_without_redis_start_does_not_hang_and_revocations_are_still_recorded(
    database: Database,
) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    revocations = recorded(database, client, "dead")
    async with asyncio.timeout(STARTUP_WAIT_S + 10):  # gives up on Redis instead of hanging
        await revocations.start()
    assert not revocations.synced.is_set()
    await revocations.revoke(["jti"], time.time() + 60)
    assert revocations.is_revoked("jti")
    another = RecordedRevocationList(RevocationRepository(database))
    await another.start()
    assert another.is_revoked("jti")  # recorded: the next process to start knows it
    await another.close()
    await revocations.close()
    await client.aclose()


async def test_without_the_database_revoke_says_503_and_this_process_still_refuses() -> None:
    unreachable = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
    revocations = RecordedRevocationList(RevocationRepository(unreachable))
    await revocations.start()  # does not raise: the record is read again in the background
    with pytest.raises(DependencyUnavailable) as caught:
        await revocations.revoke(["jti"], time.time() + 60)
    assert caught.value.details == {"dependency": "database"}
    assert revocations.is_revoked("jti")
    await revocations.close()
    await unreachable.dispose()


# -- tickets --------------------------------------------------------------------------------


@pytest.fixture(params=["local", "redis"])
def ticket_stores(request: pytest.FixtureRequest, prefix: str) -> tuple[TicketStore, TicketStore]:
    return two_instances(request, prefix, LocalTicketStore, RedisTicketStore)


async def test_a_ticket_redeems_once_anywhere(
    ticket_stores: tuple[TicketStore, TicketStore],
) -> None:
    issuer, redeemer = ticket_stores
    ticket = await issuer.issue("ws", {"user_id": "u1", "token_id": "t1"}, 60)
    assert len(ticket) >= 43
    assert await redeemer.redeem("ws", ticket) == {"user_id": "u1", "token_id": "t1"}
    assert await redeemer.redeem("ws", ticket) is None
    assert await issuer.redeem("ws", ticket) is None


async def test_a_ticket_is_bound_to_its_kind(
    ticket_stores: tuple[TicketStore, TicketStore],
) -> None:
    issuer, redeemer = ticket_stores
    ticket = await issuer.issue("oidc", {"provider": "p"}, 60)
    assert await redeemer.redeem("ws", ticket) is None
    assert await redeemer.redeem("oidc", ticket) == {"provider": "p"}


async def test_a_ticket_expires(ticket_stores: tuple[TicketStore, TicketStore]) -> None:
    issuer, redeemer = ticket_stores
    ticket = await issuer.issue("ws", {"user_id": "u"}, 1)
    await asyncio.sleep(1.2)
    assert await redeemer.redeem("ws", ticket) is None


async def test_racing_redemptions_have_one_winner(
    ticket_stores: tuple[TicketStore, TicketStore],
) -> None:
    issuer, redeemer = ticket_stores
    ticket = await issuer.issue("ws", {"user_id": "u"}, 60)
    results = await asyncio.gather(
        *(store.redeem("ws", ticket) for store in (issuer, redeemer) * 10)
    )
    assert [r for r in results if r is not None] == [{"user_id": "u"}]


@pytest.mark.parametrize(
    "garbage", ["", "x", "é" * 50, "\x00" * 10, "a" * 10_000, "\ud800", "*", "ws:*", "' OR 1=1 --"]
)
async def test_garbage_tickets_redeem_to_nothing(
    ticket_stores: tuple[TicketStore, TicketStore], garbage: str
) -> None:
    await ticket_stores[0].issue("ws", {"user_id": "u"}, 60)
    assert await ticket_stores[1].redeem("ws", garbage) is None


async def test_redis_stores_only_the_ticket_hash(redis_client: aioredis.Redis, prefix: str) -> None:
    ticket = await RedisTicketStore(redis_client, prefix).issue("ws", {"user_id": "u"}, 60)
    keys = [k.decode() for k in await redis_client.keys(f"{prefix}:*")]
    assert len(keys) == 1
    assert ticket not in keys[0]
    assert 0 < await redis_client.ttl(keys[0]) <= 60


# -- rate limits ----------------------------------------------------------------------------


@pytest.fixture(params=["local", "redis"])
def limiters(request: pytest.FixtureRequest, prefix: str) -> tuple[RateLimiter, RateLimiter]:
    return two_instances(request, prefix, LocalRateLimiter, RedisRateLimiter)


async def test_the_limit_holds_across_instances(limiters: tuple[RateLimiter, RateLimiter]) -> None:
    first, second = limiters
    assert await first.acquire("login:ip:x", 4, 60.0) == 0.0
    assert await second.acquire("login:ip:x", 4, 60.0) == 0.0
    assert await first.acquire("login:ip:x", 4, 60.0) == 0.0
    assert await second.acquire("login:ip:x", 4, 60.0) == 0.0
    wait = await first.acquire("login:ip:x", 4, 60.0)
    assert 14.0 < wait <= 15.0
    assert await second.acquire("login:ip:y", 4, 60.0) == 0.0


async def test_concurrent_requests_never_exceed_the_limit(
    limiters: tuple[RateLimiter, RateLimiter],
) -> None:
    first, second = limiters
    waits = await asyncio.gather(
        *(limiter.acquire("burst", 5, 60.0) for limiter in (first, second) * 15)
    )
    assert sum(1 for w in waits if w == 0.0) == 5


async def test_redis_rate_keys_expire_on_their_own(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix)
    await limiter.acquire("k", 10, 60.0)
    ttl_ms = await redis_client.pttl(f"{prefix}:auth:rate:k")
    assert 5_000 < ttl_ms <= 6_000
