"""Benchmark the web app at N tracked tables: the tables API and the source page, over real HTTP.

Run from the project root:

    .venv/bin/python benchmarks/bench_web.py [--tables 10000] [--requests 30]

It starts its own throwaway PostgreSQL (stopped and removed on exit), builds a source database of
N tables in a publication and a migrated store, registers the source and syncs it once, makes an
API token, and serves ``create_app(...)`` with uvicorn on a free 127.0.0.1 port in a background
thread (no monitor). Then, with one keep-alive httpx client per kind of caller, it times
``GET /api/v1/sources/{id}/tables`` (default page, a name filter, a late offset) and the source
page ``/sources/{id}`` (logged in through the real /login form; also filtered and a late page).
Each line is the median, p95 and max of --requests requests after a few warm-up requests, with
PASS/FAIL against the target median. The results are also written as JSON to
benchmarks/results/web_latest.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql

import bench_sync  # benchmarks/ is on sys.path when this file runs
from bench_sync import table_name
from rosetta import sources, tokens
from rosetta.api.app import create_app
from rosetta.catalog.connection import SourceLimits
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer, free_port
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import db, repository
from rosetta.sync import connection_params, sync_source

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "web_latest.json"
PUBLICATION = "rosetta_publication"
SECRET_KEY = "rosetta-benchmark-secret-key"
SOURCE_DB, STORE_DB, SOURCE_NAME = "bench_web_src", "bench_web_store", "benchweb"

TARGET_MEDIAN_MS = 200.0
PER_PAGE = 50  # the API's default limit and the source page's TABLES_PER_PAGE
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


# Autovacuum off so it does not run at random during the timings; the benchmark ANALYZEs the
# source's catalogs and the store's tables where autovacuum would already have done it.
SERVER_SETTINGS = {"autovacuum": "off"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- building the databases ----------------------------------------------------------------


def recreate_database(server: PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def create_source(server: PostgresServer, n_tables: int, n_columns: int) -> float:
    """The source database: ``n_tables`` tables in the publication; returns the seconds."""
    return bench_sync.create_source(server, SOURCE_DB, n_tables, n_columns)


@dataclass
class Fixture:
    store_url: str
    source_id: int
    token: str
    sync_seconds: float


def build_store(server: PostgresServer, box: SecretBox, n_tables: int) -> Fixture:
    """A migrated store with the source registered, synced once, and an API token."""
    recreate_database(server, STORE_DB)
    store_url = server.url(STORE_DB)
    db.upgrade(store_url)
    with db.connect(store_url) as store:
        params = sources.parse_dsn(server.url(SOURCE_DB))
        source = sources.add_source(
            store, box, sources.SourceInput(SOURCE_NAME, params, PUBLICATION, None)
        )
        fresh = repository.source_by_id(store, source.id)
        store.rollback()
        started = time.perf_counter()
        summary = sync_source(store, fresh, box, limits=SourceLimits(connect_timeout=30))
        sync_seconds = time.perf_counter() - started
        if summary.status != "ok" or len(summary.added) != n_tables:
            raise RuntimeError(f"the sync did not add {n_tables} tables: {summary.to_json()}")
        token = tokens.create_token(store, "bench-web", tokens.Role.READ)
    with psycopg.connect(store_url, autocommit=True) as conn:
        # What autovacuum would have done by now after 10,000 inserts.
        conn.execute(b"ANALYZE")
    return Fixture(store_url, source.id, token, sync_seconds)


# --- serving the app -----------------------------------------------------------------------


@contextlib.contextmanager
def serve(store_url: str, box: SecretBox) -> Iterator[str]:
    """The whole app (API and web UI) on http://127.0.0.1:PORT, in a thread; no monitor."""
    settings = Settings(
        database_url=store_url, secret_key=SECRET_KEY, log_file=None, source_connect_timeout=5
    )
    app = create_app(settings, store_url, box)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-bench", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")


