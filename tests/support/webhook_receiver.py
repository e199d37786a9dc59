"""A webhook endpoint on loopback for tests of alert delivery: it records every POST and answers
the n-th POST of one alert (told apart by its `X-Apex-Alert` header) with the n-th planned
status, so a test can make the server retry and then succeed; it can also hold its answers,
keeping an attempt in flight while the test changes something."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# longest a held answer waits before it is given anyway
HOLD_S = 60.0


@dataclass
class Receiver:
    """The requests received so far (lower-cased headers, body) and the statuses planned."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    # cleared, the receiver holds every answer until it is set again (a request stays in flight)
    answering: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def __post_init__(self) -> None:
        self.answering.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/apex"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"{len(self.requests)} of {count} deliveries arrived"
            )
            return list(self.requests)


def signature(secret: str, body: bytes) -> str:
    """What `X-Apex-Signature` must be for `body`, computed here as a receiver would."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Server(ThreadingHTTPServer):
    # many senders post at once: with the default accept queue of 5, a busy machine drops
    # their connection attempts until the client's timeout, and an attempt that never
    # arrives counts as a failed one
    request_queue_size = 128


@contextmanager
def running_receiver(statuses: list[int]) -> Iterator[Receiver]:
    """A receiver serving on a free loopback port until the block ends."""
    state = Receiver(statuses=statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.arrived:
                alert = self.headers["X-Apex-Alert"]
                earlier = sum(
                    1 for headers, _ in state.requests if headers["x-apex-alert"] == alert
                )
                status = state.statuses[min(earlier, len(state.statuses) - 1)]
                state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                state.arrived.notify_all()
            state.answering.wait(HOLD_S)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = _Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
