"""Lua calls to Redis written together: one pipeline per batch instead of one round trip each.

A crowd of runs starting at once (50 users pressing send together) would otherwise each take a
pooled connection and wait its own round trip, and a cold pool would open a connection for most
of them. Calls made while a batch is in flight are sent together as the next batch, on one
connection: the first call waits one round trip, a crowd waits about two.

Scripts are sent with EVAL, not EVALSHA: Redis caches them either way, and a Redis that
restarted (and forgot every script) needs no reload step. Each script is atomic on its own;
a batch is not a transaction. A failure of the connection fails every call of its batch (the
callers treat it as an outage, as they would a failed single call); an error raised by one
script fails that call only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aioredis


@dataclass(frozen=True, slots=True)
class _Call:
    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    result: asyncio.Future[Any]


class ScriptBatch:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._waiting: list[_Call] = []
        self._writer: asyncio.Task[None] | None = None

    async def call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run `script` with `keys` and `args`; the script's reply, or the error it raised."""
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Call(script, tuple(keys), tuple(args), result))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="apex-redis-batch")
        return await result

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        for call in self._waiting:
            if not call.result.done():
                call.result.set_exception(ConnectionError("The event bus is closing."))
        self._waiting = []

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for call in batch:
                        pipe.eval(call.script, len(call.keys), *call.keys, *call.args)
                    replies = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                for call in batch:
                    if not call.result.done():
                        call.result.set_exception(ConnectionError("The event bus is closing."))
                raise
            except Exception as exc:
                for call in batch:
                    if not call.result.done():
                        call.result.set_exception(exc)
                continue
            for call, reply in zip(batch, replies, strict=True):
                if call.result.done():
                    continue
                if isinstance(reply, Exception):
                    call.result.set_exception(reply)
                else:
                    call.result.set_result(reply)
