"""Optional drivers, with `apex serve` as a real process on an interpreter where their imports
fail (as on the core install, without the extras): a setting that needs a missing extra stops the
start-up with one line naming the extra to install and exit code 2, never a traceback; and the
embedded default starts and serves with every optional driver missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.browser import PASSWORD, unique_email
from tests.support.server import ServerProcess
from tests.support.services import free_port

OPTIONAL_DRIVERS = ("asyncpg", "redis", "clickhouse_connect", "openai", "anthropic", "httpx")
START_TIMEOUT_S = 60

# Put first on PYTHONPATH, this makes every import of a module named in BLOCKED_MODULES (or of
# one of its submodules) fail as it does where the package is not installed.
BLOCKER = """
import os
import sys

BLOCKED = set(os.environ.get("BLOCKED_MODULES", "").split(","))


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


def blocking_env(tmp_path: Path, modules: tuple[str, ...]) -> dict[str, str]:
    """Environment variables under which `modules` cannot be imported."""
    folder = tmp_path / "blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER)
    inherited = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), inherited])),
        "BLOCKED_MODULES": ",".join(modules),
    }


def without_apex_settings(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
    env.update(extra)
    return env


def test_the_blocker_makes_the_drivers_unimportable(tmp_path: Path) -> None:
    env = without_apex_settings(blocking_env(tmp_path, OPTIONAL_DRIVERS))
    for module in OPTIONAL_DRIVERS:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr, module
    unblocked = subprocess.run(
        [sys.executable, "-c", "import redis, asyncpg"],
        env=without_apex_settings({}),
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert unblocked.returncode == 0


@pytest.mark.parametrize(
    ("extra", "module", "setting", "because"),
    [
        ("redis", "redis", {"APEX_REDIS_URL": "redis://127.0.0.1:1/0"}, "APEX_REDIS_URL is set"),
        (
            "postgres",
            "asyncpg",
            {"APEX_DATABASE_URL": "postgresql://apex@127.0.0.1:1/apex"},
            "APEX_DATABASE_URL is a PostgreSQL URL",
        ),
        (
            "clickhouse",
            "clickhouse_connect",
            {"APEX_CLICKHOUSE_URL": "http://127.0.0.1:1"},
            "APEX_CLICKHOUSE_URL is set",
        ),
        (
            "openai",
            "openai",
            {
                "APEX_LLM_PROVIDER": "openai",
                "APEX_LLM_MODEL": "gpt-4o-mini",
                "APEX_LLM_API_KEY": "sk-test",
            },
            "APEX_LLM_PROVIDER is openai",
        ),
        (
            "anthropic",
            "anthropic",
            {
                "APEX_LLM_PROVIDER": "anthropic",
                "APEX_LLM_MODEL": "claude-sonnet-4",
                "APEX_LLM_API_KEY": "k",
            },
            "APEX_LLM_PROVIDER is anthropic",
        ),
    ],
)
def test_a_setting_whose_extra_is_missing_stops_the_start_in_one_line(
    tmp_path: Path, extra: str, module: str, setting: dict[str, str], because: str
) -> None:
    env = without_apex_settings(
        {**blocking_env(tmp_path, (module,)), **setting, "APEX_ENV": "test"}
    )
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "apex",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert started.returncode == 2
    assert started.stdout == ""
    assert started.stderr == (
        f"apex: refusing to start: {because} but the {extra} extra is not "
        f"installed: pip install 'apex[{extra}]'\n"
    )


def test_the_embedded_default_serves_with_every_optional_driver_missing(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", env=blocking_env(tmp_path, OPTIONAL_DRIVERS))
    server.start(timeout_s=START_TIMEOUT_S)
    try:
        ready = httpx.get(server.base_url + "/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        registered = httpx.post(
            server.base_url + "/api/auth/register",
            json={"email": unique_email("core"), "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        threads = httpx.get(server.base_url + "/api/threads", headers=headers)
        assert threads.status_code == 200, threads.text
        assert threads.json()["items"] == []
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()
