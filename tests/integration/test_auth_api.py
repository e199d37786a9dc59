"""The Auth part of the protocol over HTTP, on both deployment shapes:
SQLite with in-process backends, and PostgreSQL with Redis."""

import asyncio
import hashlib
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from apex.store.models import RefreshFamily, RefreshToken, User
from apex.store.types import utcnow
from tests.support.accounts import TEST_JWT_SECRET, make_user
from tests.support.asgi import client_for, running_app
from tests.support.deployed import app, app_overrides, client, served  # noqa: F401 (fixtures)
from tests.support.keys import write_key_files

PASSWORD = "correct horse battery"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def new_email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def bearer(body: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {"Authorization": f"Bearer {body['access_token']}"}


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: object
) -> dict:  # type: ignore[type-arg]
    response = await client.post(
        "/api/auth/register", json={"email": email or new_email(), "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# -- register ------------------------------------------------------------------------------


async def test_register_answers_the_protocol_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "email": " Ann.Lee@Example.COM ",
            "password": PASSWORD,
            "name": "Ann Lee",
            "unknown_field": [1, 2],
        },
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("bearer", 900)
    user = body["user"]
    assert set(user) == {"id", "email", "name", "created_at"}
    assert (user["email"], user["name"]) == ("ann.lee@example.com", "Ann Lee")
    assert ISO_MS.match(user["created_at"])
    claims = jwt.decode(
        body["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], audience="apex"
    )
    assert claims["sub"] == user["id"] and claims["typ"] == "access"
    me = await client.get("/api/auth/me", headers=bearer(body))
    assert me.status_code == 200 and me.json() == user


async def test_register_stores_an_argon2id_hash_never_the_password(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = await register(client)
    async with app.state.db.session() as session:
        user = await session.get(User, body["user"]["id"])
    assert user is not None and user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


async def test_an_email_registers_once_whatever_its_spelling(client: httpx.AsyncClient) -> None:
    await register(client, "Zoë@Exämple.com")
    for spelling in (
        "zoë@exämple.com",
        unicodedata.normalize("NFD", "ZOË@EXÄMPLE.COM"),
        "zoë@xn--exmple-cua.com",
    ):
        again = await client.post(
            "/api/auth/register", json={"email": spelling, "password": PASSWORD}
        )
        assert again.status_code == 409
        assert error_code(again) == "email_taken"
    login = await client.post(
        "/api/auth/login",
        json={"email": unicodedata.normalize("NFD", "zoë@exämple.com"), "password": PASSWORD},
    )
    assert login.status_code == 200


async def test_a_weak_password_is_explained(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": new_email(), "password": "short"}
    )
    assert response.status_code == 400
    assert error_code(response) == "weak_password"
    assert "at least 10 characters" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "' OR '1'='1' --", "password": PASSWORD}, 400, "invalid_email"),
        (
            {"email": "a@example.com'; DROP TABLE users;--", "password": PASSWORD},
            400,
            "invalid_email",
        ),
        ({"email": 12345, "password": PASSWORD}, 400, "validation_error"),
        ({"email": ["a@example.com"], "password": PASSWORD}, 400, "validation_error"),
        ({"email": {"$ne": None}, "password": PASSWORD}, 400, "validation_error"),
        ({"email": "a@example.com", "password": None}, 400, "validation_error"),
        ({"email": "a@example.com", "password": 1234567890}, 400, "validation_error"),
        ({"email": "a@example.com", "password": True}, 400, "validation_error"),
        ({"email": "a@example.com", "password": PASSWORD, "name": 42}, 400, "validation_error"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "a\x00b"}, 400, "invalid_name"),
        (
            {"email": "a@example.com", "password": PASSWORD, "name": "x" * 201},
            400,
            "validation_error",
        ),
        ({"email": "x" * 10_000 + "@example.com", "password": PASSWORD}, 400, "validation_error"),
        ({"email": "a@example.com", "password": "p" * 1_025}, 400, "validation_error"),
        ({"password": PASSWORD}, 400, "validation_error"),
        ({}, 400, "validation_error"),
    ],
)
async def test_register_refuses_hostile_bodies(
    client: httpx.AsyncClient,
    body: dict,  # type: ignore[type-arg]
    status: int,
    code: str,
) -> None:
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == status, response.text
    assert error_code(response) == code


