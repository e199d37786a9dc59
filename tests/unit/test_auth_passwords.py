"""argon2id hashing and the password policy, with real argon2 at a test-sized cost."""

from pathlib import Path

import pytest
from argon2 import extract_parameters

from apex.auth.passwords import MIN_PASSWORD_CHARS, Passwords, check_password_policy
from apex.config import Settings
from apex.errors import BadRequest


def passwords(tmp_path: Path, memory_kib: int = 8_192, time_cost: int = 1) -> Passwords:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        argon2_memory_kib=memory_kib,  # type: ignore[call-arg]
        argon2_time_cost=time_cost,
        argon2_parallelism=1,
    )
    return Passwords(settings)


@pytest.mark.parametrize("password", ["", "short", "123456789", " " * 40, "\t\n" * 10])
def test_weak_passwords_get_a_clear_message(password: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_password_policy(password)
    assert caught.value.code == "weak_password"
    assert "at least 10 characters" in caught.value.message
    assert caught.value.details == {"min_length": MIN_PASSWORD_CHARS}


@pytest.mark.parametrize(
    "password",
    ["0123456789", "correct horse battery staple", "пароль-пароль", "🔑" * 10, "' OR 1=1 --"],
)
def test_long_enough_passwords_pass(password: str) -> None:
    check_password_policy(password)


async def test_hash_is_argon2id_with_the_configured_cost(tmp_path: Path) -> None:
    hasher = passwords(tmp_path, memory_kib=9_216, time_cost=2)
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$")
    params = extract_parameters(stored)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (9_216, 2, 1)
    assert stored != await hasher.hash("correct horse battery")  # salted
    assert hasher.cost == "argon2id t=2 m=9216 KiB p=1"


async def test_verify(tmp_path: Path) -> None:
    hasher = passwords(tmp_path)
    stored = await hasher.hash("correct horse battery")
    assert await hasher.verify(stored, "correct horse battery") is True
    assert await hasher.verify(stored, "correct horse batterY") is False
    assert await hasher.verify(stored, "") is False
    assert await hasher.verify(None, "correct horse battery") is False
    assert await hasher.verify("not-a-hash", "correct horse battery") is False
    assert await hasher.verify("$argon2id$v=19$m=1,t=1,p=1$bad$bad", "x") is False


async def test_a_changed_cost_asks_for_a_rehash(tmp_path: Path) -> None:
    old = await passwords(tmp_path, memory_kib=8_192).hash("correct horse battery")
    assert passwords(tmp_path, memory_kib=8_192).needs_rehash(old) is False
    assert passwords(tmp_path, memory_kib=16_384).needs_rehash(old) is True
