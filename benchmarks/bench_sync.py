"""Benchmark one source's sync at N tables: cold, warm, 1% changed, and against the seed's way.

Run from the project root:

    .venv/bin/python benchmarks/bench_sync.py [--tables 2000 10000] [--columns 10]
    .venv/bin/python benchmarks/bench_sync.py --tables 2000 10000 50000 --runs 3

It starts its own throwaway PostgreSQL (stopped and removed on exit), builds for each size N a
source database of N tables and a store database, and prints a table of timings and rows
written, with PASS/FAIL for each target. The results are also written as JSON to
benchmarks/results/latest.json. See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rosetta import logs, sources
from rosetta.catalog import reader
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import db, repository
from rosetta.summary import SyncSummary
from rosetta.sync import connection_params, sync_source

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"
PUBLICATION = "rosetta_publication"
SECRET_KEY = "rosetta-benchmark-secret-key"
WEB_STACK = ("fastapi", "uvicorn", "jinja2", "starlette")
TRACKED = ("table_metadata_list", "history_schema_evolution")

WARM_OVER_CATALOG_MAX = 2.0  # warm sync / catalog query
INFO_SCHEMA_OVER_REFRESH_MIN = 30.0  # information_schema per-table total / refresh process
INFO_SCHEMA_TARGET_SIZE = 2000  # the size the 30x target is set for

# Column types cycled through after the bigint primary key.
COLUMN_TYPES = (
    "varchar(64)",
    "numeric(10,2)",
    "timestamptz NOT NULL DEFAULT now()",
    "boolean DEFAULT false",
    "jsonb",
    "text",
    "integer[]",
    "uuid",
    "smallint",
    "double precision",
    "date",
    "char(3)",
    "bytea",
    "integer NOT NULL DEFAULT 0",
)

# Server settings for the benchmark: autovacuum off so it does not run at random during the
# timings (the benchmark ANALYZEs explicitly instead, as autovacuum would in steady state).
SERVER_SETTINGS = {"autovacuum": "off"}

DDL_TABLES_PER_TRANSACTION = 250
DDL_PROGRESS_SECONDS = 10.0  # at most this long between two progress lines of the DDL

# Whole `rosetta refresh` processes vary more than in-process calls: at least this many runs,
# unless they have already taken REFRESH_BUDGET_SECONDS (at 50,000 tables one takes seconds),
# and never fewer than --runs.
REFRESH_MIN_RUNS = 9
REFRESH_BUDGET_SECONDS = 60.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- building the databases ----------------------------------------------------------------


def table_name(i: int) -> str:
    return f"bench_{i:06d}"


def create_source(
    server: PostgresServer,
    dbname: str,
    n_tables: int,
    n_columns: int,
    *,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Create ``dbname`` with ``n_tables`` tables and the publication; returns the seconds.
    The DDL runs in batches of DDL_TABLES_PER_TRANSACTION tables, one transaction each; with
    ``progress``, a line goes to it every DDL_PROGRESS_SECONDS with the tables made so far."""
    started = time.perf_counter()
    last_report = started
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    columns = ["id bigint PRIMARY KEY"]
    columns += [
        f"c{j:02d} {COLUMN_TYPES[(j - 1) % len(COLUMN_TYPES)]}" for j in range(1, n_columns)
    ]
    body = ", ".join(columns)
    with psycopg.connect(server.url(dbname), autocommit=True) as conn:
        for start in range(0, n_tables, DDL_TABLES_PER_TRANSACTION):
            stop = min(start + DDL_TABLES_PER_TRANSACTION, n_tables)
            # Several statements in one simple-protocol query: one implicit transaction.
            batch = "".join(f"CREATE TABLE {table_name(i)} ({body});\n" for i in range(start, stop))
            conn.execute(batch.encode())
            now = time.perf_counter()
            if (
                progress is not None
                and stop < n_tables
                and now - last_report >= DDL_PROGRESS_SECONDS
            ):
                last_report = now
                rate = stop / (now - started)
                progress(
                    f"{stop:,}/{n_tables:,} tables in {now - started:.0f}s "
                    f"({rate:.0f}/s, about {(n_tables - stop) / rate:.0f}s to go)"
                )
        conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES".encode())
        # What autovacuum would have done by now on a real source: catalog statistics.
        conn.execute(
            b"ANALYZE pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_constraint, "
            b"pg_catalog.pg_attrdef, pg_catalog.pg_namespace, pg_catalog.pg_type, "
            b"pg_catalog.pg_depend"
        )
    return time.perf_counter() - started


