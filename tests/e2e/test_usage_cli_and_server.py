"""`apex demo-data` as a real command, then the usage endpoints of a real server process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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
    return subprocess.run([sys.executable, "-m", "apex", *args], env=env, capture_output=True,
                          text=True, timeout=300)


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
    written = run_cli("demo-data", "--rows", "1500", "--seed", "9", "--output",
                      str(tmp_path / "demo.jsonl"), "--format", "jsonl", data_dir=data_dir)
    assert written.returncode == 0, written.stderr
    assert len((tmp_path / "demo.jsonl").read_text().splitlines()) == 1500

    settings = Settings(_env_file=None, env="test",  # type: ignore[call-arg]
                        data_dir=data_dir).prepare()
    user_id = create_user(settings, "demo@example.com")
    missing = run_cli("demo-data", "--rows", "10", "--email", "nobody@example.com",
                      data_dir=data_dir)
    assert missing.returncode == 1 and "no user" in missing.stderr
    loaded = run_cli("demo-data", "--rows", "2000", "--seed", "9", "--email", "demo@example.com",
                     data_dir=data_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2000 demo rows" in loaded.stdout

    server = ServerProcess(data_dir=data_dir).start()
    try:
        token = AccessTokenService(settings).issue(user_id).token
        headers = {"Authorization": f"Bearer {token}"}
        summary = httpx.get(server.base_url + "/api/usage/summary", headers=headers).json()
        assert summary["totals"]["requests"] == 2000
        with (tmp_path / "demo.jsonl").open("rb") as file:
            response = httpx.post(server.base_url + "/api/usage/uploads", headers=headers,
                                  files={"file": ("demo.jsonl", file)}, timeout=120)
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["format"], report["rows_accepted"], report["rows_rejected"]) == (
            "jsonl", 1500, 0)
        status = httpx.get(server.base_url + f"/api/usage/uploads/{report['upload_id']}",
                           headers=headers).json()
        assert status["state"] == "completed" and status["rows_processed"] == 1500
        assert httpx.get(server.base_url + "/api/usage/summary").status_code == 401
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()
