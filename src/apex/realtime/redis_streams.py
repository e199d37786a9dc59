"""The shared bus of the scaled deployment: Redis Streams for the per-run log, pub/sub for the rest.

One Lua script numbers, stores and publishes each event, so `seq` is gap-free across processes
and no event can follow a run's final one. Live events travel on one pub/sub channel per user;
a process subscribes to a user's channel while it has a subscriber for that user, and confirms
the subscription before `subscribe()` returns. The listener yields after each message so local
consumers drain between events of a burst. Replay reads the stream (`XRANGE`), whose entry
ids are `<seq>-0`. The control channel carries cancellation requests; heartbeats are scores in
a sorted set, timed by the Redis clock so hosts need not agree on the time.

The process that publishes an event hands it to its own subscribers at once (as the in-process
bus does) and skips its echo from pub/sub: the run's own sockets never wait behind the shared
listener, which matters when one process carries many busy runs. A run's first event, whose
user's run slot came with its admission, can only be numbered 1: those subscribers get it
before Redis has even answered.

Faults. Pub/sub is lossy: when Redis drops the subscriber (a restart, or its output-buffer limit
when this process reads too slowly) the connection re-subscribes and then backfills every run it
was following from the streams, so local consumers see each event exactly once (they drop
duplicates by `seq`). One pub/sub connection per process, not one stream reader per client, keeps
Redis's cost flat in the number of sockets; the backfill makes it lossless. A publisher numbers
above the `floor` it knows the run reached, so `seq` never goes back after Redis lost its state
(and outage handlers are told, so a run's owner keeps that floor durably: see the manager);
while Redis is unreachable events wait in a bounded outbox (delivered to this process's own
consumers at once) and are written, in order, when it answers. Worker liveness is only judged
once the heartbeat record and this process's connection are both older than the lost-after time.
Per-user run slots are leases in a sorted set per user, and so are the user's admitted runs
(executing or waiting), so both per-user limits hold across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from apex.config.logging import get_logger
from apex.realtime.bus import (
    Admission,
    CancelHandler,
    EventSink,
    Fanout,
    NoFreeSlot,
    OutageHandler,
    RunEndedError,
    Subscription,
)
from apex.realtime.events import EventDraft, RunEvent
from apex.realtime.outbox import Outbox
from apex.realtime.redis_batch import ScriptBatch
from apex.tasks import complete_despite_cancel

log = get_logger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
START_WAIT_S = 3.0
POOL_SIZE = 64
POOL_WAIT_S = 20.0
RECONNECT_DELAY_S = 0.5
CANCEL_PREFIX = "cancel "
FOLLOWED_MAX = 100_000
SLOTS_FULL = -2
OUTAGES = (RedisError, OSError)

# A user's run slots and admitted runs are sorted sets of run ids scored by the end of their
# lease (Redis clock), so the places of a process that died free themselves. `take_place` keeps
# `member` among at most `limit` places of `key` (false when all are taken by others).
_TAKE_PLACE = """
local function take_place(key, member, limit, lease, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= limit then
    return false
  end
  redis.call('ZADD', key, now + lease, member)
  redis.call('EXPIRE', key, 2 * lease)
  return true
end
"""

# KEYS: stream, meta[, the user's run slots]. ARGV: head, tail, maxlen, ttl, is_final, channel,
# floor[, run id, slot limit, slot lease (s)]. With the slots key, the event is the run's first
# and goes out only if one of its user's run slots is free, taken in the same call (-2: none free).
_PUBLISH = (
    _TAKE_PLACE
    + """
if redis.call('HGET', KEYS[2], 'final') == '1' then return -1 end
if KEYS[3] and not take_place(KEYS[3], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]),
    tonumber(redis.call('TIME')[1])) then return -2 end
local seq = math.max(tonumber(redis.call('HGET', KEYS[2], 'seq') or '0'), tonumber(ARGV[7])) + 1
redis.call('HSET', KEYS[2], 'seq', seq)
if ARGV[5] == '1' then redis.call('HSET', KEYS[2], 'final', '1') end
local wire = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', wire)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[6], wire)
return seq
"""
)

# An event numbered while Redis was away. KEYS: stream, meta. ARGV: wire, seq, maxlen, ttl,
# is_final, channel. 0 = already stored (its first attempt did land), -1 = the run has ended.
_PUBLISH_NUMBERED = """
if redis.call('HGET', KEYS[2], 'final') == '1' then return -1 end
local seq = tonumber(ARGV[2])
if tonumber(redis.call('HGET', KEYS[2], 'seq') or '0') >= seq then return 0 end
redis.call('HSET', KEYS[2], 'seq', seq)
if ARGV[5] == '1' then redis.call('HSET', KEYS[2], 'final', '1') end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[1])
return seq
"""

# KEYS: workers, since. ARGV: worker id, forget after (s).
_HEARTBEAT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('SET', KEYS[2], now, 'NX')
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return now
"""

