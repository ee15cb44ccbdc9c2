"""Benchmark the API under concurrent readers: throughput, latency, shed load, and health.

Run from the project root:

    .venv/bin/python benchmarks/bench_load.py [--tables 300] [--levels 10 50 200 500]
        [--seconds 10] [--rounds 3]

It starts its own throwaway PostgreSQL (stopped and removed on exit), builds a source of N
tables and a store with the source registered and synced (bench_web.py's helpers), makes a read
token and an admin token, and runs ``rosetta serve --no-monitor --no-webhooks`` on a free
127.0.0.1 port as a subprocess (stopped with SIGTERM by its PID on exit). Then, in each of
--rounds rounds, for each level, that many reader threads call
``GET /api/v1/sources/{id}/tables`` in a loop for --seconds, each on its own keep-alive
connection (http.client), while one thread POSTs ``/api/v1/sources/{id}/refresh`` every second
and another GETs ``/api/v1/health`` every 0.25 s. A reader that gets 503 waits what
``Retry-After`` says, as a client should. Last, it sends a 150 MB body without a token, with a
Content-Length and chunked, and reads the server's memory (VmRSS, and its peak VmHWM) around
it. Results go to benchmarks/results/load_latest.json; see benchmarks/README.md for the
targets. The exit code is 1 when a target fails.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_sync  # benchmarks/ is on sys.path when this file runs
import bench_web
from rosetta import tokens
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import db

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "load_latest.json"
ROSETTA = Path(sys.executable).with_name("rosetta")

CLIENT_TIMEOUT = 30.0  # a request taking longer counts as an error ("timeout")
HEALTH_EVERY = 0.25
REFRESH_EVERY = 1.0
ZERO_ERRORS_UP_TO = 200  # readers: the level up to which no request may fail
BIG_BODY = 150 * 1024 * 1024
log = bench_web.log


# --- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    pid: int


@contextlib.contextmanager
def serve(store_url: str, workdir: Path) -> Iterator[Server]:
    """``rosetta serve`` as a user runs it, without the monitor and webhooks; its output goes to
    a file. Stopped by SIGTERM to its own PID."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=bench_web.SECRET_KEY,
        ROSETTA_LOG_FILE=str(workdir / "app.log"),
        ROSETTA_DATA_DIR=str(workdir / "data"),
        ROSETTA_LOG_LEVEL="WARNING",
    )
    command = [str(ROSETTA), "serve", "--no-monitor", "--no-webhooks", "--port", str(port)]
    with (workdir / "serve.out").open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while get("127.0.0.1", port, "/api/v1/health")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (workdir / "serve.out").read_text(errors="replace")
                raise RuntimeError(f"rosetta serve did not start:\n{output[-3000:]}")
            time.sleep(0.1)
        yield Server(port, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One request on a new connection; (0, b"") when it cannot connect."""
    conn = http.client.HTTPConnection(host, port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def memory_kb(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


# --- the callers ---------------------------------------------------------------------------


@dataclass
class Calls:
    """What one kind of caller saw: each call's status (or error name) and seconds."""

    done: list[tuple[str, float]] = field(default_factory=list)

    def add(self, status: str, seconds: float) -> None:
        self.done.append((status, seconds))  # list.append is atomic: no lock needed

    def statuses(self) -> Counter[str]:
        return Counter(status for status, _ in self.done)

    def seconds(self, status: str) -> list[float]:
        return [seconds for found, seconds in self.done if found == status]


class Caller:
    """A keep-alive HTTP/1.1 connection that reconnects after an error."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str) -> tuple[str, float, str | None]:
        """(status or error name, seconds, Retry-After)."""
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=CLIENT_TIMEOUT
                )
            self.conn.request(method, path, headers=self.headers)
            response = self.conn.getresponse()
            response.read()
            status, retry = str(response.status), response.getheader("Retry-After")
            if response.will_close:
                self.close()
        except TimeoutError:
            status, retry = "timeout", None
            self.close()
        except (OSError, http.client.HTTPException) as exc:
            status, retry = type(exc).__name__, None
            self.close()
        return status, time.perf_counter() - started, retry

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def reader(port: int, token: str, path: str, until: float, calls: Calls) -> None:
    caller = Caller(port, {"Authorization": f"Bearer {token}"})
    try:
        while time.monotonic() < until:
            status, seconds, retry = caller.call("GET", path)
            calls.add(status, seconds)
            if status == "503" and retry is not None:
                time.sleep(min(float(retry), max(0.0, until - time.monotonic())))
    finally:
        caller.close()


def every(
    seconds: float,
    method: str,
    path: str,
    port: int,
    headers: dict[str, str],
    stop: threading.Event,
) -> Calls:
    """Call ``path`` every ``seconds`` (from the start of one call to the next) until ``stop``;
    run in a thread."""
    calls = Calls()
    caller = Caller(port, headers)

    def loop() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                status, took, _ = caller.call(method, path)
                calls.add(status, took)
                stop.wait(max(0.0, seconds - (time.monotonic() - started)))
        finally:
            caller.close()

    threading.Thread(target=loop, daemon=True, name=f"bench-{path}").start()
    return calls


def percentile_ms(values: Sequence[float], pct: float) -> float | None:
    return round(bench_web.percentile(values, pct) * 1000, 1) if values else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One level, once."""

    seconds: float
    calls: Calls
    health: Calls
    refreshes: Calls
    hung: int
    server_cpu: float
    client_cpu: float
    load: float  # the machine's 1-minute load average at the end: other work on the cores


def run_level(
    server: Server, readers: int, seconds: float, tokens_: dict[str, str], paths: dict[str, str]
) -> Run:
    stop = threading.Event()
    port = server.port
    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    health = every(HEALTH_EVERY, "GET", "/api/v1/health", port, {}, stop)
    admin = {"Authorization": f"Bearer {tokens_['admin']}"}
    refreshes = every(REFRESH_EVERY, "POST", paths["refresh"], port, admin, stop)
    calls = Calls()
    started = time.monotonic()
    until = started + seconds
    threads = [
        threading.Thread(
            target=reader, args=(port, tokens_["read"], paths["tables"], until, calls), daemon=True
        )
        for _ in range(readers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, until + 2 * CLIENT_TIMEOUT - time.monotonic()))
    elapsed = time.monotonic() - started
    stop.set()
    time.sleep(2 * HEALTH_EVERY)  # the last probe ends
    return Run(
        seconds=elapsed,
        calls=calls,
        health=health,
        refreshes=refreshes,
        hung=sum(thread.is_alive() for thread in threads),
        server_cpu=cpu_seconds(server.pid) - server_cpu,
        client_cpu=time.process_time() - client_cpu,
        load=os.getloadavg()[0],
    )


def summary(readers: int, runs: list[Run]) -> dict[str, Any]:
    """One level over every round."""
    elapsed = sum(run.seconds for run in runs)
    statuses: Counter[str] = sum((run.calls.statuses() for run in runs), Counter())
    ok = [s for run in runs for s in run.calls.seconds("200")]
    health: Counter[str] = sum((run.health.statuses() for run in runs), Counter())
    health_seconds = [s for run in runs for _, s in run.health.done]
    refreshes: Counter[str] = sum((run.refreshes.statuses() for run in runs), Counter())
    total = sum(statuses.values())
    return {
        "readers": readers,
        "rounds": len(runs),
        "seconds": round(elapsed, 2),
        "requests": total,
        "ok": statuses["200"],
        "shed_503": statuses["503"],
        "errors": {k: v for k, v in statuses.items() if k not in ("200", "503")},
        "hung_readers": sum(run.hung for run in runs),
        "throughput_ok_per_s": round(len(ok) / elapsed, 1),
        "throughput_ok_per_s_by_round": [
            round(len(run.calls.seconds("200")) / run.seconds, 1) for run in runs
        ],
        "p50_ms": percentile_ms(ok, 50),
        "p95_ms": percentile_ms(ok, 95),
        "p99_ms": percentile_ms(ok, 99),
        "max_ms": round(max(ok) * 1000, 1) if ok else None,
        "server_cpu_ms_per_request": round(
            1000 * sum(r.server_cpu for r in runs) / max(1, total), 2
        ),
        "client_cpu_ms_per_request": round(
            1000 * sum(r.client_cpu for r in runs) / max(1, total), 2
        ),
        "load_average_1min_by_round": [round(run.load, 2) for run in runs],
        "health_probes": sum(health.values()),
        "health_not_200": sum(v for k, v in health.items() if k != "200"),
        "health_statuses": dict(health),
        "health_max_ms": round(max(health_seconds) * 1000, 1) if health_seconds else None,
        "refreshes": sum(refreshes.values()),
        "refresh_statuses": dict(refreshes),
    }


def big_body(port: int, pid: int) -> list[dict[str, Any]]:
    """150 MB to POST /api/v1/sources without a token, declared and chunked: the answer, and
    the server's memory around it."""
    block = b"x" * (1024 * 1024)
    out = []
    for kind in ("content-length", "chunked"):
        before = memory_kb(pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.perf_counter()
        try:
            blocks = (block for _ in range(BIG_BODY // len(block)))
            if kind == "chunked":
                conn.request("POST", "/api/v1/sources", body=blocks, encode_chunked=True)
            else:
                conn.putrequest("POST", "/api/v1/sources")
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(BIG_BODY))
                conn.endheaders()
                for chunk in blocks:
                    conn.send(chunk)
            response = conn.getresponse()
            status, body = response.status, response.read()[:200].decode(errors="replace")
        except OSError as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        after = memory_kb(pid)
        out.append(
            {
                "body": kind,
                "bytes": BIG_BODY,
                "status": status,
                "answer": body,
                "seconds": round(time.perf_counter() - started, 2),
                "rss_before_mb": round(before["VmRSS"] / 1024, 1),
                "rss_after_mb": round(after["VmRSS"] / 1024, 1),
                "peak_before_mb": round(before["VmHWM"] / 1024, 1),
                "peak_after_mb": round(after["VmHWM"] / 1024, 1),
            }
        )
    return out


# --- the report ----------------------------------------------------------------------------


def verdicts(levels: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """(target, passed, what was measured)."""
    found: list[tuple[str, bool, str]] = []
    for level in levels:
        n = level["readers"]
        failed = sum(level["errors"].values()) + level["hung_readers"]
        if n <= ZERO_ERRORS_UP_TO:
            bad = failed + level["shed_503"]
            found.append((f"0 errors at {n} readers", bad == 0, f"{bad} errors"))
        else:
            found.append(
                (
                    f"only 200 or 503 + Retry-After at {n} readers",
                    failed == 0,
                    f"{failed} other errors, {level['shed_503']} shed with 503",
                )
            )
        found.append(
            (
                f"health 200 throughout at {n} readers",
                level["health_not_200"] == 0 and level["health_probes"] > 0,
                f"{level['health_not_200']} of {level['health_probes']} probes not 200",
            )
        )
    by_n = {level["readers"]: level for level in levels}
    low, high = min(by_n), ZERO_ERRORS_UP_TO
    if high in by_n and low < high:
        a, b = by_n[low]["throughput_ok_per_s"], by_n[high]["throughput_ok_per_s"]
        found.append((f"throughput at {high} >= at {low}", b >= a, f"{b:g} vs {a:g} req/s"))
    return found


def render(levels: list[dict[str, Any]]) -> str:
    headers = [
        "readers", "requests", "ok req/s", "p50", "p95", "p99", "503 shed", "other errors",
        "health probes", "health not 200", "refreshes by status", "server CPU/req",
    ]  # fmt: skip
    body = [
        [
            str(r["readers"]),
            f"{r['requests']:,}",
            f"{r['throughput_ok_per_s']:.1f}",
            f"{r['p50_ms']} ms",
            f"{r['p95_ms']} ms",
            f"{r['p99_ms']} ms",
            str(r["shed_503"]),
            ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0",
            str(r["health_probes"]),
            str(r["health_not_200"]),
            ", ".join(f"{k}: {v}" for k, v in r["refresh_statuses"].items()),
            f"{r['server_cpu_ms_per_request']} ms",
        ]
        for r in levels
    ]
    return bench_web.markdown_table(headers, body)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tables", type=int, default=300, help="tables in the publication")
    parser.add_argument("--columns", type=int, default=10, help="columns per table (>= 2)")
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[10, 50, 200, 500], help="concurrent readers"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each level")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each level runs (all levels, in turn)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.columns < 2 or args.tables < 1 or min(args.levels) < 1 or max(args.levels) > 2000:
        parser.error("need --columns >= 2, --tables >= 1 and 1 <= --levels <= 2000")
    if not 1 <= args.seconds <= 120 or not 1 <= args.rounds <= 10:
        parser.error("need 1 <= --seconds <= 120 and 1 <= --rounds <= 10")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server and the throwaway PostgreSQL are stopped.
    signal.signal(signal.SIGTERM, bench_sync.exit_on_sigterm)
    started = time.perf_counter()
    box = SecretBox(bench_web.SECRET_KEY)
    log("starting a throwaway PostgreSQL ...")
    with (
        ThrowawayPostgres(bench_web.SERVER_SETTINGS) as pg,
        tempfile.TemporaryDirectory(prefix="rosetta-bench-load-") as tmp,
    ):
        env = bench_web.environment(pg)
        log(f"creating {args.tables:,} tables x {args.columns} columns ...")
        bench_web.create_source(pg, args.tables, args.columns)
        fixture = bench_web.build_store(pg, box, args.tables)
        with db.connect(fixture.store_url) as store:
            admin_token = tokens.create_token(store, "bench-load-admin", tokens.Role.ADMIN)
        tokens_ = {"read": fixture.token, "admin": admin_token}
        paths = {
            "tables": f"/api/v1/sources/{fixture.source_id}/tables",
            "refresh": f"/api/v1/sources/{fixture.source_id}/refresh",
        }
        with serve(fixture.store_url, Path(tmp)) as server:
            log(f"rosetta serve is up on 127.0.0.1:{server.port} (pid {server.pid})")
            run_level(server, 2, 1.0, tokens_, paths)  # warm-up
            runs: dict[int, list[Run]] = {n: [] for n in args.levels}
            for round_ in range(1, args.rounds + 1):
                for n in args.levels:
                    log(f"round {round_}/{args.rounds}: {n} readers for {args.seconds:g} s ...")
                    run = run_level(server, n, args.seconds, tokens_, paths)
                    runs[n].append(run)
                    one = summary(n, [run])
                    log(
                        f"{n} readers: {one['throughput_ok_per_s']} req/s, p95 {one['p95_ms']} "
                        f"ms, {one['shed_503']} shed, errors {one['errors']}, "
                        f"health not 200: {one['health_not_200']}/{one['health_probes']}"
                    )
            levels = [summary(n, runs[n]) for n in args.levels]
            time.sleep(1)
            log("sending 150 MB bodies without a token ...")
            bodies = big_body(server.port, server.pid)
    elapsed = time.perf_counter() - started

    table = render(levels)
    found = verdicts(levels)
    print(
        f"{args.tables:,} tracked tables; {args.rounds} rounds of {args.seconds:g} s per level, "
        f"readers on "
        f"GET {paths['tables']} (keep-alive), a refresh every {REFRESH_EVERY:g} s and a health "
        f"probe every {HEALTH_EVERY:g} s; latencies are of the 200 answers"
    )
    print(table)
    loads = [x for level in levels for x in level["load_average_1min_by_round"]]
    print(
        f"machine load average (1 min) after each run: {min(loads):.1f} to {max(loads):.1f} "
        f"on {os.cpu_count()} CPUs; ok req/s by round: "
        + "; ".join(
            f"{level['readers']}: {level['throughput_ok_per_s_by_round']}" for level in levels
        )
    )
    print()
    for body in bodies:
        print(
            f"150 MB body ({body['body']}), no token: HTTP {body['status']} in "
            f"{body['seconds']} s; server RSS {body['rss_before_mb']} -> {body['rss_after_mb']} MB,"
            f" peak {body['peak_before_mb']} -> {body['peak_after_mb']} MB"
        )
    print()
    for name, passed, measured in found:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {measured}")
    print(f"total benchmark time {elapsed:.0f} s")

    report = {
        "environment": env,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_seconds": round(elapsed, 1),
        "levels": levels,
        "big_bodies": bodies,
        "table": table,
        "verdicts": [{"target": n, "pass": p, "measured": m} for n, p, m in found],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0 if all(passed for _, passed, _ in found) else 1


if __name__ == "__main__":
    sys.exit(main())
