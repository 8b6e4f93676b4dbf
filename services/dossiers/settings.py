"""Configuration of the dossiers service (env prefix ``DOSSIERS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DossiersSettings"]


class DossiersSettings(BaseSettings):
    """Where the service listens, how it names itself, and where its rules and calendars come from."""

    model_config = SettingsConfigDict(env_prefix="DOSSIERS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8101, description="HTTP port (/health, /ready, /metrics, API)")
    db_schema: str = Field(default="dossiers", description="PostgreSQL schema holding this service's tables")
    source: str = Field(default="urn:chiso:dossiers", description="CloudEvents source of the canonical events")
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="Key of the applicant pseudonyms (HMAC-SHA256, at least 16 bytes). Required: without it "
        "the service refuses to start rather than store a re-identifiable applicant reference",
    )
    rules_dir: Path | None = Field(
        default=None, description="Directory of provinces' ruleset overrides (<province code>.yaml)"
    )
    calendar_dir: Path | None = Field(
        default=None, description="Directory of provinces' working-calendar overrides (<province code>.yaml)"
    )
    service_points_file: Path | None = Field(
        default=None,
        description="Opening hours per service point (agency code), YAML; others keep the calendar's hours",
    )
    overdue_settle_s: float = Field(
        default=10.0,
        ge=0,
        description="A dossier that received a fact less than this long ago is not judged overdue yet (its "
        "history may still be arriving in a burst or a backfill)",
    )
    overdue_interval_s: float = Field(
        default=5.0, gt=0, description="Longest wait between two looks for dossiers whose due date passed"
    )

    def secret_bytes(self) -> bytes:
        """The pseudonym key, or a clear error naming the variable to set."""
        if self.pseudonym_secret is None:
            msg = "DOSSIERS_PSEUDONYM_SECRET is not set: the dossiers service needs a key for applicant pseudonyms"
            raise RuntimeError(msg)
        return self.pseudonym_secret.get_secret_value().encode()
