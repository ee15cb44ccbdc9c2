"""A seeded random DDL generator over a handful of tables of a source database: what a new user
tries (columns added, dropped, renamed and retyped, keys, replica identities, generated and
identity columns, publication column lists and row filters, a partitioned table, renamed tables,
types and schemas, quoted identifiers), each step one statement or a small group.

A group runs in one transaction: one failing statement rolls the group back and counts as a
user's mistake. Every attempt is kept with its result, for a failure report. The generator reads
the catalog before each step instead of modelling it, so what it picks always exists.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

PUBLICATION = "rosetta_publication"
MAX_TABLES = 6

TABLE_NAMES = ["orders", "Mixed Case", 'odd "quoted" table', "people", "items", "with space"]
COLUMN_NAMES = [
    "a",
    "b",
    "note",
    "amount",
    "qty",
    "tags",
    "flag",
    "at",
    "doc",
    "big",
    "Mixed Col",
    "with space",
    'say "hi"',
    "UPPER",
]
TYPE_NAMES = ["mood", "Mood Type", "feeling"]
SCHEMA_NAMES = ["types", "Type Schema", 'ty"pes']
ENUM_LABELS = ["sad", "ok", "happy"]

INT_OIDS = {20, 21, 23}
NUMERIC_OID = 1700
JSON_OIDS = {114, 3802}
BOOL_OID = 16


@dataclass(frozen=True)
class Column:
    name: str
    attnum: int
    type_oid: int
    type_text: str
    typtype: str  # b base, e enum, d domain
    category: str  # pg_type.typcategory
    not_null: bool
    has_default: bool
    identity: str  # '', 'a', 'd'
    generated: str  # '', 's', 'v'


@dataclass(frozen=True)
class Table:
    oid: int
    name: str
    kind: str  # r or p
    published: bool
    columns: tuple[Column, ...]
    partition_key: frozenset[str]
    primary_key: str | None  # constraint name

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier("public", self.name)


@dataclass
class Attempt:
    step: int
    statements: list[str]
    error: str | None = None

    def render(self) -> str:
        result = "ok" if self.error is None else f"FAILED: {self.error}"
        lines = [f"step {self.step}: {result}"]
        lines += [f"    {text};" for text in self.statements]
        return "\n".join(lines)


Statement = sql.SQL | sql.Composed


@dataclass
class DdlFuzzer:
    conn: psycopg.Connection[Any]  # autocommit, superuser
    rng: random.Random
    major: int
    attempts: list[Attempt] = field(default_factory=list)
    failures: int = 0
    _enum_oid: int = 0
    _domain_oid: int = 0
    _counter: int = 0

    # --- set-up -------------------------------------------------------------------------------

    def create_publication(self) -> None:
        self.run(0, [sql.SQL("CREATE PUBLICATION {} WITH (publish = 'insert')").format(_pub())])

    def setup(self) -> None:
        """The starting tables, types and publication members (after the slot exists)."""
        types = sql.Identifier("types")
        mood = sql.Identifier("types", "mood")
        labels = sql.SQL(", ").join(sql.Literal(label) for label in ENUM_LABELS)
        statements: list[Statement] = [
            sql.SQL("CREATE SCHEMA {}").format(types),
            sql.SQL("CREATE TYPE {} AS ENUM ({})").format(mood, labels),
            sql.SQL("CREATE DOMAIN {} AS int CHECK (VALUE > 0)").format(
                sql.Identifier("public", "posint")
            ),
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, note varchar(20), amount numeric(10,2),"
                " mood {}, created timestamptz DEFAULT now())"
            ).format(sql.Identifier("public", "orders"), mood),
            sql.SQL(
                "CREATE TABLE {} ({} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                " {} text, {} int, doc jsonb)"
            ).format(
                sql.Identifier("public", "Mixed Case"),
                sql.Identifier("Id"),
                sql.Identifier("with space"),
                sql.Identifier('say "hi"'),
            ),
            sql.SQL("CREATE TABLE {} (k public.posint NOT NULL, tags text[], flag bool)").format(
                sql.Identifier("public", 'odd "quoted" table')
            ),
            *self._partitioned("events"),
            sql.SQL("CREATE TABLE {} (id int, name text NOT NULL, born date)").format(
                sql.Identifier("public", "people")
            ),
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}, {}, {}, {}").format(
                _pub(),
                sql.Identifier("public", "orders"),
                sql.Identifier("public", "Mixed Case"),
                sql.Identifier("public", 'odd "quoted" table'),
                sql.Identifier("public", "events"),
            ),
        ]
        if not self.run(0, statements):
            raise AssertionError(f"the fuzzer's set-up failed: {self.attempts[-1].render()}")
        self._enum_oid = self._scalar("SELECT 'types.mood'::regtype::oid")
        self._domain_oid = self._scalar("SELECT 'public.posint'::regtype::oid")

    def _partitioned(self, name: str) -> list[Statement]:
        root = sql.Identifier("public", name)
        return [
            sql.SQL(
                "CREATE TABLE {} (k int NOT NULL, at timestamptz, total int) PARTITION BY RANGE (k)"
            ).format(root),
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO (0)").format(
                sql.Identifier("public", f"{name}_neg"), root
            ),
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (0) TO (MAXVALUE)").format(
                sql.Identifier("public", f"{name}_pos"), root
            ),
        ]

    # --- running ------------------------------------------------------------------------------

    def run(self, step: int, statements: list[Statement]) -> bool:
        """Run a group in one transaction; a failure rolls it back and is counted."""
        attempt = Attempt(step, [s.as_string(self.conn) for s in statements])
        self.attempts.append(attempt)
        try:
            with self.conn.transaction():
                for statement in statements:
                    self.conn.execute(statement)
        except psycopg.Error as exc:
            attempt.error = str(exc).strip().splitlines()[0]
            self.failures += 1
            return False
        return True

    def step(self, step: int, tables: list[Table] | None = None) -> Attempt:
        """One random statement or group on ``tables`` (what :meth:`tables` read last, if the
        catalog has not changed since; read now if not given)."""
        if tables is None:
            tables = self.tables()
        ops = self._ops()
        weights = [weight for _, weight in ops]
        for _ in range(20):
            (op, _weight) = self.rng.choices(ops, weights)[0]
            statements = op(tables)
            if statements:
                self.run(step, statements)
                return self.attempts[-1]
        self.run(step, [sql.SQL("SELECT 1")])
        return self.attempts[-1]

    def _ops(self) -> list[tuple[Callable[[list[Table]], list[Statement]], int]]:
        ops: list[tuple[Callable[[list[Table]], list[Statement]], int]] = [
            (self.add_column, 12),
            (self.drop_column, 6),
            (self.rename_column, 5),
            (self.retype_column, 8),
            (self.not_null, 5),
            (self.default, 4),
            (self.add_primary_key, 5),
            (self.drop_primary_key, 3),
            (self.replica_identity, 7),
            (self.add_generated, 5),
            (self.add_identity, 3),
            (self.membership, 6),
            (self.via_root, 3),
            (self.recreate_table, 2),
            (self.rename_table, 2),
            (self.rename_enum, 2),
            (self.rename_type_schema, 2),
            (self.drop_all_columns, 2),
            (self.create_table, 2),
        ]
        if self.major >= 15:
            ops += [(self.column_list, 5), (self.row_filter, 3), (self.set_tables, 2)]
        if self.major >= 18:
            ops += [(self.publish_generated, 3)]
        return ops

    # --- the catalog --------------------------------------------------------------------------

    def _scalar(self, query: str, params: Any = None) -> Any:
        row = self.conn.execute(query.encode(), params).fetchone()
        assert row is not None
        return row[0]

    def tables(self) -> list[Table]:
        """The user's tables in public (partitions left out), as the catalog has them now."""
        rows = self.conn.execute(
            b"SELECT c.oid::bigint, c.relname::text, c.relkind::text,"
            b" EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p"
            b"   ON p.oid = pr.prpubid WHERE p.pubname = %s AND pr.prrelid = c.oid),"
            b" (SELECT conname::text FROM pg_constraint"
            b"   WHERE conrelid = c.oid AND contype = 'p'),"
            b" COALESCE((SELECT json_agg(json_build_array(a.attname::text, a.attnum::int,"
            b"     a.atttypid::bigint, format_type(a.atttypid, a.atttypmod), t.typtype::text,"
            b"     t.typcategory::text, a.attnotnull, a.atthasdef, a.attidentity::text,"
            b"     a.attgenerated::text) ORDER BY a.attnum)"
            b"   FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            b"   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'),"
            b" ARRAY(SELECT a.attname::text FROM pg_partitioned_table pt"
            b"   JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = ANY (pt.partattrs)"
            b"   WHERE pt.partrelid = c.oid)"
            b" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            b" WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            b" ORDER BY c.relname",
            (PUBLICATION,),
        ).fetchall()
        return [
            Table(
                oid,
                name,
                kind,
                published,
                tuple(Column(*column) for column in columns),
                frozenset(key),
                pk,
            )
            for oid, name, kind, published, pk, columns, key in rows
        ]

    def _type_ident(self, oid: int) -> sql.Identifier:
        return sql.Identifier(*self._type_names(oid))

    def _type_names(self, oid: int) -> tuple[str, str]:
        schema, name = self.conn.execute(
            b"SELECT n.nspname::text, t.typname::text FROM pg_type t"
            b" JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = %s",
            (oid,),
        ).fetchone() or ("", "")
        return (str(schema), str(name))

    # --- values -------------------------------------------------------------------------------

    def value(self, column: Column) -> sql.Composable:
        """A literal that fits the column's type (an untyped literal: PostgreSQL coerces it)."""
        if column.typtype == "d":
            return sql.Literal(str(self.rng.choice([1, 5])))
        if column.typtype == "e":
            return sql.Literal(self.rng.choice(ENUM_LABELS))
        if column.category == "A":
            return sql.Literal("{}")
        if column.type_oid in INT_OIDS:
            return sql.Literal(str(self.rng.choice([-3, 1, 2])))
        if column.type_oid == NUMERIC_OID:
            return sql.Literal("0")
        if column.type_oid in JSON_OIDS:
            return sql.Literal('{"k": 1}')
        if column.type_oid == BOOL_OID:
            return sql.Literal("true")
        if column.category == "S":
            return sql.Literal("x")
        if column.category == "D":
            return sql.Literal("2024-05-06 07:08:09+00")
        return sql.NULL

    def insert(self, table: Table) -> Statement:
        """An INSERT of one row that fits the table (generated and identity columns left to
        their defaults), returning the partition it went to."""
        columns = [c for c in table.columns if not c.generated and not c.identity]
        if not columns:
            return sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING tableoid::bigint").format(
                table.ident
            )
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING tableoid::bigint").format(
            table.ident,
            sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            sql.SQL(", ").join(self.value(c) for c in columns),
        )

    # --- random picks -------------------------------------------------------------------------

    def _type(self) -> sql.Composable:
        choice = self.rng.randrange(15)
        if choice == 0:
            return sql.SQL("varchar({})").format(sql.Literal(self.rng.choice([1, 10, 255])))
        if choice == 1:
            p = self.rng.choice([5, 10, 18])
            return sql.SQL("numeric({}, {})").format(
                sql.Literal(p), sql.Literal(self.rng.randrange(p))
            )
        if choice == 2:
            return sql.SQL("int[]")
        if choice == 3:
            return sql.SQL("varchar(8)[]")
        if choice == 4:
            return self._type_ident(self._enum_oid)
        if choice == 5:
            return sql.SQL("{}[]").format(self._type_ident(self._enum_oid))
        if choice == 6:
            return self._type_ident(self._domain_oid)
        plain = ["text", "int", "bigint", "bool", "timestamptz", "jsonb", "numeric", "smallint"]
        return sql.SQL(plain[choice - 7])

    def _new_name(self, taken: set[str], pool: list[str]) -> str:
        free = [name for name in pool if name not in taken]
        if free and self.rng.random() < 0.9:
            return self.rng.choice(free)
        self._counter += 1
        return f"{self.rng.choice(pool)}_{self._counter}"

    def _table(self, tables: list[Table], **where: bool) -> Table | None:
        found = [
            t
            for t in tables
            if all(
                (t.kind == "r") == v if k == "plain" else (t.published == v)
                for k, v in where.items()
            )
        ]
        return self.rng.choice(found) if found else None

    def _column(self, table: Table | None) -> Column | None:
        if table is None or not table.columns:
            return None
        return self.rng.choice(table.columns)

    # --- the operations: each returns a group of statements, or [] if it has no target ---------

    def add_column(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        name = self._new_name({c.name for c in table.columns}, COLUMN_NAMES)
        parts: list[sql.Composable] = [
            sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                table.ident, sql.Identifier(name), self._type()
            )
        ]
        if self.rng.random() < 0.2:
            parts.append(sql.SQL("NOT NULL"))
        if self.rng.random() < 0.2:
            parts.append(sql.SQL("DEFAULT NULL"))
        return [sql.SQL(" ").join(parts)]

    def drop_column(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        return [
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                table.ident, sql.Identifier(column.name)
            )
        ]

    def rename_column(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        name = self._new_name({c.name for c in table.columns}, COLUMN_NAMES)
        return [
            sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                table.ident, sql.Identifier(column.name), sql.Identifier(name)
            )
        ]

    def retype_column(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        statement = sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
            table.ident, sql.Identifier(column.name), self._type()
        )
        if self.rng.random() < 0.5:
            statement = sql.SQL("{} USING NULL").format(statement)
        return [statement]

    def not_null(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        action = "DROP" if column.not_null and self.rng.random() < 0.7 else "SET"
        return [
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} {} NOT NULL").format(
                table.ident, sql.Identifier(column.name), sql.SQL(action)
            )
        ]

    def default(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        target = sql.SQL("ALTER TABLE {} ALTER COLUMN {}").format(
            table.ident, sql.Identifier(column.name)
        )
        if column.has_default and self.rng.random() < 0.6:
            return [sql.SQL("{} DROP DEFAULT").format(target)]
        return [sql.SQL("{} SET DEFAULT {}").format(target, self.value(column))]

    def add_primary_key(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        columns = [sql.Identifier(column.name)]
        if table.partition_key:
            columns += [sql.Identifier(k) for k in sorted(table.partition_key) if k != column.name]
        statements: list[Statement] = []
        if table.primary_key is not None:
            statements.append(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    table.ident, sql.Identifier(table.primary_key)
                )
            )
        statements.append(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                table.ident, sql.SQL(", ").join(columns)
            )
        )
        return statements

    def drop_primary_key(self, tables: list[Table]) -> list[Statement]:
        with_pk = [t for t in tables if t.primary_key is not None]
        if not with_pk:
            return []
        table = self.rng.choice(with_pk)
        assert table.primary_key is not None
        return [
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                table.ident, sql.Identifier(table.primary_key)
            )
        ]

    def replica_identity(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        setting = self.rng.choice(["DEFAULT", "FULL", "NOTHING", "INDEX", "INDEX"])
        if setting != "INDEX":
            return [
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(table.ident, sql.SQL(setting))
            ]
        column = self._column(table)
        if column is None:
            return []
        columns = [column.name, *sorted(table.partition_key - {column.name})]
        self._counter += 1
        index = f"ri {table.name} {self._counter}"[:60]
        return [
            *(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(
                    table.ident, sql.Identifier(name)
                )
                for name in columns
            ),
            sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
                sql.Identifier(index),
                table.ident,
                sql.SQL(", ").join(sql.Identifier(name) for name in columns),
            ),
            sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(
                table.ident, sql.Identifier(index)
            ),
        ]

    def add_generated(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        name = self._new_name({c.name for c in table.columns}, ["gen", "Gen Col", "twice"])
        ints = [c for c in table.columns if c.type_oid in INT_OIDS and not c.generated]
        texts = [c for c in table.columns if c.type_oid == 25 and not c.generated]
        expr: sql.Composable
        if ints and self.rng.random() < 0.5:
            kind, expr = (
                sql.SQL("bigint"),
                sql.SQL("{} * 2").format(sql.Identifier(self.rng.choice(ints).name)),
            )
        elif texts and self.rng.random() < 0.5:
            kind, expr = (
                sql.SQL("text"),
                sql.SQL("upper({})").format(sql.Identifier(self.rng.choice(texts).name)),
            )
        else:
            kind, expr = sql.SQL("int"), sql.SQL("42")
        how = "VIRTUAL" if self.major >= 18 and self.rng.random() < 0.5 else "STORED"
        return [
            sql.SQL("ALTER TABLE {} ADD COLUMN {} {} GENERATED ALWAYS AS ({}) {}").format(
                table.ident, sql.Identifier(name), kind, expr, sql.SQL(how)
            )
        ]

    def add_identity(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        name = self._new_name({c.name for c in table.columns}, ["ident", "Row Id", "serial"])
        how = self.rng.choice(["ALWAYS", "BY DEFAULT"])
        return [
            sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint GENERATED {} AS IDENTITY").format(
                table.ident, sql.Identifier(name), sql.SQL(how)
            )
        ]

    def membership(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        action = "DROP" if table.published else "ADD"
        return [
            sql.SQL("ALTER PUBLICATION {} {} TABLE {}").format(_pub(), sql.SQL(action), table.ident)
        ]

    def _column_list(self, table: Table) -> sql.Composable:
        if not table.columns:
            return sql.SQL("")
        chosen = self.rng.sample(table.columns, self.rng.randint(1, len(table.columns)))
        chosen.sort(key=lambda c: c.attnum)
        return sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Identifier(c.name) for c in chosen))

    def _readd(self, table: Table, spec: sql.Composable) -> list[Statement]:
        statements: list[Statement] = []
        if table.published:
            statements.append(
                sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(_pub(), table.ident)
            )
        statements.append(
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}{}").format(_pub(), table.ident, spec)
        )
        return statements

    def column_list(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None or not table.columns:
            return []
        return self._readd(table, self._column_list(table))

    def row_filter(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        column = self._column(table)
        if table is None or column is None:
            return []
        test = self.rng.choice(["IS NULL", "IS NOT NULL"])
        spec = sql.SQL(" WHERE ({} {})").format(sql.Identifier(column.name), sql.SQL(test))
        if self.rng.random() < 0.3:
            spec = sql.SQL("{}{}").format(self._column_list(table), spec)
        return self._readd(table, spec)

    def set_tables(self, tables: list[Table]) -> list[Statement]:
        chosen = [t for t in tables if self.rng.random() < 0.7]
        if not chosen:
            return []
        specs = [
            sql.SQL("{}{}").format(
                t.ident, self._column_list(t) if self.rng.random() < 0.4 else sql.SQL("")
            )
            for t in chosen
        ]
        return [
            sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(_pub(), sql.SQL(", ").join(specs))
        ]

    def via_root(self, tables: list[Table]) -> list[Statement]:
        value = self.rng.choice(["true", "false"])
        return [
            sql.SQL("ALTER PUBLICATION {} SET (publish_via_partition_root = {})").format(
                _pub(), sql.SQL(value)
            )
        ]

    def publish_generated(self, tables: list[Table]) -> list[Statement]:
        value = self.rng.choice(["stored", "none"])
        return [
            sql.SQL("ALTER PUBLICATION {} SET (publish_generated_columns = {})").format(
                _pub(), sql.SQL(value)
            )
        ]

    def recreate_table(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables)
        if table is None:
            return []
        statements: list[Statement] = [sql.SQL("DROP TABLE {}").format(table.ident)]
        if table.kind == "p":
            statements += self._partitioned(table.name)
        else:
            statements.append(
                sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text, amount numeric(8,2))")
                .format(table.ident)
            )  # fmt: skip
        if self.rng.random() < 0.7:
            statements.append(
                sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(_pub(), table.ident)
            )
        return statements

    def rename_table(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables, plain=True)
        if table is None:
            return []
        name = self._new_name({t.name for t in tables}, TABLE_NAMES)
        return [sql.SQL("ALTER TABLE {} RENAME TO {}").format(table.ident, sql.Identifier(name))]

    def rename_enum(self, tables: list[Table]) -> list[Statement]:
        schema, current = self._type_names(self._enum_oid)
        name = self._new_name({current}, TYPE_NAMES)
        return [
            sql.SQL("ALTER TYPE {} RENAME TO {}").format(
                sql.Identifier(schema, current), sql.Identifier(name)
            )
        ]

    def rename_type_schema(self, tables: list[Table]) -> list[Statement]:
        schema = self._type_names(self._enum_oid)[0]
        name = self._new_name({schema}, SCHEMA_NAMES)
        return [
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
        ]

    def drop_all_columns(self, tables: list[Table]) -> list[Statement]:
        table = self._table(tables, plain=True)
        if table is None or not table.columns:
            return []
        return [
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(table.ident, sql.Identifier(c.name))
            for c in table.columns
        ]

    def create_table(self, tables: list[Table]) -> list[Statement]:
        if len(tables) >= MAX_TABLES:
            return []
        name = sql.Identifier("public", self._new_name({t.name for t in tables}, TABLE_NAMES))
        return [
            sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, note text)").format(name),
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(_pub(), name),
        ]


def _pub() -> sql.Identifier:
    return sql.Identifier(PUBLICATION)
