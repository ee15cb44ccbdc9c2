"""Benchmark real-time capture: COMMIT of a DDL to its version in the store, and trigger cost.

From a DDL statement's COMMIT to its version being visible in the store, and the event trigger's
cost on one ALTER TABLE.

Run from the project root:

    .venv/bin/python benchmarks/bench_capture.py                  # 2,000 and 10,000 tables
    .venv/bin/python benchmarks/bench_capture.py --tables 2000 --ddl 50   # a quick look

It starts one throwaway PostgreSQL (stopped and removed on exit) and, for each size N, builds a
source database of N published tables and a store database, registers the source (initial sync),
times ALTER TABLE ADD/DROP COLUMN pairs with and without the capture installed, and installs the
capture. Then it starts one `rosetta monitor --interval 3600` per size (so only the real-time
path records versions), waits for their listeners, and runs --ddl DDL statements per size, each
on another table, one at a time, each its own transaction, the sizes interleaved. After each
COMMIT it polls the store every --poll-ms until the new version is visible. It prints p50/p95/max
of COMMIT -> visible, checks every version's provenance, times the same woken sync in-process by
phase, and prints PASS/FAIL per target (exit code 1 when one fails). JSON goes to
benchmarks/results/capture_latest.json. See benchmarks/README.md ("Real-time capture").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rosetta import services, sources
from rosetta.capture import LISTENER_APPLICATION_NAME
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import db, repository

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "capture_latest.json"
PUBLICATION = "rosetta_publication"
SECRET_KEY = "rosetta-benchmark-secret-key"

# Targets (issue 11).
P95_TARGET_MS = 250.0  # at 2,000 tables
MAX_TARGET_MS = 1000.0  # at 2,000 tables
P95_GROWTH_MAX = 1.20  # p95 at 10,000 tables within 20% of p95 at 2,000
TRIGGER_COST_TARGET_MS = 5.0  # the event trigger's cost on one ALTER TABLE
BASE_SIZE, LARGE_SIZE = 2000, 10000

# autovacuum off as in bench_sync (no random vacuum during timings); commit timestamps on, so
# captured versions carry their exact commit time; locks for the batched DDL.
SERVER_SETTINGS = {
    "autovacuum": "off",
    "track_commit_timestamp": "on",
    "max_locks_per_transaction": "256",
}
DDL_TABLES_PER_TRANSACTION = 500
VISIBLE_TIMEOUT = 15.0  # seconds to wait for one version before calling it missing
LISTENER_TIMEOUT = 60.0
WARMUP_DDL = 3


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table_name(i: int) -> str:
    return f"t_{i:06d}"


# --- building the databases ----------------------------------------------------------------

# Every table: id, then columns the DDL mix works on (qty for ALTER TYPE, note for DROP COLUMN).
TABLE_BODY = (
    "id bigint PRIMARY KEY, qty integer NOT NULL DEFAULT 0, note text, price numeric(10,2), "
    "created_at timestamptz NOT NULL DEFAULT now()"
)


def recreate_database(server: PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_database(server: PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def create_source(server: PostgresServer, dbname: str, n_tables: int) -> float:
    """N tables in an explicit-list publication (not FOR ALL TABLES, which would also publish
    the capture's own events table), built DDL_TABLES_PER_TRANSACTION at a time: each batch's
    CREATE TABLEs and its ALTER PUBLICATION ... ADD TABLE in one transaction."""
    started = time.perf_counter()
    recreate_database(server, dbname)
    with psycopg.connect(server.url(dbname), autocommit=True) as conn:
        conn.execute(f"CREATE PUBLICATION {PUBLICATION}".encode())
        for start in range(0, n_tables, DDL_TABLES_PER_TRANSACTION):
            stop = min(start + DDL_TABLES_PER_TRANSACTION, n_tables)
            names = [table_name(i) for i in range(start, stop)]
            batch = "".join(f"CREATE TABLE {t} ({TABLE_BODY});\n" for t in names)
            batch += f"ALTER PUBLICATION {PUBLICATION} ADD TABLE {', '.join(names)};\n"
            conn.execute(batch.encode())  # several statements, one implicit transaction
        conn.execute(
            b"ANALYZE pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_constraint, "
            b"pg_catalog.pg_attrdef, pg_catalog.pg_namespace, pg_catalog.pg_type, "
            b"pg_catalog.pg_depend, pg_catalog.pg_publication_rel"
        )
    return time.perf_counter() - started


# --- the monitor subprocess ----------------------------------------------------------------


def rosetta_script() -> Path:
    script = Path(sys.executable).parent / "rosetta"
    if not script.exists():
        raise SystemExit(f"no rosetta console script beside {sys.executable}: pip install -e .")
    return script


def monitor_env(store_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=SECRET_KEY,
        ROSETTA_LOG_FILE=str(tmp / "logs" / "rosetta.log"),
        ROSETTA_DATA_DIR=str(tmp / "data"),
    )
    return env


@contextlib.contextmanager
def running_monitor(
    store_url: str, tmp: Path, interval: float = 3600.0
) -> Iterator[subprocess.Popen[bytes]]:
    """`rosetta monitor --interval 3600`: one cycle at start, then only the listener records
    versions. Stopped with SIGTERM (as the CLI handles it), SIGKILL after 20 s."""
    out = open(tmp / "monitor.out", "wb")
    proc = subprocess.Popen(
        [str(rosetta_script()), "monitor", "--interval", f"{interval:g}"],
        env=monitor_env(store_url, tmp),
        cwd=tmp,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                log("monitor did not stop in 20 s after SIGTERM: killing it")
                proc.kill()
                proc.wait(10)
        out.close()


def monitor_output(tmp: Path, lines: int = 40) -> str:
    chunks = []
    for path in (tmp / "monitor.out", tmp / "logs" / "rosetta.log"):
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace").splitlines()
            chunks.append(f"--- {path.name} (last {lines} lines)\n" + "\n".join(text[-lines:]))
    return "\n".join(chunks)


LISTENER_SYNC_RE = re.compile(r"Captured DDL on source \S+ synced in (\d+) ms")


def listener_sync_ms(tmp: Path) -> list[float]:
    try:
        text = (tmp / "logs" / "rosetta.log").read_text(errors="replace")
    except OSError:
        return []
    return [float(m.group(1)) for m in LISTENER_SYNC_RE.finditer(text)]


def wait_for_listener(
    source_url: str, proc: subprocess.Popen[bytes], tmp: Path, timeout: float
) -> float:
    started = time.perf_counter()
    with psycopg.connect(source_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                b"SELECT count(*) FROM pg_stat_activity"
                b" WHERE application_name = %s AND datname = current_database()",
                (LISTENER_APPLICATION_NAME,),
            ).fetchone()
            if row and row[0] > 0:
                return time.perf_counter() - started
            if proc.poll() is not None:
                raise RuntimeError(
                    f"rosetta monitor exited ({proc.returncode}) before its listener connected\n"
                    + monitor_output(tmp)
                )
            if time.perf_counter() - started > timeout:
                raise RuntimeError(
                    f"no '{LISTENER_APPLICATION_NAME}' session on the source after {timeout:.0f}s"
                    " (has the listener landed?)\n" + monitor_output(tmp)
                )
            time.sleep(0.1)


def wait_for_first_cycle(proc: subprocess.Popen[bytes], tmp: Path, timeout: float) -> float:
    """Wait for the monitor's first cycle (its worker syncing the sources due at start: a full
    read of the publication), so that no timed DDL waits behind it."""
    started = time.perf_counter()
    while "Schema monitoring cycle completed" not in monitor_output(tmp, lines=1_000_000):
        if proc.poll() is not None:
            raise RuntimeError(
                f"rosetta monitor exited ({proc.returncode}) before its first cycle\n"
                + monitor_output(tmp)
            )
        if time.perf_counter() - started > timeout:
            raise RuntimeError(
                f"no first monitoring cycle after {timeout:.0f}s\n" + monitor_output(tmp)
            )
        time.sleep(0.1)
    return time.perf_counter() - started


# --- the notification side-channel ---------------------------------------------------------


class NotifyWatch:
    """A LISTEN connection of the benchmark's own on the source (not the listener's
    application_name): when each rosetta_capture notification reached a client, to split
    COMMIT -> visible into delivery and the rest."""

    def __init__(self, source_url: str) -> None:
        self.conn = psycopg.connect(
            source_url, autocommit=True, application_name="rosetta bench notify watch"
        )
        self.conn.execute(b"LISTEN rosetta_capture")
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for notify in self.conn.notifies(timeout=0.2):
                self.received.append((time.perf_counter(), notify.payload))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


# --- the measurements ----------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def trigger_pairs(source_url: str, table: str, pairs: int, warmup: int) -> dict[str, list[float]]:
    """Time ALTER TABLE ADD COLUMN / DROP COLUMN pairs (each its own transaction, autocommit:
    from sending to COMMIT returning) on one table."""
    add_times: list[float] = []
    drop_times: list[float] = []
    with psycopg.connect(source_url, autocommit=True) as conn:
        for i in range(warmup + pairs):
            add = f"ALTER TABLE {table} ADD COLUMN bench_x_{i} integer".encode()
            drop = f"ALTER TABLE {table} DROP COLUMN bench_x_{i}".encode()
            t0 = time.perf_counter()
            conn.execute(add)
            t1 = time.perf_counter()
            conn.execute(drop)
            t2 = time.perf_counter()
            if i >= warmup:
                add_times.append((t1 - t0) * 1000)
                drop_times.append((t2 - t1) * 1000)
    return {"add_ms": add_times, "drop_ms": drop_times}


def ddl_for(i: int, table: str) -> str:
    """The mix: ADD COLUMN, ALTER COLUMN TYPE, DROP COLUMN in turn."""
    kind = i % 3
    if kind == 0:
        return f"ALTER TABLE {table} ADD COLUMN c_{i} int"
    if kind == 1:
        return f"ALTER TABLE {table} ALTER COLUMN qty TYPE bigint"
    return f"ALTER TABLE {table} DROP COLUMN note"


HISTORY_POLL = b"""
SELECT version_schema FROM history_schema_evolution
WHERE table_metadata_list_id = %s AND version_schema > %s
LIMIT 1
"""


@dataclass
class DdlResult:
    table: str
    statement: str
    base_version: int
    commit_wall: float  # time.time() when COMMIT returned
    commit_perf: float
    ddl_ms: float
    latency_ms: float | None = None
    polls: int = 0
    checks: dict[str, Any] = field(default_factory=dict)


def current_versions(store: psycopg.Connection[Any], source_id: int) -> dict[str, tuple[int, int]]:
    """table name -> (tracking id, latest version)."""
    rows = store.execute(
        b"""SELECT t.table_name, t.id, coalesce(max(h.version_schema), 0)
            FROM table_metadata_list t
            LEFT JOIN history_schema_evolution h ON h.table_metadata_list_id = t.id
            WHERE t.source_id = %s AND t.status = 'tracked'
            GROUP BY t.table_name, t.id""",
        (source_id,),
    ).fetchall()
    return {str(name): (int(tid), int(v)) for name, tid, v in rows}


def run_ddl(
    source_conn: psycopg.Connection[Any],
    poller: psycopg.Connection[Any],
    table: str,
    ids: dict[str, tuple[int, int]],
    i: int,
    poll_s: float,
) -> DdlResult:
    table_id, base = ids[table]
    statement = ddl_for(i, table)
    t0 = time.perf_counter()
    source_conn.execute(statement.encode())  # autocommit: returns after COMMIT
    commit_perf = time.perf_counter()
    result = DdlResult(table, statement, base, time.time(), commit_perf, (commit_perf - t0) * 1000)
    deadline = commit_perf + VISIBLE_TIMEOUT
    while True:
        result.polls += 1
        if poller.execute(HISTORY_POLL, (table_id, base)).fetchone() is not None:
            result.latency_ms = (time.perf_counter() - commit_perf) * 1000
            break
        now = time.perf_counter()
        if now > deadline:
            break
        time.sleep(max(0.0, poll_s - (time.perf_counter() - now)))
    return result


def check_versions(
    store: psycopg.Connection[Any], results: list[DdlResult], ids: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """Every DDL left exactly one new version, found by capture, with an LSN and its statement
    among provenance's events."""
    failures: list[str] = []
    for r in results:
        table_id, _ = ids[r.table]
        rows = store.execute(
            b"""SELECT version_schema, detected_by, lsn::text, changed_at, provenance
                FROM history_schema_evolution
                WHERE table_metadata_list_id = %s AND version_schema > %s
                ORDER BY version_schema""",
            (table_id, r.base_version),
        ).fetchall()
        problems = []
        if len(rows) != 1:
            problems.append(f"{len(rows)} new versions")
        if rows:
            version, detected_by, lsn, changed_at, prov = rows[0]
            events = (prov or {}).get("events") if isinstance(prov, dict) else None
            statements = [e.get("statement") for e in events or [] if isinstance(e, dict)]
            if version != r.base_version + 1:
                problems.append(f"version {version}, expected {r.base_version + 1}")
            if detected_by != "capture":
                problems.append(f"detected_by={detected_by!r}")
            if lsn is None:
                problems.append("lsn is null")
            if not events:
                problems.append("provenance->'events' empty")
            elif not any(s and r.statement in s for s in statements):
                problems.append(f"statement not in events: {statements!r}")
            r.checks = {
                "version": version,
                "detected_by": detected_by,
                "lsn": lsn,
                "changed_at": changed_at.isoformat() if changed_at else None,
                "events": len(events or []),
            }
        if problems:
            failures.append(f"{r.table}: " + "; ".join(problems))
    return {"checked": len(results), "ok": len(results) - len(failures), "failures": failures}


