"""The settings authentication adds: Redis key prefix, trusted proxies, argon2 cost."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from apex.config import Settings, describe_validation_error


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.redis_key_prefix == "apex"
    assert s.forwarded_allow_ips is None
    assert (s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism) == (3, 65_536, 4)
    assert (
        s.rate_limit_login_per_minute,
        s.rate_limit_register_per_minute,
        s.rate_limit_refresh_per_minute,
    ) == (10, 5, 30)


def test_a_blank_proxy_list_trusts_no_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEX_FORWARDED_ALLOW_IPS", "  ")
    assert Settings(_env_file=None, data_dir=tmp_path).forwarded_allow_ips is None  # type: ignore[call-arg]
    monkeypatch.setenv("APEX_FORWARDED_ALLOW_IPS", "10.0.0.5,10.0.0.6")
    assert Settings(_env_file=None, data_dir=tmp_path).forwarded_allow_ips == "10.0.0.5,10.0.0.6"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("redis_key_prefix", "two words", "APEX_REDIS_KEY_PREFIX: String should match pattern"),
        ("redis_key_prefix", "", "APEX_REDIS_KEY_PREFIX: String should match pattern"),
        (
            "argon2_memory_kib",
            "512",
            "APEX_ARGON2_MEMORY_KIB: Input should be greater than or equal",
        ),
        ("argon2_time_cost", "0", "APEX_ARGON2_TIME_COST: Input should be greater than or equal"),
        ("rate_limit_login_per_minute", "0", "APEX_RATE_LIMIT_LOGIN_PER_MINUTE: Input should be"),
    ],
)
def test_invalid_values_name_the_variable(
    tmp_path: Path, field: str, value: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, **{field: value})
    assert describe_validation_error(caught.value).startswith(expected)
