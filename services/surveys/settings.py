"""Configuration of the surveys service (env prefix ``SURVEYS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SurveysSettings"]


class SurveysSettings(BaseSettings):
    """Where the service listens."""

    model_config = SettingsConfigDict(env_prefix="SURVEYS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8102, description="HTTP port (/health, /ready, /metrics, API)")
    db_schema: str = Field(default="surveys", description="PostgreSQL schema holding this service's tables")
