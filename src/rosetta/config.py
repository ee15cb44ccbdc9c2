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
    worker_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Syncs one `rosetta worker` runs at once (each holds one store connection "
        "while it runs; a worker holds at most this many plus 5).",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds between a worker's heartbeats; a worker silent for three of them "
        "is dead, and its running syncs are run again by another worker.",
    )
    sync_retries: int = Field(
        default=2,
        ge=0,
        le=20,
        description="Times a failed sync job is retried, after 2, 4, 8... seconds, before it "
        "waits for the source's next interval.",
    )
    sync_runs_retention_hours: float = Field(
        default=24.0,
        gt=0,
        description="Hours the store keeps its record of each sync (sync_runs) and of failed jobs.",
    )
    refresh_timeout: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds a Refresh waits for its sync on a worker before it gives up "
        "waiting (the sync still runs).",
    )
    source_connect_timeout: int = Field(default=10, ge=1, le=3600, description="Seconds.")
    source_statement_timeout: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        description="Seconds any one statement on a source may run before it is cancelled.",
    )
    source_lock_timeout: float = Field(
        default=5.0,
        gt=0,
        le=86400,
        description="Seconds a statement on a source may wait for a lock (a table locked by "
        "ALTER TABLE or VACUUM FULL) before that read fails.",
    )
    capture_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days a source keeps its captured DDL events (then a sync deletes them).",
    )
    source_networks: str = Field(
        default="*",
        description="Where sources may be: comma-separated host names, IP addresses and CIDR "
        "networks; '*' is any address except link-local (cloud metadata) ones; 'local' allows "
        "Unix-domain sockets.",
    )
    webhook_networks: str = Field(
        default="*",
        description="Where webhooks may be sent, in the form of ROSETTA_SOURCE_NETWORKS.",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds one webhook attempt may take in all."
    )
    webhook_concurrency: int = Field(
        default=4, ge=1, le=64, description="Webhook endpoints sent to at once."
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body the API and the web UI read (larger: 413).",
    )
    webhook_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="First retry delay of a failed webhook; doubles each time."
    )
    log_file: Path | None = Field(default=Path("logs/app.log"), description="Rotating log file.")
    log_level: str = Field(default="INFO")