def breakdown(results: list[DdlResult], notified: list[tuple[float, str]]) -> dict[str, Any]:
    """Split COMMIT -> visible at the notification: COMMIT -> the notification reaching a
    client (the benchmark's own LISTEN connection on the source; the listener's is another
    session of the same server) and notification -> visible (the listener waking, the woken
    sync, the store's commit, and up to one poll interval)."""
    notify_ms: list[float] = []
    after_ms: list[float] = []
    arrivals = sorted(t for t, _ in notified)
    j = 0
    for r in results:
        sent = r.commit_perf - r.ddl_ms / 1000
        while j < len(arrivals) and arrivals[j] < sent:
            j += 1
        if j >= len(arrivals):
            break
        arrival = arrivals[j]
        j += 1
        if r.latency_ms is None:
            continue
        notify_ms.append((arrival - r.commit_perf) * 1000)
        after_ms.append(r.latency_ms - (arrival - r.commit_perf) * 1000)
    return {
        "matched": len(notify_ms),
        "commit_to_notification_ms": spread(notify_ms),
        "notification_to_visible_ms": spread(after_ms),
    }


def spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(pct(values, 95), 2),
        "max": round(max(values), 2),
    }


# --- where a woken sync spends its time (in-process, after the monitor stopped) ------------

