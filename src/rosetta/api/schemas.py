"""The API's request and response bodies, the types of its parameters, and its errors.

Passwords are write-only: request models accept one, no response model has a field for it.

Every text that reaches PostgreSQL or libpq is checked here, once, by its type: it must encode as
UTF-8 (a JSON string may hold a lone surrogate, ``"\\ud800"``) and hold no NUL; every name is
bounded (identifiers: 63 bytes); a page's limit and offset fit PostgreSQL's ``bigint``. Bad input
is a 422 with one line, never a 500 (an id that names no row, however large, is a 404).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from rosetta.registry import SchemaState

BIGINT_MAX = 2**63 - 1
IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
HOST_BYTES = 255
PASSWORD_BYTES = 1000
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
MAX_PAGE = 1000


def postgres_text(value: str) -> str:
    """``value`` if PostgreSQL and libpq can take it: it encodes as UTF-8, without NUL."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value.encode()) > limit:
            raise ValueError(f"must be at most {limit} bytes in UTF-8")
        return value

    return AfterValidator(check)


def _secret_text(value: SecretStr) -> SecretStr:
    postgres_text(value.get_secret_value())
    if len(value.get_secret_value().encode()) > PASSWORD_BYTES:
        raise ValueError(f"must be at most {PASSWORD_BYTES} bytes in UTF-8")
    return value


_TEXT = AfterValidator(postgres_text)

Text = Annotated[str, _TEXT]
"""Any text PostgreSQL can store (UTF-8, no NUL)."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=IDENTIFIER_BYTES), _TEXT, _at_most(IDENTIFIER_BYTES)
]
"""A PostgreSQL identifier as typed, unquoted: 1-63 bytes (a publication, slot, database, user,
schema or table name)."""

SlotOrEmpty = Annotated[str, Field(max_length=IDENTIFIER_BYTES), _TEXT, _at_most(IDENTIFIER_BYTES)]
"""A replication slot's name, or '' for none."""


def _source_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            "invalid source name: use 1-63 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return value


SourceName = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": f"^{NAME_PATTERN}$", "minLength": 1, "maxLength": 63},
        description="A short name: 1-63 letters, digits, '_', '.', '-', starting with a letter "
        "or digit.",
    ),
    AfterValidator(_source_name),
]

Host = Annotated[str, Field(min_length=1, max_length=HOST_BYTES), _TEXT, _at_most(HOST_BYTES)]

Password = Annotated[
    SecretStr,
    Field(max_length=PASSWORD_BYTES, description="Write-only; never returned."),
    AfterValidator(_secret_text),
]

OptionKey = Annotated[str, Field(min_length=1, max_length=60), _TEXT]
OptionValue = Annotated[str, Field(max_length=200), _TEXT]
Options = Annotated[dict[OptionKey, OptionValue], Field(max_length=32)]

TableName = Annotated[
    str,
    Field(min_length=1, max_length=2 * IDENTIFIER_BYTES + 1),
    _TEXT,
    _at_most(2 * IDENTIFIER_BYTES + 1),
]
"""``"schema.table"``, or ``"table"`` for public."""


