"""Settings shared by every deployable.

Each deployable defines exactly one subclass of :class:`CommonSettings`,
builds it once at start-up and passes it down. Nothing else reads the
environment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """``NAZAR_*`` variables understood by every service."""

    model_config = SettingsConfigDict(
        env_prefix="NAZAR_", env_file=None, extra="ignore", populate_by_name=True
    )

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/nazar"),
        description="PostgreSQL (or TimescaleDB) connection URL.",
    )
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ connection URL.",
    )
    amqp_heartbeat: int = Field(
        default=10,
        ge=1,
        description="AMQP heartbeat timeout, seconds (unless the URL sets `heartbeat`); a "
        "connection silent for about three of them is dropped and re-established.",
    )
    reconnect_max_delay: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait between two attempts to reconnect to the broker or the "
        "database listener, or to re-attach a consumer (delays grow exponentially, "
        "with jitter).",
    )
    analyzer_partitions: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Partitions of the analyzer's sample stream (one queue each, by a hash "
        "of the host). Ingest and every analyzer must agree; analyzer replicas beyond this "
        "number stay idle. Change only with the stream drained.",
    )
    db_pool_min: int = Field(default=2, ge=1, description="Minimum database pool size.")
    db_pool_max: int = Field(default=10, ge=1, description="Maximum database pool size.")
    db_statement_cache_size: int = Field(
        default=100,
        ge=0,
        description="asyncpg prepared-statement cache; 0 for poolers and single-session servers.",
    )
    storage_backend: Literal["auto", "timescaledb", "postgres"] = Field(
        default="auto",
        description="Time-series storage: TimescaleDB when the extension is available (auto), "
        "or force one path.",
    )
    retention_raw: timedelta = Field(
        default=timedelta(days=7), description="How long raw samples are kept."
    )
    retention_1m: timedelta = Field(
        default=timedelta(days=30), description="How long 1-minute rollups are kept."
    )
    retention_1h: timedelta = Field(
        default=timedelta(days=400), description="How long 1-hour rollups are kept."
    )
    log_level: str = Field(default="INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field(default="json", description="Log format.")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where OpenTelemetry spans go (otlp uses the standard OTEL_EXPORTER_OTLP_* "
        "variables).",
    )
    service_instance: str = Field(
        default="", description="Instance name in logs and traces (defaults to the hostname)."
    )
