"""The real `apex` command: a server process, migrations, and configuration errors."""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.server import ServerProcess


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
    return subprocess.run(
        [sys.executable, "-m", "apex", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_is_ready_with_embedded_defaults(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", env={"APEX_ENV": "development"}).start()
    try:
        ready = httpx.get(server.base_url + "/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok"}
        assert (tmp_path / "data" / "apex.db").exists()
        assert (tmp_path / "data" / "jwt_secret").exists()
        assert httpx.get(server.base_url + "/").status_code == 200
    finally:
        server.stop()
    assert server.process is not None
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it ended
    assert server.process.returncode in (0, -15)
    assert "Traceback" not in server.log_path.read_text()


def test_db_upgrade_on_postgres(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tests.support.services import create_pg_database

    url = asyncio.run(create_pg_database(postgres_server))
    result = run_cli(
        "db",
        "upgrade",
        env={"APEX_DATABASE_URL": url, "APEX_DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout


def test_invalid_setting_exits_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "serve", env={"APEX_PORT": "eighty", "APEX_DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("apex: invalid configuration: APEX_PORT:")


def test_production_refuses_insecure_defaults(tmp_path: Path) -> None:
    result = run_cli(
        "serve", env={"APEX_ENV": "production", "APEX_DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "APEX_JWT_SECRET" in result.stderr
