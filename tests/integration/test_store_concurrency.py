"""The embedded SQLite store under a crowd: its own locking never fails a run or refuses a
message. Every user starts a run at the same moment, on a fresh thread, while the runs stream
events as fast as they can (the event loop is busy, so open transactions last longer), and
every run must end `completed` with its two messages stored.

SQLite's busy timeout is cut to a blink here: sessions take turns in the event loop, so no
write ever waits on SQLite's file lock, and the outcome must not depend on how long it would."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from apex.api.app import create_app
from apex.config import Settings
from apex.store import database
from tests.support.accounts import make_user
from tests.support.asgi import client_for
from tests.support.run_harness import wait_until_ended
from tests.support.scripted_workflow import Burst, ScriptedWorkflow, Think

USERS = 100


async def _ask(client: httpx.AsyncClient, headers: dict[str, str], index: int) -> dict[str, object]:
    started = await client.post("/api/runs", json={"text": f"question {index}"}, headers=headers)
    assert started.status_code == 202, started.text
    return await wait_until_ended(client, headers, started.json()["run_id"], timeout=120)


async def test_a_hundred_users_starting_runs_at_once_on_sqlite_all_complete(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'apex.db'}", max_runs_global=USERS
    )
    workflow = ScriptedWorkflow([Burst(200, size=512), Think("done")])
    app: FastAPI = create_app(settings, workflow=workflow)
    async with app.router.lifespan_context(app), client_for(app) as client:
        lock_errors: list[str] = []
        event.listen(
            app.state.db.engine.sync_engine,
            "handle_error",
            lambda context: lock_errors.append(str(context.original_exception)),
        )
        users = [await make_user(app) for _ in range(USERS)]
        runs = await asyncio.gather(
            *(_ask(client, headers, index) for index, (_user, headers) in enumerate(users))
        )
        assert [run["state"] for run in runs] == ["completed"] * USERS, [
            (run["state"], run.get("error")) for run in runs if run["state"] != "completed"
        ]
        for (_user, headers), run in zip(users, runs, strict=True):
            messages = (
                await client.get(f"/api/threads/{run['thread_id']}/messages", headers=headers)
            ).json()["items"]
            assert sorted(message["role"] for message in messages) == ["assistant", "user"]
        assert lock_errors == []  # not even one write that failed and was tried again
