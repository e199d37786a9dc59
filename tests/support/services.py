"""Real PostgreSQL and Redis servers on free loopback ports, started from the machine's binaries.

A missing binary fails loudly with the exact install command: a category of tests is never
skipped in silence.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

PG_MIN_MAJOR = 14


def postgres_bin_dirs() -> tuple[str, ...]:
    """Where any PostgreSQL >= 14 keeps `initdb` and `pg_ctl`: what `pg_config --bindir` says,
    then Debian's versioned directories, newest first, then /usr/local/bin."""
    found: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            found.append(result.stdout.strip())
    versioned = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if path.parent.name.isdigit() and int(path.parent.name) >= PG_MIN_MAJOR
    ]
    found += [str(path) for path in sorted(versioned, key=lambda p: -int(p.parent.name))]
    found.append("/usr/local/bin")
    return tuple(dict.fromkeys(found))


# Ports for the suite's servers come from just below the kernel's ephemeral range: no outgoing
# connection and no bind to port 0 is ever given one, so a port cannot be taken between its
# choice and the server's bind. A lock on the port's byte in one shared file makes it the
# choosing process's alone for that process's life: parallel workers (pytest-xdist) and
# separate test runs on one machine never share a port, even across a server's restart.
PORT_SPAN = 12_000
PORT_LOCKS = Path(tempfile.gettempdir()) / "apex-test-ports.lock"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _PortBook:
    """This process's reserved ports, locked through one descriptor of PORT_LOCKS.

    POSIX record locks end when the process closes any descriptor of the file, so the one it
    opens stays open for the process's life; a process forked from this one holds none."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._taken: set[int] = set()
        self._fd: int | None = None
        self._opened = False

    def _descriptor(self) -> int | None:
        if not self._opened:
            self._opened = True
            try:
                self._fd = os.open(PORT_LOCKS, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                self._fd = None
        return self._fd

    def reserve(self, low: int, high: int) -> int | None:
        """A port of [low, high) locked by no other process and bindable now (None: none)."""
        with self._guard:
            fd = self._descriptor()
            if fd is None:
                return None
            start = random.randrange(low, high)
            for offset in range(high - low):
                port = low + (start - low + offset) % (high - low)
                if port in self._taken:
                    continue
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
                except OSError:
                    continue
                self._taken.add(port)
                if _bindable(port):
                    return port
        return None


_PORTS = _PortBook()


def free_port() -> int:
    """A loopback port nothing listens on, reserved for this process (see PORT_LOCKS)."""
    high = _ephemeral_low()
    low = max(1024, high - PORT_SPAN)
    reserved = _PORTS.reserve(low, high) if high - low >= 1000 else None
    return reserved if reserved is not None else _kernel_port()


def require_binary(name: str, install_hint: str, search: tuple[str, ...] = ()) -> str:
    for directory in search:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed: run `{install_hint}`", pytrace=False)
    return found


def wait_for_port(
    port: int, timeout_s: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something listens on `port`; with `process`, until it does while `process` runs
    (ProcessLookupError if it ended first: it could not bind, or it failed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessLookupError(f"exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                if process is None or process.poll() is None:
                    return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


START_ATTEMPTS = 3
Started = TypeVar("Started")


def start_on_free_port(start: Callable[[int], Started], bind_failure: type[Exception]) -> Started:
    """`start(port)` on a free port, again on another one when it raises `bind_failure`: the
    port was taken by a process outside the suite between its choice and the bind."""
    for _ in range(START_ATTEMPTS - 1):
        try:
            return start(free_port())
        except bind_failure:
            continue
    return start(free_port())


def _as_postgres_user() -> list[str]:
    """initdb refuses to run as root; drop to the `postgres` account when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root needs `runuser` (package util-linux)", pytrace=False)
    return [runuser, "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    port: int
    data_dir: Path
    pg_ctl: str
    options: str = ""

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PostgresServer:
        hint = "apt-get install -y postgresql"
        bin_dirs = postgres_bin_dirs()
        initdb = require_binary("initdb", hint, bin_dirs)
        pg_ctl = require_binary("pg_ctl", hint, bin_dirs)
        root = Path(tempfile.mkdtemp(prefix="apex-pg-"))
        data_dir = root / "data"
        prefix = _as_postgres_user()
        if prefix:
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            [
                *prefix,
                initdb,
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )

        def launch(port: int) -> PostgresServer:
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            server = cls(port=port, data_dir=data_dir, pg_ctl=pg_ctl, options=options)
            server.resume()
            return server

        return start_on_free_port(launch, subprocess.CalledProcessError)

    def halt(self) -> None:
        """Stop the server and keep its data, as an outage would; `resume` ends the outage."""
        subprocess.run(
            [
                *_as_postgres_user(),
                self.pg_ctl,
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            check=True,
            capture_output=True,
        )

    def resume(self) -> None:
        subprocess.run(
            [
                *_as_postgres_user(),
                self.pg_ctl,
                "-D",
                str(self.data_dir),
                "-o",
                self.options,
                "-l",
                str(self.data_dir.parent / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *_as_postgres_user(),
                self.pg_ctl,
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = require_binary(
            "redis-server", "apt-get install -y redis-server", ("/usr/bin", "/usr/local/bin")
        )
        directory = Path(tempfile.mkdtemp(prefix="apex-redis-"))

        def launch(port: int) -> RedisServer:
            process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(directory),
                    "--protected-mode",
                    "yes",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for_port(port, process=process)
            return cls(port=port, process=process, directory=directory)

        return start_on_free_port(launch, ProcessLookupError)

    def restart(self) -> None:
        """Stop, then start again on the same port with nothing kept (it has no persistence),
        as Redis comes back from a crash or a restart."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server, as an outage would; `resume` starts it again, empty."""
        self._end()

    def resume(self) -> None:
        self.process = subprocess.Popen(
            self.process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, process=self.process)

    def _end(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self._end()
        shutil.rmtree(self.directory, ignore_errors=True)


async def create_pg_database(server: PostgresServer) -> str:
    """A new, empty database on `server`; its URL."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(server.admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.url(name)
