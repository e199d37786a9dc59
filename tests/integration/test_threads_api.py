"""Threads and messages over HTTP: ownership (404 for another user's), cursor pagination,
soft delete, and the error shape for bad input."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.accounts import make_user
from tests.support.run_harness import wait_until_ended


async def test_create_read_rename_and_soft_delete(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    created = await client.post("/api/threads", json={"title": "  Q3   spend  "}, headers=headers)
    assert created.status_code == 201
    thread = created.json()
    assert set(thread) == {"id", "title", "created_at", "updated_at", "message_count"}
    assert thread["title"] == "Q3 spend" and thread["message_count"] == 0
    assert thread["created_at"].endswith("Z")
    untitled = await client.post("/api/threads", headers=headers)
    assert untitled.status_code == 201 and untitled.json()["title"] == "New chat"
    got = await client.get(f"/api/threads/{thread['id']}", headers=headers)
    assert got.json() == thread
    renamed = await client.patch(
        f"/api/threads/{thread['id']}", json={"title": "Q4"}, headers=headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Q4"
    assert renamed.json()["updated_at"] >= thread["updated_at"]
    deleted = await client.delete(f"/api/threads/{thread['id']}", headers=headers)
    assert deleted.status_code == 204
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/messages")):
        gone = await client.request(
            method,
            f"/api/threads/{thread['id']}{path}",
            json={"title": "x"} if method == "PATCH" else None,
            headers=headers,
        )
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "thread_not_found"
    listed = (await client.get("/api/threads", headers=headers)).json()
    assert [t["id"] for t in listed["items"]] == [untitled.json()["id"]]
    run = await client.post(
        "/api/runs", json={"text": "hi", "thread_id": thread["id"]}, headers=headers
    )
    assert run.status_code == 404


async def test_another_users_thread_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    _owner, owner = await make_user(app)
    _intruder, intruder = await make_user(app)
    thread = (await client.post("/api/threads", json={"title": "mine"}, headers=owner)).json()
    for method, path, body in (
        ("GET", "", None),
        ("PATCH", "", {"title": "stolen"}),
        ("DELETE", "", None),
        ("GET", "/messages", None),
    ):
        answer = await client.request(
            method, f"/api/threads/{thread['id']}{path}", json=body, headers=intruder
        )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "thread_not_found"
    started = await client.post(
        "/api/runs", json={"text": "x", "thread_id": thread["id"]}, headers=intruder
    )
    assert started.status_code == 404
    assert (await client.get("/api/threads", headers=intruder)).json()["items"] == []
    still = (await client.get(f"/api/threads/{thread['id']}", headers=owner)).json()
    assert still["title"] == "mine"


async def test_threads_page_newest_first_without_gaps(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _user, headers = await make_user(app)
    made = [
        (await client.post("/api/threads", json={"title": f"t{i}"}, headers=headers)).json()
        for i in range(25)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/threads", params=params, headers=headers)).json()
        seen.extend(t["id"] for t in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [t["id"] for t in reversed(made)]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"cursor": "not-a-cursor"},
        {"cursor": "e30"},
    ],
)
async def test_bad_paging_parameters_are_400(
    app: FastAPI, client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    _user, headers = await make_user(app)
    answer = await client.get("/api/threads", params=params, headers=headers)
    assert answer.status_code == 400
    assert set(answer.json()["error"]) == {"code", "message", "details"}


async def test_bad_titles_are_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    thread = (await client.post("/api/threads", headers=headers)).json()
    for body in ({"title": "   "}, {}, {"title": 5}):
        answer = await client.patch(f"/api/threads/{thread['id']}", json=body, headers=headers)
        assert answer.status_code == 400, body
    assert (
        await client.post("/api/threads", json={"title": ""}, headers=headers)
    ).status_code == 400
    long = await client.post("/api/threads", json={"title": "x" * 500, "extra": 1}, headers=headers)
    assert long.status_code == 201 and len(long.json()["title"]) == 200


async def test_messages_page_in_order_with_reports(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    first = (await client.post("/api/runs", json={"text": "why so slow?"}, headers=headers)).json()
    await wait_until_ended(client, headers, first["run_id"])
    second = (
        await client.post(
            "/api/runs",
            json={"text": "and cost?", "thread_id": first["thread_id"]},
            headers=headers,
        )
    ).json()
    await wait_until_ended(client, headers, second["run_id"])
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(
                f"/api/threads/{first['thread_id']}/messages", params=params, headers=headers
            )
        ).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(m["role"], m["run_id"]) for m in items] == [
        ("user", first["run_id"]),
        ("assistant", first["run_id"]),
        ("user", second["run_id"]),
        ("assistant", second["run_id"]),
    ]
    assert items[0]["text"] == "why so slow?" and "report" not in items[0]
    assert items[1]["report"]["recommendations"] == [] and items[1]["report"]["markdown"]
    thread = (await client.get(f"/api/threads/{first['thread_id']}", headers=headers)).json()
    assert thread["message_count"] == 4 and thread["title"] == "why so slow?"


async def test_threads_need_a_token(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/threads"),
        ("POST", "/api/threads"),
        ("GET", "/api/threads/x/messages"),
    ):
        answer = await client.request(method, path)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_token"
