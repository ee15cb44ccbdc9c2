"""Benchmark syncs at scale: 5,000 sources on 1, 2 and 4 `rosetta worker` processes.

Run from the project root:

    .venv/bin/python benchmarks/bench_scale.py                  # 5,000 sources, 1/2/4 workers
    .venv/bin/python benchmarks/bench_scale.py --sources 500 --workers 1 2   # a quick look

It starts two throwaway PostgreSQL servers (stopped and removed on exit, Ctrl-C or SIGTERM): a
source server with --databases databases holding --sources publications of --tables-per-source
tables each (every table in one publication), and a store server with the store, where the
sources are registered in-process. `rosetta worker --concurrency C` subprocesses then sync them:
one cold round (every table new) on the most workers, then, for each worker count, one warm
round (nothing changed) started by making every source due at once. Each round waits until every
source has one more `sync_runs` row, while a sampler counts the client connections of both
servers every 100 ms. The scheduler's claim-and-defer of every source is timed in-process, and
a few hundred warm syncs are timed in-process step by step. JSON goes to
benchmarks/results/scale_latest.json. See benchmarks/README.md ("Scale: 5,000 sources on
workers").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rosetta import sources
from rosetta import sync as sync_module
from rosetta.catalog.connection import SourceLimits
from rosetta.catalog.connection_cache import SourceConnections
from rosetta.catalog.source_reader import SourceReader
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer, read_pid
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.queue import scheduler
from rosetta.queue.options import QUEUE_POOL, QueueOptions
from rosetta.store import db, repository
from rosetta.summary import SyncRun

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale_latest.json"
SECRET_KEY = "rosetta-benchmark-secret-key"
STORE_DB = "scale_store"
BENCH_APP = "rosetta-bench"

# Targets (issue 12).
INTERVAL_SECONDS = 60.0  # every source synced within one interval
SOURCES_TARGET = 5000

# The source server: nothing changes there during the rounds (autovacuum off, as in
# bench_sync); locks for one transaction of CREATE TABLEs per database. The store keeps
# autovacuum on, as a live store would (the queue inserts and deletes a job per sync); the
# benchmark also runs VACUUM ANALYZE between rounds so each round starts alike.
SOURCE_SETTINGS = {
    "autovacuum": "off",
    "max_locks_per_transaction": "1024",
    "max_connections": "200",
}
STORE_SETTINGS = {"max_connections": "200"}
TABLE_BODY = (
    "id bigint PRIMARY KEY, name varchar(64), qty integer NOT NULL DEFAULT 0, "
    "price numeric(10,2), created_at timestamptz NOT NULL DEFAULT now()"
)
PUBLICATIONS_PER_STATEMENT = 50
SAMPLE_EVERY = 0.1
STOP_TIMEOUT = 30.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- the source server -------------------------------------------------------------------------


def database_name(d: int) -> str:
    return f"src_{d:02d}"


def publication_name(i: int) -> str:
    return f"pub_{i:05d}"


def layout(n_sources: int, n_databases: int) -> list[list[int]]:
    """The sources (by index) of each database, contiguous, as even as can be."""
    n_databases = max(1, min(n_databases, n_sources))
    per, extra = divmod(n_sources, n_databases)
    out: list[list[int]] = []
    start = 0
    for d in range(n_databases):
        size = per + (1 if d < extra else 0)
        out.append(list(range(start, start + size)))
        start += size
    return out


def build_database(server: PostgresServer, d: int, indexes: list[int], tables: int) -> float:
    """One database: for each source its tables and its publication of them, all in one
    transaction (the DDL sent PUBLICATIONS_PER_STATEMENT publications per statement)."""
    started = time.perf_counter()
    dbname = database_name(d)
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with psycopg.connect(server.url(dbname)) as conn, conn.transaction():
        for start in range(0, len(indexes), PUBLICATIONS_PER_STATEMENT):
            parts: list[str] = []
            for i in indexes[start : start + PUBLICATIONS_PER_STATEMENT]:
                names = [f"t_{i:05d}_{t:02d}" for t in range(tables)]
                parts.extend(f"CREATE TABLE {name} ({TABLE_BODY});" for name in names)
                parts.append(
                    f"CREATE PUBLICATION {publication_name(i)} FOR TABLE {', '.join(names)};"
                )
            conn.execute("\n".join(parts).encode())
    with psycopg.connect(server.url(dbname), autocommit=True) as conn:
        conn.execute(
            b"ANALYZE pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_constraint, "
            b"pg_catalog.pg_attrdef, pg_catalog.pg_namespace, pg_catalog.pg_type, "
            b"pg_catalog.pg_depend, pg_catalog.pg_publication_rel, pg_catalog.pg_publication"
        )
    return time.perf_counter() - started


def build_sources(server: PostgresServer, plan: list[list[int]], tables: int) -> float:
    """Every database, two at a time (2 cores)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(build_database, server, d, indexes, tables)
            for d, indexes in enumerate(plan)
        ]
        for d, future in enumerate(futures):
            log(f"  database {database_name(d)}: {future.result():.1f} s")
    return time.perf_counter() - started


