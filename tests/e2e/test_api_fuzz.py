"""Every HTTP endpoint of a real server, fed inputs generated from its own OpenAPI schema.

Schemathesis generates valid and invalid path, query, header and body values for each
operation (negative mode breaks types, formats and required fields on purpose), sent signed in
as a real user over a real socket. Whatever arrives, the answer must not be a server error, and
every refusal must be PROTOCOL.md's error shape. The server log must stay free of tracebacks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from apex.api.app import create_app
from apex.config import Settings
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery staple"
EXAMPLES_PER_OPERATION = 50
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fuzzed") / "data"
    # small demo loads: a generated `rows` is anything up to the limit
    running = ServerProcess(data_dir=data_dir, env={"APEX_DEMO_MAX_ROWS": "2000"}).start()
    yield running
    running.stop()
    assert "Traceback" not in running.log_path.read_text()


@pytest.fixture
def signed_in(server: ServerProcess) -> dict[str, str]:
    """The headers of a new real user whose ledger holds a few rows (so reads have work to do):
    one per operation, as the examples of POST /api/auth/logout revoke theirs."""
    response = httpx.post(
        f"{server.base_url}/api/auth/register",
        json={"email": f"fuzz{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    demo = httpx.post(
        f"{server.base_url}/api/usage/demo", headers=headers, json={"rows": 300}, timeout=60
    )
    assert demo.status_code in (200, 201, 202), demo.text
    return headers


def _published_schema() -> dict[str, Any]:
    """The OpenAPI document the server publishes at /api/openapi.json (built without starting
    anything; the test checks the running server publishes the same one)."""
    return create_app(Settings()).openapi()


schema = schemathesis.openapi.from_dict(_published_schema())
# Every generated request carries the signed-in user's token: left to itself, negative mode
# drops or breaks the bearer header in about half its examples, which then stop at 401 and
# never reach the endpoint's own checks. The refusals of missing, malformed and forged tokens
# are tested once for every secured operation below.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
    with_security_parameters=False,
)


def test_the_fuzzed_schema_is_the_one_the_server_publishes(server: ServerProcess) -> None:
    published = httpx.get(f"{server.base_url}/api/openapi.json")
    assert published.status_code == 200
    assert published.json()["paths"] == schema.raw_schema["paths"]


def assert_error_shape(response: schemathesis.Response, operation: str) -> None:
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"{operation}: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), f"{operation}: {body!r}"
    assert isinstance(error.get("code"), str) and _SNAKE_CASE.fullmatch(error["code"]), (
        f"{operation}: {body!r}"
    )
    assert isinstance(error.get("message"), str) and error["message"], f"{operation}: {body!r}"
    assert set(error) <= {"code", "message", "details"}, f"{operation}: {body!r}"


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one user per operation
def test_no_input_makes_an_endpoint_fail_or_answer_outside_the_error_shape(
    case: schemathesis.Case, server: ServerProcess, signed_in: dict[str, str]
) -> None:
    headers = {**(case.headers or {}), **signed_in}
    response = case.call(base_url=server.base_url, headers=headers, timeout=30)
    operation = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{operation}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert_error_shape(response, operation)


def _secured_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in schema.raw_schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]


@pytest.mark.parametrize(("method", "path"), _secured_operations())
def test_every_secured_operation_refuses_a_missing_malformed_or_forged_token(
    server: ServerProcess, method: str, path: str
) -> None:
    url = server.base_url + re.sub(r"\{[^}]+\}", "x", path)
    forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzb21lb25lIn0.c2lnbmVkIGJ5IG5vYm9keQ"
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {forged}"},
    ):
        response = httpx.request(method, url, headers=headers, json={}, timeout=30)
        assert response.status_code == 401, f"{method} {path} {headers}: {response.text}"
        assert_error_shape(response, f"{method} {path}")  # type: ignore[arg-type]
