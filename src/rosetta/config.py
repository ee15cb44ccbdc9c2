"""Configuration: one settings object, read from ``ROSETTA_*`` environment variables.

Built by the CLI entry point or the app factory, never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSETTA_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="Rosetta's store. Unset: a local PostgreSQL under ROSETTA_DATA_DIR.",
    )
    data_dir: Path = Field(
        default=Path(".rosetta"),
        description="Where the embedded store, its key and its server live.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts source passwords. Unset: generated beside the "
        "embedded store.",
    )
    monitor_interval: float = Field(default=60.0, gt=0, description="Seconds between cycles.")
    monitor_full_every: int = Field(
        default=60,
        ge=0,
        description="Every Nth cycle compares every table's columns, not only changed "
        "fingerprints (0: never).",
    )
    monitor_concurrency: int = Field(default=4, ge=1, le=64, description="Sources synced at once.")
    source_connect_timeout: int = Field(default=10, ge=1, description="Seconds.")
    webhook_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="First retry delay of a failed webhook; doubles each time."
    )
    log_file: Path | None = Field(default=Path("logs/app.log"), description="Rotating log file.")
    log_level: str = Field(default="INFO")