def log_in(client: httpx.Client, token: str) -> None:
    """Log in through the real /login form: its CSRF field, then the POST (303 + cookie)."""
    page = client.get("/login")
    page.raise_for_status()
    found = CSRF_RE.search(page.text)
    if found is None:
        raise RuntimeError("no CSRF field on /login")
    response = client.post("/login", data={"token": token, "next": "/", "csrf": found.group(1)})
    if response.status_code != 303 or "rosetta_session" not in client.cookies:
        raise RuntimeError(f"login failed: HTTP {response.status_code}")


# --- timing --------------------------------------------------------------------------------


@dataclass
class Case:
    group: str  # "api" or "page"
    label: str
    path: str
    check: Callable[[httpx.Response], None]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def time_case(client: httpx.Client, case: Case, warmup: int, requests: int) -> dict[str, Any]:
    def one() -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = client.get(case.path)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {case.path}: HTTP {response.status_code}: {response.text}")
        return seconds, response

    for _ in range(warmup):
        _, response = one()
        case.check(response)
    times_ms = []
    for _ in range(requests):
        seconds, response = one()
        times_ms.append(seconds * 1000)
    case.check(response)
    median = statistics.median(times_ms)
    return {
        "group": case.group,
        "label": case.label,
        "path": case.path,
        "requests": requests,
        "median_ms": round(median, 2),
        "p95_ms": round(percentile(times_ms, 95), 2),
        "max_ms": round(max(times_ms), 2),
        "min_ms": round(min(times_ms), 2),
        "bytes": len(response.content),
        "target_ms": TARGET_MEDIAN_MS,
        "pass": median < TARGET_MEDIAN_MS,
    }


def api_check(total: int, first: str | None, count: int) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        body = response.json()
        names = [item["table_name"] for item in body["items"]]
        if body["total"] != total or len(names) != count or (first and names[0] != first):
            raise RuntimeError(
                f"unexpected page: total {body['total']}, {len(names)} items from "
                f"{names[:1]} (wanted {total}, {count} from {first})"
            )

    return check


def page_check(*needles: str) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        missing = [n for n in needles if n not in response.text]
        if missing:
            raise RuntimeError(f"the page lacks {missing}")

    return check


def cases(source_id: int, n_tables: int) -> list[Case]:
    last_offset = max(0, n_tables - PER_PAGE)
    pages = max(1, math.ceil(n_tables / PER_PAGE))
    needle = "bench_0077" if n_tables > 7799 else "bench_0000"
    matching = [i for i in range(n_tables) if needle in table_name(i)]
    api = f"/api/v1/sources/{source_id}/tables"
    page = f"/sources/{source_id}"
    return [
        Case("api", "API tables, default page", api, api_check(n_tables, table_name(0), PER_PAGE)),
        Case(
            "api",
            f"API tables, ?name={needle}",
            f"{api}?name={needle}",
            api_check(len(matching), table_name(matching[0]), min(PER_PAGE, len(matching))),
        ),
        Case(
            "api",
            f"API tables, ?offset={last_offset}",
            f"{api}?offset={last_offset}",
            api_check(n_tables, table_name(last_offset), n_tables - last_offset),
        ),
        Case("page", "source page (Tables tab)", page, page_check(table_name(0), "Tables")),
        Case(
            "page",
            f"source page, ?q={needle}",
            f"{page}?q={needle}",
            page_check(table_name(matching[0])),
        ),
        Case(
            "page",
            f"source page, ?page={pages}",
            f"{page}?page={pages}",
            page_check(table_name(n_tables - 1)),
        ),
    ]


def live_check_ms(store_url: str, source_id: int, box: SecretBox, runs: int) -> float:
    """Informative: the source page's live connection check alone (connect + state query)."""
    with db.connect(store_url) as store:
        source = repository.source_by_id(store, source_id)
    params = connection_params(source, box)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        sources.check_connection(params, PUBLICATION, None, SourceLimits(connect_timeout=5))
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


# --- the report ----------------------------------------------------------------------------


