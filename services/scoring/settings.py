"""Configuration of the scoring service (env prefix ``SCORING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ScoringSettings"]


class ScoringSettings(BaseSettings):
    """Where the service listens and how the projections batch."""

    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8104, description="HTTP port (/health, /ready, /metrics, query API)")
    db_schema: str = Field(default="scoring", description="PostgreSQL schema holding the read models")
    max_batch: int = Field(default=5000, ge=1, description="Most Kafka records per projection transaction")
    d766_config_dir: Path | None = Field(
        default=None, description="Directory of Decision 766 configuration versions (*.yaml); default: the shipped ones"
    )
    d766_default: str = Field(
        default="d766-m766-2026.1", description="Configuration version the API uses unless a request names one"
    )
    publish_interval_ms: int = Field(
        default=500, ge=10, description="How often changed indicators are published (coalescing window, ms)"
    )
    publish_range_interval_ms: int = Field(
        default=5000,
        ge=10,
        description="How often year-to-date and reporting-period indicators are published (coalescing window, ms)",
    )
    publish_max_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description=(
            "Most of the time the indicator publisher may work: after rounds that took t seconds it rests at least"
            " t * (1 - share) / share, so under a flood of changes its rounds coalesce more instead of taking the"
            " CPU the projections (the query API's freshness) need"
        ),
    )
    publish_max_keys: int = Field(
        default=200,
        ge=1,
        description="Most (unit, period) keys per publishing round (a round's burst of work and events is bounded)",
    )
    roles: str = Field(
        default="api,projections,publisher",
        pattern=r"^(api|projections|publisher)(,(api|projections|publisher))*$",
        description=(
            "What this process runs (comma list): api (the query API), projections (the Kafka projections),"
            " publisher (indicator updates and their relay). All three by default; on few cores run the API in"
            " one process and the rest in another, so queries never wait behind projection or publisher work"
        ),
    )

    @property
    def role_set(self) -> frozenset[str]:
        """:attr:`roles` as a set."""
        return frozenset(self.roles.split(","))
