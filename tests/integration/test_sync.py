"""The sync engine against real PostgreSQL: what a user sees in the store and in the log."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rosetta import sources
from rosetta.catalog import reader
from rosetta.crypto import SecretBox
from rosetta.errors import StoreUnavailableError
from rosetta.summary import ChangedTable
from tests.conftest import requires_pg

pytestmark = pytest.mark.pg_matrix

PUB = "rosetta_publication"

# The "Database Verification" query of the user's document (auto-healing.md), verbatim.
VERIFICATION_SQL = """SELECT 
    t.table_name,
    t.schema_table IS NOT NULL as has_schema,
    h.version_schema,
    h.changes_type
FROM table_metadata_list t
LEFT JOIN history_schema_evolution h ON h.table_metadata_list_id = t.id
WHERE t.table_name = 'test_table';"""  # noqa: W291


# --- helpers --------------------------------------------------------------------------------


def select(store: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows of a query on the store, as dicts; ends the transaction so syncs see a clean conn."""
    with store.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)
        out = cur.fetchall() if cur.description else []
    store.commit()
    return out


def tracked(store: Any, table: str, schema: str = "public") -> dict[str, Any]:
    rows = select(
        store,
        "SELECT * FROM table_metadata_list WHERE schema_name = %s AND table_name = %s",
        (schema, table),
    )
    assert len(rows) == 1, f"{schema}.{table} is tracked {len(rows)} times"
    return rows[0]


def history(store: Any, table: str, schema: str = "public") -> list[dict[str, Any]]:
    return select(
        store,
        "SELECT h.* FROM history_schema_evolution h"
        " JOIN table_metadata_list t ON t.id = h.table_metadata_list_id"
        " WHERE t.schema_name = %s AND t.table_name = %s ORDER BY h.version_schema",
        (schema, table),
    )


def all_history(store: Any) -> list[dict[str, Any]]:
    return select(store, "SELECT *, xmin::text AS xmin FROM history_schema_evolution ORDER BY id")


def catalog(source_db: Any, table: str, schema: str = "public", pub: str = PUB) -> Any:
    """The table's current schema as the source's catalog has it (what Rosetta should store)."""
    snapshot = reader.read_publication(source_db.conn, pub, None)
    return snapshot.tables[(schema, table)].schema_json()


def columns(schema: dict[str, Any]) -> list[str]:
    """Column names in table order (a jsonb object keeps no key order)."""
    return [name for name, _ in sorted(schema.items(), key=lambda kv: kv[1]["ordinal_position"])]


def versions(store: Any, table: str, schema: str = "public") -> list[tuple[int, str]]:
    return [(h["version_schema"], h["changes_type"]) for h in history(store, table, schema)]


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def setup_items(source_db: Any, register: Any, sync: Any) -> Any:
    source_db.sql(
        "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(10), price numeric(10,2),"
        " note text NOT NULL DEFAULT 'n', code integer NOT NULL)"
    )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE items")
    source = register()
    first = sync(source)
    assert first.added == ["items"]
    return source


# --- the document's quick test ----------------------------------------------------------------