def _page(low: int, high: int, what: str) -> AfterValidator:
    """The check of a page's query parameter, with one message (the document gives the
    bounds too)."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"invalid page: {what} must be {low}-{high}")
        return value

    return AfterValidator(check)


# An id or a version number that names no row is a 404, however large or small.
SourceId = Annotated[int, Path(description="The source's id.")]
TableId = Annotated[int, Path(description="The table's id.")]
VersionNumber = Annotated[int, Path(description="A version, from 1.")]
PathIdentifier = Annotated[str, Path(min_length=1, max_length=IDENTIFIER_BYTES), _TEXT]
Limit = Annotated[
    int,
    Query(description="Items on a page.", json_schema_extra={"minimum": 1, "maximum": MAX_PAGE}),
    _page(1, MAX_PAGE, "limit"),
]
Offset = Annotated[
    int,
    Query(description="Items skipped.", json_schema_extra={"minimum": 0, "maximum": BIGINT_MAX}),
    _page(0, BIGINT_MAX, "offset"),
]


class ErrorOut(BaseModel):
    """Every error under /api: one line, never a traceback, never the input."""

    detail: str = Field(description="What went wrong, in one line.")


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be carried out",
    401: "No valid API token: send 'Authorization: Bearer <token>'",
    403: "This token's role may not do that, or the address is outside the allowed networks",
    404: "No such source, table, version or webhook",
    409: "The source refused the change, or it conflicts with what exists",
    413: "The request body is too large",
    422: "Invalid input: the fields at fault, in one line",
    502: "The source cannot be reached",
    503: "Rosetta's store is unavailable, or Rosetta is busy: try again after Retry-After",
}

RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def errors(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int | str, Any]:
    """``responses=`` for a route: each status answered with :class:`ErrorOut`, described in the
    route's own words (``described``) or else in the usual ones."""
    found: dict[int | str, Any] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ErrorOut,
            "description": (described or {}).get(status, ERROR_DESCRIPTIONS[status]),
        }
        if status == 503:
            entry["headers"] = RETRY_AFTER_HEADER
        found[status] = entry
    return found


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


WebhookSeverity = Literal["all", "breaking"]
SyncInterval = Annotated[float, Field(ge=1, le=604800)]
INTERVAL_HELP = (
    "Seconds between two scheduled syncs of the source (1 to 604800); null: the default "
    "interval (ROSETTA_MONITOR_INTERVAL)."
)
WEBHOOK_SEVERITY_HELP = (
    "Which changes send webhooks: all (default), or only breaking ones (see the severity model)."
)


class SourceCreate(_Strict):
    name: SourceName
    host: Host
    port: int = Field(default=5432, ge=1, le=65535)
    database: Identifier
    username: Identifier
    password: Password | None = None
    publication_name: Identifier = "rosetta_publication"
    replication_name: Identifier | None = Field(
        default=None, description="The replication slot the pipeline uses."
    )
    options: Options = Field(
        default_factory=dict,
        description="More libpq parameters, from an allow-list: sslmode, channel_binding, "
        "require_auth, target_session_attrs, keepalives... (never host, port, hostaddr, user, "
        "dbname, password or files).",
    )
    webhook_severity: WebhookSeverity = Field(default="all", description=WEBHOOK_SEVERITY_HELP)
    sync_interval_seconds: SyncInterval | None = Field(default=None, description=INTERVAL_HELP)


class SourceUpdate(_Strict):
    """Fields to change; an omitted field keeps its value (an omitted password keeps the old)."""

    name: SourceName | None = None
    host: Host | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    database: Identifier | None = None
    username: Identifier | None = None
    password: Password | None = None
    publication_name: Identifier | None = None
    replication_name: SlotOrEmpty | None = Field(
        default=None, description="Send null or '' to clear the slot."
    )
    options: Options | None = None
    webhook_severity: WebhookSeverity | None = Field(
        default=None, description=WEBHOOK_SEVERITY_HELP
    )
    sync_interval_seconds: SyncInterval | None = Field(
        default=None, description=INTERVAL_HELP + " Send null to go back to the default."
    )


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
    webhook_severity: WebhookSeverity = Field(description=WEBHOOK_SEVERITY_HELP)
    table_count: int | None = None
    created_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_error: str | None
    last_sync_by: str | None = Field(
        default=None, description="The worker or process that ran the last sync (host:pid)."
    )
    sync_interval_seconds: float | None = Field(default=None, description=INTERVAL_HELP)
    next_sync_at: datetime | None = Field(
        default=None, description="When the scheduler next queues a sync of the source."
    )


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
    synced_by: str | None = Field(
        default=None, description="The worker or process that ran the sync (host:pid)."
    )
    job_id: int | None = Field(
        default=None, description="The queue's job the sync ran as; null when run in-process."
    )


