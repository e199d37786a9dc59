"""`apex demo-data` as a real command, then the usage endpoints of a real server process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from apex.auth.tokens import AccessTokenService
from apex.config import Settings
from apex.store.database import Database
from apex.store.repositories.users import UserRepository
from tests.support.server import ServerProcess


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
    env.update({"APEX_ENV": "test", "APEX_DATA_DIR": str(data_dir), "APEX_LOG_LEVEL": "WARNING"})
    return subprocess.run(
        [sys.executable, "-m", "apex", *args], env=env, capture_output=True, text=True, timeout=300
    )


def create_user(settings: Settings, email: str) -> str:
    async def create() -> str:
        db = Database(settings.resolved_database_url)
        try:
            await db.upgrade()
            user = await UserRepository(db).create(email=email, password_hash=None, name=None)
            return user.id
        finally:
            await db.dispose()

    return asyncio.run(create())


def test_demo_data_command_then_a_real_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    written = run_cli(
        "demo-data",
        "--rows",
        "1500",
        "--seed",
        "9",
        "--output",
        str(tmp_path / "demo.jsonl"),
        "--format",
        "jsonl",
        data_dir=data_dir,
    )
    assert written.returncode == 0, written.stderr
    assert len((tmp_path / "demo.jsonl").read_text().splitlines()) == 1500

    settings = Settings(
        _env_file=None,
        env="test",  # type: ignore[call-arg]
        data_dir=data_dir,
    ).prepare()
    user_id = create_user(settings, "demo@example.com")
    missing = run_cli(
        "demo-data", "--rows", "10", "--email", "nobody@example.com", data_dir=data_dir
    )
    assert missing.returncode == 1 and "no user" in missing.stderr
    loaded = run_cli(
        "demo-data",
        "--rows",
        "2000",
        "--seed",
        "9",
        "--email",
        "demo@example.com",
        data_dir=data_dir,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2000 demo rows" in loaded.stdout

    server = ServerProcess(data_dir=data_dir).start()
    try:
        token = AccessTokenService(settings).issue(user_id).token
        headers = {"Authorization": f"Bearer {token}"}
        summary = httpx.get(server.base_url + "/api/usage/summary", headers=headers).json()
        assert summary["totals"]["requests"] == 2000
        with (tmp_path / "demo.jsonl").open("rb") as file:
            response = httpx.post(
                server.base_url + "/api/usage/uploads",
                headers=headers,
                files={"file": ("demo.jsonl", file)},
                timeout=120,
            )
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["format"], report["rows_accepted"], report["rows_rejected"]) == (
            "jsonl",
            1500,
            0,
        )
        status = httpx.get(
            server.base_url + f"/api/usage/uploads/{report['upload_id']}", headers=headers
        ).json()
        assert status["state"] == "completed" and status["rows_processed"] == 1500
        assert httpx.get(server.base_url + "/api/usage/summary").status_code == 401
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_an_upload_cut_short_by_a_killed_server_is_failed_after_the_restart(tmp_path: Path) -> None:
    """The import's record was saved as `processing` when it began; nothing else would ever
    finish it once the process is gone."""
    data_dir = tmp_path / "data"
    settings = Settings(
        _env_file=None,
        env="test",  # type: ignore[call-arg]
        data_dir=data_dir,
    ).prepare()
    user_id = create_user(settings, "killed@example.com")
    headers = {"Authorization": f"Bearer {AccessTokenService(settings).issue(user_id).token}"}
    server = ServerProcess(data_dir=data_dir).start()
    try:

        def load() -> None:
            try:
                httpx.post(
                    server.base_url + "/api/usage/demo",
                    headers=headers,
                    json={"rows": 1_000_000},
                    timeout=120,
                )
            except httpx.TransportError:
                pass  # the server is killed under this request

        loading = threading.Thread(target=load)
        loading.start()
        deadline = time.monotonic() + 60
        items: list[dict[str, object]] = []
        while not items and time.monotonic() < deadline:
            items = httpx.get(server.base_url + "/api/usage/uploads", headers=headers).json()[
                "items"
            ]
            time.sleep(0.05)
        assert [item["state"] for item in items] == ["processing"]
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        loading.join(30)
    finally:
        server.stop()

    server = ServerProcess(data_dir=data_dir).start()
    try:
        items = httpx.get(server.base_url + "/api/usage/uploads", headers=headers).json()["items"]
        assert [(item["state"], item["rows_accepted"]) for item in items] == [("failed", 0)]
        assert "server stopped" in str(items[0]["message"])
        summary = httpx.get(server.base_url + "/api/usage/summary", headers=headers).json()
        assert summary["totals"]["requests"] == 0
        again = httpx.post(
            server.base_url + "/api/usage/demo", headers=headers, json={"rows": 500}, timeout=60
        )
        assert again.status_code == 200 and again.json()["state"] == "completed"
        summary = httpx.get(server.base_url + "/api/usage/summary", headers=headers).json()
        assert summary["totals"]["requests"] == 500
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()