# KEYS: workers, since. ARGV: lost after (s). `since` is when the heartbeat record began; a
# Redis restart without persistence (or an empty record) begins it again, and until it is a full
# lost-after time old nobody is judged: the others have not had the time to beat.
_LIVE_WORKERS = """
local now = tonumber(redis.call('TIME')[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SET', KEYS[2], now) end
local since = tonumber(redis.call('GET', KEYS[2]) or '-1')
if since < 0 then redis.call('SET', KEYS[2], now); since = now end
if now - since < tonumber(ARGV[1]) then return false end
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""

# KEYS: a user's run slots. ARGV: run id, limit, lease (s). 1 = taken (or held already), 0 = none.
_CLAIM_SLOT = (
    _TAKE_PLACE
    + """
local now = tonumber(redis.call('TIME')[1])
return take_place(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now) and 1 or 0
"""
)

# KEYS: a user's admitted runs[, their run slots]. ARGV: run id, admitted limit, lease (s)[, slot
# limit]. 0 = refused; 1 = admitted; 2 = admitted and holding one of the user's run slots, taken
# in the same call when one is free (so the run's first event need not claim it).
_ADMIT = (
    _TAKE_PLACE
    + """
local now = tonumber(redis.call('TIME')[1])
if not take_place(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now) then return 0 end
if KEYS[2] and take_place(KEYS[2], ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[3]), now) then
  return 2