def create_store(server: PostgresServer, dbname: str) -> str:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = server.url(dbname)
    db.upgrade(url)
    return url


def drop_database(server: PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


# --- counting rows written -----------------------------------------------------------------

Versions = dict[str, dict[int, str]]


def row_versions(observer: psycopg.Connection[Any]) -> Versions:
    """Every row of the tracking and history tables with its xmin: an UPDATE or INSERT gives a
    row a new xmin, so two of these tell exactly which rows a sync wrote (pg_stat_user_tables is
    flushed lazily, up to seconds later, so it is not used)."""
    out: Versions = {}
    for table in TRACKED:
        rows = observer.execute(
            sql.SQL("SELECT id, xmin::text FROM {}").format(sql.Identifier(table))
        ).fetchall()
        out[table] = dict(rows)
    return out


@dataclass
class Written:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.inserted.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def add(self, other: Written) -> None:
        for mine, theirs in (
            (self.inserted, other.inserted),
            (self.updated, other.updated),
            (self.deleted, other.deleted),
        ):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
        }


def written_between(before: Versions, after: Versions) -> Written:
    result = Written()
    for table in TRACKED:
        old, new = before[table], after[table]
        result.inserted[table] = sum(1 for key in new if key not in old)
        result.updated[table] = sum(1 for key, x in new.items() if key in old and old[key] != x)
        result.deleted[table] = sum(1 for key in old if key not in new)
    return result


@contextlib.contextmanager
def counting(observer: psycopg.Connection[Any]) -> Iterator[Written]:
    written = Written()
    before = row_versions(observer)
    yield written
    written.add(written_between(before, row_versions(observer)))


# --- the measurements ----------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run_sync(store_url: str, source_id: int, box: SecretBox) -> tuple[float, SyncSummary]:
    """One sync as the monitor does it: an open store connection, the source re-read first."""
    store = db.connect(store_url)
    try:
        source = repository.source_by_id(store, source_id)
        store.rollback()
        seconds, summary = timed(lambda: sync_source(store, source, box))
    finally:
        store.close()
    if summary.status != "ok":
        raise RuntimeError(f"sync failed: {summary.to_json()}")
    return seconds, summary


def info_schema_old_way(
    conn: psycopg.Connection[Any], tables: Sequence[tuple[str, str]]
) -> tuple[float, float]:
    """The seed's per-table reads: two information_schema queries per table. Returns the
    seconds spent in the columns query and in the primary-key query."""
    columns_query = b"""
        SELECT column_name, data_type, character_maximum_length, numeric_precision,
               numeric_scale, is_nullable, column_default, ordinal_position
        FROM information_schema.columns
        WHERE table_schema = %s AND table_name = %s
        ORDER BY ordinal_position"""
    pk_query = b"""
        SELECT kcu.column_name
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON tc.constraint_name = kcu.constraint_name
         AND tc.table_schema = kcu.table_schema
         AND tc.table_name = kcu.table_name
        WHERE tc.constraint_type = 'PRIMARY KEY'
          AND tc.table_schema = %s AND tc.table_name = %s"""
    in_columns = in_pk = 0.0
    for schema_name, name in tables:
        started = time.perf_counter()
        cols = conn.execute(columns_query, (schema_name, name)).fetchall()
        middle = time.perf_counter()
        pk = conn.execute(pk_query, (schema_name, name)).fetchall()
        in_columns += middle - started
        in_pk += time.perf_counter() - middle
        if not cols or not pk:
            raise RuntimeError(f"information_schema found nothing for {schema_name}.{name}")
    return in_columns, in_pk


SUMMARY_RE = re.compile(r"^Source \S+: (\w+) in ([0-9.]+)s$", re.MULTILINE)


