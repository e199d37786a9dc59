"""An OpenAI-compatible chat-completions endpoint on loopback that holds every request until the
test releases it: a run that calls its language model then waits mid-flight, for as long as a
test needs to stop it or to drop its connection. It answers in the real wire format (JSON, or
server-sent chunks when the request asks to stream)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.services import free_port

ANSWER = "{}"


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-gate",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    body = {
        "id": "chatcmpl-gate",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class LlmGate:
    def __init__(self, hold_s: float = 60.0) -> None:
        self.port = free_port()
        self.hold_s = hold_s
        self.released = threading.Event()
        self.requests = 0
        self.arrived = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    request = {}
                gate.requests += 1
                gate.arrived.set()
                gate.released.wait(gate.hold_s)
                model = str(request.get("model") or "gate")
                try:
                    if request.get("stream"):
                        self.send_response(200)
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        self.wfile.write(
                            chunk(model, {"role": "assistant", "content": ANSWER}, None)
                        )
                        self.wfile.write(chunk(model, {}, "stop"))
                        self.wfile.write(b"data: [DONE]\n\n")
                        return
                    body = json.dumps(completion(model)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def server_env(self) -> dict[str, str]:
        """The settings that point a server's language model at this gate."""
        return {
            "APEX_LLM_PROVIDER": "openai",
            "APEX_LLM_BASE_URL": self.base_url,
            "APEX_LLM_MODEL": "gpt-4o-mini",
            "APEX_LLM_API_KEY": "sk-gate",
            "APEX_LLM_TIMEOUT_S": "90",
        }

    def start(self) -> LlmGate:
        self.thread.start()
        return self

    def hold(self) -> None:
        self.released.clear()
        self.arrived.clear()

    def release(self) -> None:
        self.released.set()

    def wait_for_request(self, timeout_s: float = 30.0) -> bool:
        return self.arrived.wait(timeout_s)

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
