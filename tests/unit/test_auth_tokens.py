"""Access tokens: every claim, every way a token can be wrong, and each configured algorithm."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest

from apex.auth.tokens import VERIFIED_CACHE_SIZE, AccessTokenService
from apex.config import Settings
from apex.errors import Unauthorized
from tests.support.keys import write_key_files

SECRET = "unit-secret-" + "k" * 40


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        env="test",
        jwt_secret=SECRET,  # type: ignore[arg-type]
        **values,
    ).prepare()


@pytest.fixture
def tokens(tmp_path: Path) -> AccessTokenService:
    return AccessTokenService(settings(tmp_path))


def claims_now(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "jti": "j" * 32,
        "typ": "access",
        "iss": "apex",
        "aud": "apex",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hand_made(header: dict[str, object], claims: dict[str, object], key: bytes | None) -> str:
    """A JWT built without PyJWT's safety checks, the way an attacker would build one."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def refused(tokens: AccessTokenService, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        tokens.verify(token)
    return caught.value.code


def test_issued_token_has_every_claim_and_verifies(tokens: AccessTokenService) -> None:
    issued = tokens.issue("user-1", session_id="session-1")
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience="apex")
    assert set(claims) == {"sub", "iat", "exp", "jti", "typ", "iss", "aud", "sid"}
    assert claims["exp"] - claims["iat"] == 900 == issued.expires_in
    assert (claims["sub"], claims["typ"], claims["sid"]) == ("user-1", "access", "session-1")
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    principal = tokens.verify(issued.token)
    assert (principal.user_id, principal.token_id, principal.session_id) == (
        "user-1",
        issued.token_id,
        "session-1",
    )
    assert principal.expires_at.timestamp() == claims["exp"]


def test_token_ids_are_unique_and_sessionless_tokens_verify(tokens: AccessTokenService) -> None:
    first, second = tokens.issue("u"), tokens.issue("u")
    assert first.token_id != second.token_id
    assert tokens.verify(first.token).session_id is None


def test_alg_none_is_refused(tokens: AccessTokenService) -> None:
    signed = hand_made({"alg": "HS256", "typ": "JWT"}, claims_now(), SECRET.encode())
    assert tokens.verify(signed).user_id == "user-1"  # the hand-made builder itself is sound
    for alg in ("none", "None", "NONE"):
        unsigned = hand_made({"alg": alg, "typ": "JWT"}, claims_now(), None)
        assert refused(tokens, unsigned) == "invalid_token"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-service"},
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"jti": None},
        {"sub": None},
        {"typ": None},
        {"sub": 12345},
        {"jti": 7},
        {"sid": ["not", "a", "string"]},
    ],
    ids=[
        "audience",
        "issuer",
        "type",
        "no-jti",
        "no-sub",
        "no-typ",
        "numeric-sub",
        "numeric-jti",
        "list-sid",
    ],
)
def test_wrong_claims_are_refused(tokens: AccessTokenService, overrides: dict[str, object]) -> None:
    token = jwt.encode(claims_now(**overrides), SECRET, algorithm="HS256")
    assert refused(tokens, token) == "invalid_token"


def test_expired_token_says_so(tokens: AccessTokenService) -> None:
    past = int(time.time()) - 10
    token = jwt.encode(claims_now(iat=past - 900, exp=past), SECRET, algorithm="HS256")
    assert refused(tokens, token) == "token_expired"


def test_tampered_signature_and_payload_are_refused(tokens: AccessTokenService) -> None:
    token = tokens.issue("user-1").token
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert refused(tokens, f"{header}.{payload}.{flipped}") == "invalid_token"
    forged = b64(json.dumps(claims_now(sub="admin")).encode())
    assert refused(tokens, f"{header}.{forged}.{signature}") == "invalid_token"
    other_key = jwt.encode(claims_now(), "another-secret-" + "z" * 40, algorithm="HS256")
    assert refused(tokens, other_key) == "invalid_token"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "a",
        "a.b",
        "a.b.c",
        "....",
        "é.é.é",
        "x" * 100_000,
        "Bearer abc",
        "\x00.\x00.\x00",
        "eyJhbGciOiJIUzI1NiJ9.%%%.sig",
    ],
)
def test_garbage_is_invalid_not_a_crash(tokens: AccessTokenService, garbage: str) -> None:
    assert refused(tokens, garbage) == "invalid_token"


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    tokens = AccessTokenService(settings(tmp_path))
    now = int(time.time())
    token = jwt.encode(claims_now(iat=now, exp=now + 1), SECRET, algorithm="HS256")
    assert tokens.verify(token).user_id == "user-1"
    assert tokens.verify(token).user_id == "user-1"
    time.sleep(max(0.0, now + 1 - time.time()) + 0.05)
    assert refused(tokens, token) == "token_expired"


def test_the_verified_token_memory_is_bounded(tokens: AccessTokenService) -> None:
    for i in range(VERIFIED_CACHE_SIZE + 50):
        tokens.verify(tokens.issue(f"user-{i}").token)
    assert len(tokens._verified) == VERIFIED_CACHE_SIZE


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_asymmetric_algorithms_from_key_files(tmp_path: Path, algorithm: str) -> None:
    files = write_key_files(tmp_path, algorithm)
    tokens = AccessTokenService(settings(tmp_path, jwt_algorithm=algorithm, **files))
    issued = tokens.issue("user-1", session_id="s")
    assert jwt.get_unverified_header(issued.token)["alg"] == algorithm
    assert tokens.verify(issued.token).user_id == "user-1"
    # Algorithm confusion: an HMAC token keyed with the public key file must not pass.
    public_pem = files["jwt_public_key_file"].read_bytes()
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims_now(), public_pem)
    assert refused(tokens, forged) == "invalid_token"
    assert refused(tokens, jwt.encode(claims_now(), SECRET, algorithm="HS256")) == "invalid_token"
