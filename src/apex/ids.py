"""Opaque, time-ordered ids: sortable by creation, unguessable, the same on every database.

The random part comes from the operating system's generator, read 4 KiB at a time per thread
rather than 10 bytes per id: `os.urandom` releases the GIL around its system call, and taking
it back waits for whichever thread holds it. With one other thread running Python (a ledger
read, the database driver's thread) an id cost about 500 µs that way, and a chat run makes
dozens (every event has one). A forked child starts with no buffer of its own, so it never
repeats its parent's bytes.
"""

from __future__ import annotations

import os
import threading
import time

_RANDOM_BYTES = 10
_BUFFER_BYTES = 4096


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.offset = 0


_buffers = _Buffers()


def _forget_buffers() -> None:
    global _buffers
    _buffers = _Buffers()


os.register_at_fork(after_in_child=_forget_buffers)


def _random_bytes() -> bytes:
    buffers = _buffers
    if buffers.offset + _RANDOM_BYTES > len(buffers.data):
        buffers.data, buffers.offset = os.urandom(_BUFFER_BYTES), 0
    start = buffers.offset
    buffers.offset = start + _RANDOM_BYTES
    return buffers.data[start : start + _RANDOM_BYTES]


def new_id() -> str:
    """48 bits of milliseconds then 80 random bits, as 32 hex characters (UUIDv7-like)."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{_random_bytes().hex()}"