def test_quick_test_of_the_document(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql(f"CREATE PUBLICATION {PUB}")
    source = register()
    source_db.sql(
        "CREATE TABLE test_table (id bigint PRIMARY KEY, name varchar(10), price numeric(10,2),"
        " tags integer[], created_at timestamptz DEFAULT now())"
    )
    source_db.sql(f"ALTER PUBLICATION {PUB} ADD TABLE test_table")

    summary = sync(source)

    assert summary.status == "ok"
    assert summary.added == ["test_table"]
    assert "Added new table tracking with schema: test_table (5 columns)" in messages(
        caplog_rosetta
    )
    rows = store.execute(VERIFICATION_SQL).fetchall()
    store.commit()
    assert rows == [("test_table", True, 1, "INITIAL_LOAD")]
    row = tracked(store, "test_table")
    assert row["status"] == "tracked"
    assert row["schema_table"] == catalog(source_db, "test_table")
    assert row["schema_table"]["id"]["column_name"] == "id"
    assert row["schema_table"]["id"]["data_type"] == "BIGINT"
    assert columns(row["schema_table"]) == ["id", "name", "price", "tags", "created_at"]
    [v1] = history(store, "test_table")
    assert (v1["schema_table_old"], v1["changes"]) == ({}, [])
    assert v1["schema_table_new"] == row["schema_table"]
    assert select(store, "SELECT is_publication_enabled, last_sync_status FROM sources") == [
        {"is_publication_enabled": True, "last_sync_status": "ok"}
    ]


# --- healing --------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [None, "{}"], ids=["null", "empty-object"])
def test_heal_a_tracking_row_without_schema(
    source_db: Any,
    store: Any,
    register: Any,
    sync: Any,
    caplog_rosetta: Any,
    stored: str | None,
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2), note text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE orders")
    source = register()
    if stored is None:
        select(
            store,
            "INSERT INTO table_metadata_list (source_id, schema_name, table_name)"
            " VALUES (%s, 'public', 'orders')",
            (source.id,),
        )
    else:
        select(
            store,
            "INSERT INTO table_metadata_list (source_id, schema_name, table_name, schema_table)"
            " VALUES (%s, 'public', 'orders', %s::jsonb)",
            (source.id, stored),
        )

    summary = sync(source)

    assert summary.healed == ["orders"]
    assert summary.added == [] and summary.failed == []
    logged = messages(caplog_rosetta)
    assert "Found table orders without schema, fetching now..." in logged
    assert "Fixed table orders: Added schema and INITIAL_LOAD history (3 columns)" in logged
    row = tracked(store, "orders")
    assert row["schema_table"] == catalog(source_db, "orders")
    assert row["healed_at"] is not None and row["status"] == "tracked"
    assert versions(store, "orders") == [(1, "INITIAL_LOAD")]

    # Healed once: the next sync has nothing to do.
    again = sync(source)
    assert again.unchanged == 1 and not again.wrote_anything


def test_heal_never_rewrites_existing_history(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source = setup_items(source_db, register, sync)
    source_db.sql("ALTER TABLE items ADD COLUMN qty integer")
    assert [c.version for c in sync(source).changed] == [2]
    before = all_history(store)
    assert len(before) == 2

    # The schema is lost (as the seed's bug did), history is not: heal from history.
    select(store, "UPDATE table_metadata_list SET schema_table = NULL")
    healed = sync(source)
    assert healed.healed == ["items"] and healed.changed == []
    assert "Found table items without schema, fetching now..." in messages(caplog_rosetta)
    assert all_history(store) == before
    assert tracked(store, "items")["schema_table"] == catalog(source_db, "items")

    # Lost again while the table changed: the change is appended as v3, v1 and v2 untouched.
    select(store, "UPDATE table_metadata_list SET schema_table = '{}'::jsonb")
    source_db.sql("ALTER TABLE items DROP COLUMN note")
    healed = sync(source)
    assert healed.healed == ["items"]
    after = all_history(store)
    assert after[:2] == before
    assert [(h["version_schema"], h["changes_type"]) for h in after[2:]] == [(3, "DROP COLUMN")]
    assert after[2]["schema_table_old"] == before[1]["schema_table_new"]
    assert after[2]["schema_table_new"] == catalog(source_db, "items")
    assert tracked(store, "items")["schema_table"] == catalog(source_db, "items")


# --- one version per change --------------------------------------------------------------------


CHANGE_CASES = [
    pytest.param(
        ["ALTER TABLE items ADD COLUMN qty integer"],
        "NEW COLUMN",
        lambda old, new: [
            {"type": "NEW COLUMN", "column": "qty", "before": None, "after": new["qty"]}
        ],
        id="new-column",
    ),
    pytest.param(
        ["ALTER TABLE items DROP COLUMN price"],
        "DROP COLUMN",
        lambda old, new: [
            {"type": "DROP COLUMN", "column": "price", "before": old["price"], "after": None}
        ],
        id="drop-column",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN name TYPE varchar(200)"],
        "CHANGES TYPE",
        lambda old, new: [
            {
                "type": "CHANGES TYPE",
                "column": "name",
                "before": "character varying(10)",
                "after": "character varying(200)",
            }
        ],
        id="varchar-length",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN price TYPE numeric(12,2)"],
        "CHANGES TYPE",
        lambda old, new: [
            {
                "type": "CHANGES TYPE",
                "column": "price",
                "before": "numeric(10,2)",
                "after": "numeric(12,2)",
            }
        ],
        id="numeric-precision",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN code TYPE bigint"],
        "CHANGES TYPE",
        lambda old, new: [
            {"type": "CHANGES TYPE", "column": "code", "before": "integer", "after": "bigint"}
        ],
        id="integer-bigint",
    ),
    pytest.param(
        ["ALTER TABLE items RENAME COLUMN name TO title"],
        "RENAME COLUMN",
        lambda old, new: [
            {"type": "RENAME COLUMN", "column": "title", "before": "name", "after": "title"}
        ],
        id="rename-column",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN name SET NOT NULL"],
        "CHANGES NULLABLE",
        lambda old, new: [
            {"type": "CHANGES NULLABLE", "column": "name", "before": True, "after": False}
        ],
        id="set-not-null",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN note DROP NOT NULL"],
        "CHANGES NULLABLE",
        lambda old, new: [
            {"type": "CHANGES NULLABLE", "column": "note", "before": False, "after": True}
        ],
        id="drop-not-null",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN note SET DEFAULT 'x'"],
        "CHANGES DEFAULT",
        lambda old, new: [
            {
                "type": "CHANGES DEFAULT",
                "column": "note",
                "before": "'n'::text",
                "after": "'x'::text",
            }
        ],
        id="set-default",
    ),
    pytest.param(
        [
            "ALTER TABLE items DROP CONSTRAINT items_pkey",
            "ALTER TABLE items ADD PRIMARY KEY (code)",
        ],
        "CHANGES PRIMARY KEY",
        lambda old, new: [
            {"type": "CHANGES PRIMARY KEY", "column": "id", "before": True, "after": False},
            {"type": "CHANGES PRIMARY KEY", "column": "code", "before": False, "after": True},
        ],
        id="primary-key",
    ),
    pytest.param(
        ["ALTER TABLE items ALTER COLUMN name TYPE text, ADD COLUMN qty integer"],
        "MULTIPLE CHANGES",
        lambda old, new: [
            {
                "type": "CHANGES TYPE",
                "column": "name",
                "before": "character varying(10)",
                "after": "text",
            },
            {"type": "NEW COLUMN", "column": "qty", "before": None, "after": new["qty"]},
        ],
        id="multiple-changes",
    ),
]


@pytest.mark.parametrize(("ddl", "changes_type", "expected"), CHANGE_CASES)
def test_each_change_is_one_new_version(
    source_db: Any,
    store: Any,
    register: Any,
    sync: Any,
    caplog_rosetta: Any,
    ddl: list[str],
    changes_type: str,
    expected: Any,
) -> None:
    source = setup_items(source_db, register, sync)
    [v1] = history(store, "items")
    for statement in ddl:
        source_db.sql(statement)

    summary = sync(source)

    assert summary.changed == [ChangedTable("items", 2, changes_type)]
    assert summary.failed == [] and summary.added == []
    v1_again, v2 = history(store, "items")
    assert v1_again == v1
    assert v2["version_schema"] == 2
    assert v2["changes_type"] == changes_type
    assert v2["schema_table_old"] == v1["schema_table_new"]
    new = catalog(source_db, "items")
    assert v2["schema_table_new"] == new
    assert v2["changes"] == expected(v1["schema_table_new"], new)
    assert tracked(store, "items")["schema_table"] == new
    assert any(
        m.startswith(f"Schema change in table items: version 2 ({changes_type}): ")
        for m in messages(caplog_rosetta)
    )
    # The change is recorded once.
    assert sync(source).changed == []
    assert len(history(store, "items")) == 2


def test_new_column_records_the_whole_column(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source = setup_items(source_db, register, sync)
    source_db.sql("ALTER TABLE items ADD COLUMN qty numeric(8,3) NOT NULL DEFAULT 0")
    sync(source)
    change = history(store, "items")[-1]["changes"][0]
    assert change["after"] == {
        "column_name": "qty",
        "data_type": "NUMERIC",
        "full_type": "numeric(8,3)",
        "is_nullable": False,
        "column_default": "0",
        "is_primary_key": False,
        "ordinal_position": 6,
        "attnum": 6,
        "numeric_precision": 8,
        "numeric_scale": 3,
        "character_maximum_length": None,
        "identity": None,
        "generated": None,
        "type_oid": 1700,
        "carried": True,
        "not_carried": None,
        "in_replica_identity": False,
    }


def test_versions_follow_each_other_without_gaps(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source = setup_items(source_db, register, sync)
    steps = [
        ("ALTER TABLE items ADD COLUMN qty integer", "NEW COLUMN"),
        ("ALTER TABLE items RENAME COLUMN qty TO quantity", "RENAME COLUMN"),
        ("ALTER TABLE items ALTER COLUMN quantity TYPE bigint", "CHANGES TYPE"),
        ("SELECT 1", None),
        ("ALTER TABLE items ALTER COLUMN quantity SET DEFAULT 1", "CHANGES DEFAULT"),
        ("ALTER TABLE items DROP COLUMN quantity", "DROP COLUMN"),
        ("ALTER TABLE items ADD COLUMN quantity integer", "NEW COLUMN"),
        ("ALTER TABLE items ALTER COLUMN quantity SET NOT NULL", "CHANGES NULLABLE"),
    ]
    expected = [(1, "INITIAL_LOAD")]
    for statement, kind in steps:
        source_db.sql(statement)
        summary = sync(source)
        if kind is None:
            assert summary.changed == [] and summary.unchanged == 1
            continue
        expected.append((len(expected) + 1, kind))
        assert summary.changed == [ChangedTable("items", *expected[-1])]
    assert versions(store, "items") == expected
    rows = history(store, "items")
    for previous, current in itertools.pairwise(rows):
        assert current["schema_table_old"] == previous["schema_table_new"]
        assert current["schema_table_old"] != current["schema_table_new"]
    assert rows[-1]["schema_table_new"] == catalog(source_db, "items")


# --- identifiers, schemas, publications ---------------------------------------------------------

LONG = "a_table_name_of_exactly_sixty_three_characters_abcdefghijklmnopq"[:63]
LONG_COLUMN = ("column_" * 10)[:63]


def test_awkward_identifiers_and_one_name_in_two_schemas(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    assert len(LONG) == 63 and len(LONG_COLUMN) == 63
    source_db.sql('CREATE SCHEMA sales; CREATE SCHEMA "日本"; CREATE SCHEMA "Big ""Q"" Schema"')
    source_db.sql(
        'CREATE TABLE "we""ird" ("col ""q""" int PRIMARY KEY, "Upper Case" text, "Straße" text)'
    )
    source_db.sql('CREATE TABLE "日本"."日本" ("列" int)')
    source_db.sql('CREATE TABLE "Big ""Q"" Schema"."My Table" ("A b" int)')
    source_db.sql(f'CREATE TABLE "{LONG}" ("{LONG_COLUMN}" int, "{LONG_COLUMN[:-1]}" int)')
    source_db.sql("CREATE TABLE orders (id bigint)")
    source_db.sql("CREATE TABLE sales.orders (id bigint, total numeric(12,2))")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()

    summary = sync(source)

    assert summary.failed == []
    assert sorted(summary.added) == sorted(
        [
            'we"ird',
            "日本.日本",
            'Big "Q" Schema.My Table',
            LONG,
            "orders",
            "sales.orders",
        ]
    )
    logged = messages(caplog_rosetta)
    for line in (
        'Added new table tracking with schema: we"ird (3 columns)',
        "Added new table tracking with schema: 日本.日本 (1 columns)",
        'Added new table tracking with schema: Big "Q" Schema.My Table (1 columns)',
        f"Added new table tracking with schema: {LONG} (2 columns)",
        "Added new table tracking with schema: orders (1 columns)",
        "Added new table tracking with schema: sales.orders (2 columns)",
    ):
        assert line in logged
    rows = select(store, "SELECT schema_name, table_name FROM table_metadata_list ORDER BY id")
    assert sorted((r["schema_name"], r["table_name"]) for r in rows) == sorted(
        [
            ("public", 'we"ird'),
            ("日本", "日本"),
            ('Big "Q" Schema', "My Table"),
            ("public", LONG),
            ("public", "orders"),
            ("sales", "orders"),
        ]
    )
    assert columns(tracked(store, 'we"ird')["schema_table"]) == ['col "q"', "Upper Case", "Straße"]
    assert tracked(store, 'we"ird')["schema_table"]['col "q"']["is_primary_key"] is True
    assert columns(tracked(store, "日本", "日本")["schema_table"]) == ["列"]
    assert columns(tracked(store, LONG)["schema_table"]) == [LONG_COLUMN, LONG_COLUMN[:-1]]
    assert tracked(store, "orders")["id"] != tracked(store, "orders", "sales")["id"]
    assert columns(tracked(store, "orders", "sales")["schema_table"]) == ["id", "total"]

    # Changes land on the right table, named as the user wrote them.
    source_db.sql("ALTER TABLE sales.orders ADD COLUMN paid boolean")
    source_db.sql('ALTER TABLE "we""ird" RENAME COLUMN "Straße" TO "Größe ""2"""')
    source_db.sql('ALTER TABLE "日本"."日本" ALTER COLUMN "列" TYPE bigint')
    changed = sync(source)
    assert sorted((c.table, c.version, c.changes_type) for c in changed.changed) == sorted(
        [
            ("sales.orders", 2, "NEW COLUMN"),
            ('we"ird', 2, "RENAME COLUMN"),
            ("日本.日本", 2, "CHANGES TYPE"),
        ]
    )
    assert versions(store, "orders") == [(1, "INITIAL_LOAD")]
    assert versions(store, "orders", "sales") == [(1, "INITIAL_LOAD"), (2, "NEW COLUMN")]
    assert history(store, 'we"ird')[-1]["changes"] == [
        {"type": "RENAME COLUMN", "column": 'Größe "2"', "before": "Straße", "after": 'Größe "2"'}
    ]
    assert any(
        m.startswith("Schema change in table sales.orders: version 2")
        for m in messages(caplog_rosetta)
    )
    assert changed.unchanged == 3


def test_publication_for_tables_in_schema(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    requires_pg(source_db, 15, "FOR TABLES IN SCHEMA")
    source_db.sql("CREATE SCHEMA sales; CREATE SCHEMA other")
    source_db.sql("CREATE TABLE sales.orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE other.orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLES IN SCHEMA sales")
    source = register()

    assert sync(source).added == ["sales.orders"]

    # A table created in the schema later is in the publication at once.
    source_db.sql("CREATE TABLE sales.refunds (id bigint, amount numeric(10,2))")
    summary = sync(source)
    assert summary.added == ["sales.refunds"]
    assert "Added new table tracking with schema: sales.refunds (2 columns)" in messages(
        caplog_rosetta
    )
    rows = select(store, "SELECT schema_name, table_name FROM table_metadata_list ORDER BY id")
    assert [(r["schema_name"], r["table_name"]) for r in rows] == [
        ("sales", "orders"),
        ("sales", "refunds"),
    ]


def test_partitioned_table(source_db: Any, store: Any, register: Any, sync: Any) -> None:
    source_db.sql(
        "CREATE TABLE events (id bigint, at date, payload text, PRIMARY KEY (id, at))"
        " PARTITION BY RANGE (at)"
    )
    source_db.sql(
        "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO "
        "('2025-01-01')"
    )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE events")
    source_db.sql(
        "CREATE PUBLICATION via_root FOR TABLE events WITH (publish_via_partition_root = true)"
    )
    leaves = register("leaves")
    root = register("root", publication="via_root")

    # Published as its partitions by default, as the partitioned table itself via the root.
    assert sync(leaves).added == ["events_2024"]
    assert sync(root).added == ["events"]
    kinds = select(
        store,
        "SELECT s.name, t.table_name, t.table_kind FROM table_metadata_list t"
        " JOIN sources s ON s.id = t.source_id ORDER BY s.name",
    )
    assert [(r["name"], r["table_name"], r["table_kind"]) for r in kinds] == [
        ("leaves", "events_2024", "r"),
        ("root", "events", "p"),
    ]

    # A new partition joins; a column added to the parent is a change of each table.
    source_db.sql(
        "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO "
        "('2026-01-01')"
    )
    source_db.sql("ALTER TABLE events ADD COLUMN source text")
    summary = sync(leaves)
    assert summary.added == ["events_2025"]
    assert summary.changed == [ChangedTable("events_2024", 2, "NEW COLUMN")]
    assert sync(root).changed == [ChangedTable("events", 2, "NEW COLUMN")]
    assert history(store, "events")[-1]["schema_table_new"] == catalog(
        source_db, "events", pub="via_root"
    )


# --- privileges ------------------------------------------------------------------------------


@pytest.fixture
def reader_role(source_db: Any) -> Iterator[tuple[str, str]]:
    """A LOGIN role with a password that owns nothing and has no grant on any table."""
    name = f"reader_{source_db.name}"
    password = "r3ader pass/word"
    source_db.sql(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
        .format(sql.Identifier(name), sql.Literal(password))
        .as_string(source_db.conn)
    )
    yield name, password
    source_db.sql(
        sql.SQL(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {};"
            " DROP OWNED BY {}; DROP ROLE {}"
        )
        .format(sql.Literal(name), sql.Identifier(name), sql.Identifier(name))
        .as_string(source_db.conn)
    )


def test_table_without_select_grant_is_tracked_from_the_catalog(
    source_db: Any,
    store: Any,
    box: SecretBox,
    sync: Any,
    reader_role: tuple[str, str],
) -> None:
    user, password = reader_role
    source_db.sql(
        "CREATE TABLE secret (id bigint PRIMARY KEY, ssn text NOT NULL, salary numeric(10,2))"
    )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE secret")
    dsn = source_db.server.url(source_db.name, user=user, password=password)
    source = sources.add_source(
        store, box, sources.SourceInput("restricted", sources.parse_dsn(dsn), PUB, None)
    )
    assert source.username == user

    summary = sync(source)

    assert summary.status == "ok" and summary.added == ["secret"]
    row = tracked(store, "secret")
    assert row["has_select_privilege"] is False
    assert row["schema_table"] == catalog(source_db, "secret")
    assert columns(row["schema_table"]) == ["id", "ssn", "salary"]
    assert versions(store, "secret") == [(1, "INITIAL_LOAD")]

    # A grant is a catalog fact, not a schema change: no new version.
    source_db.sql(f'GRANT SELECT ON secret TO "{user}"')
    granted = sync(source)
    assert granted.changed == [] and granted.failed == []
    assert tracked(store, "secret")["has_select_privilege"] is True
    assert versions(store, "secret") == [(1, "INITIAL_LOAD")]


# --- tables without columns ---------------------------------------------------------------------


def test_table_without_columns_is_skipped_until_it_has_one(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE empty_t ()")
    source_db.sql("CREATE TABLE full_t (id int)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE empty_t, full_t")
    source = register()

    summary = sync(source)

    assert summary.skipped == ["empty_t"] and summary.added == ["full_t"]
    assert (
        "Skipping table empty_t: No schema columns found. Table may be empty or inaccessible."
        in messages(caplog_rosetta)
    )
    assert history(store, "empty_t") == []
    assert tracked(store, "empty_t")["schema_table"] is None
    assert sync(source).wrote_anything is False
    assert history(store, "empty_t") == []

    source_db.sql("ALTER TABLE empty_t ADD COLUMN a integer")
    later = sync(source)
    assert later.failed == []
    assert "empty_t" in later.healed
    assert versions(store, "empty_t") == [(1, "INITIAL_LOAD")]
    assert history(store, "empty_t")[0]["schema_table_new"] == catalog(source_db, "empty_t")
    assert tracked(store, "empty_t")["schema_table"] == catalog(source_db, "empty_t")


# --- one failing table ------------------------------------------------------------------------

FAIL_TRIGGER = """
CREATE FUNCTION test_refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT table_name FROM table_metadata_list WHERE id = NEW.table_metadata_list_id)
       = 'bad' THEN
        RAISE EXCEPTION 'the disk refuses table bad';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_history BEFORE INSERT ON history_schema_evolution
    FOR EACH ROW EXECUTE FUNCTION test_refuse_history();
"""


def test_a_failing_table_does_not_stop_the_others(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    for name in ("alpha", "bad", "omega"):
        source_db.sql(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE alpha, bad, omega")
    source = register()
    select(store, FAIL_TRIGGER)

    summary = sync(source)

    assert summary.status == "partial"
    assert summary.added == ["alpha", "omega"]
    assert summary.failed == [("bad", "the disk refuses table bad")]
    assert "Failed to fetch schema for existing table bad: the disk refuses table bad" in messages(
        caplog_rosetta
    )
    bad = tracked(store, "bad")
    assert (bad["status"], bad["last_error"]) == ("error", "the disk refuses table bad")
    assert history(store, "bad") == []
    for name in ("alpha", "omega"):
        assert tracked(store, name)["status"] == "tracked"
        assert versions(store, name) == [(1, "INITIAL_LOAD")]
    assert select(store, "SELECT last_sync_status, last_sync_error FROM sources") == [
        {"last_sync_status": "partial", "last_sync_error": "bad: the disk refuses table bad"}
    ]

    # Still failing: still recorded, the others are still fine.
    source_db.sql("ALTER TABLE alpha ADD COLUMN w int")
    again = sync(source)
    assert again.failed == [("bad", "the disk refuses table bad")]
    assert again.changed == [ChangedTable("alpha", 2, "NEW COLUMN")]

    select(store, "DROP TRIGGER test_refuse_history ON history_schema_evolution")
    fixed = sync(source)
    assert fixed.status == "ok" and fixed.failed == []
    assert fixed.healed == ["bad"]
    bad = tracked(store, "bad")
    assert (bad["status"], bad["last_error"]) == ("tracked", None)
    assert bad["schema_table"] == catalog(source_db, "bad")
    assert versions(store, "bad") == [(1, "INITIAL_LOAD")]
    assert select(store, "SELECT last_sync_status, last_sync_error FROM sources") == [
        {"last_sync_status": "ok", "last_sync_error": None}
    ]


def test_a_failing_change_is_recorded_again_once_it_can_be(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE bad (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE good (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE bad, good")
    source = register()
    sync(source)
    select(store, FAIL_TRIGGER)
    source_db.sql("ALTER TABLE bad ADD COLUMN a text")
    source_db.sql("ALTER TABLE good ADD COLUMN a text")

    summary = sync(source)

    assert summary.failed == [("bad", "the disk refuses table bad")]
    assert summary.changed == [ChangedTable("good", 2, "NEW COLUMN")]
    bad = tracked(store, "bad")
    assert bad["status"] == "error"
    assert columns(bad["schema_table"]) == ["id"]  # the failed change wrote nothing
    assert versions(store, "bad") == [(1, "INITIAL_LOAD")]

    select(store, "DROP TRIGGER test_refuse_history ON history_schema_evolution")
    fixed = sync(source)
    assert fixed.changed == [ChangedTable("bad", 2, "NEW COLUMN")] and fixed.failed == []
    assert tracked(store, "bad")["status"] == "tracked"
    assert history(store, "bad")[-1]["schema_table_new"] == catalog(source_db, "bad")


# --- leaving and rejoining ------------------------------------------------------------------


def test_leaving_and_rejoining_the_publication(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE t (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE stays (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE t, stays")
    source = register()
    sync(source)
    source_db.sql("ALTER TABLE t ADD COLUMN a text")
    sync(source)
    kept = history(store, "t")
    assert len(kept) == 2

    source_db.sql(f"ALTER PUBLICATION {PUB} DROP TABLE t")
    left = sync(source)
    assert left.removed == ["t"] and left.changed == []
    assert "Table t left the publication: marked removed, history kept" in messages(caplog_rosetta)
    row = tracked(store, "t")
    assert row["status"] == "removed" and row["removed_at"] is not None
    assert history(store, "t") == kept
    assert sync(source).removed == []  # removed once

    source_db.sql("ALTER TABLE t ADD COLUMN b integer")
    source_db.sql(f"ALTER PUBLICATION {PUB} ADD TABLE t")
    back = sync(source)
    assert back.rejoined == ["t"]
    assert back.changed == [ChangedTable("t", 3, "NEW COLUMN")]
    assert "Table t is back in the publication" in messages(caplog_rosetta)
    row = tracked(store, "t")
    assert (row["status"], row["removed_at"]) == ("tracked", None)
    now = history(store, "t")
    assert now[:2] == kept
    assert now[2]["schema_table_old"] == kept[1]["schema_table_new"]
    assert now[2]["schema_table_new"] == catalog(source_db, "t")

    # Leaving and coming back unchanged adds no version.
    source_db.sql(f"ALTER PUBLICATION {PUB} DROP TABLE t")
    sync(source)
    source_db.sql(f"ALTER PUBLICATION {PUB} ADD TABLE t")
    again = sync(source)
    assert again.rejoined == ["t"] and again.changed == []
    assert tracked(store, "t")["status"] == "tracked"
    assert history(store, "t") == now


def test_a_dropped_table_is_marked_removed(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE TABLE gone (id bigint)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    source_db.sql("DROP TABLE gone")
    assert sync(source).removed == ["gone"]
    assert tracked(store, "gone")["status"] == "removed"
    assert versions(store, "gone") == [(1, "INITIAL_LOAD")]


# --- a dropped publication --------------------------------------------------------------------


def test_a_dropped_publication_deletes_nothing(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE t (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE t")
    source = register()
    sync(source)
    tables_before = select(store, "SELECT * FROM table_metadata_list ORDER BY id")
    history_before = all_history(store)
    flags = "SELECT is_publication_enabled, last_sync_status FROM sources"
    assert select(store, flags) == [{"is_publication_enabled": True, "last_sync_status": "ok"}]

    source_db.sql(f"DROP PUBLICATION {PUB}")
    summary = sync(source)

    assert summary.publication_exists is False
    assert summary.status == "publication_missing"
    assert not summary.wrote_anything
    assert f"Publication {PUB} does not exist on source shop: skipping it" in messages(
        caplog_rosetta
    )
    assert select(store, flags) == [
        {"is_publication_enabled": False, "last_sync_status": "publication_missing"}
    ]
    assert select(store, "SELECT * FROM table_metadata_list ORDER BY id") == tables_before
    assert all_history(store) == history_before

    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE t")
    back = sync(source)
    assert back.publication_exists is True and back.status == "ok"
    assert back.unchanged == 1 and not back.wrote_anything
    assert select(store, flags) == [{"is_publication_enabled": True, "last_sync_status": "ok"}]


# --- nothing changed -------------------------------------------------------------------------


def test_nothing_changed_writes_nothing(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE SCHEMA sales")
    for i in range(5):
        source_db.sql(f"CREATE TABLE t{i} (id bigint PRIMARY KEY, v varchar(20))")
    source_db.sql("CREATE TABLE sales.t0 (id int)")
    source_db.sql("CREATE TABLE empty_t ()")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    source_db.sql("ALTER TABLE t1 ADD COLUMN w int")
    sync(source)

    def state() -> tuple[Any, ...]:
        return (
            select(
                store,
                "SELECT id, xmin::text AS xmin, updated_at FROM table_metadata_list ORDER BY id",
            ),
            all_history(store),
            # (each sync records when it ran; the source's own row is not rewritten)
            select(store, "SELECT id, updated_at, is_publication_enabled FROM sources"),
        )

    before = state()
    assert len(before[0]) == 7 and len(before[1]) == 7

    summary = sync(source)

    assert summary.unchanged == 7
    assert not summary.wrote_anything and summary.changed == [] and summary.skipped == []
    assert state() == before


def test_a_table_whose_row_is_locked_fails_alone(
    source_db: Any, store: Any, store_url: str, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE bad (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE good (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE bad, good")
    source = register()
    sync(source)
    source_db.sql("ALTER TABLE bad ADD COLUMN a text")
    source_db.sql("ALTER TABLE good ADD COLUMN a text")
    select(store, "SET lock_timeout = '300ms'")
    with psycopg.connect(store_url) as blocker:
        blocker.execute("SELECT 1 FROM table_metadata_list WHERE table_name = 'bad' FOR UPDATE")

        summary = sync(source)

        assert summary.changed == [ChangedTable("good", 2, "NEW COLUMN")]
        assert summary.failed == [("bad", "canceling statement due to lock timeout")]
        assert (
            "Failed to fetch schema for existing table bad: canceling statement due to lock"
            " timeout" in messages(caplog_rosetta)
        )
        blocker.rollback()
    assert versions(store, "bad") == [(1, "INITIAL_LOAD")]
    fixed = sync(source)
    assert fixed.changed == [ChangedTable("bad", 2, "NEW COLUMN")] and fixed.failed == []


def test_the_source_session_settings_do_not_change_recorded_schemas(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE SCHEMA app")
    source_db.sql("CREATE TYPE app.mood AS ENUM ('ok', 'sad')")
    source_db.sql("CREATE TYPE mood AS ENUM ('ok', 'sad')")
    source_db.sql(
        "CREATE TABLE app.people (id serial PRIMARY KEY, m app.mood, pm public.mood,"
        " born date DEFAULT '2024-03-04', seen timestamptz DEFAULT '2024-01-01 12:00+00',"
        " wait interval DEFAULT '1 day 02:00', blob bytea DEFAULT '\\x00ff')"
    )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE app.people")
    source = register()
    sync(source)
    stored = tracked(store, "people", "app")["schema_table"]
    assert stored["m"]["full_type"] == "app.mood"
    assert stored["pm"]["full_type"] == "mood"
    assert stored["id"]["column_default"] == "nextval('app.people_id_seq'::regclass)"
    assert stored["seen"]["column_default"] == "'2024-01-01 12:00:00+00'::timestamp with time zone"

    # A DBA changes the database's settings: the same columns are still the same columns.
    source_db.sql(
        sql.SQL(
            "ALTER DATABASE {} SET search_path = app, public; ALTER DATABASE {} SET timezone ="
            " 'Asia/Tokyo'; ALTER DATABASE {} SET datestyle = 'SQL, DMY';"
            " ALTER DATABASE {} SET intervalstyle = 'iso_8601';"
            " ALTER DATABASE {} SET bytea_output = 'escape'"
        )
        .format(*[sql.Identifier(source_db.name)] * 5)
        .as_string(source_db.conn)
    )
    summary = sync(source)
    assert summary.changed == [] and summary.failed == []
    assert versions(store, "people", "app") == [(1, "INITIAL_LOAD")]
    assert tracked(store, "people", "app")["schema_table"] == stored


def test_losing_the_store_stops_the_sync_and_writes_nothing(
    source_db: Any, store: Any, store_url: str, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE TABLE a (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE b (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE a, b")
    source = register()
    select(
        store,
        """
CREATE FUNCTION test_lose_store() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT table_name FROM table_metadata_list WHERE id = NEW.table_metadata_list_id)
       = 'b' THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_lose_store BEFORE INSERT ON history_schema_evolution
    FOR EACH ROW EXECUTE FUNCTION test_lose_store();
""",
    )
    with pytest.raises(StoreUnavailableError, match="Rosetta's store failed during the sync of"):
        sync(source)
    with psycopg.connect(store_url) as check:
        counts = check.execute(
            "SELECT (SELECT count(*) FROM table_metadata_list),"
            " (SELECT count(*) FROM history_schema_evolution)"
        ).fetchone()
    assert counts == (0, 0)


SEED_COLUMNS = """
SELECT c.column_name::text, json_build_object(
    'column_name', c.column_name, 'data_type', upper(c.data_type),
    'character_maximum_length', c.character_maximum_length,
    'numeric_precision', c.numeric_precision, 'numeric_scale', c.numeric_scale,
    'is_nullable', c.is_nullable, 'column_default', c.column_default,
    'ordinal_position', c.ordinal_position,
    'is_primary_key', EXISTS (
        SELECT 1 FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = c.table_name
          AND k.column_name = c.column_name))
FROM information_schema.columns c
WHERE c.table_schema = 'public' AND c.table_name = %s
"""


def test_heal_from_history_written_in_the_seed_shape(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    """History written by the seed (information_schema's columns, no full type, no attnum) is
    compared column for column: an unchanged table gets no phantom version."""
    source_db.sql(
        "CREATE TABLE legacy (id bigint PRIMARY KEY, code varchar(10) NOT NULL,"
        " flag char(1), price numeric(10,2), qty integer DEFAULT 0, note text,"
        " at timestamptz DEFAULT now())"
    )
    source_db.sql("CREATE TABLE legacy2 (id bigint PRIMARY KEY, code varchar(10))")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE legacy, legacy2")
    source = register()
    for name in ("legacy", "legacy2"):
        seed = dict(source_db.sql(SEED_COLUMNS, (name,)))
        [(table_id,)] = store.execute(
            "INSERT INTO table_metadata_list (source_id, schema_name, table_name)"
            " VALUES (%s, 'public', %s) RETURNING id",
            (source.id, name),
        ).fetchall()
        store.execute(
            "INSERT INTO history_schema_evolution (table_metadata_list_id, version_schema,"
            " changes_type, schema_table_old, schema_table_new)"
            " VALUES (%s, 1, 'INITIAL_LOAD', '{}', %s)",
            (table_id, Jsonb(seed)),
        )
    store.commit()
    source_db.sql("ALTER TABLE legacy2 ALTER COLUMN code TYPE varchar(200)")
    before = all_history(store)

    summary = sync(source)

    assert sorted(summary.healed) == ["legacy", "legacy2"] and summary.failed == []
    assert "Fixed table legacy: Added schema (7 columns); history unchanged" in messages(
        caplog_rosetta
    )
    assert versions(store, "legacy") == [(1, "INITIAL_LOAD")]
    assert tracked(store, "legacy")["schema_table"] == catalog(source_db, "legacy")
    # The real change is recorded, and only it.
    assert versions(store, "legacy2") == [(1, "INITIAL_LOAD"), (2, "CHANGES TYPE")]
    assert history(store, "legacy2")[-1]["changes"] == [
        {
            "type": "CHANGES TYPE",
            "column": "code",
            "before": "character varying(10)",
            "after": "character varying(200)",
        }
    ]
    assert all_history(store)[: len(before)] == before


def test_a_schema_without_history_gets_its_initial_load(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2))")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE orders")
    source = register()
    select(
        store,
        "INSERT INTO table_metadata_list (source_id, schema_name, table_name, schema_table)"
        " VALUES (%s, 'public', 'orders', %s)",
        (source.id, Jsonb(catalog(source_db, "orders"))),
    )

    summary = sync(source)

    assert summary.changed == [ChangedTable("orders", 1, "INITIAL_LOAD")]
    assert "Added INITIAL_LOAD history for table orders (2 columns)" in messages(caplog_rosetta)
    [v1] = history(store, "orders")
    assert (v1["schema_table_old"], v1["schema_table_new"]) == ({}, catalog(source_db, "orders"))


def test_a_name_with_a_line_break_is_one_log_line(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql('CREATE TABLE "two\nlines" ("a\tb" int)')
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    assert sync(source).added == ["two\nlines"]
    assert "Added new table tracking with schema: two\\nlines (1 columns)" in messages(
        caplog_rosetta
    )
    assert list(tracked(store, "two\nlines")["schema_table"]) == ["a\tb"]
    source_db.sql('ALTER TABLE "two\nlines" RENAME COLUMN "a\tb" TO "c\rd"')
    assert sync(source).changed == [ChangedTable("two\nlines", 2, "RENAME COLUMN")]
    assert all("\n" not in m and "\r" not in m for m in messages(caplog_rosetta))


def test_a_table_dropped_and_created_again_is_compared_by_column_name(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    source_db.sql("DROP TABLE t")
    source_db.sql("CREATE TABLE t (name text, id bigint PRIMARY KEY, extra int)")
    summary = sync(source)
    assert summary.changed == [ChangedTable("t", 2, "NEW COLUMN")]
    assert [c["column"] for c in history(store, "t")[-1]["changes"]] == ["extra"]


def test_a_full_compare_sees_what_a_fingerprint_cannot(
    source_db: Any, store: Any, box: SecretBox, register: Any, sync: Any
) -> None:
    """A renamed sequence changes how a column's default reads, not the catalog facts
    fingerprinted: only a full compare (refresh --full, and every Nth monitor cycle) records it."""
    from rosetta.store import repository
    from rosetta.sync import sync_source

    source_db.sql("CREATE SEQUENCE ids")
    source_db.sql("CREATE TABLE people (id bigint PRIMARY KEY DEFAULT nextval('ids'))")
    source_db.sql("CREATE TABLE other (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    before = all_history(store)
    tracking = select(store, "SELECT id, xmin::text AS xmin FROM table_metadata_list ORDER BY id")

    fresh = repository.source_by_id(store, source.id)
    full_unchanged = sync_source(store, fresh, box, full=True)
    assert full_unchanged.unchanged == 2 and not full_unchanged.wrote_anything
    assert all_history(store) == before
    assert (
        select(store, "SELECT id, xmin::text AS xmin FROM table_metadata_list ORDER BY id")
        == tracking
    )

    source_db.sql("ALTER SEQUENCE ids RENAME TO person_ids")
    assert sync(source).changed == []  # the fingerprint cannot see it
    full = sync_source(store, repository.source_by_id(store, source.id), box, full=True)
    assert full.changed == [ChangedTable("people", 2, "CHANGES DEFAULT")]
    [change] = history(store, "people")[-1]["changes"]
    assert (change["column"], change["before"], change["after"]) == (
        "id",
        "nextval('ids'::regclass)",
        "nextval('person_ids'::regclass)",
    )


def test_every_nth_monitor_cycle_is_a_full_compare(
    source_db: Any, store_url: str, box: SecretBox, register: Any, caplog_rosetta: Any
) -> None:
    from rosetta.monitor import Monitor

    source_db.sql("CREATE TABLE t (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    register()
    monitor = Monitor(store_url, box, full_every=2)
    for _ in range(4):
        monitor.run_cycle()
    starts = [
        r.getMessage()
        for r in caplog_rosetta.records
        if r.getMessage().startswith("Starting schema monitoring cycle")
    ]
    assert (
        starts
        == ["Starting schema monitoring cycle", "Starting schema monitoring cycle (full compare)"]
        * 2
    )


def test_a_column_list_limits_the_schema_to_the_columns_carried(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    """With a publication's column list (PostgreSQL 15+), the pipeline carries those columns
    only: every column is recorded, the others marked not carried, and widening the list is a
    new version."""
    requires_pg(source_db, 15, "a publication's column list")
    source_db.sql("CREATE TABLE people (id bigint PRIMARY KEY, email text, secret text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE people (id, email)")
    source = register()
    assert sync(source).added == ["people"]
    schema = tracked(store, "people")["schema_table"]
    assert columns(schema) == ["id", "email", "secret"]
    assert [schema[c]["carried"] for c in ("id", "email", "secret")] == [True, True, False]
    assert schema["secret"]["not_carried"] == "column_list"

    source_db.sql(f"ALTER PUBLICATION {PUB} SET TABLE people (id, email, secret)")
    summary = sync(source)
    assert summary.changed == [ChangedTable("people", 2, "CHANGES CARRIED")]
    [change] = history(store, "people")[-1]["changes"]
    assert (change["column"], change["before"], change["after"]) == ("secret", False, True)
    assert sync(source).unchanged == 1