def markdown_table(headers: list[str], body: list[list[str]]) -> str:
    """A Markdown table with its columns padded to line up."""
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for line in body:
        out.append("| " + " | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + " |")
    return "\n".join(out)


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["request", "median", "p95", "max", "bytes", f"target median < {TARGET_MEDIAN_MS:g}"]
    body = [
        [
            r["label"],
            f"{r['median_ms']:.1f} ms",
            f"{r['p95_ms']:.1f} ms",
            f"{r['max_ms']:.1f} ms",
            f"{r['bytes']:,}",
            "PASS" if r["pass"] else "FAIL",
        ]
        for r in rows
    ]
    return markdown_table(headers, body)


def environment(server: PostgresServer) -> dict[str, Any]:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute(b"SHOW server_version").fetchone()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "psycopg": psycopg.__version__,
        "httpx": httpx.__version__,
        "uvicorn": uvicorn.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "server_settings": SERVER_SETTINGS,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tables", type=int, default=10000, help="tables in the publication")
    parser.add_argument("--columns", type=int, default=10, help="columns per table (>= 2)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per line")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per line first")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.columns < 2 or args.tables < PER_PAGE or args.requests < 1 or args.warmup < 0:
        parser.error(f"need --columns >= 2, --tables >= {PER_PAGE}, --requests >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so uvicorn and the throwaway server are stopped.
    signal.signal(signal.SIGTERM, bench_sync.exit_on_sigterm)
    started = time.perf_counter()
    box = SecretBox(SECRET_KEY)
    rows: list[dict[str, Any]] = []
    log("starting a throwaway PostgreSQL ...")
    with ThrowawayPostgres(SERVER_SETTINGS) as server:
        env = environment(server)
        log(f"creating {args.tables:,} tables x {args.columns} columns ...")
        setup_seconds = create_source(server, args.tables, args.columns)
        log(f"source ready in {setup_seconds:.1f}s; migrating the store and syncing ...")
        fixture = build_store(server, box, args.tables)
        log(f"synced {args.tables:,} tables in {fixture.sync_seconds:.1f}s; serving the app ...")
        with serve(fixture.store_url, box) as base_url:
            with (
                httpx.Client(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {fixture.token}"},
                    timeout=60,
                ) as api_client,
                httpx.Client(base_url=base_url, timeout=60) as web_client,
            ):
                log_in(web_client, fixture.token)
                for case in cases(fixture.source_id, args.tables):
                    client = api_client if case.group == "api" else web_client
                    row = time_case(client, case, args.warmup, args.requests)
                    rows.append(row)
                    log(f"{case.label}: median {row['median_ms']:.1f} ms")
        live_ms = live_check_ms(fixture.store_url, fixture.source_id, box, args.requests)
    elapsed = time.perf_counter() - started

    table = render(rows)
    print(
        f"{args.tables:,} tracked tables x {args.columns} columns; {args.requests} timed "
        f"requests per line after {args.warmup} warm-up requests, one keep-alive client each"
    )
    print(table)
    print()
    failed = [r["label"] for r in rows if not r["pass"]]
    for r in rows:
        status = "PASS" if r["pass"] else "FAIL"
        print(
            f"{status}  {r['label']}: median {r['median_ms']:.1f} ms "
            f"(target < {TARGET_MEDIAN_MS:g} ms)"
        )
    print(
        f"note: the source page's live connection check alone (connect + state query) takes "
        f"{live_ms:.1f} ms median; it is part of every source page request"
    )
    print(f"setup: source {setup_seconds:.1f}s, sync {fixture.sync_seconds:.1f}s")
    print(f"total benchmark time {elapsed:.0f} s")

    report = {
        "environment": env,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_seconds": round(elapsed, 1),
        "setup_seconds": round(setup_seconds, 2),
        "sync_seconds": round(fixture.sync_seconds, 2),
        "live_check_median_ms": live_ms,
        "results": rows,
        "table": table,
        "failed": failed,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
