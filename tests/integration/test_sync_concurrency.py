"""Many `rosetta monitor --once` and `rosetta refresh` processes at once, on one store.

Real processes, real DDL on many tables between (and during) their runs: the history they write
together must be what one sync after another would have written.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row

from rosetta.catalog import reader
from tests.conftest import TEST_KEY

PUB = "rosetta_publication"
TABLES = 60
ROSETTA = str(Path(sys.executable).with_name("rosetta"))
PROCESS_TIMEOUT = 90.0


def run_all(
    commands: list[list[str]], env: dict[str, str], tmp_path: Path, tag: str, during: Any = None
) -> None:
    """Start every command at once, run ``during()`` meanwhile, wait; each must exit 0."""
    procs: list[tuple[list[str], subprocess.Popen[bytes], Path]] = []
    try:
        for i, args in enumerate(commands):
            out = tmp_path / f"{tag}-{i}.out"
            with out.open("wb") as sink:
                proc = subprocess.Popen(
                    [ROSETTA, *args], env=env, stdout=sink, stderr=subprocess.STDOUT
                )
            procs.append((args, proc, out))
        if during is not None:
            during()
        deadline = time.monotonic() + PROCESS_TIMEOUT
        for args, proc, out in procs:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            assert code == 0, f"rosetta {' '.join(args)} exited {code}:\n{out.read_text()}"
    finally:
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def check_history(store: Any, source_db: Any, sources: list[str]) -> dict[tuple[str, str], int]:
    """The invariants of the history; returns the number of versions of each (source, table)."""
    with store.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT s.name AS source, t.table_name, t.status, t.schema_table,"
            " h.version_schema, h.changes_type, h.schema_table_old, h.schema_table_new"
            " FROM table_metadata_list t JOIN sources s ON s.id = t.source_id"
            " LEFT JOIN history_schema_evolution h ON h.table_metadata_list_id = t.id"
            " ORDER BY s.name, t.table_name, h.version_schema, h.id"
        )
        rows = cur.fetchall()
        cur.execute(
            "SELECT table_metadata_list_id, version_schema, count(*) FROM"
            " history_schema_evolution GROUP BY 1, 2 HAVING count(*) > 1"
        )
        duplicates = cur.fetchall()
    store.commit()
    assert duplicates == []

    current = {
        key[1]: table.schema_json()
        for key, table in reader.read_publication(source_db.conn, PUB, None).tables.items()
    }
    assert len(current) == TABLES
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_table[(row["source"], row["table_name"])].append(row)
    assert set(by_table) == {(s, t) for s in sources for t in current}

    counts = {}
    for (source, table), versions in by_table.items():
        where = f"{source}/{table}"
        assert all(v["status"] == "tracked" for v in versions), where
        assert [v["version_schema"] for v in versions] == list(range(1, len(versions) + 1)), where
        assert versions[0]["changes_type"] == "INITIAL_LOAD", where
        for previous, version in itertools.pairwise(versions):
            assert version["schema_table_old"] != version["schema_table_new"], where
            assert version["schema_table_old"] == previous["schema_table_new"], where
        assert versions[-1]["schema_table_new"] == current[table], where
        assert versions[-1]["schema_table"] == current[table], where
        counts[(source, table)] = len(versions)
    return counts


def ddl_round(source_db: Any, round_no: int, pause: float = 0.0) -> None:
    for i in range(TABLES):
        time.sleep(pause)
        t = f"t{i:02d}"
        if round_no == 1:
            statement = [
                f"ALTER TABLE {t} ADD COLUMN c1 integer",
                f"ALTER TABLE {t} ALTER COLUMN v TYPE varchar(200)",
                f"ALTER TABLE {t} RENAME COLUMN v TO v_renamed",
            ][i % 3]
        elif round_no == 2:
            statement = [
                f"ALTER TABLE {t} ALTER COLUMN n TYPE numeric(12,2)",
                f"ALTER TABLE {t} ALTER COLUMN n SET NOT NULL",
                f"ALTER TABLE {t} ALTER COLUMN n SET DEFAULT 0, DROP COLUMN flag",
            ][i % 3]
        else:
            statement = f"ALTER TABLE {t} ADD COLUMN r{round_no} text"
        source_db.sql(statement)


def test_concurrent_monitors_and_refreshes_write_one_history(
    source_db: Any, store: Any, store_url: str, register: Any, tmp_path: Path
) -> None:
    for i in range(TABLES):
        source_db.sql(
            f"CREATE TABLE t{i:02d} (id bigint PRIMARY KEY, v varchar(10), n numeric(10,2),"
            " flag boolean)"
        )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    register("shop")
    register("mirror")  # the same database again: two sources synced side by side
    names = ["mirror", "shop"]
    env = {
        **os.environ,
        "ROSETTA_DATABASE_URL": store_url,
        "ROSETTA_SECRET_KEY": TEST_KEY,
        "ROSETTA_LOG_FILE": str(tmp_path / "logs" / "app.log"),
        "ROSETTA_MONITOR_CONCURRENCY": "2",
    }
    commands = [
        ["monitor", "--once"],
        ["monitor", "--once"],
        ["monitor", "--once"],
        ["refresh", "shop"],
        ["refresh", "shop"],
        ["refresh", "mirror"],
        ["refresh", "mirror"],
    ]

    # Round 0 races the initial loads; rounds 1 and 2 race one change of every table.
    for round_no in range(3):
        if round_no:
            ddl_round(source_db, round_no)
        run_all(commands, env, tmp_path, f"round{round_no}")
        counts = check_history(store, source_db, names)
        assert set(counts.values()) == {round_no + 1}, "each change must be recorded once"

    # Round 3: the DDL runs while the processes do; a last refresh sees the final catalog.
    run_all(commands, env, tmp_path, "round3", during=lambda: ddl_round(source_db, 3, 0.04))
    run_all([["refresh", "shop"], ["refresh", "mirror"]], env, tmp_path, "final")
    counts = check_history(store, source_db, names)
    assert set(counts.values()) == {4}

    log = (tmp_path / "logs" / "app.log").read_text(encoding="utf-8")
    assert log.count("Schema monitoring cycle completed") == 3 * 4
    assert "Traceback" not in log and " ERROR " not in log
    with store.cursor() as cur:
        cur.execute("SELECT DISTINCT last_sync_status FROM sources")
        assert cur.fetchall() == [("ok",)]
    store.commit()
