"""The API's request and response bodies.

Passwords are write-only: request models accept one, no response model has a field for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# Connection options that would clash with what Rosetta passes itself, or hold a secret that
# would be stored and shown in clear.
RESERVED_OPTIONS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslpassword",
        "connect_timeout",
        "application_name",
        "autocommit",
    }
)


def _check_options(value: dict[str, str] | None) -> dict[str, str] | None:
    if value:
        bad = sorted(k for k in value if k.lower() in RESERVED_OPTIONS)
        if bad:
            raise ValueError(
                f"options may not set {', '.join(bad)}: use the fields of the same meaning "
                "(the password goes in 'password')"
            )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class SourceCreate(_Strict):
    name: str = Field(description="A short name: letters, digits, '_', '.', '-'.")
    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr | None = Field(default=None, description="Write-only; never returned.")
    publication_name: str = Field(default="rosetta_publication", min_length=1)
    replication_name: str | None = Field(
        default=None, description="The replication slot the pipeline uses."
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="More libpq parameters, e.g. sslmode."
    )

    _options = field_validator("options")(_check_options)


class SourceUpdate(_Strict):
    """Fields to change; an omitted field keeps its value (an omitted password keeps the old)."""

    name: str | None = None
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = Field(default=None, min_length=1)
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = Field(default=None, description="Write-only; never returned.")
    publication_name: str | None = Field(default=None, min_length=1)
    replication_name: str | None = Field(
        default=None, description="Send null or '' to clear the slot."
    )
    options: dict[str, str] | None = None

    _options = field_validator("options")(_check_options)


class SourceOut(BaseModel):
    id: int
    name: str
    host: str
    port: int
    database: str
    username: str
    has_password: bool
    options: dict[str, str]
    publication_name: str
    replication_name: str | None
    is_publication_enabled: bool
    is_replication_enabled: bool
    table_count: int | None = None
    created_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_error: str | None


class ChangedTableOut(BaseModel):
    table: str
    version: int
    changes_type: str


class FailedTableOut(BaseModel):
    table: str
    error: str


class SyncSummaryOut(BaseModel):
    source: str
    status: str = Field(description="ok, partial, failed or publication_missing")
    added: list[str]
    healed: list[str]
    changed: list[ChangedTableOut]
    removed: list[str]
    rejoined: list[str]
    skipped: list[str]
    failed: list[FailedTableOut]
    unchanged: int
    publication_exists: bool
    slot_exists: bool
    error: str | None
    duration: float


class SourceCreated(BaseModel):
    source: SourceOut
    sync: SyncSummaryOut | None = None


class ConnectionTestOut(BaseModel):
    ok: bool
    publication_name: str
    publication_exists: bool
    replication_name: str | None
    slot_exists: bool
    wal_level: str
    logical_replication_ready: bool = Field(description="wal_level is logical")


class TableSummaryOut(BaseModel):
    id: int
    schema_name: str
    table_name: str
    name: str
    version: int | None
    column_count: int
    status: str
    badge: str
    last_error: str | None
    has_select_privilege: bool | None
    last_change_type: str | None
    last_change_at: datetime | None
    healed_at: datetime | None
    removed_at: datetime | None


class TablesPageOut(BaseModel):
    items: list[TableSummaryOut]
    total: int
    limit: int
    offset: int


class ColumnOut(BaseModel):
    column_name: str
    data_type: str
    full_type: str
    is_nullable: bool
    column_default: str | None
    is_primary_key: bool
    ordinal_position: int
    attnum: int | None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    character_maximum_length: int | None = None
    identity: str | None = None
    generated: str | None = None


class VersionSummaryOut(BaseModel):
    version: int
    changes_type: str
    created_at: datetime
    change_count: int
    column_count: int


class TableOut(BaseModel):
    id: int
    source_id: int
    schema_name: str
    table_name: str
    name: str
    status: str
    badge: str
    version: int | None
    last_error: str | None
    table_kind: str | None
    replica_identity: str | None
    has_select_privilege: bool | None
    created_at: datetime
    updated_at: datetime
    healed_at: datetime | None
    removed_at: datetime | None
    columns: list[ColumnOut]


class ChangeOut(BaseModel):
    type: str
    column: str
    before: Any = None
    after: Any = None
    breaking: bool | None = None


class VersionOut(BaseModel):
    table_id: int
    version: int
    changes_type: str
    created_at: datetime
    columns: list[ColumnOut]
    changes: list[ChangeOut]


class DiffOut(BaseModel):
    table_id: int
    from_version: int = Field(serialization_alias="from")
    to_version: int = Field(serialization_alias="to")
    changes: list[ChangeOut]


class TableRef(_Strict):
    schema_name: str = Field(default="public", alias="schema", min_length=1)
    table: str = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)


class PublicationCreate(_Strict):
    tables: list[str | TableRef] = Field(
        default_factory=list,
        description='Tables as "schema.table" (or "table" for public) or {schema, table}; '
        "none makes an empty publication.",
    )


class PublicationTableAdd(_Strict):
    table: str | None = Field(default=None, description='"schema.table", or "table" for public')
    schema_name: str | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)


class ActionOut(BaseModel):
    """What a change to the source did, and the sync that followed it."""

    ok: bool = True
    message: str
    sync: SyncSummaryOut


class AvailableTableOut(BaseModel):
    schema_name: str
    table_name: str
    name: str


class MonitorOut(BaseModel):
    in_process: bool = Field(description="A monitor runs inside this server.")
    running: bool
    running_since: datetime | None = None
    last_cycle_started_at: datetime | None = None
    last_cycle_duration: float | None = None
    last_cycle_outcome: str | None = None
    last_cycle_summary: dict[str, Any] | None = None
    monitor_id: str | None = None


class HealthStatusOut(BaseModel):
    """What anyone may know: is the store usable."""

    status: str = Field(description="ok, or unavailable when the store is not usable")


class HealthOut(HealthStatusOut):
    """What a caller with a valid token sees."""

    version: str
    store: str = Field(description="ok, unreachable or not_migrated")
    detail: str | None = None
    monitor: MonitorOut | None = None
    last_heartbeat: MonitorOut | None = Field(
        default=None, description="The latest cycle of any monitor sharing the store."
    )


class CheckOut(BaseModel):
    name: str
    status: str = Field(description="PASS, WARN or FAIL")
    detail: str
    fix: str | None = Field(default=None, description="The fix in one line, unless it passed.")
    subject: str = Field(
        default="", description="'' for the store and monitor, the source, or 'source/table'."
    )


class DiagnosisOut(BaseModel):
    ok: bool = Field(description="No check failed.")
    counts: dict[str, int]
    checks: list[CheckOut]


class WebhookCreate(_Strict):
    url: str = Field(min_length=1, max_length=2000, description="http:// or https://")
    secret: SecretStr | None = Field(
        default=None, description="Signs each body (HMAC-SHA256); write-only, never returned."
    )
    events: list[str] | None = Field(
        default=None,
        description="Any of schema.changed, table.added, table.removed, table.healed; "
        "omitted or empty: all of them.",
    )


class WebhookOut(BaseModel):
    id: int
    source_id: int
    source: str
    url: str
    events: list[str]
    enabled: bool
    signed: bool = Field(description="A secret signs its deliveries (the secret is not shown).")
    created_at: datetime
    delivered: int
    pending: int
    failed: int


class WebhookTestOut(BaseModel):
    ok: bool = Field(description="The endpoint answered 2xx.")
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    url: str
    event: str
    table: str | None
    version: int | None
    status: str = Field(description="pending, delivered or failed (given up)")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