# What is timed inside each sync: (module path, attribute, phase). Missing ones are skipped.
PROFILED = (
    ("rosetta.catalog.source_reader", "SourceReader.__init__", "source connect"),
    ("rosetta.catalog.source_reader", "SourceReader.begin_snapshot", "source BEGIN snapshot"),
    ("rosetta.catalog.source_reader", "SourceReader.events", "source events read"),
    ("rosetta.catalog.source_reader", "SourceReader.publication", "source catalog (fingerprints)"),
    ("rosetta.catalog.source_reader", "SourceReader.columns", "source columns read"),
    ("rosetta.catalog.source_reader", "SourceReader.end_snapshot", "source end snapshot"),
    ("rosetta.catalog.source_reader", "SourceReader.close", "source close"),
    ("rosetta.sync", "_tracked", "store: tracking rows read"),
    ("rosetta.sync", "_details", "store: stored schemas read"),
    ("rosetta.sync", "apply", "store writes (apply)"),
)


@contextlib.contextmanager
def profiling() -> Iterator[dict[str, float]]:
    """Wrap PROFILED so each call adds its seconds to the yielded dict (reset by the caller)."""
    import importlib

    spent: dict[str, float] = {}
    undo: list[tuple[Any, str, Any]] = []
    for module_name, dotted, phase in PROFILED:
        owner: Any = importlib.import_module(module_name)
        *path, attr = dotted.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        original = getattr(owner, attr, None) if owner is not None else None
        if original is None:
            continue

        def wrapper(*a: Any, _f: Any = original, _p: str = phase, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                spent[_p] = spent.get(_p, 0.0) + time.perf_counter() - t0

        setattr(owner, attr, wrapper)
        undo.append((owner, attr, original))
    try:
        yield spent
    finally:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)


