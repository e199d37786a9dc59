"""Optional drivers: which setting needs which extra, checked once at start-up.

The core install serves the embedded default (SQLite app store, DuckDB ledger, in-process bus,
built-in language engine). PostgreSQL, Redis, ClickHouse and the hosted LLM SDKs come with the
extras `apex[postgres]`, `[redis]`, `[clickhouse]`, `[openai]` and `[anthropic]` (`[all]` for
every one), and the modules that use them import them only on the path where they are
configured. So a setting that needs a missing extra is refused here, before anything starts, in
one line that names the extra to install, rather than as an ImportError deep in a request.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from apex.config.settings import LlmProvider, Settings


@dataclass(frozen=True, slots=True)
class Extra:
    """One extra of the package: its name, the module it installs, and why it is wanted."""

    name: str
    module: str

    def missing(self, because: str) -> MissingExtra:
        return MissingExtra(
            f"{because} but the {self.name} extra is not installed: pip install 'apex[{self.name}]'"
        )


POSTGRES = Extra("postgres", "asyncpg")
REDIS = Extra("redis", "redis")
CLICKHOUSE = Extra("clickhouse", "clickhouse_connect")
OPENAI = Extra("openai", "openai")
ANTHROPIC = Extra("anthropic", "anthropic")
_LLM_EXTRAS = {LlmProvider.OPENAI: OPENAI, LlmProvider.ANTHROPIC: ANTHROPIC}


class MissingExtra(RuntimeError):
    """A setting asks for a driver whose extra is not installed; the message says which."""


def needed_extras(settings: Settings) -> list[tuple[Extra, str]]:
    """Each extra the settings need, with the setting that needs it, in words."""
    needed: list[tuple[Extra, str]] = []
    if settings.resolved_database_url.startswith("postgresql"):
        needed.append((POSTGRES, "APEX_DATABASE_URL is a PostgreSQL URL"))
    if settings.redis_url:
        needed.append((REDIS, "APEX_REDIS_URL is set"))
    if settings.clickhouse_url:
        needed.append((CLICKHOUSE, "APEX_CLICKHOUSE_URL is set"))
    llm = _LLM_EXTRAS.get(settings.llm_provider)
    if llm is not None:
        needed.append((llm, f"APEX_LLM_PROVIDER is {settings.llm_provider.value}"))
    return needed


def check_extras(settings: Settings) -> None:
    """Raises MissingExtra for the first configured driver that cannot be imported."""
    for extra, because in needed_extras(settings):
        try:
            importlib.import_module(extra.module)
        except ImportError:
            raise extra.missing(because) from None