# --- the store ---------------------------------------------------------------------------------


def register_sources(
    store_url: str, source_server: PostgresServer, plan: list[list[int]], box: SecretBox
) -> float:
    """Every source through rosetta.sources.add_source, in one transaction, never due until a
    round makes it due."""
    started = time.perf_counter()
    with db.connect(store_url) as store:
        for d, indexes in enumerate(plan):
            dsn = source_server.url(database_name(d))
            params = sources.parse_dsn(dsn)
            for i in indexes:
                sources.add_source(
                    store,
                    box,
                    sources.SourceInput(f"src-{i:05d}", params, publication_name(i), None),
                )
        store.execute(b"UPDATE sources SET next_sync_at = now() + interval '1 day'")
        store.commit()
    return time.perf_counter() - started


def store_connect(store_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(store_url, autocommit=True, application_name=BENCH_APP)


def settle_store(store_url: str) -> None:
    """Between rounds: nothing due, no job left, no worker row left, tables vacuumed."""
    with store_connect(store_url) as conn:
        conn.execute(b"UPDATE sources SET next_sync_at = now() + interval '1 day'")
        conn.execute(b"DELETE FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
        conn.execute(b"DELETE FROM procrastinate_workers")
        conn.execute(
            b"VACUUM ANALYZE sources, sync_runs, procrastinate_jobs, procrastinate_events, "
            b"procrastinate_workers, table_metadata_list, history_schema_evolution"
        )


# --- CPU and connections -----------------------------------------------------------------------


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (with ``children``: also of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": state is fields[0]; utime, stime, cutime, cstime are fields 14-17 of stat.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    total = utime + stime + ((cutime + cstime) if children else 0)
    return total / _ticks()


def server_cpu(server: PostgresServer) -> float:
    """CPU seconds of a whole server: the postmaster with its reaped backends, and every live
    child (backends, background processes)."""
    postmaster = read_pid(server.datadir / "postmaster.pid")
    if postmaster is None:
        return 0.0
    total = process_cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster:
            total += process_cpu(int(entry.name))
    return total


ACTIVITY = b"""
SELECT coalesce(nullif(application_name, ''), backend_type) AS who, count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND application_name <> 'rosetta-bench'
GROUP BY 1
"""


@dataclass
class Sampler:
    """Counts the client connections of the source and the store servers every 100 ms."""

    source_url: str
    store_url: str
    peaks: dict[str, dict[str, int]] = field(default_factory=dict)
    peak_totals: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        urls = {"source": self.source_url, "store": self.store_url}
        conns = {name: store_connect(url) for name, url in urls.items()}
        try:
            while not self.stop.is_set():
                with contextlib.suppress(psycopg.Error):  # a server stopping under it
                    self._sample(conns)
                self.samples += 1
                self.stop.wait(SAMPLE_EVERY)
        finally:
            for conn in conns.values():
                conn.close()

    def _sample(self, conns: dict[str, psycopg.Connection[Any]]) -> None:
        for name, conn in conns.items():
            counts = {str(w): int(c) for w, c in conn.execute(ACTIVITY).fetchall()}
            peak = self.peaks.setdefault(name, {})
            for who, count in counts.items():
                peak[who] = max(peak.get(who, 0), count)
            total = sum(counts.values())
            self.peak_totals[name] = max(self.peak_totals.get(name, 0), total)

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        return {"samples": self.samples, "peak_total": self.peak_totals, "peak_by_app": self.peaks}


# --- workers -----------------------------------------------------------------------------------


def rosetta_script() -> Path:
    script = Path(sys.executable).parent / "rosetta"
    if not script.exists():
        raise SystemExit(f"no rosetta console script beside {sys.executable}: pip install -e .")
    return script


def worker_env(store_url: str, tmp: Path, interval: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=SECRET_KEY,
        ROSETTA_LOG_FILE=str(tmp / "logs" / "rosetta.log"),
        ROSETTA_DATA_DIR=str(tmp / "data"),
        ROSETTA_MONITOR_INTERVAL=f"{interval:g}",
    )
    return env


@contextlib.contextmanager
def running_workers(
    count: int, concurrency: int, store_url: str, tmp: Path, interval: float
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `rosetta worker --concurrency C` processes, each running the scheduler too (the
    default). Stopped with SIGTERM (running syncs finish), SIGKILL after 30 s."""
    procs: list[subprocess.Popen[bytes]] = []
    outs = []
    try:
        for w in range(count):
            out = open(tmp / f"worker-{count}-{w}.out", "wb")
            outs.append(out)
            procs.append(
                subprocess.Popen(
                    [str(rosetta_script()), "worker", "--concurrency", str(concurrency)],
                    env=worker_env(store_url, tmp, interval),
                    cwd=tmp,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"worker {proc.pid} did not stop in {STOP_TIMEOUT:g} s: killing it")
                proc.kill()
                proc.wait(10)
        for out in outs:
            out.close()


def wait_workers(store_url: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with store_connect(store_url) as conn:
        while True:
            row = conn.execute(b"SELECT count(*) FROM procrastinate_workers").fetchone()
            if row is not None and int(row[0]) >= len(procs):
                return
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {timeout:g} s")
            time.sleep(0.1)


# --- one round ---------------------------------------------------------------------------------


def store_counters(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The store's WAL position and its tables' row counters (flushed within a second)."""
    conn.execute(b"SELECT pg_stat_force_next_flush()")
    lsn = conn.execute(b"SELECT pg_current_wal_lsn()::text").fetchone()
    rows = conn.execute(
        b"SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
    ).fetchall()
    return {
        "lsn": lsn[0] if lsn else None,
        "tables": {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows},
    }


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, list[int]] = {}
    for name, values in after["tables"].items():
        old = before["tables"].get(name, (0, 0, 0))
        delta = [v - o for v, o in zip(values, old, strict=True)]
        if any(delta):
            out[name] = delta
    return out


ROUND_STATS = b"""
SELECT count(*) AS syncs,
       count(DISTINCT source_id) AS sources,
       count(*) FILTER (WHERE status NOT IN ('ok', 'unchanged', 'partial')) AS failed,
       max(per.n) AS most_per_source,
       min(started_at) AS first_start,
       max(finished_at) AS last_finish,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           AS sync_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           AS sync_p95,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - deferred_at))
           AS queued_p50,
       count(DISTINCT worker) AS workers
FROM sync_runs
JOIN (SELECT source_id AS sid, count(*) AS n FROM sync_runs WHERE id > %(mark)s GROUP BY 1) per
  ON per.sid = sync_runs.source_id
WHERE id > %(mark)s
"""

STATUSES = b"SELECT status, count(*) FROM sync_runs WHERE id > %(mark)s GROUP BY 1 ORDER BY 1"

# Two syncs of one source in the round closer than an interval (less the scheduler's tick): a
# source synced twice in one interval. (The round itself starts by making every source due, so
# the sync before the round does not count.)
TWICE = b"""
SELECT count(*) FROM (
    SELECT started_at - lag(started_at) OVER (PARTITION BY source_id ORDER BY started_at) AS gap
    FROM sync_runs WHERE id > %(mark)s
) g
WHERE gap < make_interval(secs => %(interval)s - 1)
"""


def run_round(
    label: str,
    workers: int,
    args: argparse.Namespace,
    servers: dict[str, PostgresServer],
    store_url: str,
    tmp: Path,
    n_sources: int,
    timeout: float,
) -> dict[str, Any]:
    """Start the workers, make every source due at once, and wait until each has one more
    sync_runs row (or --timeout)."""
    settle_store(store_url)
    source_url = servers["source"].url()
    out: dict[str, Any] = {"label": label, "workers": workers, "concurrency": args.concurrency}
    with running_workers(workers, args.concurrency, store_url, tmp, args.interval) as procs:
        wait_workers(store_url, procs, 60)
        time.sleep(1.0)  # let each worker's first ticks and LISTEN settle
        with store_connect(store_url) as conn:
            row = conn.execute(b"SELECT coalesce(max(id), 0) FROM sync_runs").fetchone()
            mark = int(row[0]) if row else 0
            before = store_counters(conn)
            cpu_before = {name: server_cpu(s) for name, s in servers.items()}
            worker_cpu_before = sum(process_cpu(p.pid) for p in procs)
            sampler = Sampler(source_url, store_url)
            sampler.start()
            started = time.perf_counter()
            conn.execute(b"UPDATE sources SET next_sync_at = NULL")
            due_row = conn.execute(b"SELECT clock_timestamp()").fetchone()
            due_at = due_row[0] if due_row else None
            done = 0
            timed_out = False
            while True:
                row = conn.execute(
                    b"SELECT count(DISTINCT source_id) FROM sync_runs WHERE id > %(mark)s",
                    {"mark": mark},
                ).fetchone()
                done = int(row[0]) if row else 0
                if done >= n_sources:
                    break
                if time.perf_counter() - started > timeout:
                    timed_out = True
                    break
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            worker_cpu = sum(process_cpu(p.pid) for p in procs) - worker_cpu_before
            cpu = {name: server_cpu(s) - cpu_before[name] for name, s in servers.items()}
            activity = sampler.finish()
    # The workers are stopped: nothing more is written; the counters are flushed.
    time.sleep(1.2)
    with store_connect(store_url) as conn:
        after = store_counters(conn)
        wal = conn.execute(
            b"SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (after["lsn"], before["lsn"])
        ).fetchone()
        stats = conn.execute(ROUND_STATS, {"mark": mark}).fetchone()
        statuses = dict(conn.execute(STATUSES, {"mark": mark}).fetchall())
        twice_row = conn.execute(TWICE, {"mark": mark, "interval": args.interval}).fetchone()
    assert stats is not None
    syncs = int(stats[0])
    per_sync = max(1, syncs)
    out.update(
        {
            "seconds_until_all_synced": round(elapsed, 2),
            "timed_out": timed_out,
            "sources_synced": done,
            "syncs": syncs,
            "statuses": {str(k): int(v) for k, v in statuses.items()},
            "most_syncs_of_one_source": int(stats[3] or 0),
            "synced_twice_within_interval": int(twice_row[0]) if twice_row else 0,
            "syncs_per_second": round(done / elapsed, 1) if elapsed else None,
            "ms_per_source_all_in": round(1000 * elapsed / max(1, done), 2),
            "first_sync_started_after_s": (
                round((stats[4] - due_at).total_seconds(), 2) if stats[4] and due_at else None
            ),
            "last_sync_finished_after_s": (
                round((stats[5] - due_at).total_seconds(), 2) if stats[5] and due_at else None
            ),
            "sync_duration_p50_ms": ms(float(stats[6] or 0)),
            "sync_duration_p95_ms": ms(float(stats[7] or 0)),
            "queued_p50_s": round(float(stats[8] or 0), 2),
            "distinct_workers": int(stats[9] or 0),
            "connections": activity,
            "cpu_seconds": {
                "workers": round(worker_cpu, 2),
                "source_server": round(cpu["source"], 2),
                "store_server": round(cpu["store"], 2),
            },
            "per_sync": {
                "worker_cpu_ms": ms(worker_cpu / per_sync),
                "source_server_cpu_ms": ms(cpu["source"] / per_sync),
                "store_server_cpu_ms": ms(cpu["store"] / per_sync),
                "store_wal_bytes": round(float(wal[0]) / per_sync) if wal else None,
            },
            "store_rows_written": counter_delta(before, after),
        }
    )
    out["store_rows_written_per_sync"] = {
        name: [round(v / per_sync, 2) for v in values]
        for name, values in out["store_rows_written"].items()
    }
    log(
        f"{label}: {done:,} of {n_sources:,} sources in {elapsed:.1f} s "
        f"({out['syncs_per_second']}/s), peak connections source "
        f"{activity['peak_total'].get('source')}, store {activity['peak_total'].get('store')}"
    )
    return out


# --- the scheduler, in-process -----------------------------------------------------------------


def time_scheduler(store_url: str, n_sources: int, runs: int) -> dict[str, Any]:
    """schedule_due() with every source due (claims and defers them all), then with none due
    (what every idle tick costs). No worker runs; the deferred jobs are deleted after each."""
    settle_store(store_url)
    full: list[float] = []
    idle: list[float] = []
    with db.connect(store_url) as store:
        for _ in range(runs):
            store.execute(b"UPDATE sources SET next_sync_at = NULL")
            store.commit()
            started = time.perf_counter()
            deferred = scheduler.schedule_due(store, INTERVAL_SECONDS)
            full.append(time.perf_counter() - started)
            if len(deferred) != n_sources:
                raise RuntimeError(f"the scheduler deferred {len(deferred)} of {n_sources}")
            started = time.perf_counter()
            again = scheduler.schedule_due(store, INTERVAL_SECONDS)
            idle.append(time.perf_counter() - started)
            if again:
                raise RuntimeError(f"the scheduler deferred {len(again)} sources twice")
            store.execute(b"DELETE FROM procrastinate_jobs WHERE status = 'todo'")
            store.commit()
    settle_store(store_url)
    return {
        "runs": runs,
        "claim_and_defer_all_ms": [ms(x) for x in full],
        "claim_and_defer_all_median_ms": ms(statistics.median(full)),
        "per_source_us": round(1e6 * statistics.median(full) / max(1, n_sources), 1),
        "idle_tick_median_ms": ms(statistics.median(idle)),
    }


# --- warm syncs in-process, step by step -------------------------------------------------------


def profile_syncs(
    store_url: str, box: SecretBox, count: int, connections: SourceConnections | None
) -> dict[str, Any]:
    """``count`` warm syncs one after the other in this process (as one job of a worker runs
    one), each step timed by wrapping SourceReader's methods and rosetta.sync's steps; with
    ``connections``, reusing source connections as a worker does."""
    steps: dict[str, list[float]] = {}
    originals: list[tuple[Any, str, Any]] = []

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                steps.setdefault(label, []).append(time.perf_counter() - started)

        setattr(owner, name, wrapper)

    timed(sync_module, "open_reader", "source connect (open_reader)")
    timed(SourceReader, "publication", "source catalog (fingerprints)")
    timed(SourceReader, "close", "source close")
    timed(sync_module, "_tracked", "store: tracking rows read")
    timed(sync_module, "record_sync", "store: record_sync")
    timed(sync_module, "_end_read_transaction", "store: end read transaction")
    limits = SourceLimits()
    totals: list[float] = []
    try:
        with db.connect(store_url) as store:
            rows = store.execute(
                b"SELECT id FROM sources ORDER BY id LIMIT %s", (max(1, count),)
            ).fetchall()
            store.rollback()
            run = SyncRun.here("benchmark")
            for (source_id,) in rows:
                started = time.perf_counter()
                source = repository.source_by_id(store, int(source_id))
                store.rollback()
                sync_module.sync_source(
                    store, source, box, limits=limits, run=run, connections=connections
                )
                totals.append(time.perf_counter() - started)
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)
    out: dict[str, Any] = {"syncs": len(totals), "total_median_ms": ms(statistics.median(totals))}
    accounted = 0.0
    for label, values in steps.items():
        out[f"{label} (median ms)"] = ms(statistics.median(values))
        accounted += statistics.median(values)
    out["rest: lock, other reads, commit, Python (median ms)"] = ms(
        statistics.median(totals) - accounted
    )
    return out


# --- report ------------------------------------------------------------------------------------


def environment(servers: dict[str, PostgresServer]) -> dict[str, Any]:
    with psycopg.connect(servers["source"].url(), autocommit=True) as conn:
        row = conn.execute(b"SHOW server_version").fetchone()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "psycopg": psycopg.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "source_server_settings": SOURCE_SETTINGS,
        "store_server_settings": STORE_SETTINGS,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def render(rounds: list[dict[str, Any]]) -> str:
    header = (
        "| round | seconds | syncs/s | ms/source | sync p50/p95 ms | most per source "
        "| peak source conns | peak store conns | CPU ms/sync worker/source/store |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rounds:
        c = r["connections"]["peak_total"]
        p = r["per_sync"]
        lines.append(
            f"| {r['label']} | {r['seconds_until_all_synced']:.1f} | {r['syncs_per_second']} "
            f"| {r['ms_per_source_all_in']} | {r['sync_duration_p50_ms']:.0f} / "
            f"{r['sync_duration_p95_ms']:.0f} | {r['most_syncs_of_one_source']} "
            f"| {c.get('source', 0)} | {c.get('store', 0)} "
            f"| {p['worker_cpu_ms']:.1f} / {p['source_server_cpu_ms']:.1f} / "
            f"{p['store_server_cpu_ms']:.1f} |"
        )
    return "\n".join(lines)


def verdicts(
    warm: list[dict[str, Any]], args: argparse.Namespace, n_sources: int
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = [
        {
            "name": "every round ran",
            "value": f"{len(warm)} warm rounds of {len(args.workers)}",
            "target": "all (a cold round that did not finish leaves none)",
            "pass": len(warm) == len(args.workers),
            "binding": True,
        }
    ]
    most = max(warm, key=lambda r: r["workers"]) if warm else None
    for r in warm:
        checks.append(
            {
                "name": f"{r['workers']} worker(s): every source synced within one interval",
                "value": f"{r['sources_synced']:,} of {n_sources:,} in "
                f"{r['seconds_until_all_synced']:.1f} s",
                "target": f"all within {args.interval:g} s",
                "pass": r["sources_synced"] == n_sources
                and r["seconds_until_all_synced"] <= args.interval,
                "binding": r is most,
            }
        )
        # What QueueOptions.store_connections (and ROSETTA_WORKER_CONCURRENCY's help) promise:
        # a worker's sync pool (concurrency + 1 for the scheduler's tick), procrastinate's pool
        # (QUEUE_POOL) and procrastinate's LISTEN connection, outside it.
        documented = r["workers"] * QueueOptions(concurrency=args.concurrency).store_connections
        peak = r["connections"]["peak_total"].get("store", 0)
        by_app = r["connections"]["peak_by_app"].get("store", {})
        checks.append(
            {
                "name": f"{r['workers']} worker(s): store connections within the documented bound",
                "value": f"peak {peak} at once ({by_app})",
                "target": f"<= workers x (concurrency + 1 + {QUEUE_POOL} + 1) = {documented}",
                "pass": peak <= documented,
                "binding": True,
            }
        )
        checks.append(
            {
                "name": f"{r['workers']} worker(s): no source synced twice in an interval",
                "value": f"two syncs of a source under {args.interval:g} s apart: "
                f"{r['synced_twice_within_interval']} (most syncs of one source in the round: "
                f"{r['most_syncs_of_one_source']}; 2 when the round outlasts an interval, and "
                "a source synced early is due again)",
                "target": "0",
                "pass": r["synced_twice_within_interval"] == 0,
                "binding": True,
            }
        )
    return checks


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sources", type=int, default=SOURCES_TARGET)
    parser.add_argument("--databases", type=int, default=5)
    parser.add_argument("--tables-per-source", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="per worker")
    parser.add_argument(
        "--interval", type=float, default=INTERVAL_SECONDS, help="ROSETTA_MONITOR_INTERVAL"
    )
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per round at most")
    parser.add_argument(
        "--cold-timeout", type=float, default=600.0, help="seconds for the cold round at most"
    )
    parser.add_argument("--scheduler-runs", type=int, default=3)
    parser.add_argument("--profile-syncs", type=int, default=300, help="in-process warm syncs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.perf_counter()
    box = SecretBox(SECRET_KEY)
    plan = layout(args.sources, args.databases)
    n_sources = sum(len(p) for p in plan)
    report: dict[str, Any] = {}
    log("starting two throwaway PostgreSQL servers (source, store) ...")
    with (
        ThrowawayPostgres(SOURCE_SETTINGS) as source_pg,
        ThrowawayPostgres(STORE_SETTINGS) as store_pg,
        tempfile.TemporaryDirectory(prefix="rosetta-bench-scale-") as tmpdir,
    ):
        tmp = Path(tmpdir)
        servers = {"source": source_pg, "store": store_pg}
        env = environment(servers)
        log(
            f"building {n_sources:,} publications of {args.tables_per_source} tables in "
            f"{len(plan)} databases ..."
        )
        report["source_setup_seconds"] = round(
            build_sources(servers["source"], plan, args.tables_per_source), 1
        )
        log(f"sources built in {report['source_setup_seconds']} s")
        with psycopg.connect(servers["store"].url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STORE_DB)))
        store_url = servers["store"].url(STORE_DB)
        db.upgrade(store_url)
        report["register_seconds"] = round(
            register_sources(store_url, servers["source"], plan, box), 1
        )
        log(f"{n_sources:,} sources registered in {report['register_seconds']} s")

        report["scheduler"] = time_scheduler(store_url, n_sources, args.scheduler_runs)
        log(f"scheduler: {report['scheduler']}")

        rounds: list[dict[str, Any]] = []
        most = max(args.workers)
        cold = run_round(
            f"cold, {most} workers",
            most,
            args,
            servers,
            store_url,
            tmp,
            n_sources,
            args.cold_timeout,
        )
        cold["cold"] = True
        rounds.append(cold)
        warm: list[dict[str, Any]] = []
        if cold["timed_out"]:
            log("the cold round did not sync every source: no warm round (it would not be warm)")
        for workers in [] if cold["timed_out"] else args.workers:
            result = run_round(
                f"warm, {workers} worker{'s' if workers > 1 else ''}",
                workers,
                args,
                servers,
                store_url,
                tmp,
                n_sources,
                args.timeout,
            )
            warm.append(result)
            rounds.append(result)
        settle_store(store_url)
        if args.profile_syncs:
            report["profile_new_connection_each"] = profile_syncs(
                store_url, box, args.profile_syncs, None
            )
            log(f"in-process warm syncs, new connections: {report['profile_new_connection_each']}")
            shared = SourceConnections(max_idle=args.concurrency)
            try:
                report["profile_shared_connections"] = profile_syncs(
                    store_url, box, args.profile_syncs, shared
                )
            finally:
                shared.close()
            log(f"in-process warm syncs, shared: {report['profile_shared_connections']}")
        report["worker_log_tail"] = worker_log_tail(tmp)
    elapsed = time.perf_counter() - started
    env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    table = render(rounds)
    print(table)
    print()
    checks = verdicts(warm, args, n_sources)
    for c in checks:
        print(
            f"{'PASS' if c['pass'] else 'FAIL'}  {c['name']}: {c['value']} (target {c['target']})"
        )
    print(f"scheduler: {report['scheduler']}")
    print(f"total benchmark time {elapsed:.0f} s")
    report.update(
        {
            "environment": env,
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "sources": n_sources,
            "elapsed_seconds": round(elapsed, 1),
            "rounds": rounds,
            "table": table,
            "verdicts": checks,
        }
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0 if all(c["pass"] for c in checks) else 1


def worker_log_tail(tmp: Path, lines: int = 30) -> str:
    chunks = []
    for path in [*sorted(tmp.glob("worker-*.out")), tmp / "logs" / "rosetta.log"]:
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace").splitlines()
            if text:
                chunks.append(f"--- {path.name}\n" + "\n".join(text[-lines:]))
    return "\n".join(chunks)


if __name__ == "__main__":
    sys.exit(main())