end
return 1
"""
)

# KEYS: a user's run slots (or admitted runs). ARGV: run id, lease (s).
_RENEW_SLOT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""


_EVENT_ID = '"event_id":"'


def _event_id_of(wire: str) -> str:
    """The `event_id` of a wire event, read without parsing it: the wire begins with it."""
    start = wire.find(_EVENT_ID, 0, 120) + len(_EVENT_ID)
    return wire[start : wire.find('"', start)] if start >= len(_EVENT_ID) else ""


class RedisEventBus:
    shared = True

    def __init__(
        self,
        url: str,
        *,
        replay_max: int,
        replay_ttl_s: int,
        worker_lost_after_s: float,
        prefix: str = "apex",
        outbox_max: int = 10_000,
    ) -> None:
        self.url = url
        self.replay_max = replay_max
        self.replay_ttl_s = replay_ttl_s
        self.worker_lost_after_s = worker_lost_after_s
        self.prefix = prefix
        self._fanout = Fanout()
        self._cancel_handlers: list[CancelHandler] = []
        self._outage_handlers: list[OutageHandler] = []
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._commands = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._outbox = Outbox(outbox_max)
        self._outbox_ready = asyncio.Event()
        # runs of users subscribed here → the last `seq` delivered (the backfill's starting point)
        self._followed: OrderedDict[str, tuple[str, int]] = OrderedDict()
        # events published here and handed to local subscribers directly: their echo is skipped
        self._awaiting_echo: OrderedDict[str, None] = OrderedDict()
        self._backfill_due = False
        self._backfills: set[asyncio.Task[None]] = set()
        self._judge_from = 0.0

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

    @property
    def _workers_since_key(self) -> str:
        return f"{self.prefix}:workers:since"

    def _slots_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:run-slots"

    def _admitted_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:runs-admitted"

    async def start(self) -> None:
        """Connect and subscribe to the control channel; if Redis is down, keep trying in the
        background (readiness reports it) rather than refusing to start."""
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, decode_responses=True, max_connections=POOL_SIZE, timeout=POOL_WAIT_S
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._batch = ScriptBatch(self._redis)
        self._publish_numbered = self._redis.register_script(_PUBLISH_NUMBERED)
        self._renew_slot = self._redis.register_script(_RENEW_SLOT)
        # liveness has a connection of its own: a crowd of publishers waiting for the shared
        # pool must not delay this process's heartbeat into a false `worker_lost`
        self._liveness = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                self.url, decode_responses=True, max_connections=2, timeout=POOL_WAIT_S
            )
        )
        self._heartbeat = self._liveness.register_script(_HEARTBEAT)
        self._live_workers = self._liveness.register_script(_LIVE_WORKERS)
        self._pubsub = self._redis.pubsub()
        self._control_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._judge_from = asyncio.get_running_loop().time() + self.worker_lost_after_s
        self._listener = asyncio.create_task(self._listen(), name="apex-redis-bus")
        self._flusher = asyncio.create_task(self._flush(), name="apex-redis-outbox")
        try:
            await asyncio.wait_for(asyncio.shield(self._control_ready), START_WAIT_S)
        except TimeoutError:
            log.warning("redis_bus_unavailable_at_start", url_host=self.url.split("@")[-1])

    async def close(self) -> None:
        for task in (self._listener, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._batch.close()
        await self._pubsub.aclose()
        await self._redis.aclose()
        await self._liveness.aclose()

    async def publish(
        self,
        draft: EventDraft,
        *,
        floor: int = 0,
        slot_limit: int | None = None,
        first: bool = False,
    ) -> RunEvent:
        """Completes even if the caller is cancelled meanwhile (the cancellation is re-raised
        after): an event is never half-sent, and the next one cannot overtake it. When Redis does
        not answer, the event is numbered here and waits in the outbox (and a slot asked for is
        not taken: the process's own limit applies).

        A run's first event with no slot to claim can only be numbered 1, so this process's own
        subscribers get it before the write's round trip: under a crowd of runs starting at once
        that round trip waits behind everyone else's work on the event loop."""
        parts = draft.wire_parts()
        self._expect_echo(draft)
        early = (
            self._deliver_here(draft.numbered(1, parts))
            if first and floor == 0 and slot_limit is None
            else None
        )
        if not self._outbox.holds(draft.run_id):
            keys = [self._stream_key(draft.run_id), self._meta_key(draft.run_id)]
            args: list[object] = [
                parts[0],
                parts[1],
                self.replay_max,
                self.replay_ttl_s,
                "1" if draft.final else "0",
                self._user_channel(draft.user_id),
                floor,
            ]
            if slot_limit is not None:
                keys.append(self._slots_key(draft.user_id))
                args.extend([draft.run_id, slot_limit, self._slot_lease_s])
            try:
                seq = int(await complete_despite_cancel(self._batch.call(_PUBLISH, keys, args)))
            except OUTAGES as exc:
                log.warning("redis_bus_buffering", run_id=draft.run_id, error=repr(exc))
                self._outage()
            else:
                if seq == SLOTS_FULL:
                    self._awaiting_echo.pop(draft.event_id, None)
                    raise NoFreeSlot(draft.run_id)
                if seq < 0:
                    raise RunEndedError(f"Run {draft.run_id} has already ended.")
                if early is not None and early.seq == seq:
                    return early
                return self._deliver_here(draft.numbered(seq, parts))
        seq = max(floor, self._outbox.last_seq(draft.run_id)) + 1
        if early is not None and early.seq == seq:
            event = early
        else:
            event = self._deliver_here(draft.numbered(seq, parts))
        self._outbox.put(event)
        self._outbox_ready.set()
        return event

    def _expect_echo(self, draft: EventDraft) -> None:
        """Mark the event as delivered here, so its echo from pub/sub is skipped."""
        if self._fanout.has(draft.user_id):
            self._awaiting_echo[draft.event_id] = None
            while len(self._awaiting_echo) > FOLLOWED_MAX:
                self._awaiting_echo.popitem(last=False)

    def _deliver_here(self, event: RunEvent) -> RunEvent:
        self._follow(event, local=True)
        self._fanout.deliver(event)
        return event

    async def _flush(self) -> None:
        """Write the outbox to Redis in order, retrying while it is away."""
        while True:
            await self._outbox_ready.wait()
            event = self._outbox.head()
            if event is None:
                self._outbox_ready.clear()
                continue
            try:
                await self._publish_numbered(
                    keys=[self._stream_key(event.run_id), self._meta_key(event.run_id)],
                    args=[
                        event.wire,
                        event.seq,
                        self.replay_max,
                        self.replay_ttl_s,
                        "1" if event.final else "0",
                        self._user_channel(event.user_id),
                    ],
                )
            except asyncio.CancelledError:
                raise
            except OUTAGES:
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            self._outbox.pop()

    def _follow(self, event: RunEvent, *, local: bool = False) -> None:
        """Remember how far this process has delivered a run of a user subscribed here."""
        if not (local or self._fanout.has(event.user_id)):
            return
        if event.final:
            self._followed.pop(event.run_id, None)
            return
        known = self._followed.get(event.run_id)
        if known is None or known[1] < event.seq:
            self._followed[event.run_id] = (event.user_id, event.seq)
            self._followed.move_to_end(event.run_id)
        while len(self._followed) > FOLLOWED_MAX:
            self._followed.popitem(last=False)

    async def _backfill(self, followed: list[tuple[str, tuple[str, int]]]) -> None:
        """After the subscriber was re-established: what pub/sub dropped meanwhile, from the
        streams. `followed` is where each run stood when the connection came back, taken before
        any live event moved it on (else the gap before that event would be skipped).
        Consumers drop what they already have, so over-delivery is harmless."""
        for run_id, (user_id, after_seq) in followed:
            if not self._fanout.has(user_id):
                self._followed.pop(run_id, None)
                continue
            try:
                missed = await self.replay(run_id, after_seq=after_seq)
            except OUTAGES as exc:
                log.warning("redis_bus_backfill_failed", error=repr(exc))
                self._backfill_due = True
                return
            for event in missed:
                self._follow(event)
                self._fanout.deliver(event)
            await asyncio.sleep(0)

    async def replay(self, run_id: str, after_seq: int = 0) -> list[RunEvent]:
        entries = await self._redis.xrange(self._stream_key(run_id), min=f"{after_seq + 1}-0")
        # the client decodes responses, so every field is text
        return [
            RunEvent.from_wire(str(fields["e"]))
            for _entry_id, fields in entries or []
            if fields is not None
        ]

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
            except OUTAGES as exc:
                log.warning("redis_bus_reconnecting", error=repr(exc))
                self._outage()
                self._backfill_due = True
                self._judge_from = asyncio.get_running_loop().time() + self.worker_lost_after_s
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            if message is not None:
                if self._backfill_due or self._resubscribed(message):
                    # the first answer on a re-established connection follows its SUBSCRIBE:
                    # anything published from now on arrives live
                    self._backfill_due = False
                    backfill = asyncio.get_running_loop().create_task(
                        self._backfill(list(self._followed.items()))
                    )
                    self._backfills.add(backfill)  # the loop keeps only a weak reference
                    backfill.add_done_callback(self._backfills.discard)
                self._dispatch(message)
                await asyncio.sleep(0)

    def _resubscribed(self, message: dict[str, object]) -> bool:
        """A confirmation nobody here asked for: the client reconnected on its own (its retry
        policy) and subscribed again, without the listener ever seeing the connection drop, so
        whatever was published while it was gone must be backfilled all the same."""
        return message["type"] == "subscribe" and not self._confirmations.get(
            str(message["channel"])
        )

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
        if self._awaiting_echo and self._awaiting_echo.pop(_event_id_of(data), False) is None:
            return  # published here and delivered already: not worth parsing
        try:
            event = RunEvent.from_wire(data)
        except (ValueError, KeyError, TypeError):
            log.error("redis_bus_bad_event", channel=channel)
            return
        if channel == self._user_channel(event.user_id):
            self._follow(event)
            self._fanout.deliver(event)

    async def request_cancel(self, run_id: str) -> None:
        await self._redis.publish(self._control_channel, CANCEL_PREFIX + run_id)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    def on_outage(self, handler: OutageHandler) -> None:
        self._outage_handlers.append(handler)

    def _outage(self) -> None:
        for handler in tuple(self._outage_handlers):
            try:
                handler()
            except Exception:
                log.exception("redis_bus_outage_handler_failed")

    async def heartbeat(self, worker_id: str) -> None:
        await self._heartbeat(
            keys=[self._workers_key, self._workers_since_key],
            args=[worker_id, max(3_600, int(self.worker_lost_after_s * 10))],
        )

    async def live_workers(self) -> frozenset[str] | None:
        if asyncio.get_running_loop().time() < self._judge_from:
            return None
        workers = await self._live_workers(
            keys=[self._workers_key, self._workers_since_key], args=[int(self.worker_lost_after_s)]
        )
        return None if workers is None else frozenset(workers)

    @property
    def _slot_lease_s(self) -> int:
        return max(2, int(self.worker_lost_after_s))

    async def claim_run_slot(self, user_id: str, run_id: str, limit: int) -> bool:
        return bool(
            await self._batch.call(
                _CLAIM_SLOT, [self._slots_key(user_id)], [run_id, limit, self._slot_lease_s]
            )
        )

    async def release_run_slot(self, user_id: str, run_id: str) -> None:
        await self._redis.zrem(self._slots_key(user_id), run_id)

    async def renew_run_slots(self, held: dict[str, str]) -> None:
        await self._renew(self._slots_key, held)

    async def admit_run(
        self, user_id: str, run_id: str, limit: int, *, slot_limit: int | None = None
    ) -> Admission:
        keys, args = [self._admitted_key(user_id)], [run_id, limit, self._slot_lease_s]
        if slot_limit is not None:
            keys.append(self._slots_key(user_id))
            args.append(slot_limit)
        return Admission(int(await self._batch.call(_ADMIT, keys, args)))

    async def dismiss_run(self, user_id: str, run_id: str) -> None:
        await self._redis.zrem(self._admitted_key(user_id), run_id)

    async def renew_admissions(self, admitted: dict[str, str]) -> None:
        await self._renew(self._admitted_key, admitted)

    async def _renew(self, key_of: Callable[[str], str], held: dict[str, str]) -> None:
        """Extend the leases of `held` (`run_id → user_id`), in one round trip."""
        if not held:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id, user_id in held.items():
                await self._renew_slot(
                    keys=[key_of(user_id)], args=[run_id, self._slot_lease_s], client=pipe
                )
            await pipe.execute()
