"""`rosetta doctor`: the document's troubleshooting list, run for you.

Each check says PASS, WARN or FAIL and, unless it passed, the fix in one line. A check that does
not apply (no replication slot configured, say) is a WARN, never a FAIL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rosetta import sqlfile
from rosetta.catalog.connection import SourceLimits, connect
from rosetta.catalog.reader import catalog_query
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, SourceConnectionError
from rosetta.liveness import alive_window, monitor_alive
from rosetta.queue.state import STALLED_AFTER, queue_workers, waiting_jobs
from rosetta.schema.model import display_name
from rosetta.store import repository
from rosetta.store.repository import Conn, Source
from rosetta.uow import map_source_errors


class CheckStatus(StrEnum):
    """How a check came out (the values are what the CLI, the API and the page show)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
SLOT_WAL_WARN_BYTES = 1024**3
KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    subject: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    checks: list[Check] = field(default_factory=list)

    def add(
        self,
        name: str,
        status: CheckStatus,
        detail: str,
        fix: str | None = None,
        subject: str = "",
    ) -> None:
        self.checks.append(Check(name, status, detail, fix if status != PASS else None, subject))

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in (PASS, WARN, FAIL)}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "counts": self.counts(),
            "checks": [c.to_json() for c in self.checks],
        }


QUERIES = sqlfile.Queries("rosetta.catalog", "doctor.sql")