@pytest.mark.parametrize(
    ("content", "paths"),
    [
        (
            b'{"email": "\\ud800@example.com", "password": "correct horse battery"}',
            ("/api/auth/register", "/api/auth/login"),
        ),
        (
            b'{"email": "a@example.com", "password": "\\udfffcorrect horse battery"}',
            ("/api/auth/register", "/api/auth/login"),
        ),
        (
            b'{"email": "a@example.com", "password": "correct horse battery", "name": "\\ud800"}',
            ("/api/auth/register",),
        ),
    ],
)
async def test_lone_surrogates_in_json_strings_are_refused(
    client: httpx.AsyncClient, content: bytes, paths: tuple[str, ...]
) -> None:
    for path in paths:
        response = await client.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert error_code(response) == "validation_error"


@pytest.mark.parametrize(
    "path", ["/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/dev-login"]
)
@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 422, "invalid_json"),
        (b"[1, 2, 3]", 400, "validation_error"),
        (b'"a string"', 400, "validation_error"),
        (b"\xff\xfe\x00", 400, "bad_request"),
        (b"null", 400, "validation_error"),
    ],
)
async def test_undecodable_or_wrongly_shaped_json(
    client: httpx.AsyncClient, path: str, content: bytes, status: int, code: str
) -> None:
    response = await client.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    if path == "/api/auth/dev-login" and status == 400:
        assert response.status_code in (400, 404)  # a null/absent body is allowed there
        return
    assert response.status_code == status, response.text
    assert error_code(response) == code


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/refresh"])
async def test_oversized_bodies_get_413_declared_or_streamed(
    client: httpx.AsyncClient, path: str
) -> None:
    huge = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    declared = await client.post(path, content=huge, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert error_code(declared) == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(100):
            yield b"a" * 10_000

    streamed = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert error_code(streamed) == "payload_too_large"


async def test_sql_looking_text_is_just_text(client: httpx.AsyncClient, app: FastAPI) -> None:
    name = "Robert'); DROP TABLE users;--"
    body = await register(client, "o'brien@example.com", password="' OR 1=1; --  ", name=name)
    assert body["user"]["name"] == name
    login = await client.post(
        "/api/auth/login", json={"email": "O'Brien@example.com", "password": "' OR 1=1; --  "}
    )
    assert login.status_code == 200
    wrong = await client.post(
        "/api/auth/login", json={"email": "o'brien@example.com", "password": "' OR '1'='1"}
    )
    assert wrong.status_code == 401
    async with app.state.db.session() as session:
        assert len((await session.execute(select(User))).scalars().all()) == 1


# -- login ---------------------------------------------------------------------------------


async def test_login_returns_a_fresh_pair(client: httpx.AsyncClient) -> None:
    registered = await register(client, "login@example.com")
    response = await client.post(
        "/api/auth/login", json={"email": "LOGIN@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == registered["user"]
    assert body["access_token"] != registered["access_token"]
    assert body["refresh_token"] != registered["refresh_token"]
    assert (await client.get("/api/auth/me", headers=bearer(body))).status_code == 200


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "known@example.com")
    answers = []
    for email, password in [
        ("known@example.com", "wrong password!!"),
        ("unknown@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("known@example.com", ""),
    ]:
        response = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 401
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["error"]["code"] == "invalid_credentials"


async def test_every_refused_login_pays_for_one_argon2_verification(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal work is what makes the answer times alike (the benchmark prints both medians)."""
    await register(client, "known@example.com")
    passwords = app.state.accounts.passwords
    verified: list[str | None] = []
    real_verify = passwords.verify

    async def counting_verify(password_hash: str | None, password: str) -> bool:
        verified.append(password_hash)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    for email in ("known@example.com", "unknown@example.com", "not an email"):
        response = await client.post("/api/auth/login", json={"email": email, "password": "x" * 12})
        assert response.status_code == 401
    assert len(verified) == 3
    assert verified[0] is not None and verified[1] is None and verified[2] is None


async def test_a_password_less_account_cannot_log_in_with_a_password(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await make_user(app, "nopassword@example.com")
    response = await client.post(
        "/api/auth/login", json={"email": "nopassword@example.com", "password": PASSWORD}
    )
    assert response.status_code == 401
    assert error_code(response) == "invalid_credentials"


async def test_login_rehashes_when_the_cost_changed(deployment) -> None:  # type: ignore[no-untyped-def]
    async with running_app(deployment(argon2_memory_kib=8_192)) as (app, client):
        user_id = (await register(client, "rehash@example.com"))["user"]["id"]
    async with running_app(deployment(argon2_memory_kib=12_288)) as (app, client):
        response = await client.post(
            "/api/auth/login", json={"email": "rehash@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200
        async with app.state.db.session() as session:
            stored = (await session.get(User, user_id)).password_hash  # type: ignore[union-attr]
        assert "$m=12288," in stored
        again = await client.post(
            "/api/auth/login", json={"email": "rehash@example.com", "password": PASSWORD}
        )
        assert again.status_code == 200


# -- the current-user dependency -------------------------------------------------------------


async def test_me_needs_a_bearer_header_and_nothing_else(client: httpx.AsyncClient) -> None:
    body = await register(client)
    token = body["access_token"]
    for response in [
        await client.get("/api/auth/me"),
        await client.get("/api/auth/me", params={"access_token": token}),
        await client.get("/api/auth/me", params={"token": token}),
        await client.get("/api/auth/me", headers={"Authorization": f"Basic {token}"}),
        await client.get("/api/auth/me", headers={"Authorization": "Bearer"}),
        await client.get("/api/auth/me", headers={"Cookie": f"access_token={token}"}),
    ]:
        assert response.status_code == 401
        assert error_code(response) == "missing_token"


async def test_me_refuses_bad_tokens_with_their_reason(client: httpx.AsyncClient) -> None:
    body = await register(client)
    now = int(time.time())
    base = {
        "sub": body["user"]["id"],
        "iat": now,
        "jti": "x" * 32,
        "typ": "access",
        "iss": "apex",
        "aud": "apex",
        "exp": now + 600,
    }
    cases = {
        "invalid_token": [
            "garbage",
            jwt.encode({**base, "aud": "other"}, TEST_JWT_SECRET, algorithm="HS256"),
            jwt.encode({**base, "typ": "refresh"}, TEST_JWT_SECRET, algorithm="HS256"),
            jwt.encode(base, "wrong-secret-" + "w" * 40, algorithm="HS256"),
            body["access_token"][:-3]
            + ("AAA" if not body["access_token"].endswith("AAA") else "BBB"),
            body["refresh_token"],
            jwt.encode(base, None, algorithm="none"),
        ],
        "token_expired": [
            jwt.encode(
                {**base, "iat": now - 2_000, "exp": now - 1_000}, TEST_JWT_SECRET, algorithm="HS256"
            ),
        ],
    }
    for code, tokens in cases.items():
        for token in tokens:
            response = await client.get(
                "/api/auth/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, token
            assert error_code(response) == code


async def test_make_user_helper_still_works(client: httpx.AsyncClient, app: FastAPI) -> None:
    user_id, headers = await make_user(app)
    me = await client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["id"] == user_id


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_asymmetric_signing_end_to_end(deployment, tmp_path: Path, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    files = write_key_files(tmp_path, algorithm)
    async with running_app(deployment(jwt_algorithm=algorithm, **files)) as (_, client):
        pair = await register(client)
        assert jwt.get_unverified_header(pair["access_token"])["alg"] == algorithm
        assert (await client.get("/api/auth/me", headers=bearer(pair))).status_code == 200
        refreshed = await client.post(
            "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200
        hmac_forgery = jwt.encode(
            jwt.decode(pair["access_token"], options={"verify_signature": False}),
            TEST_JWT_SECRET,
            algorithm="HS256",
        )
        refused = await client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {hmac_forgery}"}
        )
        assert refused.status_code == 401 and error_code(refused) == "invalid_token"


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_rotates_and_the_old_token_is_dead(client: httpx.AsyncClient) -> None:
    first = await register(client)
    second = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.headers["cache-control"] == "no-store"
    pair = second.json()
    assert pair["user"] == first["user"]
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    third = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert third.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(third.json()))).status_code == 200


async def test_reusing_a_refresh_token_ends_the_whole_sign_in(client: httpx.AsyncClient) -> None:
    stolen = await register(client, "victim@example.com")
    legit = (
        await client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    ).json()
    other_session = (
        await client.post(
            "/api/auth/login", json={"email": "victim@example.com", "password": PASSWORD}
        )
    ).json()
    replay = await client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert replay.status_code == 401
    assert error_code(replay) == "refresh_token_reused"
    dead = await client.post("/api/auth/refresh", json={"refresh_token": legit["refresh_token"]})
    assert dead.status_code == 401
    assert error_code(dead) == "invalid_refresh_token"
    for pair in (stolen, legit):
        me = await client.get("/api/auth/me", headers=bearer(pair))
        assert me.status_code == 401 and error_code(me) == "token_revoked"
    assert (await client.get("/api/auth/me", headers=bearer(other_session))).status_code == 200
    alive = await client.post(
        "/api/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert alive.status_code == 200


async def test_refresh_tokens_are_stored_hashed_for_fourteen_days(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await register(client)
    async with app.state.db.session() as session:
        stored = (await session.execute(select(RefreshToken))).scalars().one()
    assert stored.token_hash == hashlib.sha256(pair["refresh_token"].encode()).hexdigest()
    assert pair["refresh_token"] not in stored.token_hash
    lifetime = stored.expires_at - stored.issued_at
    assert abs(lifetime - timedelta(days=14)) < timedelta(seconds=5)


async def test_racing_refreshes_have_exactly_one_winner(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await register(client)
    responses = await asyncio.gather(
        *(
            client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
            for _ in range(6)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 5
    assert {error_code(r) for r in responses if r.status_code == 401} <= {
        "refresh_token_reused",
        "invalid_refresh_token",
    }
    async with app.state.db.session() as session:
        used = (
            (await session.execute(select(RefreshToken).where(RefreshToken.used_at.is_not(None))))
            .scalars()
            .all()
        )
        family = (await session.execute(select(RefreshFamily))).scalars().one()
    assert len(used) == 1
    assert family.revoked_reason == "reuse"


@pytest.mark.parametrize(
    "token",
    ["", "x", "not a token", "é" * 40, "' OR 1=1 --" * 3, "A" * 43, "A" * 300, "\x00" * 43],
)
async def test_unknown_or_malformed_refresh_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/api/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401
    assert error_code(response) == "invalid_refresh_token"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"refresh_token": None},
        {"refresh_token": 42},
        {"refresh_token": ["a"]},
        {"refresh_token": "a" * 513},
    ],
)
async def test_refresh_body_of_the_wrong_shape(client: httpx.AsyncClient, body: dict) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/auth/refresh", json=body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


async def test_an_expired_refresh_token_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    pair = await register(client)
    async with app.state.db.session() as session:
        await session.execute(
            update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    response = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401
    assert error_code(response) == "invalid_refresh_token"
    assert "expired" in response.json()["error"]["message"]


# -- logout --------------------------------------------------------------------------------


async def test_logout_kills_the_access_token_and_its_sign_in(client: httpx.AsyncClient) -> None:
    pair = await register(client, "bye@example.com")
    refreshed = (
        await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).json()
    elsewhere = (
        await client.post(
            "/api/auth/login", json={"email": "bye@example.com", "password": PASSWORD}
        )
    ).json()
    response = await client.post("/api/auth/logout", headers=bearer(refreshed))
    assert response.status_code == 204 and response.content == b""
    for token_pair in (pair, refreshed):
        me = await client.get("/api/auth/me", headers=bearer(token_pair))
        assert me.status_code == 401 and error_code(me) == "token_revoked"
    dead = await client.post(
        "/api/auth/refresh", json={"refresh_token": refreshed["refresh_token"]}
    )
    assert dead.status_code == 401 and error_code(dead) == "invalid_refresh_token"
    again = await client.post("/api/auth/logout", headers=bearer(refreshed))
    assert again.status_code == 401 and error_code(again) == "token_revoked"
    assert (await client.get("/api/auth/me", headers=bearer(elsewhere))).status_code == 200


async def test_logout_of_a_token_without_a_sign_in(client: httpx.AsyncClient, app: FastAPI) -> None:
    _, headers = await make_user(app)
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    me = await client.get("/api/auth/me", headers=headers)
    assert me.status_code == 401 and error_code(me) == "token_revoked"


async def test_logout_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/logout")
    assert response.status_code == 401 and error_code(response) == "missing_token"


# -- WebSocket tickets ---------------------------------------------------------------------


async def test_a_ws_ticket_redeems_once_to_its_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await register(client)
    response = await client.post("/api/auth/ws-ticket", headers=bearer(pair))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"ticket", "expires_in"} and body["expires_in"] == 60
    principal = await app.state.auth.redeem_ws_ticket(body["ticket"])
    assert principal.user_id == pair["user"]["id"]
    assert principal == await app.state.auth.authenticate(pair["access_token"])
    with pytest.raises(Exception) as caught:
        await app.state.auth.redeem_ws_ticket(body["ticket"])
    assert getattr(caught.value, "code", None) == "invalid_ticket"


async def test_tickets_and_access_tokens_are_not_interchangeable(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await register(client)
    ticket = (await client.post("/api/auth/ws-ticket", headers=bearer(pair))).json()["ticket"]
    with pytest.raises(Exception) as as_ticket:
        await app.state.auth.redeem_ws_ticket(pair["access_token"])
    assert getattr(as_ticket.value, "code", None) == "invalid_ticket"
    with pytest.raises(Exception) as as_token:
        await app.state.auth.authenticate(ticket)
    assert getattr(as_token.value, "code", None) == "invalid_token"
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {ticket}"})
    assert me.status_code == 401


async def test_logout_voids_tickets_issued_before_it(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await register(client)
    ticket = (await client.post("/api/auth/ws-ticket", headers=bearer(pair))).json()["ticket"]
    await client.post("/api/auth/logout", headers=bearer(pair))
    with pytest.raises(Exception) as caught:
        await app.state.auth.redeem_ws_ticket(ticket)
    assert getattr(caught.value, "code", None) == "token_revoked"


async def test_ws_ticket_lifetime_follows_the_setting(deployment) -> None:  # type: ignore[no-untyped-def]
    async with running_app(deployment(ws_ticket_ttl_s=30)) as (_, client):
        pair = await register(client)
        response = await client.post("/api/auth/ws-ticket", headers=bearer(pair))
        assert response.json()["expires_in"] == 30
        assert (await client.post("/api/auth/ws-ticket")).status_code == 401


# -- development login ---------------------------------------------------------------------


async def test_dev_login_does_not_exist_outside_development(client: httpx.AsyncClient) -> None:
    for body in (None, {"email": "dev@example.com"}):
        response = await client.post("/api/auth/dev-login", json=body)
        assert response.status_code == 404
        assert error_code(response) == "not_found"


async def test_dev_login_in_development(deployment) -> None:  # type: ignore[no-untyped-def]
    async with running_app(deployment(env="development")) as (_, client):
        first = await client.post("/api/auth/dev-login")
        assert first.status_code == 200
        assert first.json()["user"]["email"] == "dev@example.com"
        again = await client.post("/api/auth/dev-login", json={})
        assert again.json()["user"]["id"] == first.json()["user"]["id"]
        named = await client.post("/api/auth/dev-login", json={"email": "Tester@Example.com"})
        assert named.json()["user"]["email"] == "tester@example.com"
        assert (await client.get("/api/auth/me", headers=bearer(named.json()))).status_code == 200
        bad = await client.post("/api/auth/dev-login", json={"email": "nope"})
        assert bad.status_code == 400 and error_code(bad) == "invalid_email"


# -- rate limits ---------------------------------------------------------------------------


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert error_code(response) == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.json()["error"]["details"]["retry_after_s"] == retry_after


async def test_login_is_limited_per_ip(deployment) -> None:  # type: ignore[no-untyped-def]
    async with running_app(deployment(rate_limit_login_per_minute=3)) as (app, client):
        await register(client, "limited@example.com")
        for i in range(3):
            response = await client.post(
                "/api/auth/login",
                headers={"X-Forwarded-For": f"10.9.9.{i}"},
                json={"email": f"x{i}@example.com", "password": PASSWORD},
            )
            assert response.status_code == 401
        limited = await client.post(
            "/api/auth/login",
            headers={"X-Forwarded-For": "10.9.9.9"},
            json={"email": "limited@example.com", "password": PASSWORD},
        )
        assert_limited(limited)
        async with client_for(app, ip="192.0.2.7") as elsewhere:
            ok = await elsewhere.post(
                "/api/auth/login", json={"email": "limited@example.com", "password": PASSWORD}
            )
            assert ok.status_code == 200


async def test_login_is_limited_per_account(deployment) -> None:  # type: ignore[no-untyped-def]
    async with running_app(deployment(rate_limit_login_per_minute=3)) as (app, client):
        await register(client, "target@example.com")
        for i in range(3):
            async with client_for(app, ip=f"198.51.100.{i}") as attacker:
                response = await attacker.post(
                    "/api/auth/login",
                    json={"email": "Target@example.com", "password": f"guess number {i}"},
                )
                assert response.status_code == 401
        async with client_for(app, ip="198.51.100.200") as attacker:
            assert_limited(
                await attacker.post(
                    "/api/auth/login", json={"email": "target@example.com", "password": PASSWORD}
                )
            )
            other = await attacker.post(
                "/api/auth/login", json={"email": "someone@example.com", "password": PASSWORD}
            )
            assert other.status_code == 401


async def test_register_and_refresh_are_limited(deployment) -> None:  # type: ignore[no-untyped-def]
    settings = deployment(rate_limit_register_per_minute=2, rate_limit_refresh_per_minute=2)
    async with running_app(settings) as (app, client):
        pair = await register(client)
        await register(client)
        assert_limited(
            await client.post(
                "/api/auth/register", json={"email": new_email(), "password": PASSWORD}
            )
        )
        token = pair["refresh_token"]
        for _ in range(2):
            response = await client.post("/api/auth/refresh", json={"refresh_token": token})
            assert response.status_code == 200
            token = response.json()["refresh_token"]
        assert_limited(await client.post("/api/auth/refresh", json={"refresh_token": token}))
        async with client_for(app, ip="203.0.113.5") as other_ip:
            # the account's own limit (2 a minute) is spent as well
            assert_limited(await other_ip.post("/api/auth/refresh", json={"refresh_token": token}))
            fresh = await other_ip.post(
                "/api/auth/register", json={"email": new_email(), "password": PASSWORD}
            )
            assert fresh.status_code == 201
