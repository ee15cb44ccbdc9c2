"""`rosetta tables`, `show` and `history` on what the pipeline carries: the row filter, columns
the stream does not carry and why, and a table whose columns were all dropped."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli


def _row(stdout: str, name: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if f"│ {name} " in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_tables_show_and_history_say_what_the_stream_carries(cli: Cli, source_db: Any) -> None:
    cli.env["COLUMNS"] = "200"
    source_db.sql(
        "CREATE TABLE t (id int PRIMARY KEY, a int, "
        "g int GENERATED ALWAYS AS (a * 2) STORED, secret text)"
    )
    source_db.sql("CREATE TABLE gone (id int, x int)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE t (id, a) WHERE (a > 0), gone")
    added = cli(
        "source", "add", "shop", "--dsn", source_db.url, "--publication", "rosetta_publication"
    )
    assert added.returncode == 0, added.stderr
    assert cli("refresh", "shop").returncode == 0

    listed = cli("tables", "shop")
    assert listed.returncode == 0, listed.stderr
    assert _row(listed.stdout, "t")[3:] == ["tracked", _row(listed.stdout, "t")[4], "(a > 0)"]
    assert _row(listed.stdout, "gone")[-1] == "-"

    shown = cli("show", "shop", "t")
    assert shown.returncode == 0, shown.stderr
    assert "row filter: WHERE (a > 0)" in shown.stdout
    id_, a, g, secret = (_row(shown.stdout, c) for c in ("id", "a", "g", "secret"))
    assert id_[1:] == ["id", "integer", "NOT NULL", "-", "PK, replica", "yes"]
    assert a[-1] == "yes"
    assert g[-1] == "no (generated)" and g[4] == "GENERATED ALWAYS AS ((a * 2)) STORED"
    assert secret[-1] == "no (column list)"
    as_json = json.loads(cli("show", "shop", "t", "--json").stdout)
    assert as_json["row_filter"] == "(a > 0)" and as_json["schema_state"] == "recorded"
    columns = {c["column_name"]: c for c in as_json["columns"]}
    assert columns["g"]["carried"] is False and columns["g"]["not_carried"] == "generated"
    assert columns["secret"]["not_carried"] == "column_list"
    assert columns["id"]["in_replica_identity"] is True and columns["id"]["type_oid"] == 23

    source_db.sql("ALTER TABLE gone DROP COLUMN id, DROP COLUMN x")
    source_db.sql("ALTER PUBLICATION rosetta_publication SET TABLE t (id, a) WHERE (a > 1), gone")
    refreshed = cli("refresh", "shop")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "row filter changed: t" in refreshed.stdout
    assert any(
        line.endswith("Row filter of table t changed: (a > 0) -> (a > 1)")
        for line in cli.log_file.read_text().splitlines()
    )

    listed = cli("tables", "shop")
    gone = _row(listed.stdout, "gone")
    assert gone[1:4] == ["2", "0", "tracked (no columns)"]
    assert _row(listed.stdout, "t")[-1] == "(a > 1)"
    rows = {r["table"]: r for r in json.loads(cli("tables", "shop", "--json").stdout)}
    assert rows["gone"]["schema_state"] == "no_columns" and rows["gone"]["columns"] == 0
    assert rows["t"]["row_filter"] == "(a > 1)" and rows["t"]["schema_state"] == "recorded"

    shown = cli("show", "shop", "gone")
    assert shown.returncode == 0, shown.stderr
    assert "no columns: all were dropped in v2" in shown.stdout
    assert "row filter" not in shown.stdout

    hist = cli("history", "shop", "gone")
    assert "v2" in hist.stdout and "(no columns)" in hist.stdout
    assert "- id integer" in hist.stdout and "- x integer" in hist.stdout
    assert "Row filter: WHERE (a > 1)" in cli("history", "shop", "t").stdout


def test_history_reads_the_new_change_kinds(cli: Cli, source_db: Any) -> None:
    source_db.sql("CREATE TABLE t (id int PRIMARY KEY, a int, secret text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE t (id, a)")
    added = cli(
        "source", "add", "shop", "--dsn", source_db.url, "--publication", "rosetta_publication"
    )
    assert added.returncode == 0, added.stderr
    source_db.sql("ALTER PUBLICATION rosetta_publication SET TABLE t (id)")
    source_db.sql("ALTER TABLE t ALTER COLUMN secret TYPE varchar(20)")
    assert cli("refresh", "shop").returncode == 0
    hist = cli("history", "shop", "t")
    assert hist.returncode == 0, hist.stderr
    assert "~ a: no longer carried by the stream" in hist.stdout
    assert "~ secret: changes type 'text' -> 'character varying(20)'  (not carried)" in hist.stdout
    changes = json.loads(cli("history", "shop", "t", "--json").stdout)[-1]["changes"]
    assert {"type": "CHANGES CARRIED", "column": "a", "before": True, "after": False} in changes
