"""The shared bus of the scaled deployment: Redis Streams for the per-run log, pub/sub for the rest.

One Lua script numbers, stores and publishes each event, so `seq` is gap-free across processes
and no event can follow a run's final one. Live events travel on one pub/sub channel per user;
a process subscribes to a user's channel while it has a subscriber for that user, and confirms
the subscription before `subscribe()` returns. The listener yields after each message so local
consumers drain between events of a burst. Replay reads the stream (`XRANGE`), whose entry
ids are `<seq>-0`. The control channel carries cancellation requests; heartbeats are scores in
a sorted set, timed by the Redis clock so hosts need not agree on the time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from apex.config.logging import get_logger
from apex.realtime.bus import CancelHandler, EventSink, Fanout, RunEndedError, Subscription
from apex.realtime.events import EventDraft, RunEvent
from apex.store.database import complete_despite_cancel

log = get_logger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
START_WAIT_S = 3.0
POOL_SIZE = 64
POOL_WAIT_S = 20.0
RECONNECT_DELAY_S = 0.5
CANCEL_PREFIX = "cancel "

# KEYS: stream, meta. ARGV: head, tail, maxlen, ttl, is_final, channel.
_PUBLISH = """
if redis.call('HGET', KEYS[2], 'final') == '1' then return -1 end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
if ARGV[5] == '1' then redis.call('HSET', KEYS[2], 'final', '1') end
local wire = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', wire)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[6], wire)
return seq
"""

# KEYS: workers. ARGV: worker id, forget after (s).
_HEARTBEAT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return now
"""

# KEYS: workers. ARGV: lost after (s).
_LIVE_WORKERS = """
local now = tonumber(redis.call('TIME')[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""


class RedisEventBus:
    shared = True

    def __init__(self, url: str, *, replay_max: int, replay_ttl_s: int,
                 worker_lost_after_s: float, prefix: str = "apex") -> None:
        self.url = url
        self.replay_max = replay_max
        self.replay_ttl_s = replay_ttl_s
        self.worker_lost_after_s = worker_lost_after_s
        self.prefix = prefix
        self._fanout = Fanout()
        self._cancel_handlers: list[CancelHandler] = []
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._commands = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None

    # keys and channels; the braces keep a run's two keys in one cluster slot
    def _stream_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:events"

    def _meta_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:meta"

    def _user_channel(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:events"

    @property
    def _control_channel(self) -> str:
        return f"{self.prefix}:control"

    @property
    def _workers_key(self) -> str:
        return f"{self.prefix}:workers"

    async def start(self) -> None:
        """Connect and subscribe to the control channel; if Redis is down, keep trying in the
        background (readiness reports it) rather than refusing to start."""
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, decode_responses=True, max_connections=POOL_SIZE, timeout=POOL_WAIT_S)
        self._redis = aioredis.Redis.from_pool(pool)
        self._publish = self._redis.register_script(_PUBLISH)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._live_workers = self._redis.register_script(_LIVE_WORKERS)
        self._pubsub = self._redis.pubsub()
        self._control_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen(), name="apex-redis-bus")
        try:
            await asyncio.wait_for(asyncio.shield(self._control_ready), START_WAIT_S)
        except TimeoutError:
            log.warning("redis_bus_unavailable_at_start", url_host=self.url.split("@")[-1])

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._pubsub.aclose()
        await self._redis.aclose()

    async def publish(self, draft: EventDraft) -> RunEvent:
        """Completes even if the caller is cancelled meanwhile (the cancellation is re-raised
        after): an event is never half-sent, and the next one cannot overtake it."""
        parts = draft.wire_parts()
        seq = int(await complete_despite_cancel(self._publish(
            keys=[self._stream_key(draft.run_id), self._meta_key(draft.run_id)],
            args=[parts[0], parts[1], self.replay_max, self.replay_ttl_s,
                  "1" if draft.final else "0", self._user_channel(draft.user_id)],
        )))
        if seq < 0:
            raise RunEndedError(f"Run {draft.run_id} has already ended.")
        return draft.numbered(seq, parts)

    async def replay(self, run_id: str, after_seq: int = 0) -> list[RunEvent]:
        entries = await self._redis.xrange(self._stream_key(run_id), min=f"{after_seq + 1}-0")
        return [RunEvent.from_wire(fields["e"]) for _entry_id, fields in entries]

    async def subscribe(self, user_id: str, sink: EventSink) -> Subscription:
        channel = self._user_channel(user_id)
        if self._fanout.add(user_id, sink):
            ready = self._ready[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._send_subscribe(channel, ready)
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready[channel]), SUBSCRIBE_TIMEOUT_S)
        except BaseException:
            await self._unsubscribe(user_id, sink)
            raise

        async def close() -> None:
            await self._unsubscribe(user_id, sink)

        return Subscription(close)

    async def _send_subscribe(self, channel: str, confirmed: asyncio.Future[None]) -> None:
        """SUBSCRIBE; `confirmed` resolves when Redis confirms (confirmations come in order)."""
        async with self._commands:
            waiting = self._confirmations.setdefault(channel, deque())
            waiting.append(confirmed)
            try:
                await self._pubsub.subscribe(channel)
            except BaseException:
                waiting.remove(confirmed)
                raise

    async def _unsubscribe(self, user_id: str, sink: EventSink) -> None:
        if self._fanout.remove(user_id, sink):
            channel = self._user_channel(user_id)
            self._ready.pop(channel, None)
            async with self._commands:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    async def _listen(self) -> None:
        control_sent = False
        while True:
            try:
                if not control_sent:
                    await self._send_subscribe(self._control_channel, self._control_ready)
                    control_sent = True
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("redis_bus_reconnecting", error=repr(exc))
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            if message is not None:
                self._dispatch(message)
                await asyncio.sleep(0)

    def _dispatch(self, message: dict[str, object]) -> None:
        kind, channel, data = message["type"], str(message["channel"]), message["data"]
        if kind == "subscribe":
            waiting = self._confirmations.get(channel)
            if waiting:
                confirmed = waiting.popleft()
                if not confirmed.done():
                    confirmed.set_result(None)
                if not waiting:
                    del self._confirmations[channel]
            return
        if kind != "message" or not isinstance(data, str):
            return
        if channel == self._control_channel:
            if data.startswith(CANCEL_PREFIX):
                run_id = data.removeprefix(CANCEL_PREFIX)
                for handler in tuple(self._cancel_handlers):
                    handler(run_id)
            return
        try:
            event = RunEvent.from_wire(data)
        except (ValueError, KeyError, TypeError):
            log.error("redis_bus_bad_event", channel=channel)
            return
        if channel == self._user_channel(event.user_id):
            self._fanout.deliver(event)

    async def request_cancel(self, run_id: str) -> None:
        await self._redis.publish(self._control_channel, CANCEL_PREFIX + run_id)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    async def heartbeat(self, worker_id: str) -> None:
        await self._heartbeat(keys=[self._workers_key],
                              args=[worker_id, max(3_600, int(self.worker_lost_after_s * 10))])

    async def live_workers(self) -> frozenset[str] | None:
        workers = await self._live_workers(keys=[self._workers_key],
                                           args=[int(self.worker_lost_after_s)])
        return frozenset(workers)