def ident(name: str) -> str:
    """A name as it would be written in SQL (for showing a fix, never for running it)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return ident(table) if schema == "public" else f"{ident(schema)}.{ident(table)}"


def check_store(diag: Diagnosis, store: Conn) -> bool:
    try:
        from rosetta.store import db

        db.ensure_migrated(store)
    except RosettaError as exc:
        diag.add("store", FAIL, exc.message, "rosetta db upgrade")
        return False
    diag.add("store", PASS, "reachable and migrated")
    return True


def check_monitor(diag: Diagnosis, store: Conn) -> bool:
    """Whether a schema monitor is alive."""
    beat = repository.latest_heartbeat(store)
    fix = "start it: `rosetta monitor` (or `rosetta serve`)"
    if beat is None or beat["last_cycle_started_at"] is None:
        diag.add("monitor", WARN, "no schema monitor has ever run against this store", fix)
        return False
    started = beat["last_cycle_started_at"]
    age = (datetime.now(UTC) - started).total_seconds()
    interval = float(beat["interval_seconds"])
    where = f"{beat['hostname']} pid {beat['pid']}"
    if monitor_alive(started, interval):
        diag.add("monitor", PASS, f"last cycle {age:.0f}s ago on {where} (every {interval:g}s)")
        return True
    diag.add(
        "monitor",
        FAIL,
        f"last cycle {age:.0f}s ago on {where}, more than {alive_window(interval):g}s "
        f"(every {interval:g}s)",
        fix,
    )
    return False


def check_workers(
    diag: Diagnosis, store: Conn, monitor_running: bool, stalled_after: float = STALLED_AFTER
) -> None:
    """The sync queue's workers: one line for the queue, one per worker the queue knows, alive
    (its running syncs) or dead (its last heartbeat more than ``stalled_after`` seconds ago)."""
    workers = queue_workers(store, stalled_after)
    waiting = waiting_jobs(store)
    alive = sum(1 for w in workers if w.alive)
    fix = "start `rosetta worker` or `rosetta monitor`"
    queued = f"{waiting.jobs} sync job{'' if waiting.jobs == 1 else 's'} waiting"
    if waiting.jobs:
        queued += f" (the oldest for {waiting.oldest_seconds:.0f}s)"
    if alive:
        known = f" of {len(workers)} known" if alive < len(workers) else ""
        diag.add(
            "workers", PASS, f"{alive} worker{'' if alive == 1 else 's'} alive{known}; {queued}"
        )
    elif waiting.jobs:
        diag.add("workers", WARN, f"no worker is alive and {queued}: nothing runs them", fix)
    elif monitor_running:
        diag.add("workers", PASS, "no worker is alive; the schema monitor syncs the sources")
    else:
        diag.add("workers", WARN, "no worker is alive: no source is synced on schedule", fix)
    for w in workers:
        where = f"{w.label} on {w.hostname} pid {w.pid}" if w.hostname else w.label
        beat = f"last heartbeat {w.heartbeat_age:.0f}s ago"
        if w.alive:
            slots = f" of {w.concurrency}" if w.concurrency is not None else ""
            diag.add("worker", PASS, f"{where}: {w.running}{slots} syncs running; {beat}")
        else:
            diag.add(
                "worker",
                WARN,
                f"{where} is dead: {beat}, more than {stalled_after:g}s; its running syncs go "
                "back to the queue",
                "restart it, or leave it: the next worker to start forgets it",
            )


def diagnose(
    store: Conn,
    box: SecretBox,
    source: Source | None = None,
    table: str | None = None,
    *,
    limits: SourceLimits | None = None,
    diag: Diagnosis | None = None,
    stalled_after: float = STALLED_AFTER,
) -> Diagnosis:
    """Run every check: the store, the monitor, the sync queue's workers, and each source (or
    one source / table). ``stalled_after``: seconds without a heartbeat after which a worker is
    dead (``QueueOptions.stalled_after``)."""
    diag = diag or Diagnosis()
    if not check_store(diag, store):
        return diag
    check_workers(diag, store, check_monitor(diag, store), stalled_after)
    sources = [source] if source else repository.list_sources(store)
    for src in sources:
        check_source(diag, store, box, src, table, limits=limits or SourceLimits())
    return diag


def check_source(
    diag: Diagnosis,
    store: Conn,
    box: SecretBox,
    source: Source,
    table: str | None,
    *,
    limits: SourceLimits,
) -> None:
    from rosetta.sync import connection_params

    who = source.name
    try:
        params = connection_params(source, box)
        conn = connect(params, limits)
    except RosettaError as exc:
        fix = (
            f"re-enter the password: `rosetta source update {source.name} --password-stdin`"
            if "password" in exc.message or "decrypt" in exc.message
            else f"check that {source.host}:{source.port} is reachable from here"
        )
        diag.add("connection", FAIL, exc.message, fix, who)
        return
    try:
        with map_source_errors(SourceConnectionError, "the source failed"), conn:
            diag.add(
                "connection",
                PASS,
                f"connected to {source.address} as {source.username}",
                subject=who,
            )
            state = conn.execute(
                QUERIES["source_health"],
                {
                    "publication": source.publication_name,
                    "slot": source.replication_name,
                },
            ).fetchone()
            assert state is not None
            wal_level, username, pub_exists, slot_exists, active, plugin, retained = state
            _check_wal(diag, who, wal_level)
            _check_publication(diag, who, source, pub_exists)
            _check_slot(diag, who, source, slot_exists, active, plugin, retained)
            _check_capture(diag, who, source, conn)
            _check_tables(diag, store, conn, source, table, username)
    except SourceConnectionError as exc:
        diag.add(
            "connection",
            FAIL,
            exc.message,
            "check the source's logs",
            who,
        )


def _check_wal(diag: Diagnosis, who: str, wal_level: str) -> None:
    if wal_level == "logical":
        diag.add("wal_level", PASS, "wal_level = logical", subject=who)
    else:
        diag.add(
            "wal_level",
            FAIL,
            f"wal_level = {wal_level}: logical replication needs logical",
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
            who,
        )


def _check_publication(diag: Diagnosis, who: str, source: Source, exists: bool) -> None:
    pub = source.publication_name
    if not exists:
        diag.add(
            "publication",
            FAIL,
            f"publication {pub!r} does not exist",
            f"CREATE PUBLICATION {ident(pub)} FOR TABLE <tables>;",
            who,
        )
    elif not source.is_publication_enabled:
        diag.add(
            "publication",
            WARN,
            f"publication {pub!r} exists but sources.is_publication_enabled is false",
            f"rosetta refresh {source.name}",
            who,
        )
    else:
        diag.add(
            "publication",
            PASS,
            f"publication {pub!r} exists; is_publication_enabled = true",
            subject=who,
        )


def _check_slot(
    diag: Diagnosis,
    who: str,
    source: Source,
    exists: bool,
    active: bool | None,
    plugin: str | None,
    retained: int | None,
) -> None:
    slot = source.replication_name
    if not slot:
        diag.add(
            "replication slot",
            WARN,
            "no replication slot configured for this source",
            f"rosetta source update {source.name} --slot <slot>",
            who,
        )
        return
    if not exists:
        diag.add(
            "replication slot",
            FAIL,
            f"replication slot {slot!r} does not exist",
            f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');",
            who,
        )
        return
    held = f"{(retained or 0) / 1024**2:.1f} MiB of WAL retained"
    if not active:
        diag.add(
            "replication slot",
            WARN,
            f"replication slot {slot!r} ({plugin}) is not active: no consumer is reading "
            f"it; {held}",
            "start the pipeline that reads it, or drop the slot",
            who,
        )
    elif (retained or 0) > SLOT_WAL_WARN_BYTES:
        diag.add(
            "replication slot",
            WARN,
            f"replication slot {slot!r} is active; {held}",
            "check that the consumer keeps up",
            who,
        )
    else:
        diag.add(
            "replication slot", PASS, f"replication slot {slot!r} is active; {held}", subject=who
        )


def _check_capture(diag: Diagnosis, who: str, source: Source, conn: Any) -> None:
    """Real-time capture: on a source with capture on, its triggers, listener and events (a
    round trip or two); on one without, a line from the store alone."""
    install = f"rosetta capture install {source.name}"
    if not source.capture_enabled:
        diag.add(
            "capture",
            PASS,
            f"on polling: schema changes are found at each monitor cycle; `{install}` records "
            "them as they commit (needs a superuser on the source)",
            subject=who,
        )
        return
    from rosetta.capture import installer

    status = installer.status(conn)
    meanwhile = "the source is on polling meanwhile"
    if not status.installed:
        missing = "schema rosetta_capture" if not status.schema_exists else "event triggers"
        diag.add(
            "capture",
            FAIL,
            f"capture is on but its {missing} is missing on the source: {meanwhile}",
            f"re-run `{install}`",
            who,
        )
        return
    if not status.triggers_enabled:
        diag.add(
            "capture",
            FAIL,
            f"capture's event triggers are disabled on the source: {meanwhile}",
            f"re-run `{install}`",
            who,
        )
        return
    diag.add("capture", PASS, "real-time capture installed; event triggers enabled", subject=who)
    if source.capture_error:
        diag.add(
            "capture",
            WARN,
            f"the last read of capture's events failed: {source.capture_error}",
            f"check the source, then re-run `{install}` if it persists",
            who,
        )
    if status.listener_connected:
        diag.add("capture listener", PASS, "a capture listener is connected", subject=who)
    else:
        diag.add(
            "capture listener",
            WARN,
            "no capture listener is connected: changes are found at the next poll",
            "start `rosetta monitor` or `rosetta serve`",
            who,
        )
    if status.event_count is not None:
        last = status.last_event_at
        age = (
            f"last event {(datetime.now(UTC) - last).total_seconds():.0f}s ago"
            if last is not None
            else "no event yet"
        )
        size = (status.table_bytes or 0) / 1024**2
        diag.add(
            "capture events",
            PASS,
            f"{status.event_count} events ({size:.1f} MiB); {age}",
            subject=who,
        )


def _check_tables(
    diag: Diagnosis, store: Conn, conn: Any, source: Source, table: str | None, username: str
) -> None:
    rows = repository.list_tables(store, source.id)
    if table is not None:
        from rosetta.errors import TableNotFoundError

        try:
            found = repository.find_table(store, source.id, table)
            wanted = [(found["schema_name"], found["table_name"])]
        except TableNotFoundError:
            schema_name, _, name = table.rpartition(".")
            wanted = [(schema_name or "public", name)]
    else:
        tracked = {(r["schema_name"], r["table_name"]) for r in rows if r["status"] != "removed"}
        published = {
            (r[0], r[1])
            for r in conn.execute(
                catalog_query(conn, "publication_table_names", QUERIES),
                {"publication": source.publication_name},
            )
        }
        wanted = sorted(tracked | published)
    by_key = {(r["schema_name"], r["table_name"]): r for r in rows}
    if not wanted:
        return
    pub = ident(source.publication_name)
    cur = conn.execute(
        catalog_query(conn, "table_health", QUERIES),
        {
            "schemas": [w[0] for w in wanted],
            "tables": [w[1] for w in wanted],
            "publication": source.publication_name,
        },
    )
    for schema_name, name, exists, kind, in_pub, columns, can_select, ident_kind, has_pk in cur:
        shown = display_name(schema_name, name)
        sql_name = qualified(schema_name, name)
        subject = f"{source.name}/{shown}"
        if not exists:
            diag.add(
                "table exists",
                FAIL,
                f"{shown} does not exist on the source (pg_tables)",
                f"create it, or remove it: ALTER PUBLICATION {pub} DROP TABLE {sql_name};",
                subject,
            )
            continue
        diag.add("table exists", PASS, f"{shown} exists", subject=subject)
        kind_name = KINDS.get(kind, kind)
        if kind in ("r", "p"):
            diag.add(
                "table kind",
                PASS,
                f"{shown} is an ordinary {kind_name}"
                if kind == "r"
                else f"{shown} is a {kind_name}",
                subject=subject,
            )
        else:
            diag.add(
                "table kind",
                FAIL,
                f"{shown} is a {kind_name}: publications carry tables",
                "publish the underlying table instead",
                subject,
            )
        if in_pub:
            diag.add(
                "in publication",
                PASS,
                f"{shown} is in publication {source.publication_name!r}",
                subject=subject,
            )
        else:
            diag.add(
                "in publication",
                FAIL,
                f"{shown} is not in the publication",
                f"ALTER PUBLICATION {pub} ADD TABLE {sql_name};",
                subject,
            )
        if columns:
            diag.add("columns", PASS, f"{shown} has {columns} columns", subject=subject)
        else:
            diag.add(
                "columns",
                FAIL,
                f"{shown} has no columns",
                f"ALTER TABLE {sql_name} ADD COLUMN ...; (check it with \\d {sql_name})",
                subject,
            )
        if can_select:
            diag.add(
                "select privilege", PASS, f"{username} may SELECT from {shown}", subject=subject
            )
        else:
            diag.add(
                "select privilege",
                FAIL,
                f"{username} lacks SELECT on {shown}: the pipeline's initial copy fails",
                f"GRANT SELECT ON TABLE {sql_name} TO {ident(username)};",
                subject,
            )
        if ident_kind in ("f", "i") or (ident_kind == "d" and has_pk):
            how = {"f": "FULL", "i": "USING INDEX", "d": "DEFAULT (primary key)"}[ident_kind]
            diag.add("replica identity", PASS, f"replica identity {how}", subject=subject)
        else:
            why = "NOTHING" if ident_kind == "n" else "DEFAULT without a primary key"
            diag.add(
                "replica identity",
                FAIL,
                f"replica identity {why}: UPDATE and DELETE cannot replicate",
                f"ALTER TABLE {sql_name} ADD PRIMARY KEY (...); or ALTER TABLE {sql_name} "
                "REPLICA IDENTITY FULL;",
                subject,
            )
        stored = by_key.get((schema_name, name))
        if stored is None:
            diag.add(
                "stored schema",
                FAIL,
                f"{shown} is not tracked by Rosetta",
                f"rosetta refresh {source.name}",
                subject,
            )
        elif stored["status"] == "error":
            diag.add(
                "stored schema",
                FAIL,
                f"the last sync of {shown} failed: {stored['last_error']}",
                f"rosetta refresh {source.name}",
                subject,
            )
        elif not stored["column_count"]:
            diag.add(
                "stored schema",
                FAIL,
                f"{shown} has no stored schema",
                f"rosetta refresh {source.name}",
                subject,
            )
        else:
            diag.add(
                "stored schema",
                PASS,
                f"version {stored['version']} with {stored['column_count']} columns",
                subject=subject,
            )