class SyncFailedOut(ErrorOut):
    """A sync that could not read the source: why, and what it did."""

    sync: SyncSummaryOut


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


SCHEMA_STATE_HELP = (
    "recorded; no_columns: every column was dropped (the latest version records none); "
    "missing: no schema recorded yet, the next sync fills it."
)


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
    row_filter: str | None = Field(
        default=None,
        description="The publication's WHERE clause for the table (PostgreSQL 15+); null: none.",
    )
    schema_state: SchemaState = Field(description=SCHEMA_STATE_HELP)


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
    generated: str | None = Field(default=None, description="STORED or VIRTUAL when generated.")
    carried: bool = Field(
        default=True,
        description="Whether the replication stream (pgoutput) carries the column; true for "
        "schemas recorded before Rosetta read it.",
    )
    not_carried: str | None = Field(
        default=None,
        description="Why the stream does not carry it: generated, virtual or column_list.",
    )
    in_replica_identity: bool | None = Field(
        default=None,
        description="Whether the stream flags the column as part of the key; null: not recorded.",
    )
    type_oid: int | None = None


DETECTED_BY_HELP = (
    "How the version was found: capture (from the source's DDL events, exact), polling (by "
    "comparing the catalog, at most one monitor interval late); null: recorded before Rosetta "
    "kept provenance."
)
LSN_HELP = (
    "The WAL position (X/Y) from which the version's schema applies: capture: the insert LSN at "
    "the DDL statement; polling: the LSN read when the change was found (an upper bound); null: "
    "not recorded."
)
CHANGED_AT_HELP = (
    "When the change happened: capture: its commit time (or its statement's time when the source "
    "does not track commit timestamps); polling: when it was found (an upper bound); null: not "
    "recorded (created_at is all that is known)."
)
PROVENANCE_HELP = (
    "Capture only: {events: [{id, command_tag, object_type, object_identity, statement (null: "
    "withheld), session_user, current_user, application_name, client_addr (null: local socket), "
    "backend_pid, xid, time, lsn}], commit_time_exact}; null otherwise."
)


class ProvenanceFields(BaseModel):
    """How a version was found and from where its schema applies (migration 0011)."""

    detected_by: Literal["capture", "polling"] | None = Field(
        default=None, description=DETECTED_BY_HELP
    )
    lsn: str | None = Field(default=None, description=LSN_HELP)
    changed_at: datetime | None = Field(default=None, description=CHANGED_AT_HELP)
    provenance: dict[str, Any] | None = Field(default=None, description=PROVENANCE_HELP)


class VersionSummaryOut(ProvenanceFields):
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
    row_filter: str | None = Field(
        default=None,
        description="The publication's WHERE clause for the table (PostgreSQL 15+); null: none.",
    )
    schema_state: SchemaState = Field(description=SCHEMA_STATE_HELP)
    columns: list[ColumnOut]


class ChangeOut(BaseModel):
    type: str
    column: str
    before: Any = None
    after: Any = None
    breaking: bool | None = Field(
        default=None,
        description="May break a consumer of the table (the severity model's answer); false for "
        "the changes of a table's first version (a diff from version 0); null when a stored "
        "change cannot be read.",
    )
    carried: bool = Field(
        default=True,
        description="False for a change to a column the stream carries neither before nor after.",
    )


class VersionOut(ProvenanceFields):
    table_id: int
    version: int
    changes_type: str
    created_at: datetime
    columns: list[ColumnOut]
    changes: list[ChangeOut]


