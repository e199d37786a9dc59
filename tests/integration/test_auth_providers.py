"""GET /api/auth/providers: what the sign-in page may offer, before anyone signs in."""

from tests.support.asgi import running_app


async def providers(settings) -> dict:  # type: ignore[no-untyped-def]
    async with running_app(settings) as (_, http):
        response = await http.get("/api/auth/providers")
        assert response.status_code == 200
        return response.json()


async def test_no_providers_and_no_development_login_by_default(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert await providers(make_settings()) == {"providers": [], "dev_login": False}


async def test_configured_providers_and_development_login(make_settings) -> None:  # type: ignore[no-untyped-def]
    body = await providers(
        make_settings(
            env="development",
            oidc_google_client_id="cid",
            oidc_google_client_secret="secret",
            oidc_issuer="https://id.example.com",
            oidc_client_id="corp",
            oidc_name="corp",
        )
    )
    assert body["dev_login"] is True
    assert body["providers"] == [
        {"name": "corp", "label": "corp", "login_url": "/api/auth/oidc/corp/login"},
        {"name": "google", "label": "Google", "login_url": "/api/auth/oidc/google/login"},
    ]
