"""Real PostgreSQL and Redis servers on free loopback ports, started from the machine's binaries.

A missing binary fails loudly with the exact install command: a category of tests is never
skipped in silence.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    versioned = [path for path in Path("/usr/lib/postgresql").glob("*/bin")
                 if path.parent.name.isdigit() and int(path.parent.name) >= PG_MIN_MAJOR]
    found += [str(path) for path in sorted(versioned, key=lambda p: -int(p.parent.name))]
    found.append("/usr/local/bin")
    return tuple(dict.fromkeys(found))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str, install_hint: str, search: tuple[str, ...] = ()) -> str:
    for directory in search:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed: run `{install_hint}`", pytrace=False)
    return found


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


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
    def start(cls) -> "PostgresServer":
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
            [*prefix, initdb, "-D", str(data_dir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True,
        )
        port = free_port()
        options = (f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        server = cls(port=port, data_dir=data_dir, pg_ctl=pg_ctl, options=options)
        server.resume()
        return server

    def halt(self) -> None:
        """Stop the server and keep its data, as an outage would; `resume` ends the outage."""
        subprocess.run([*_as_postgres_user(), self.pg_ctl, "-D", str(self.data_dir), "-m",
                        "fast", "-w", "stop"], check=True, capture_output=True)

    def resume(self) -> None:
        subprocess.run(
            [*_as_postgres_user(), self.pg_ctl, "-D", str(self.data_dir), "-o", self.options,
             "-l", str(self.data_dir.parent / "log"), "-w", "start"],
            check=True, capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*_as_postgres_user(), self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate",
             "stop"],
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
    def start(cls) -> "RedisServer":
        binary = require_binary("redis-server", "apt-get install -y redis-server",
                                ("/usr/bin", "/usr/local/bin"))
        directory = Path(tempfile.mkdtemp(prefix="apex-redis-"))
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(directory), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(port)
        return cls(port=port, process=process, directory=directory)

    def restart(self) -> None:
        """Stop, then start again on the same port with nothing kept (it has no persistence),
        as Redis comes back from a crash or a restart."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server, as an outage would; `resume` starts it again, empty."""
        self._end()

    def resume(self) -> None:
        self.process = subprocess.Popen(self.process.args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

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
