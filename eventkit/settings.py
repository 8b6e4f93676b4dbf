"""Configuration shared by every service, read from the environment (pydantic-settings).

Each group has its own prefix so a deployment can set exactly what it needs:
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``LOG_LEVEL``... Service settings (``DOSSIERS_*``,
``SCORING_*``...) live in each service and nest these.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DatabaseSettings", "KafkaSettings", "LogSettings"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster (env prefix ``KAFKA_``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Comma-separated host:port list")
    client_id_prefix: str = Field(default="chiso", description="Prefix of every client id, for broker logs")
    linger_ms: int = Field(default=5, ge=0, description="Producer batching delay; trades latency for throughput")
    max_batch_size: int = Field(default=1_048_576, ge=16_384, description="Producer batch size in bytes")
    request_timeout_ms: int = Field(default=30_000, ge=1_000, description="Client request timeout")


class DatabaseSettings(BaseSettings):
    """How to reach PostgreSQL (env prefix ``DATABASE_``)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: str = Field(default="postgresql://postgres@127.0.0.1:5432/chiso", description="asyncpg DSN")
    pool_min_size: int = Field(default=1, ge=0, description="Connections kept open")
    pool_max_size: int = Field(default=10, ge=1, description="Upper bound of the pool")


class LogSettings(BaseSettings):
    """Logging (env prefix ``LOG_``)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: str = Field(default="INFO", description="Minimum level: DEBUG, INFO, WARNING, ERROR")
    json_output: bool = Field(default=True, description="JSON lines (production) or coloured console (dev)")
    access: bool = Field(
        default=True,
        description="One INFO line per HTTP request (uvicorn's access log); off, uvicorn does not even build it",
    )
