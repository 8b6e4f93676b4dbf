"""Configuration of the plans service (env prefix ``PLANS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PlansSettings"]


class PlansSettings(BaseSettings):
    """Where the service listens, how it names itself, and where its configuration lives."""

    model_config = SettingsConfigDict(env_prefix="PLANS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8103, description="HTTP port (/health, /ready, /metrics, API)")
    db_schema: str = Field(default="plans", description="PostgreSQL schema holding this service's tables")
    source: str = Field(default="urn:chiso:plans", description="CloudEvents source of the plans events")
    indicators_file: Path | None = Field(
        default=None, description="Indicator catalogue YAML (default: the shipped config/indicators.yaml)"
    )
    criteria_dir: Path | None = Field(
        default=None, description="Directory of PAR criteria tree YAML files (default: the shipped config/criteria)"
    )
    calendar_province: str | None = Field(
        default=None, description="Province whose calendar override file applies (default: the national calendar)"
    )
    calendar_overrides_dir: Path | None = Field(
        default=None, description="Directory of per-province calendar override files"
    )
    overdue_interval_s: float = Field(
        default=60.0, gt=0, description="How often open tasks are checked against their deadlines (seconds)"
    )