def profile_woken_syncs(sizes: list[Size], box: SecretBox, count: int) -> dict[int, dict[str, Any]]:
    """Per size, ``count`` times: one ALTER TABLE ADD COLUMN on another table (halfway between
    the measured ones), then one in-process sync as the listener runs it (woken), timed as a
    whole and by phase. The sizes are interleaved, as in the measurement."""
    import inspect

    from rosetta.sync import sync_source

    kwargs: dict[str, Any] = (
        {"woken": True} if "woken" in inspect.signature(sync_source).parameters else {}
    )
    totals: dict[int, list[float]] = {size.n: [] for size in sizes}
    phases: dict[int, dict[str, list[float]]] = {size.n: {} for size in sizes}
    with contextlib.ExitStack() as stack:
        spent = stack.enter_context(profiling())
        opened = []
        for size in sizes:
            store = stack.enter_context(db.connect(size.store_url))
            src = stack.enter_context(psycopg.connect(size.source_url, autocommit=True))
            source = repository.source_by_id(store, size.source_id)
            store.rollback()
            tables = [
                table_name(int((i + 0.5) * size.stride))
                for i in range(min(count, len(size.targets)))
            ]
            opened.append((size, store, src, source, tables))
        for i in range(count):
            order = opened if i % 2 == 0 else list(reversed(opened))
            for size, store, src, source, tables in order:
                if i >= len(tables):
                    continue
                src.execute(f"ALTER TABLE {tables[i]} ADD COLUMN p_{i} int".encode())
                spent.clear()
                t0 = time.perf_counter()
                summary = sync_source(store, source, box, **kwargs)
                total = time.perf_counter() - t0
                if summary.status != "ok" or len(summary.changed) != 1:
                    raise RuntimeError(f"profiled sync of {tables[i]}: {summary.to_json()}")
                totals[size.n].append(total * 1000)
                mine = phases[size.n]
                for phase, seconds in spent.items():
                    mine.setdefault(phase, []).append(seconds * 1000)
                rest = total - sum(spent.values())
                mine.setdefault("store: lock, other reads, commit, rest", []).append(rest * 1000)
    return {
        n: {
            "syncs": len(totals[n]),
            "woken": bool(kwargs),
            "total_ms": spread(totals[n]),
            "phases_median_ms": {k: round(statistics.median(v), 2) for k, v in phases[n].items()},
        }
        for n in totals
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class Size:
    """One source size under test: its databases, and what the measurement collects."""

    n: int
    src_db: str
    store_db: str
    source_url: str
    store_url: str
    source_id: int
    out: dict[str, Any]
    targets: list[str]
    warmups: list[str]
    stride: float
    ids: dict[str, tuple[int, int]] = field(default_factory=dict)
    results: list[DdlResult] = field(default_factory=list)
    notified: list[tuple[float, str]] = field(default_factory=list)


def prepare(
    server: PostgresServer, box: SecretBox, n_tables: int, args: argparse.Namespace
) -> Size:
    """Build the source and the store, register the source (initial sync), time the trigger's
    cost, and leave the capture installed."""
    src_db, store_db = f"capture_src_{n_tables}", f"capture_store_{n_tables}"
    out: dict[str, Any] = {"tables": n_tables}
    limits = SourceLimits(connect_timeout=10)
    log(f"[{n_tables}] creating {n_tables:,} tables ...")
    out["setup_seconds"] = round(create_source(server, src_db, n_tables), 2)
    log(f"[{n_tables}] source ready in {out['setup_seconds']:.1f}s")
    source_url = server.url(src_db)
    recreate_database(server, store_db)
    store_url = server.url(store_db)
    db.upgrade(store_url)
    started = time.perf_counter()
    with db.connect(store_url) as store:
        registered = services.register_source(
            store,
            box,
            limits,
            sources.SourceInput("bench", sources.parse_dsn(source_url), PUBLICATION, None),
        )
    source = registered.source
    added = len(registered.sync.added) if registered.sync else 0
    if added != n_tables:
        raise RuntimeError(f"initial sync added {added} of {n_tables} tables")
    out["register_and_initial_sync_seconds"] = round(time.perf_counter() - started, 2)
    log(f"[{n_tables}] registered, initial sync in {out['register_and_initial_sync_seconds']}s")
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute(b"ANALYZE table_metadata_list, history_schema_evolution")

    # The event trigger's cost on one ALTER TABLE: blocks without / with / without / with, on a
    # table outside the measured ones, before any monitor runs (no sync competes).
    cost_table = table_name(n_tables - 1)
    per_block = max(1, args.trigger_pairs // 2)
    blocks: dict[str, dict[str, list[float]]] = {
        "without": {"add_ms": [], "drop_ms": []},
        "with": {"add_ms": [], "drop_ms": []},
    }
    installed = False
    for mode in ("without", "with", "without", "with"):
        want = mode == "with"
        with db.connect(store_url) as store:
            source_now = repository.source_by_id(store, source.id)
            if want and not installed:
                services.install_capture(store, box, limits, source_now)
            elif not want and installed:
                services.uninstall_capture(store, box, limits, source_now)
        installed = want
        timings = trigger_pairs(source_url, cost_table, per_block, warmup=10)
        for key, values in timings.items():
            blocks[mode][key].extend(values)
    cost: dict[str, Any] = {"table": cost_table, "pairs_per_mode": 2 * per_block}
    for mode, timings in blocks.items():
        every = timings["add_ms"] + timings["drop_ms"]
        cost[mode] = {
            "median_ms": round(median(every), 3),
            "add_median_ms": round(median(timings["add_ms"]), 3),
            "drop_median_ms": round(median(timings["drop_ms"]), 3),
            "p95_ms": round(pct(every, 95), 3),
        }
    cost["added_ms"] = round(cost["with"]["median_ms"] - cost["without"]["median_ms"], 3)
    out["trigger_cost"] = cost
    log(
        f"[{n_tables}] ALTER TABLE median {cost['without']['median_ms']:.2f} ms without "
        f"capture, {cost['with']['median_ms']:.2f} ms with: +{cost['added_ms']:.2f} ms"
    )
    if not installed:
        raise AssertionError("the capture must be installed from here on")

    n_ddl = min(args.ddl, n_tables - 1 - WARMUP_DDL)
    out["ddl"] = n_ddl
    stride = (n_tables - 1 - WARMUP_DDL) / n_ddl
    return Size(
        n=n_tables,
        src_db=src_db,
        store_db=store_db,
        source_url=source_url,
        store_url=store_url,
        source_id=source.id,
        out=out,
        targets=[table_name(int(i * stride)) for i in range(n_ddl)],
        warmups=[table_name(n_tables - 2 - k) for k in range(WARMUP_DDL)],
        stride=stride,
    )


def measure(sizes: list[Size], args: argparse.Namespace) -> None:
    """One `rosetta monitor` per size (each with its own store), all running at once; the DDL
    statements of the sizes interleaved (round i: one statement on each size, the order
    alternating), so that every size meets the same load on the machine."""
    poll_s = args.poll_ms / 1e3
    with contextlib.ExitStack() as stack:
        running = []
        for size in sizes:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rosetta-bench-")))
            # Runs once the monitor has stopped (flushing its log), before its dir is removed.
            stack.callback(collect_monitor_log, size, tmp)
            proc = stack.enter_context(running_monitor(size.store_url, tmp, args.monitor_interval))
            running.append((size, tmp, proc))
        for size, tmp, proc in running:
            waited = wait_for_listener(size.source_url, proc, tmp, LISTENER_TIMEOUT)
            size.out["listener_connected_after_seconds"] = round(waited, 2)
            log(f"[{size.n}] listener connected after {waited:.1f}s")
            cycle = wait_for_first_cycle(proc, tmp, LISTENER_TIMEOUT)
            log(f"[{size.n}] the monitor's first cycle done {cycle:.1f}s later")
        conns = {}
        for size, tmp, _proc in running:
            watch = NotifyWatch(size.source_url)
            stack.callback(watch.close)
            size.notified = watch.received
            source_conn = stack.enter_context(psycopg.connect(size.source_url, autocommit=True))
            poller = stack.enter_context(psycopg.connect(size.store_url, autocommit=True))
            conns[size.n] = (source_conn, poller)
            size.ids = current_versions(poller, size.source_id)
            # Warm-ups (not timed): the pipeline works, caches are warm, and the monitor's first
            # cycle is over before the timings start.
            for k, table in enumerate(size.warmups):
                r = run_ddl(source_conn, poller, table, size.ids, 1000 + k, poll_s)
                if r.latency_ms is None:
                    raise RuntimeError(
                        f"warm-up DDL on {table} not visible in the store after "
                        f"{VISIBLE_TIMEOUT:.0f}s: {r.statement}\n" + monitor_output(tmp)
                    )
                log(f"[{size.n}] warm-up {table}: {r.latency_ms:.1f} ms")
        time.sleep(1.0)
        rounds = max(len(size.targets) for size in sizes)
        log(
            f"{rounds} DDL statements on each of {', '.join(f'{s.n:,}' for s in sizes)} tables, "
            "one at a time, interleaved ..."
        )
        for i in range(rounds):
            order = sizes if i % 2 == 0 else list(reversed(sizes))
            for size in order:
                if i < len(size.targets):
                    source_conn, poller = conns[size.n]
                    size.results.append(
                        run_ddl(source_conn, poller, size.targets[i], size.ids, i, poll_s)
                    )
        time.sleep(0.3)
        for size, _tmp, proc in running:
            size.out["monitor_alive_at_end"] = proc.poll() is None


def collect_monitor_log(size: Size, tmp: Path) -> None:
    """The listener's own account of each sync it ran ("synced in N ms"); the first lines are
    the warm-ups'."""
    listener_ms = listener_sync_ms(tmp)[len(size.warmups) :]
    size.out["listener_sync_ms"] = spread(listener_ms)
    size.out["listener_syncs_logged"] = len(listener_ms)
    size.out["monitor_log_tail"] = monitor_output(tmp, 40)


def finish(size: Size) -> dict[str, Any]:
    out, results = size.out, size.results
    with psycopg.connect(size.store_url, autocommit=True) as store:
        out["provenance_check"] = check_versions(store, results, size.ids)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    out["missing"] = [r.table for r in results if r.latency_ms is None]
    out["visible"] = len(latencies)
    if latencies:
        out["latency_ms"] = {
            "p50": round(median(latencies), 2),
            "p95": round(pct(latencies, 95), 2),
            "max": round(max(latencies), 2),
            "min": round(min(latencies), 2),
            "mean": round(statistics.fmean(latencies), 2),
        }
    out["ddl_commit_ms_median"] = round(median([r.ddl_ms for r in results]), 2)
    out["polls_median"] = median([r.polls for r in results])
    out["breakdown"] = breakdown(results, size.notified)
    out["per_ddl"] = [
        {
            "table": r.table,
            "statement": r.statement,
            "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 2),
            "ddl_ms": round(r.ddl_ms, 2),
            "commit_epoch": round(r.commit_wall, 6),
            **r.checks,
        }
        for r in results
    ]
    lat = out.get("latency_ms", {})
    log(
        f"[{size.n}] visible {len(latencies)}/{len(results)}: p50 {lat.get('p50')} ms, "
        f"p95 {lat.get('p95')} ms, max {lat.get('max')} ms; provenance ok "
        f"{out['provenance_check']['ok']}/{len(results)}"
    )
    return out


# --- verdicts and the report ---------------------------------------------------------------


def verdicts(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    by_size = {r["tables"]: r for r in results}
    for r in results:
        n = r["tables"]
        lat: dict[str, Any] = r.get("latency_ms") or {}
        complete = r["visible"] == r["ddl"] and not r["missing"]
        v.append(
            {
                "tables": n,
                "name": "every version visible",
                "target": f"{r['ddl']} of {r['ddl']}",
                "value": f"{r['visible']} of {r['ddl']}",
                "pass": complete,
            }
        )
        check = r["provenance_check"]
        v.append(
            {
                "tables": n,
                "name": "provenance (capture, events with the statement, lsn)",
                "target": f"{check['checked']} of {check['checked']}",
                "value": f"{check['ok']} of {check['checked']}",
                "pass": check["ok"] == check["checked"] == r["ddl"],
            }
        )
        if n == BASE_SIZE or (n != LARGE_SIZE and BASE_SIZE not in by_size):
            v.append(
                {
                    "tables": n,
                    "name": "COMMIT -> visible p95",
                    "target": f"< {P95_TARGET_MS:g} ms",
                    "value": f"{lat['p95']:.1f} ms" if lat else "n/a",
                    "pass": bool(lat) and complete and lat["p95"] < P95_TARGET_MS,
                }
            )
            v.append(
                {
                    "tables": n,
                    "name": "COMMIT -> visible max",
                    "target": f"< {MAX_TARGET_MS:g} ms",
                    "value": f"{lat['max']:.1f} ms" if lat else "n/a",
                    "pass": bool(lat) and complete and lat["max"] < MAX_TARGET_MS,
                }
            )
        if n == LARGE_SIZE and BASE_SIZE in by_size:
            base: dict[str, Any] = by_size[BASE_SIZE].get("latency_ms") or {}
            ratio = lat["p95"] / base["p95"] if lat and base else None
            v.append(
                {
                    "tables": n,
                    "name": f"p95 vs {BASE_SIZE:,} tables",
                    "target": f"<= {P95_GROWTH_MAX:.2f}x",
                    "value": f"{ratio:.2f}x ({lat['p95']:.1f} / {base['p95']:.1f} ms)"
                    if ratio
                    else "n/a",
                    "pass": ratio is not None and complete and ratio <= P95_GROWTH_MAX,
                }
            )
        cost = r["trigger_cost"]
        v.append(
            {
                "tables": n,
                "name": "event trigger cost on one ALTER TABLE (median)",
                "target": f"< {TRIGGER_COST_TARGET_MS:g} ms",
                "value": f"{cost['added_ms']:+.2f} ms ({cost['with']['median_ms']:.2f} vs "
                f"{cost['without']['median_ms']:.2f} ms)",
                "pass": cost["added_ms"] < TRIGGER_COST_TARGET_MS,
            }
        )
    return v


def phase_names(results: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in results:
        for name in r["profile"]["phases_median_ms"]:
            if name not in names:
                names.append(name)
    return names


def render(results: list[dict[str, Any]]) -> str:
    def ms(d: dict[str, Any] | None, key: str) -> str:
        return f"{d[key]:.1f} ms" if d and d.get(key) is not None else "n/a"

    rows: list[tuple[str, list[str]]] = [
        ("source setup (not a target)", [f"{r['setup_seconds']:.1f} s" for r in results]),
        (
            "register + initial sync",
            [f"{r['register_and_initial_sync_seconds']:.1f} s" for r in results],
        ),
        ("DDL statements (one table each)", [str(r["ddl"]) for r in results]),
        ("  visible in the store", [str(r["visible"]) for r in results]),
        (
            "  provenance ok",
            [f"{r['provenance_check']['ok']}/{r['provenance_check']['checked']}" for r in results],
        ),
        ("COMMIT -> visible p50", [ms(r.get("latency_ms"), "p50") for r in results]),
        ("COMMIT -> visible p95", [ms(r.get("latency_ms"), "p95") for r in results]),
        ("COMMIT -> visible max", [ms(r.get("latency_ms"), "max") for r in results]),
        (
            "  COMMIT -> notification, p50/p95",
            [
                f"{ms(r['breakdown']['commit_to_notification_ms'], 'p50')} / "
                f"{ms(r['breakdown']['commit_to_notification_ms'], 'p95')}"
                for r in results
            ],
        ),
        (
            "  notification -> visible, p50/p95",
            [
                f"{ms(r['breakdown']['notification_to_visible_ms'], 'p50')} / "
                f"{ms(r['breakdown']['notification_to_visible_ms'], 'p95')}"
                for r in results
            ],
        ),
        (
            "  listener's sync as it logs it, p50/p95",
            [
                f"{ms(r['listener_sync_ms'], 'p50')} / {ms(r['listener_sync_ms'], 'p95')}"
                for r in results
            ],
        ),
        (
            "woken sync in-process, p50/p95",
            [
                f"{ms(r['profile']['total_ms'], 'p50')} / {ms(r['profile']['total_ms'], 'p95')}"
                for r in results
            ],
        ),
        *[
            (
                f"  {phase} (median)",
                [
                    f"{r['profile']['phases_median_ms'].get(phase, float('nan')):.2f} ms"
                    for r in results
                ],
            )
            for phase in phase_names(results)
        ],
        (
            "ALTER TABLE median, no capture",
            [f"{r['trigger_cost']['without']['median_ms']:.2f} ms" for r in results],
        ),
        (
            "ALTER TABLE median, capture installed",
            [f"{r['trigger_cost']['with']['median_ms']:.2f} ms" for r in results],
        ),
        (
            "  added by the event trigger",
            [f"{r['trigger_cost']['added_ms']:+.2f} ms" for r in results],
        ),
    ]
    headers = ["metric", *[f"{r['tables']:,} tables" for r in results]]
    widths = [max(len(headers[0]), *(len(r[0]) for r in rows))]
    for i in range(len(results)):
        widths.append(max(len(headers[i + 1]), *(len(r[1][i]) for r in rows)))
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for label, cells in rows:
        values = [label, *cells]
        lines.append(
            "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"
        )
    return "\n".join(lines)


def environment(server: PostgresServer) -> dict[str, Any]:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute(b"SHOW server_version").fetchone()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "psycopg": psycopg.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "server_settings": SERVER_SETTINGS,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[BASE_SIZE, LARGE_SIZE])
    parser.add_argument("--ddl", type=int, default=200, help="DDL statements, one table each")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="store polling interval")
    parser.add_argument(
        "--trigger-pairs", type=int, default=200, help="ADD/DROP COLUMN pairs per mode"
    )
    parser.add_argument(
        "--monitor-interval",
        type=float,
        default=3600.0,
        help="rosetta monitor --interval (default 3600: only the listener records versions; "
        "a short one shows DDL committed while a polling cycle holds the source)",
    )
    parser.add_argument(
        "--profile-ddl", type=int, default=30, help="in-process woken syncs timed by phase"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if len(set(args.tables)) != len(args.tables):
        parser.error("--tables: each size once")
    if min(args.tables) < args.ddl + WARMUP_DDL + 2:
        parser.error(f"--tables must be at least --ddl + {WARMUP_DDL + 2}")
    return args


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.perf_counter()
    box = SecretBox(SECRET_KEY)
    log("starting a throwaway PostgreSQL ...")
    with ThrowawayPostgres(SERVER_SETTINGS) as server:
        env = environment(server)
        sizes: list[Size] = []
        try:
            for n in args.tables:
                sizes.append(prepare(server, box, n, args))
            measure(sizes, args)
            # Where a woken sync's time goes: the same sync in-process, timed by phase, with
            # the monitors stopped.
            profiles = profile_woken_syncs(sizes, box, args.profile_ddl)
            for size in sizes:
                size.out["profile"] = profiles[size.n]
                log(f"[{size.n}] woken sync in-process: {profiles[size.n]['total_ms']} ms")
            results = [finish(size) for size in sizes]
        finally:
            for size in sizes:
                drop_database(server, size.src_db)
                drop_database(server, size.store_db)
    elapsed = time.perf_counter() - started
    env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    table = render(results)
    print(table)
    print()
    checks = verdicts(results)
    for c in checks:
        mark = "PASS" if c["pass"] else "FAIL"
        print(f"{mark}  {c['tables']:>6,} tables  {c['name']}: {c['value']} (target {c['target']})")
    for r in results:
        failures = r["provenance_check"]["failures"]
        for line in failures[:10]:
            print(f"  {r['tables']:,} tables: {line}")
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more")
        if r["missing"]:
            print(f"  {r['tables']:,} tables: never visible: {', '.join(r['missing'][:10])}")
    print(
        f"total benchmark time {elapsed:.0f} s; load average {env['load_average_at_start']} at "
        f"start, {env['load_average_at_end']} at the end"
    )
    report = {
        "environment": env,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_seconds": round(elapsed, 1),
        "results": results,
        "table": table,
        "verdicts": checks,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
