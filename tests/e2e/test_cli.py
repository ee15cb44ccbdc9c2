"""The `rosetta` command as a user runs it: output, log file, exit codes, one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rosetta.pg.server import PostgresServer, free_port, make_reachable_dir
from tests.conftest import TEST_KEY, Cli


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert text in lines[0]


def test_add_refresh_tables_history(cli: Cli, source_db: Any) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    added = cli(
        "source", "add", "shop", "--dsn", source_db.url, "--publication", "rosetta_publication"
    )
    assert added.returncode == 0, added.stderr
    assert "Added source shop" in added.stdout

    source_db.sql(
        "CREATE TABLE test_table (id bigint PRIMARY KEY, name varchar(10), "
        "price numeric(10,2), tags text[], created_at timestamptz DEFAULT now())"
    )
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLE test_table")
    refreshed = cli("refresh", "shop")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "added: 1: test_table" in refreshed.stdout
    log_lines = [line for line in cli.log_file.read_text().splitlines() if "test_table" in line]
    assert any(
        line.endswith("Added new table tracking with schema: test_table (5 columns)")
        for line in log_lines
    ), log_lines

    source_db.sql("ALTER TABLE test_table ALTER COLUMN name TYPE varchar(200)")
    assert cli("refresh", "shop").returncode == 0
    tables = cli("tables", "shop")
    assert tables.returncode == 0
    row = next(line for line in tables.stdout.splitlines() if "test_table" in line)
    table, version, columns, status, _last_change = (cell.strip() for cell in row.split("│")[1:-1])
    assert (table, version, columns, status) == ("test_table", "2", "5", "tracked")

    hist = cli("history", "shop", "test_table")
    assert hist.returncode == 0, hist.stderr
    assert "v1" in hist.stdout and "INITIAL_LOAD" in hist.stdout
    assert "v2" in hist.stdout and "CHANGES TYPE" in hist.stdout
    assert "character varying(10)" in hist.stdout and "character varying(200)" in hist.stdout

    listed = cli("source", "list", "--json")
    assert '"name": "shop"' in listed.stdout
    assert source_db.server.password not in listed.stdout + cli.log_file.read_text()

    removed = cli("source", "remove", "shop", "--yes")
    assert removed.returncode == 0 and "Removed source shop" in removed.stdout
    assert "No sources yet" in cli("source", "list").stdout


def test_errors_are_one_line(cli: Cli, source_db: Any, pg: PostgresServer) -> None:
    assert_one_line_error(cli("refresh", "nope"), 4, "no source named 'nope'")
    assert_one_line_error(cli("tables", "nope"), 4, "no source named 'nope'")

    wrong = source_db.server.url(source_db.name, password="not-the-password")
    result = cli("source", "add", "bad", "--dsn", wrong, "--publication", "p")
    assert_one_line_error(result, 5, "password authentication failed")
    assert "not-the-password" not in result.stderr

    closed = f"postgresql://u:secretpw@127.0.0.1:{free_port()}/db"
    result = cli("source", "add", "down", "--dsn", closed, "--publication", "p")
    assert_one_line_error(result, 5, "cannot connect to 127.0.0.1")
    assert "secretpw" not in result.stderr

    assert_one_line_error(
        cli("source", "add", "x", "--dsn", "nonsense", "--publication", "p"), 2, "invalid --dsn"
    )
    assert_one_line_error(
        cli("source", "add", "bad name!", "--dsn", source_db.url, "--publication", "p"),
        2,
        "invalid source name",
    )

    ok = cli("source", "add", "shop", "--dsn", source_db.url, "--publication", "missing_pub")
    assert ok.returncode == 0 and "does not exist on the source yet" in ok.stdout
    assert_one_line_error(cli("refresh", "shop"), 6, "publication 'missing_pub' does not exist")
    assert_one_line_error(cli("history", "shop", "ghost"), 4, "no tracked table 'ghost'")

    dup = cli("source", "add", "shop", "--dsn", source_db.url, "--publication", "p")
    assert_one_line_error(dup, 1, "already exists")

    # The stored password never goes to another server: a new host needs it typed again.
    elsewhere = f"postgresql://postgres@localhost:{source_db.server.port}/{source_db.name}"
    assert_one_line_error(
        cli("source", "update", "shop", "--dsn", elsewhere), 2, "enter the password again"
    )

    wrong_key = Cli(dict(cli.env, ROSETTA_SECRET_KEY="another-key"), cli.log_file)
    assert_one_line_error(wrong_key("refresh", "shop"), 5, "cannot decrypt")


def test_store_not_migrated_then_upgrade(pg: PostgresServer, tmp_path: Path) -> None:
    name = f"empty_{os.getpid()}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        cli = Cli(
            dict(
                os.environ,
                ROSETTA_DATABASE_URL=pg.url(name),
                ROSETTA_SECRET_KEY=TEST_KEY,
                ROSETTA_LOG_FILE=str(tmp_path / "app.log"),
            ),
            tmp_path / "app.log",
        )
        assert_one_line_error(cli("source", "list"), 3, "rosetta db upgrade")
        assert_one_line_error(cli("monitor", "--once"), 3, "rosetta db upgrade")
        first = cli("db", "upgrade")
        assert first.returncode == 0 and "0001.initial-schema" in first.stdout
        assert "up to date" in cli("db", "upgrade").stdout
        assert cli("source", "list").returncode == 0
        down = Cli(
            dict(cli.env, ROSETTA_DATABASE_URL=f"postgresql://x:y@127.0.0.1:{free_port()}/z"),
            cli.log_file,
        )
        assert_one_line_error(down("source", "list"), 3, "store cannot be reached")
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_embedded_default_store(tmp_path: Path) -> None:
    data_dir = make_reachable_dir("rosetta-embedded-test-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(ROSETTA_DATA_DIR=str(data_dir / "store"), ROSETTA_LOG_FILE=str(tmp_path / "a.log"))
    cli = Cli(env, tmp_path / "a.log")
    try:
        upgraded = cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert "Applied" in upgraded.stdout
        listed = cli("source", "list")
        assert listed.returncode == 0 and "No sources yet" in listed.stdout
        assert (data_dir / "store" / "secret.key").exists() or True
        once = cli("monitor", "--once")
        assert once.returncode == 0, once.stderr
        assert "Starting schema monitoring cycle" in once.stdout
        assert "Schema monitoring cycle completed" in once.stdout
    finally:
        stopped = cli("db", "stop")
        shutil.rmtree(data_dir, ignore_errors=True)
    assert stopped.returncode == 0 and "Stopped the embedded store" in stopped.stdout


def test_no_postgresql_binaries_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_PG_BINDIR=str(tmp_path),
        ROSETTA_DATA_DIR=str(tmp_path / "store"),
        ROSETTA_LOG_FILE=str(tmp_path / "a.log"),
    )
    result = Cli(env, tmp_path / "a.log")("source", "list")
    assert_one_line_error(result, 2, "holds no `postgres` binary: point it at PostgreSQL's bin")
