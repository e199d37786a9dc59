"""A real `apex serve` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.services import START_ATTEMPTS, free_port

# End-to-end tests sign up many accounts from one address; only rate-limit tests lower these.
RELAXED_RATE_LIMITS = {
    "APEX_RATE_LIMIT_LOGIN_PER_MINUTE": "100000",
    "APEX_RATE_LIMIT_REGISTER_PER_MINUTE": "100000",
    "APEX_RATE_LIMIT_REFRESH_PER_MINUTE": "100000",
}
# A start takes a few seconds; the margin is for a machine busy with parallel test workers.
START_TIMEOUT_S = 90.0
# What uvicorn logs when its bind fails (errno EADDRINUSE).
PORT_IN_USE = "address already in use"


class PortTaken(RuntimeError):
    """The server exited because another process listens on its port."""


@dataclass
class ServerProcess:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> ServerProcess:
        """Starts the process and waits until it is ready; when a process outside the suite took
        the port between its choice and the bind, starts again on another port."""
        for _ in range(START_ATTEMPTS - 1):
            try:
                return self._start_once(timeout_s)
            except PortTaken:
                self.port = free_port()
        return self._start_once(timeout_s)

    def _start_once(self, timeout_s: float) -> ServerProcess:
        self._launch()
        try:
            self.wait_until_ready(timeout_s)
        except TimeoutError:
            self.stop()
            raise
        except RuntimeError as exited:
            self.stop()
            if PORT_IN_USE in self.log_path.read_text():
                raise PortTaken(str(exited)) from exited
            raise
        return self

    def _launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
        env.update(
            {"APEX_ENV": "test", "APEX_LOG_LEVEL": "WARNING", **RELAXED_RATE_LIMITS, **self.env}
        )
        self.log_path = self.data_dir / "server.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apex",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        """Until `/health/ready` answers 200: after a start, or after a dependency is back."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