def refresh_env(store_url: str, tmp: Path) -> dict[str, str]:
    """The environment of a `rosetta refresh` process: the user's, with a store of its own.
    Rosetta's bytecode is compiled first (as scripts/bootstrap does), so that
    PYTHONDONTWRITEBYTECODE, where set, does not make every process compile it again."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(__file__).parents[1] / "src")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=SECRET_KEY,
        ROSETTA_LOG_FILE=str(tmp / "logs" / "rosetta.log"),
        ROSETTA_DATA_DIR=str(tmp / "data"),
    )
    return env


def rosetta_script() -> Path:
    script = Path(sys.executable).parent / "rosetta"
    if not script.exists():
        raise SystemExit(f"no rosetta console script beside {sys.executable}: pip install -e .")
    return script


def run_refresh(name: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """One whole `rosetta refresh NAME` process: (wall seconds, the sync's own seconds)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [str(rosetta_script()), "refresh", name],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"rosetta refresh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    match = SUMMARY_RE.search(proc.stdout)
    if match is None or match.group(1) != "ok":
        raise RuntimeError(f"unexpected rosetta refresh output: {proc.stdout[-2000:]}")
    return seconds, float(match.group(2))


PROBE = """
import json, sys
sys.argv = ["rosetta", "refresh", {name!r}]
from rosetta import cli
code = 0
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {web!r})
print("@@PROBE@@" + json.dumps({{"exit": code, "web_modules": loaded}}))
"""


def import_check(name: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Which web-stack modules a `rosetta refresh` process loads, and where its import time
    goes (from ``python -X importtime``)."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name, web=WEB_STACK)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    marker = [line for line in probe.stdout.splitlines() if line.startswith("@@PROBE@@")]
    if not marker:
        raise RuntimeError(f"import probe failed: {probe.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(marker[-1].removeprefix("@@PROBE@@"))
    if result["exit"] not in (0, None):
        raise RuntimeError(f"import probe: refresh exited {result['exit']}: {probe.stderr[-2000:]}")

    timing = subprocess.run(
        [sys.executable, "-X", "importtime", str(rosetta_script()), "refresh", name],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if timing.returncode != 0:
        raise RuntimeError(f"rosetta refresh under -X importtime failed: {timing.stderr[-2000:]}")
    by_package: dict[str, int] = {}  # self time summed per top-level package
    modules: set[str] = set()
    for line in timing.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative_us, module = line.removeprefix("import time:").split("|", 2)
        package = module.strip().split(".")[0]
        modules.add(package)
        by_package[package] = by_package.get(package, 0) + int(self_us)
    heaviest = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:8]
    web_from_importtime = sorted(m for m in modules if m in WEB_STACK)
    return {
        "web_modules_in_sys_modules": result["web_modules"],
        "web_modules_in_importtime": web_from_importtime,
        "import_seconds_total": round(sum(by_package.values()) / 1e6, 4),
        "heaviest_packages": [{"module": m, "seconds": round(us / 1e6, 4)} for m, us in heaviest],
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bench_size(
    server: PostgresServer, box: SecretBox, n_tables: int, args: argparse.Namespace
) -> dict[str, Any]:
    src_db, store_db, name = f"bench_src_{n_tables}", f"bench_store_{n_tables}", f"bench{n_tables}"
    out: dict[str, Any] = {"tables": n_tables, "columns": args.columns}

    log(f"[{n_tables}] creating {n_tables} tables x {args.columns} columns ...")
    out["setup_seconds"] = round(
        create_source(
            server,
            src_db,
            n_tables,
            args.columns,
            progress=lambda line: log(f"[{n_tables}] {line}"),
        ),
        3,
    )
    log(f"[{n_tables}] source ready in {out['setup_seconds']:.1f}s")
    store_url = create_store(server, store_db)
    with db.connect(store_url) as store:
        params = sources.parse_dsn(server.url(src_db))
        source = sources.add_source(
            store, box, sources.SourceInput(name, params, PUBLICATION, None)
        )
    observer = psycopg.connect(store_url, autocommit=True)
    try:
        # Cold: every table is new.
        with counting(observer) as cold_written:
            cold_s, cold = run_sync(store_url, source.id, box)
        if len(cold.added) != n_tables:
            raise RuntimeError(f"cold sync added {len(cold.added)} of {n_tables} tables")
        out["cold_sync_seconds"] = round(cold_s, 4)
        out["cold_sync_written"] = cold_written.to_json()
        log(f"[{n_tables}] cold sync {cold_s:.2f}s, {cold_written.total} rows written")
        # What autovacuum would have done by now on the store.
        observer.execute(b"ANALYZE table_metadata_list, history_schema_evolution")

        # Warm: nothing changed.
        warm_times: list[float] = []
        warm_written = Written()
        for _ in range(args.runs):
            with counting(observer) as written:
                seconds, warm = run_sync(store_url, source.id, box)
            if warm.unchanged != n_tables or warm.wrote_anything:
                raise RuntimeError(f"warm sync was not a no-op: {warm.to_json()}")
            warm_times.append(seconds)
            warm_written.add(written)
        out["warm_sync_seconds"] = round(median(warm_times), 4)
        out["warm_sync_runs"] = [round(t, 4) for t in warm_times]
        out["warm_sync_written"] = warm_written.to_json()
        log(f"[{n_tables}] warm sync median {out['warm_sync_seconds']:.3f}s")

        # The bare catalog query on an open connection: the one a sync runs every time (each
        # table's fingerprint). Informative: the full read of every table's columns, which a cold
        # sync and `refresh --full` add.
        src_conn = reader.connect(connection_params(source, box), SourceLimits(connect_timeout=10))
        try:
            catalog_times = []
            full_times = []
            for _ in range(args.runs):
                seconds, snap = timed(
                    lambda: reader.read_publication(src_conn, PUBLICATION, None, columns=False)
                )
                if len(snap.tables) != n_tables:
                    raise RuntimeError(f"catalog query saw {len(snap.tables)} tables")
                catalog_times.append(seconds)
                seconds, snap = timed(lambda: reader.read_publication(src_conn, PUBLICATION, None))
                full_times.append(seconds)
        finally:
            src_conn.close()
        out["catalog_full_read_seconds"] = round(median(full_times), 4)
        out["catalog_query_seconds"] = round(median(catalog_times), 4)
        out["catalog_query_runs"] = [round(t, 4) for t in catalog_times]
        # Informative: the same query as the first one of a new backend, which is what every
        # sync runs (the connection itself is not timed).
        fresh_times = []
        for _ in range(args.runs):
            conn = reader.connect(connection_params(source, box), SourceLimits(connect_timeout=10))
            try:
                seconds, _snap = timed(
                    partial(reader.read_publication, conn, PUBLICATION, None, columns=False)
                )
            finally:
                conn.close()
            fresh_times.append(seconds)
        out["catalog_query_fresh_backend_seconds"] = round(median(fresh_times), 4)
        log(f"[{n_tables}] catalog query median {out['catalog_query_seconds']:.3f}s")

        # 1% of the tables changed (a new column each), in rounds on different tables.
        changed_count = max(1, round(n_tables * args.changed_percent / 100))
        step = n_tables / changed_count
        change_times: list[float] = []
        change_written = Written()
        for round_no in range(args.change_rounds):
            targets = [
                table_name(int(i * step + round_no) % n_tables) for i in range(changed_count)
            ]
            ddl = "".join(f"ALTER TABLE {t} ADD COLUMN added_{round_no} text;\n" for t in targets)
            with psycopg.connect(server.url(src_db), autocommit=True) as conn:
                conn.execute(ddl.encode())
            with counting(observer) as written:
                seconds, changed = run_sync(store_url, source.id, box)
            if len(changed.changed) != changed_count:
                raise RuntimeError(f"expected {changed_count} changed, got {changed.to_json()}")
            change_times.append(seconds)
            change_written.add(written)
        out["changed_tables"] = changed_count
        out["changed_sync_seconds"] = round(median(change_times), 4)
        out["changed_sync_runs"] = [round(t, 4) for t in change_times]
        out["changed_sync_written"] = change_written.to_json()
        out["changed_sync_written_per_round"] = change_written.total / args.change_rounds
        log(f"[{n_tables}] {changed_count} changed: sync median {out['changed_sync_seconds']:.3f}s")

        # The seed's old way: two information_schema queries per table.
        with psycopg.connect(server.url(src_db), autocommit=True) as conn:
            # The seed interpolated on the client (psycopg2): no server-side prepared plans.
            conn.prepare_threshold = None
            every = [
                (str(s), str(t))
                for s, t in conn.execute(
                    b"SELECT schemaname, tablename FROM pg_publication_tables "
                    b"WHERE pubname = %s ORDER BY 1, 2",
                    (PUBLICATION,),
                )
            ]
            sample = every
            if args.sample and len(every) > max(args.sample, INFO_SCHEMA_TARGET_SIZE):
                stride = len(every) / args.sample
                sample = [every[int(i * stride)] for i in range(args.sample)]
            in_columns, in_pk = info_schema_old_way(conn, sample)
        seconds = in_columns + in_pk
        out["info_schema_tables_timed"] = len(sample)
        out["info_schema_extrapolated"] = len(sample) != len(every)
        out["info_schema_seconds"] = round(seconds * len(every) / len(sample), 3)
        out["info_schema_ms_per_table"] = round(seconds / len(sample) * 1000, 3)
        out["info_schema_columns_ms_per_table"] = round(in_columns / len(sample) * 1000, 3)
        out["info_schema_pk_ms_per_table"] = round(in_pk / len(sample) * 1000, 3)
        log(
            f"[{n_tables}] information_schema: {out['info_schema_seconds']:.1f}s "
            f"({len(sample)} tables timed)"
        )

        # A whole warm `rosetta refresh` process.
        with tempfile.TemporaryDirectory(prefix="rosetta-bench-") as tmpdir:
            tmp = Path(tmpdir)
            env = refresh_env(store_url, tmp)
            refresh_times: list[float] = []
            inner: list[float] = []
            refresh_written = Written()
            run_refresh(name, env, tmp)  # untimed: warms the OS's file cache
            refresh_started = time.perf_counter()
            while len(refresh_times) < max(args.runs, REFRESH_MIN_RUNS):
                if (
                    len(refresh_times) >= args.runs
                    and time.perf_counter() - refresh_started > REFRESH_BUDGET_SECONDS
                ):
                    break
                with counting(observer) as written:
                    seconds, sync_seconds = run_refresh(name, env, tmp)
                refresh_times.append(seconds)
                inner.append(sync_seconds)
                refresh_written.add(written)
            out["refresh_process_seconds"] = round(median(refresh_times), 4)
            out["refresh_process_runs"] = [round(t, 4) for t in refresh_times]
            out["refresh_reported_sync_seconds"] = round(median(inner), 4)
            out["refresh_written"] = refresh_written.to_json()
            out["imports"] = import_check(name, env, tmp)
        log(f"[{n_tables}] refresh process median {out['refresh_process_seconds']:.3f}s")
    finally:
        observer.close()
        drop_database(server, src_db)
        drop_database(server, store_db)

    out["warm_over_catalog"] = round(out["warm_sync_seconds"] / out["catalog_query_seconds"], 3)
    out["info_schema_over_refresh"] = round(
        out["info_schema_seconds"] / out["refresh_process_seconds"], 2
    )
    out["verdicts"] = verdicts(out)
    return out


def verdicts(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    v: dict[str, dict[str, Any]] = {}
    v["warm_over_catalog"] = {
        "target": f"<= {WARM_OVER_CATALOG_MAX:g}x",
        "value": r["warm_over_catalog"],
        "pass": r["warm_over_catalog"] <= WARM_OVER_CATALOG_MAX,
    }
    v["info_schema_over_refresh"] = {
        "target": f">= {INFO_SCHEMA_OVER_REFRESH_MIN:g}x"
        + (
            ""
            if r["tables"] == INFO_SCHEMA_TARGET_SIZE
            else f" (set for {INFO_SCHEMA_TARGET_SIZE:,} tables; informative here)"
        ),
        "value": r["info_schema_over_refresh"],
        "pass": r["info_schema_over_refresh"] >= INFO_SCHEMA_OVER_REFRESH_MIN,
        "binding": r["tables"] == INFO_SCHEMA_TARGET_SIZE,
    }
    warm_rows = r["warm_sync_written"]["total"] + r["refresh_written"]["total"]
    v["warm_writes_nothing"] = {
        "target": "0 rows",
        "value": warm_rows,
        "pass": warm_rows == 0,
    }
    expected_cold = 2 * r["tables"]
    v["cold_rows"] = {
        "target": f"{expected_cold} rows (one tracking + one history row per table)",
        "value": r["cold_sync_written"]["total"],
        "pass": r["cold_sync_written"]["total"] == expected_cold,
    }
    expected_changed = 2 * r["changed_tables"]
    v["changed_rows"] = {
        "target": f"{expected_changed} rows per round (one update + one history row per table)",
        "value": r["changed_sync_written_per_round"],
        "pass": r["changed_sync_written_per_round"] == expected_changed,
    }
    web = r["imports"]["web_modules_in_sys_modules"] + r["imports"]["web_modules_in_importtime"]
    v["refresh_without_web_stack"] = {
        "target": "no " + "/".join(WEB_STACK),
        "value": sorted(set(web)) or "none",
        "pass": not web,
    }
    return v


# --- the report ----------------------------------------------------------------------------

# How each timing grows from one size to the next: (key in a size's results, label).
GROWTH_METRICS = (
    ("catalog_query_seconds", "catalog query"),
    ("warm_sync_seconds", "warm sync"),
    ("cold_sync_seconds", "cold sync"),
    ("catalog_full_read_seconds", "full read of columns"),
)


def growth(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each step from one size to the next larger one, how much each timing grew, and the
    exponent k of tables**k that growth means (1.0: linear; 2.0: quadratic)."""
    by_size = sorted(results, key=lambda r: int(r["tables"]))
    steps: list[dict[str, Any]] = []
    for small, large in itertools.pairwise(by_size):
        tables_ratio = large["tables"] / small["tables"]
        if tables_ratio <= 1:
            continue
        metrics: dict[str, dict[str, float]] = {}
        for key, _label in GROWTH_METRICS:
            if small[key] > 0 and large[key] > 0:
                ratio = large[key] / small[key]
                metrics[key] = {
                    "ratio": round(ratio, 2),
                    "exponent": round(math.log(ratio) / math.log(tables_ratio), 2),
                }
        steps.append(
            {
                "from_tables": small["tables"],
                "to_tables": large["tables"],
                "tables_ratio": round(tables_ratio, 2),
                "metrics": metrics,
            }
        )
    return steps


def render_growth(steps: Sequence[dict[str, Any]]) -> str:
    lines = []
    for step in steps:
        for key, label in GROWTH_METRICS:
            m = step["metrics"].get(key)
            if m is None:
                continue
            lines.append(
                f"{label:20} {step['to_tables']:>7,}/{step['from_tables']:<7,}"
                f" = {m['ratio']:5.2f}x for {step['tables_ratio']:g}x tables"
                f"  (~ tables^{m['exponent']:.2f}; 1.00 is linear)"
            )
    return "\n".join(lines)


def render(results: list[dict[str, Any]]) -> str:
    def sec(x: float) -> str:
        return f"{x:.3f} s" if x < 100 else f"{x:.1f} s"

    refresh_runs = [len(r["refresh_process_runs"]) for r in results]
    rows: list[tuple[str, list[str]]] = [
        ("source setup (DDL, not a target)", [sec(r["setup_seconds"]) for r in results]),
        ("cold sync (all tables added)", [sec(r["cold_sync_seconds"]) for r in results]),
        (
            "  rows written (tracking + history)",
            [
                f"{r['cold_sync_written']['total']:,} "
                f"({r['cold_sync_written']['inserted']['table_metadata_list']:,}"
                f" + {r['cold_sync_written']['inserted']['history_schema_evolution']:,})"
                for r in results
            ],
        ),
        (
            f"warm sync, median of {results[0]['runs']}",
            [sec(r["warm_sync_seconds"]) for r in results],
        ),
        (
            "  rows written (all warm runs)",
            [str(r["warm_sync_written"]["total"]) for r in results],
        ),
        (
            "sync with 1% changed (median)",
            [f"{sec(r['changed_sync_seconds'])} [{r['changed_tables']} tables]" for r in results],
        ),
        (
            "  rows written per round",
            [f"{r['changed_sync_written_per_round']:g}" for r in results],
        ),
        (
            f"catalog query alone, median of {results[0]['runs']}",
            [sec(r["catalog_query_seconds"]) for r in results],
        ),
        (
            "  same, first query of a new backend",
            [sec(r["catalog_query_fresh_backend_seconds"]) for r in results],
        ),
        (
            "  full read of every table's columns",
            [sec(r["catalog_full_read_seconds"]) for r in results],
        ),
        (
            "information_schema, 2 queries/table",
            [
                sec(r["info_schema_seconds"])
                + (
                    f" (extrap. from {r['info_schema_tables_timed']:,})"
                    if r["info_schema_extrapolated"]
                    else ""
                )
                for r in results
            ],
        ),
        (
            "  per table (columns + primary key)",
            [
                f"{r['info_schema_ms_per_table']:.2f} ms"
                f" ({r['info_schema_columns_ms_per_table']:.2f}"
                f" + {r['info_schema_pk_ms_per_table']:.2f})"
                for r in results
            ],
        ),
        (
            "`rosetta refresh` process, median of "
            + ("/".join(str(n) for n in sorted(set(refresh_runs), reverse=True))),
            [
                sec(r["refresh_process_seconds"])
                + (
                    f" [{len(r['refresh_process_runs'])} runs]"
                    if len(set(refresh_runs)) > 1
                    else ""
                )
                for r in results
            ],
        ),
        (
            "  of which the sync (as it reports)",
            [sec(r["refresh_reported_sync_seconds"]) for r in results],
        ),
        ("  imports (-X importtime)", [sec(r["imports"]["import_seconds_total"]) for r in results]),
        (
            "  rows written (all refresh runs)",
            [str(r["refresh_written"]["total"]) for r in results],
        ),
    ]
    for key, label in (
        ("warm_over_catalog", "warm sync / catalog query"),
        ("info_schema_over_refresh", "information_schema / refresh"),
        ("warm_writes_nothing", "warm rows written"),
        ("cold_rows", "cold rows written"),
        ("changed_rows", "1% changed rows written"),
        ("refresh_without_web_stack", "refresh loads web stack"),
    ):
        cells = []
        for r in results:
            v = r["verdicts"][key]
            value = v["value"]
            shown = f"{value:.2f}x" if key.endswith(("catalog", "refresh")) else str(value)
            mark = "PASS" if v["pass"] else "FAIL"
            if key == "info_schema_over_refresh" and not v["binding"]:
                mark = f"({mark})"
            cells.append(f"{shown} {mark}")
        target = results[0]["verdicts"][key]["target"].split(" (")[0]
        rows.append((f"{label} [{target}]", cells))

    headers = ["metric", *[f"{r['tables']:,} tables x {r['columns']} cols" for r in results]]
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
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--columns", type=int, default=10, help="columns per table (>= 2)")
    parser.add_argument("--runs", type=int, default=5, help="runs for each median")
    parser.add_argument("--changed-percent", type=float, default=1.0)
    parser.add_argument("--change-rounds", type=int, default=3, help="1%%-changed rounds")
    parser.add_argument(
        "--sample",
        type=int,
        default=1000,
        help="above 2,000 tables, time information_schema on this many tables and extrapolate "
        "(0: time them all)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.columns < 2:
        parser.error("--columns must be at least 2")
    return args


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the throwaway server is stopped and its dir removed.
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.perf_counter()
    box = SecretBox(SECRET_KEY)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-logs-") as logdir:
        # Log as `rosetta refresh` does (to a file), so in-process syncs pay the same logging.
        logs.setup("INFO", Path(logdir) / "sync.log", stream_to=None)
        log("starting a throwaway PostgreSQL ...")
        with ThrowawayPostgres(SERVER_SETTINGS) as server:
            env = environment(server)
            for n in args.tables:
                result = bench_size(server, box, n, args)
                result["runs"] = args.runs
                results.append(result)
        logging.getLogger("rosetta").handlers.clear()
    elapsed = time.perf_counter() - started

    table = render(results)
    steps = growth(results)
    print(table)
    print()
    if steps:
        print("Growth from one size to the next:")
        print(render_growth(steps))
        print()
    failed = []
    for r in results:
        for key, v in r["verdicts"].items():
            binding = v.get("binding", True)
            status = "PASS" if v["pass"] else ("FAIL" if binding else "fail (not binding)")
            print(
                f"{status:18} {r['tables']:>6,} tables  {key}: {v['value']} (target {v['target']})"
            )
            if not v["pass"] and binding:
                failed.append(f"{r['tables']}:{key}")
    for r in results:
        if r["info_schema_extrapolated"]:
            print(
                f"note: at {r['tables']:,} tables the information_schema total is extrapolated "
                f"from {r['info_schema_tables_timed']:,} evenly spaced tables"
            )
    for r in results:
        heavy = ", ".join(
            f"{p['module']} {p['seconds'] * 1000:.0f} ms" for p in r["imports"]["heaviest_packages"]
        )
        print(f"imports of `rosetta refresh` at {r['tables']:,} tables, by package: {heavy}")
    print(f"total benchmark time {elapsed:.0f} s")

    report = {
        "environment": env,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_seconds": round(elapsed, 1),
        "results": results,
        "table": table,
        "growth": steps,
        "failed": failed,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
