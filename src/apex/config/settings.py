"""The one Settings object: read once at start-up from `APEX_*` variables and `.env`, then passed down.

Nothing else in Apex reads the environment, so a test builds a `Settings(...)` and gets exactly
the process it describes.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "APEX_"
JWT_SECRET_FILE = "jwt_secret"
MIN_JWT_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LlmProvider(StrEnum):
    BUILTIN = "builtin"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class InsecureConfiguration(RuntimeError):
    """Raised when production would start on a default that is only safe on a laptop."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    data_dir: Path = Path(".apex")
    public_url: str | None = Field(
        default=None, description="Base URL users reach the server at (OIDC redirects)."
    )

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in the data dir."
    )
    redis_url: str | None = None
    redis_key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        default="apex", description="Prefix of every Redis key and channel this deployment uses."
    )
    clickhouse_url: str | None = None
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxy addresses whose X-Forwarded-For is trusted; unset trusts none.",
    )

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "apex"
    jwt_audience: str = "apex"
    access_token_ttl_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    refresh_token_ttl_s: Annotated[int, Field(ge=3_600, le=90 * 86_400)] = 14 * 86_400
    ws_ticket_ttl_s: Annotated[int, Field(ge=30, le=3_600)] = 60

    oidc_google_client_id: str | None = None
    oidc_google_client_secret: SecretStr | None = None
    oidc_issuer: str | None = Field(
        default=None, description="Any OIDC issuer (discovery URL base)."
    )
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_name: str = "oidc"

    rate_limit_login_per_minute: Annotated[int, Field(ge=1)] = 10
    rate_limit_register_per_minute: Annotated[int, Field(ge=1)] = 5
    rate_limit_refresh_per_minute: Annotated[int, Field(ge=1)] = 30

    argon2_time_cost: Annotated[int, Field(ge=1, le=20)] = 3
    argon2_memory_kib: Annotated[int, Field(ge=1_024, le=4 * 1_048_576)] = 65_536
    argon2_parallelism: Annotated[int, Field(ge=1, le=16)] = 4

    llm_provider: LlmProvider = LlmProvider.BUILTIN
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    llm_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    llm_circuit_failure_threshold: Annotated[int, Field(ge=1, le=1_000)] = 5
    llm_circuit_reset_s: Annotated[float, Field(gt=0, le=3_600)] = 30.0

    max_runs_per_user: Annotated[int, Field(ge=1, le=100)] = 3
    max_runs_global: Annotated[int, Field(ge=1, le=10_000)] = 64
    run_timeout_s: Annotated[float, Field(gt=0, le=3_600)] = 120.0
    tool_timeout_s: Annotated[float, Field(gt=0, le=3_600)] = 30.0

    ws_max_frame_bytes: Annotated[int, Field(ge=1_024, le=16 * 1_048_576)] = 65_536
    ws_heartbeat_s: Annotated[float, Field(gt=0, le=3_600)] = 25.0
    ws_send_queue_size: Annotated[int, Field(ge=8, le=100_000)] = 1_024
    event_replay_max: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    event_replay_ttl_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400
    event_replay_retained_runs: Annotated[int, Field(ge=10, le=1_000_000)] = Field(
        default=1_000, description="In-process bus: ended runs whose event log is kept for resume."
    )
    max_queued_runs_per_user: Annotated[int, Field(ge=0, le=10_000)] = 20
    worker_heartbeat_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    worker_lost_after_s: Annotated[float, Field(ge=2, le=3_600)] = 15.0
    event_outbox_max: Annotated[int, Field(ge=100, le=10_000_000)] = Field(
        default=100_000, description="Redis bus: events held while Redis is unreachable."
    )
    run_store_retry_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=600.0, description="How long a run's end is retried through a database outage."
    )
    shutdown_grace_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    step_delay_ms: Annotated[int, Field(ge=0, le=60_000)] = Field(
        default=0, description="Pause between the agents of a run (demos, UI work)."
    )

    upload_max_bytes: Annotated[int, Field(ge=1_024)] = 200 * 1_048_576
    ledger_memory_limit_mb: Annotated[int, Field(ge=64, le=1_048_576)] = 448
    ledger_threads: Annotated[int, Field(ge=1, le=256)] | None = None
    ledger_prepare_tenants: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=20,
        description="At start, tenants (latest upload first) whose usage answers "
        "are prepared in the background; 0 prepares none.",
    )
    prices_file: Path | None = Field(
        default=None, description="JSON price entries that extend or override the catalog."
    )
    demo_default_rows: Annotated[int, Field(ge=1, le=10_000_000)] = 50_000
    demo_max_rows: Annotated[int, Field(ge=1, le=10_000_000)] = 1_000_000
    otlp_max_request_bytes: Annotated[int, Field(ge=1_024, le=1_073_741_824)] = Field(
        default=8 * 1_048_576,
        description="Largest OTLP export accepted, as sent and once decompressed (413 past it).",
    )
    otlp_commit_interval_s: Annotated[float, Field(gt=0, le=5)] = Field(
        default=0.5, description="How long live rows wait to be committed with later ones."
    )
    otlp_commit_rows: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    otlp_max_pending_rows: Annotated[int, Field(ge=1_000, le=100_000_000)] = Field(
        default=200_000,
        description="Live rows received but not committed, at most: past "
        "it exports get 429 (503 while commits fail).",
    )

    alerts_every_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0,
        description="Scheduled evaluation of budgets and anomalies (one process "
        "per round when several share Redis).",
    )
    webhook_max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    webhook_backoff_s: Annotated[float, Field(gt=0, le=3_600)] = Field(
        default=2.0, description="Wait before a webhook's first retry; doubled for each next."
    )
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhooks_allow_private_networks: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private and link-local "
        "addresses (receivers inside the server's own network).",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = Field(default=None, description="Default: JSON in production only.")

    @model_validator(mode="after")
    def _heartbeats_outlive_their_interval(self) -> Settings:
        if self.worker_lost_after_s < 2 * self.worker_heartbeat_s:
            raise ValueError("worker_lost_after_s must be at least twice worker_heartbeat_s")
        return self

    @field_validator(
        "database_url",
        "redis_url",
        "clickhouse_url",
        "public_url",
        "forwarded_allow_ips",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("postgresql://"):
            return "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _known_clickhouse(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "clickhouse://")):
            raise ValueError("must be an http://, https:// or clickhouse:// URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'apex.db').resolve()}"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.duckdb"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def json_logs(self) -> bool:
        return self.env is Environment.PRODUCTION if self.log_json is None else self.log_json

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    def prepare(self) -> Settings:
        """Create the data dir, settle the JWT secret, and refuse insecure production defaults.

        Development keeps a generated secret in the data dir so tokens survive a restart;
        production must be told its secret, because a generated one would differ per process.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.jwt_algorithm != "HS256":
            for name, path in (
                ("APEX_JWT_PRIVATE_KEY_FILE", self.jwt_private_key_file),
                ("APEX_JWT_PUBLIC_KEY_FILE", self.jwt_public_key_file),
            ):
                if path is None or not Path(path).is_file():
                    raise InsecureConfiguration(
                        f"{name} must name a readable key file when APEX_JWT_ALGORITHM="
                        f"{self.jwt_algorithm}"
                    )
            return self
        if self.jwt_secret is not None:
            if (
                self.env is Environment.PRODUCTION
                and len(self.jwt_secret.get_secret_value()) < MIN_JWT_SECRET_LENGTH
            ):
                raise InsecureConfiguration(
                    f"APEX_JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters in "
                    "production"
                )
            return self
        if self.env is Environment.PRODUCTION:
            raise InsecureConfiguration(
                "APEX_JWT_SECRET must be set in production (at least "
                f"{MIN_JWT_SECRET_LENGTH} random characters, e.g. `openssl rand -hex 32`)"
            )
        secret_file = self.data_dir / JWT_SECRET_FILE
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(32))
            secret_file.chmod(0o600)
        self.jwt_secret = SecretStr(secret_file.read_text().strip())
        return self


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the variable and what it accepts, for a human at a terminal."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    accepted = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    return f"{ENV_PREFIX}{field.upper()}: {accepted} (got {got!r})"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; callers turn InsecureConfiguration/ValidationError into exits."""
    return Settings(**overrides).prepare()  # type: ignore[arg-type]
