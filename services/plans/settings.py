"""Configuration of the plans service (env prefix ``PLANS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PlansSettings"]


class PlansSettings(BaseSettings):
    """Where the service listens."""

    model_config = SettingsConfigDict(env_prefix="PLANS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8103, description="HTTP port (/health, /ready, /metrics, API)")
    db_schema: str = Field(default="plans", description="PostgreSQL schema holding this service's tables")
