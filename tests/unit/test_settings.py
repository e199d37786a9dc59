from pathlib import Path

import pytest
from pydantic import ValidationError

from apex.config import InsecureConfiguration, Settings, describe_validation_error
from apex.config.settings import Environment


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = settings(tmp_path).prepare()
    assert s.env is Environment.DEVELOPMENT
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'apex.db').resolve()}"
    assert s.redis_url is None and s.clickhouse_url is None
    assert s.json_logs is False


def test_environment_prefix_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APEX_PORT", "9001")
    env_file = tmp_path / ".env"
    env_file.write_text("APEX_REDIS_URL=redis://127.0.0.1:6390/0\nAPEX_PORT=1\n")
    s = Settings(_env_file=env_file, data_dir=tmp_path)  # type: ignore[call-arg]
    assert s.port == 9001  # the real environment wins over .env
    assert s.redis_url == "redis://127.0.0.1:6390/0"


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings(tmp_path).prepare().jwt_secret
    second = settings(tmp_path).prepare().jwt_secret
    assert first is not None and second is not None
    assert first.get_secret_value() == second.get_secret_value()
    assert len(first.get_secret_value()) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_production_refuses_missing_or_short_secret(tmp_path: Path) -> None:
    with pytest.raises(InsecureConfiguration, match="APEX_JWT_SECRET"):
        settings(tmp_path, env="production").prepare()
    with pytest.raises(InsecureConfiguration, match="at least 32"):
        settings(tmp_path, env="production", jwt_secret="short").prepare()
    ok = settings(tmp_path, env="production", jwt_secret="s" * 40).prepare()
    assert ok.json_logs is True


def test_asymmetric_keys_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InsecureConfiguration, match="APEX_JWT_PRIVATE_KEY_FILE"):
        settings(tmp_path, jwt_algorithm="RS256").prepare()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("port", "abc", "APEX_PORT: Input should be a valid integer"),
        ("port", "70000", "APEX_PORT: Input should be less than or equal to 65535"),
        ("env", "staging", "APEX_ENV: Input should be 'development', 'test' or 'production'"),
        ("database_url", "mysql://x", "APEX_DATABASE_URL: must start with sqlite+aiosqlite://"),
        ("redis_url", "http://x", "APEX_REDIS_URL: must be a redis://"),
        (
            "ws_ticket_ttl_s",
            "5",
            "APEX_WS_TICKET_TTL_S: Input should be greater than or equal to 30",
        ),
    ],
)
def test_invalid_values_name_the_variable(
    tmp_path: Path, field: str, value: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, **{field: value})
    line = describe_validation_error(caught.value)
    assert line.startswith(expected)
    assert "\n" not in line


def test_plain_postgresql_url_gets_the_async_driver(tmp_path: Path) -> None:
    s = settings(tmp_path, database_url="postgresql://u@h/db")
    assert s.resolved_database_url == "postgresql+asyncpg://u@h/db"
