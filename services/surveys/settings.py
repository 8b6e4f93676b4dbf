"""Configuration of the surveys service (env prefix ``SURVEYS_``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.surveys.tokens import MIN_SECRET_BYTES

__all__ = ["SurveysSettings"]


class SurveysSettings(BaseSettings):
    """Where the service listens, its link key, its instruments and its per-device limits."""

    model_config = SettingsConfigDict(env_prefix="SURVEYS_", extra="ignore")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    http_port: int = Field(default=8102, description="HTTP port (/health, /ready, /metrics, API, form page)")
    db_schema: str = Field(default="surveys", description="PostgreSQL schema holding this service's tables")
    source: str = Field(default="urn:chiso:surveys", description="CloudEvents source of the response events")
    token_secret: SecretStr | None = Field(
        default=None,
        description="Key of the QR/SMS link tokens (HMAC-SHA256, at least 16 bytes), shared with whoever prints "
        "the links. Unset: a random key for this process only (links die with it; for local runs)",
    )
    token_ttl_days: float = Field(default=14, gt=0, le=90, description="Default validity of an issued link")
    public_base_url: str = Field(
        default="http://127.0.0.1:8102", description="Base URL of the form page, as printed in QR codes and SMS"
    )
    link_instrument: str = Field(
        default="sipas-service", description="Instrument a link opens when its token names none"
    )
    instruments_dir: Path | None = Field(
        default=None, description="Directory of a province's own instruments (*.yaml), added to the shipped ones"
    )
    kiosk_rate_per_minute: float = Field(
        default=2.0, gt=0, description="Submissions a kiosk/tablet (X-Device-Id) may send per minute, sustained"
    )
    kiosk_burst: int = Field(default=3, ge=1, description="Submissions a kiosk/tablet may send at once")
    commit_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="HTTP group-commit workers (concurrent transactions); few workers make large batches, which cost "
        "the database and the service less per submission",
    )
    commit_max_batch: int = Field(default=200, ge=1, le=5000, description="Most HTTP submissions per transaction")
    gc_young_threshold: int = Field(
        default=20_000,
        ge=0,
        description="Allocations between two young collections of Python's garbage collector once the service has "
        "started (the heap built at start is frozen: never walked again); 0 leaves the collector as Python sets it",
    )
    relay_linger_ms: float = Field(
        default=100,
        ge=0,
        le=10_000,
        description="The relay waits this long after a partial batch, so responses stored meanwhile share one Kafka "
        "transaction (per response, a transaction per small group cost the broker and the database more than the "
        "response itself); the delay of an event to vn.cchc.surveys.events grows by at most as much",
    )

    roles: str = Field(
        default="api,inbox,relay",
        pattern=r"^(api|inbox|relay)(,(api|inbox|relay))*$",
        description=(
            "What this process runs (comma list): api (HTTP submissions, the form page, link issuing; their group"
            " commit), inbox (the Kafka intake of partner survey systems), relay (response events to Kafka). All"
            " three by default; on few cores run the API in one process and inbox,relay in another, so the"
            " process that answers kiosks and citizens spends its core on them alone"
        ),
    )

    @property
    def role_set(self) -> frozenset[str]:
        """:attr:`roles` as a set."""
        return frozenset(self.roles.split(","))

    def secret_bytes(self) -> bytes:
        """The link key: the configured one, else a random one for this process."""
        if self.token_secret is None:
            return secrets.token_bytes(32)
        key = self.token_secret.get_secret_value().encode()
        if len(key) < MIN_SECRET_BYTES:
            msg = f"SURVEYS_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            raise RuntimeError(msg)
        return key
