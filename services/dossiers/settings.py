"""Configuration of the dossiers service (env prefix ``DOSSIERS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DossiersSettings"]


class DossiersSettings(BaseSettings):
    """Where the service listens and how it names itself."""

    model_config = SettingsConfigDict(env_prefix="DOSSIERS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8101, description="HTTP port (/health, /ready, /metrics, API)")
    db_schema: str = Field(default="dossiers", description="PostgreSQL schema holding this service's tables")
    source: str = Field(default="urn:chiso:dossiers", description="CloudEvents source of the canonical events")
