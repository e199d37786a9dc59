"""OIDC sign-in against a real provider on loopback: redirect, code, token exchange and userinfo
all over real HTTP, on both deployment shapes (pending sign-ins in process or in Redis)."""

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from apex.auth.oidc import GOOGLE_ISSUER, configured_providers
from apex.store.models import OidcIdentity, User
from tests.support.asgi import BASE_URL, client_for, running_app
from tests.support.deployed import app, client, served  # noqa: F401 (fixtures)
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider, SigningKey
from tests.support.services import free_port

CALLBACK = "/api/auth/oidc/test/callback"


def oidc_overrides(issuer: str) -> dict[str, object]:
    return {
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_name": "test",
        "public_url": BASE_URL,
    }


@pytest.fixture
def app_overrides(oidc_provider: OidcTestProvider) -> dict[str, object]:
    return oidc_overrides(oidc_provider.issuer)


async def begin(client: httpx.AsyncClient) -> str:
    """The provider's authorization URL Apex redirects the browser to."""
    response = await client.get("/api/auth/oidc/test/login")
    assert response.status_code == 302, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.headers["location"]


async def at_provider(authorize_url: str) -> str:
    """The browser at the provider (real HTTP): where the provider sends it back."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(authorize_url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def back_at_apex(client: httpx.AsyncClient, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL and parts.path == CALLBACK
    return await client.get(f"{parts.path}?{parts.query}")


async def sign_in(client: httpx.AsyncClient) -> httpx.Response:
    return await back_at_apex(client, await at_provider(await begin(client)))


def tokens_from(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{BASE_URL}/#/oidc?")
    fragment = {
        k: v[0] for k, v in parse_qs(urlsplit(location).fragment.removeprefix("/oidc?")).items()
    }
    assert set(fragment) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert fragment["token_type"] == "bearer"
    return fragment


async def me(client: httpx.AsyncClient, tokens: dict[str, str]) -> dict:  # type: ignore[type-arg]
    response = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


async def count(app: FastAPI, model: type) -> int:
    async with app.state.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_whole_flow_creates_an_account(
    client: httpx.AsyncClient, oidc_provider: OidcTestProvider
) -> None:
    authorize_url = await begin(client)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert authorize_url.startswith(f"{oidc_provider.issuer}/authorize?")
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{BASE_URL}{CALLBACK}"
    assert "openid" in query["scope"].split() and "email" in query["scope"].split()
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 32
    assert client.cookies.get("apex_oidc_state") == query["state"]

    response = await back_at_apex(client, await at_provider(authorize_url))
    assert response.headers["cache-control"] == "no-store"
    tokens = tokens_from(response)
    user = await me(client, tokens)
    assert user["email"] == oidc_provider.person.email
    assert user["name"] == "Olive Idc"

    exchange = oidc_provider.token_requests[-1]
    verifier = exchange["code_verifier"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert digest.decode() == query["code_challenge"]
    assert "client_secret" not in exchange  # client_secret_basic, not in the body
    assert exchange["redirect_uri"] == f"{BASE_URL}{CALLBACK}"

    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200


async def test_the_same_subject_signs_into_the_same_account(
    client: httpx.AsyncClient, app: FastAPI, oidc_provider: OidcTestProvider
) -> None:
    first = await me(client, tokens_from(await sign_in(client)))
    oidc_provider.person.email = "changed-address@example.com"
    second = await me(client, tokens_from(await sign_in(client)))
    assert second["id"] == first["id"]
    assert await count(app, User) == 1
    assert await count(app, OidcIdentity) == 1


async def test_a_verified_email_links_to_the_existing_account(
    client: httpx.AsyncClient, app: FastAPI, oidc_provider: OidcTestProvider
) -> None:
    registered = await client.post(
        "/api/auth/register",
        json={"email": oidc_provider.person.email.upper(), "password": "correct horse battery"},
    )
    assert registered.status_code == 201
    signed_in = await me(client, tokens_from(await sign_in(client)))
    assert signed_in["id"] == registered.json()["user"]["id"]
    password_login = await client.post(
        "/api/auth/login",
        json={"email": oidc_provider.person.email, "password": "correct horse battery"},
    )
    assert password_login.status_code == 200
    assert await count(app, User) == 1


@pytest.mark.parametrize("email", [None, "unverified@example.com"])
async def test_without_a_verified_email_nothing_is_linked_or_created(
    client: httpx.AsyncClient, app: FastAPI, oidc_provider: OidcTestProvider, email: str | None
) -> None:
    oidc_provider.person.email = email
    oidc_provider.person.email_verified = False
    response = await sign_in(client)
    assert response.status_code == 403
    assert error_code(response) == "email_not_verified"
    assert await count(app, User) == 0


async def test_a_callback_cannot_be_replayed(client: httpx.AsyncClient) -> None:
    authorize_url = await begin(client)
    callback_url = await at_provider(authorize_url)
    tokens_from(await back_at_apex(client, callback_url))
    client.cookies.set("apex_oidc_state", parse_qs(urlsplit(callback_url).query)["state"][0])
    replay = await back_at_apex(client, callback_url)
    assert replay.status_code == 400
    assert error_code(replay) == "invalid_oidc_state"


async def test_a_callback_from_another_browser_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    callback_url = await at_provider(await begin(client))
    async with client_for(app) as other_browser:
        response = await back_at_apex(other_browser, callback_url)
    assert response.status_code == 400
    assert error_code(response) == "invalid_oidc_state"
    tokens_from(await back_at_apex(client, callback_url))  # the right browser still completes


@pytest.mark.parametrize("state", ["", "forged", "é" * 20, "' OR 1=1 --", "a" * 43])
async def test_forged_states_are_refused(
    app: FastAPI, client: httpx.AsyncClient, state: str
) -> None:
    await begin(client)  # a real sign-in is pending in this browser, with its own state
    response = await client.get(CALLBACK, params={"state": state, "code": "abc"})
    assert response.status_code == 400
    assert error_code(response) == "invalid_oidc_state"


async def test_a_cookie_matching_a_made_up_state_is_not_enough(app: FastAPI) -> None:
    made_up = "m" * 43
    async with client_for(app) as attacker:
        response = await attacker.get(
            CALLBACK,
            params={"state": made_up, "code": "abc"},
            headers={"Cookie": f"apex_oidc_state={made_up}"},
        )
    assert response.status_code == 400
    assert error_code(response) == "invalid_oidc_state"


async def test_oversized_callback_parameters(client: httpx.AsyncClient) -> None:
    response = await client.get(CALLBACK, params={"state": "s" * 5_000, "code": "c"})
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


async def test_the_provider_refusing_is_reported_and_the_state_burnt(
    client: httpx.AsyncClient, oidc_provider: OidcTestProvider
) -> None:
    oidc_provider.deny = True
    callback_url = await at_provider(await begin(client))
    response = await back_at_apex(client, callback_url)
    assert response.status_code == 401
    assert error_code(response) == "oidc_denied"
    assert "access_denied" in response.json()["error"]["message"]
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    late = await client.get(CALLBACK, params={"state": state, "code": "anything"})
    assert late.status_code == 400 and error_code(late) == "invalid_oidc_state"


async def test_a_wrong_code_is_refused_by_the_provider(client: httpx.AsyncClient) -> None:
    callback_url = await at_provider(await begin(client))
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    response = await client.get(CALLBACK, params={"state": state, "code": "stolen-or-made-up"})
    assert response.status_code == 401
    assert error_code(response) == "oidc_failed"
    assert "invalid_grant" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "tamper",
    ["nonce", "audience", "issuer", "expired", "unknown_key", "hmac", "userinfo_subject"],
)
async def test_id_tokens_that_do_not_verify_are_refused(
    client: httpx.AsyncClient, app: FastAPI, oidc_provider: OidcTestProvider, tamper: str
) -> None:
    past = int(time.time()) - 3_600
    if tamper == "nonce":
        oidc_provider.id_token_overrides = {"nonce": "replayed-nonce"}
    elif tamper == "audience":
        oidc_provider.id_token_overrides = {"aud": "another-client", "azp": "another-client"}
    elif tamper == "issuer":
        oidc_provider.id_token_overrides = {"iss": "http://127.0.0.1:1"}
    elif tamper == "expired":
        oidc_provider.id_token_overrides = {"iat": past - 300, "exp": past}
    elif tamper == "unknown_key":
        oidc_provider.sign_with = SigningKey(kid=oidc_provider.keys[0].kid)
    elif tamper == "hmac":
        oidc_provider.id_token_alg = "HS256"
    else:
        oidc_provider.userinfo_subject = "someone-else"
    response = await sign_in(client)
    assert response.status_code == 401, response.text
    assert error_code(response) == "oidc_failed"
    assert await count(app, User) == 0


async def test_rotated_provider_keys_are_fetched_again(
    client: httpx.AsyncClient, oidc_provider: OidcTestProvider
) -> None:
    first = await me(client, tokens_from(await sign_in(client)))
    oidc_provider.rotate_key()
    second = await me(client, tokens_from(await sign_in(client)))
    assert first["id"] == second["id"]


async def test_an_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/auth/oidc/nope/login",
        "/api/auth/oidc/nope/callback?state=a&code=b",
        "/api/auth/oidc/%00/login",
    ):
        response = await client.get(path)
        assert response.status_code == 404
        assert error_code(response) == "not_found"


async def test_an_unreachable_provider_is_503(deployment) -> None:  # type: ignore[no-untyped-def]
    settings = deployment(**oidc_overrides(f"http://127.0.0.1:{free_port()}"))
    async with running_app(settings) as (_, client):
        response = await client.get("/api/auth/oidc/test/login")
    assert response.status_code == 503
    assert error_code(response) == "oidc_provider_unavailable"


def test_google_preset_and_generic_issuer_come_from_settings(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert configured_providers(make_settings()) == {}
    providers = configured_providers(
        make_settings(
            oidc_google_client_id="gid",
            oidc_google_client_secret="gsecret",
            oidc_issuer="https://login.example.com/",
            oidc_client_id="cid",
            oidc_name="corp",
        )
    )
    assert set(providers) == {"google", "corp"}
    google = providers["google"]
    assert (google.issuer, google.client_id, google.client_secret) == (
        GOOGLE_ISSUER,
        "gid",
        "gsecret",
    )
    assert "openid" in google.scope and "email" in google.scope
    corp = providers["corp"]
    assert (corp.issuer, corp.client_id, corp.client_secret) == (
        "https://login.example.com",
        "cid",
        None,
    )