class SchemaAsOfOut(VersionOut):
    """The version of a table in force at a time or an LSN."""

    at: datetime | None = Field(default=None, description="The time asked about.")
    asked_lsn: str | None = Field(default=None, description="The LSN asked about, as X/Y.")
    exact: bool = Field(
        description="True when the next version's start is known exactly (captured from the "
        "DDL) or there is no next version; false when it was found by polling, so that it may "
        "have applied up to one monitor interval before its recorded time or LSN."
    )
    exactness: str = Field(description="How exact the answer is, in one sentence.")
    next_version: int | None = Field(
        default=None, description="The version that followed it; null: it is the latest."
    )


class DiffOut(BaseModel):
    table_id: int
    from_version: int = Field(serialization_alias="from")
    to_version: int = Field(serialization_alias="to")
    changes: list[ChangeOut]


class TableRef(_Strict):
    schema_name: Identifier = Field(default="public", alias="schema")
    table: Identifier

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)


class PublicationCreate(_Strict):
    tables: list[TableName | TableRef] = Field(
        default_factory=list,
        max_length=MAX_PAGE,
        description='Tables as "schema.table" (or "table" for public) or {schema, table}; '
        "none makes an empty publication.",
    )


class PublicationTableAdd(_Strict):
    table: TableName | None = Field(
        default=None, description='"schema.table", or "table" for public'
    )
    schema_name: Identifier | None = Field(default=None, alias="schema")

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


class WorkerOut(BaseModel):
    """A worker of the sync queue (``rosetta worker``, or one in a monitor or a server)."""

    name: str = Field(description="host:pid, or 'worker <id>' until it has run a job")
    hostname: str | None = None
    pid: int | None = None
    concurrency: int | None = Field(default=None, description="Syncs it runs at once.")
    last_heartbeat: datetime
    alive: bool = Field(description="Its last heartbeat is within three heartbeat intervals.")
    running: int = Field(description="Sync jobs it runs now.")


class QueueOut(BaseModel):
    """The sync queue's depth."""

    waiting: int = Field(description="Sync jobs due to run that no worker has taken yet.")
    oldest_waiting_seconds: float = Field(
        description="How long the oldest of them has waited (0: none waits)."
    )
    jobs: dict[str, int] = Field(
        description="The sync queue's jobs by status (todo, doing, failed, ...)."
    )


class HealthOut(HealthStatusOut):
    """What a caller with a valid token sees."""

    version: str
    store: str = Field(description="ok, unreachable or not_migrated")
    detail: str | None = None
    monitor: MonitorOut | None = None
    last_heartbeat: MonitorOut | None = Field(
        default=None, description="The latest cycle of any monitor sharing the store."
    )
    workers: list[WorkerOut] | None = Field(
        default=None,
        description="Every worker the sync queue knows, alive or dead (null: the store is not "
        "usable).",
    )
    queue: QueueOut | None = Field(
        default=None, description="The sync queue's depth (null: the store is not usable)."
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
    pending: int = Field(description="Waiting for an attempt, retries included.")
    retrying: int = Field(
        0, description="Of the pending ones, those already refused or unanswered at least once."
    )
    failed: int = Field(description="Given up after every attempt.")


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


class CaptureStatusOut(BaseModel):
    """Real-time capture on a source: Rosetta's flags and what the source's catalogs show."""

    source_id: int
    mode: str = Field(description="realtime (capture installed, on and working) or polling")
    capture_enabled: bool = Field(description="Rosetta installed it and reads its events.")
    capture_installed_at: datetime | None
    capture_last_event_at: datetime | None
    capture_error: str | None
    installed: bool = Field(description="The schema and both event triggers are on the source.")
    triggers_enabled: bool
    may_install: bool = Field(description="The source's role may create event triggers.")
    role: str = Field(description="The role Rosetta connects to the source as.")
    listener_connected: bool
    event_count: int | None = Field(description="null when the events cannot be read")
    events_table_bytes: int | None
    last_event_at: datetime | None


class CaptureActionOut(BaseModel):
    message: str
    changed: bool = Field(
        description="install: false when it was installed already (upgraded in place); "
        "uninstall: false when nothing was installed"
    )
    status: CaptureStatusOut
