"""Emails and display names: normalization, and hostile input refused with a clear code."""

import unicodedata

import pytest

from apex.auth.accounts import clean_name
from apex.auth.emails import normalize_email
from apex.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  ann@example.com\n", "ann@example.com"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("Ünïcode@Exämple.com", "ünïcode@exämple.com"),
        (unicodedata.normalize("NFD", "Ünïcode@exämple.com"), "ünïcode@exämple.com"),
        ("ann@xn--exmple-cua.com", "ann@exämple.com"),
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_one_spelling_per_mailbox(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plainaddress",
        "@example.com",
        "ann@",
        "ann@@example.com",
        "a b@example.com",
        "' OR 1=1 --@example.com",
        "ann@example.com'; DROP TABLE users; --",
        "a\x00b@example.com",
        "ann@localhost",
        "ann@example.test",
        "x" * 300 + "@example.com",
        "ann@" + "e" * 400 + ".com",
        "<script>@example.com",
        "ann@exa mple.com",
        "\u202eann@example.com",
    ],
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" Ann ", "Ann"),
        ("Robert'); DROP TABLE users;--", "Robert'); DROP TABLE users;--"),
        ("Zoë", "Zoë"),
        (unicodedata.normalize("NFD", "Zoë"), "Zoë"),
    ],
)
def test_names_are_kept_as_written(raw: str | None, expected: str | None) -> None:
    assert clean_name(raw) == expected


@pytest.mark.parametrize("raw", ["a\x00b", "line\nbreak", "bell\x07", "x" * 201])
def test_unusable_names_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        clean_name(raw)
    assert caught.value.code == "invalid_name"
