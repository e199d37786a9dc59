"""Build the ledger, the price catalog and the importer that Settings describe."""

from __future__ import annotations

from apex.analytics.commit_lock import SharedCommitLock
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_clickhouse import ClickHouseLedger, HttpClickHouse
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog
from apex.config import Settings


def open_ledger(settings: Settings) -> SqlLedger:
    """ClickHouse when APEX_CLICKHOUSE_URL is set, else the DuckDB file in the data dir. With
    APEX_REDIS_URL too (several servers), ClickHouse writes take a lock that Redis shares."""
    if settings.clickhouse_url:
        return ClickHouseLedger(
            HttpClickHouse(settings.clickhouse_url), commit_lock=_shared_commit_lock(settings)
        )
    settings.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBLedger(
        settings.ledger_path,
        memory_limit_mb=settings.ledger_memory_limit_mb,
        threads=settings.ledger_threads,
    )


def _shared_commit_lock(settings: Settings) -> SharedCommitLock | None:
    """The lock servers sharing one ClickHouse ledger take in Redis, when Redis is configured
    (the redis extra is imported only then)."""
    if not settings.redis_url:
        return None
    import redis

    return SharedCommitLock(
        redis.Redis.from_url(settings.redis_url), name=f"{settings.redis_key_prefix}:ledger:commit"
    )


def load_catalog(settings: Settings) -> PriceCatalog:
    return PriceCatalog.load(extra_file=settings.prices_file)


def build_importer(settings: Settings, ledger: SqlLedger) -> UsageImporter:
    return UsageImporter(ledger, load_catalog(settings))
