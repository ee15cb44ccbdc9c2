"""Connect to a source and read the schema of every table its publication carries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row

from rosetta import sqlfile
from rosetta.catalog.connection import ConnectionParams as ConnectionParams
from rosetta.catalog.connection import SourceLimits as SourceLimits
from rosetta.catalog.connection import connect as connect
from rosetta.schema.model import SchemaJson, TableSchema

TableKey = tuple[str, str]

QUERIES = sqlfile.Queries("rosetta.catalog", "queries.sql")


@dataclass(frozen=True, slots=True)
class CatalogTable:
    """One table of the publication. ``columns_text`` (its columns as JSON) is read only for
    the tables a sync needs it for; ``fingerprint`` covers everything Rosetta records."""

    schema_name: str
    table_name: str
    oid: int
    kind: str
    replica_identity: str
    can_select: bool
    column_count: int
    fingerprint: str
    columns_text: str | None = None
    read_error: str | None = None

    @property
    def key(self) -> TableKey:
        return (self.schema_name, self.table_name)

    def schema_json(self) -> SchemaJson:
        if self.read_error is not None:
            raise ValueError(self.read_error)
        if self.columns_text is None:
            raise ValueError(f"the columns of {self.schema_name}.{self.table_name} were not read")
        parsed: SchemaJson = json.loads(self.columns_text)
        return parsed

    def schema(self) -> TableSchema:
        return TableSchema.from_json(self.schema_json())


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    publication_exists: bool
    slot_exists: bool
    wal_level: str
    tables: dict[TableKey, CatalogTable]


def fingerprint(
    oid: int, kind: str, replica_identity: str, can_select: bool, column_digest: str
) -> str:
    """A hash of everything Rosetta records about a table, to skip unchanged ones cheaply."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{oid}|{kind}|{replica_identity}|{can_select}|{column_digest}".encode())
    return digest.hexdigest()


def read_state(
    conn: psycopg.Connection[Any], publication: str, slot: str | None
) -> CatalogSnapshot:
    """The source's publication and slot state, without its tables."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["source_state"], {"publication": publication, "slot": slot})
        row = cur.fetchone()
    assert row is not None
    return CatalogSnapshot(
        bool(row["publication_exists"]), bool(row["slot_exists"]), str(row["wal_level"]), {}
    )


def _for_server(conn: psycopg.Connection[Any], name: str) -> LiteralString:
    """A catalog query for the source's server version: column lists came with PostgreSQL 15,
    so older servers run the ``_pre15`` twin of the query."""
    return QUERIES[name if conn.info.server_version >= 150000 else f"{name}_pre15"]


def read_publication(
    conn: psycopg.Connection[Any], publication: str, slot: str | None, *, columns: bool = True
) -> CatalogSnapshot:
    """Every table of ``publication``: its state and each table's fingerprint in one round trip,
    and, with ``columns``, every table's columns (a second one)."""
    params = {"publication": publication, "slot": slot}
    with conn.pipeline():
        conn.execute(QUERIES["stable_output"])
        state_cur = conn.execute(QUERIES["source_state"], params)
        tables_cur = conn.execute(_for_server(conn, "publication_tables"), params)
    state = state_cur.fetchone()
    assert state is not None
    tables: dict[TableKey, CatalogTable] = {}
    for schema_name, table_name, oid, kind, ident, can_select, count, digest in tables_cur:
        table = CatalogTable(
            schema_name,
            table_name,
            oid,
            kind,
            ident,
            can_select,
            count,
            fingerprint(oid, kind, ident, can_select, digest),
        )
        tables[table.key] = table
    snapshot = CatalogSnapshot(bool(state[0]), bool(state[1]), str(state[2]), tables)
    if columns and tables:
        for table in read_columns(conn, publication, list(tables.values())):
            tables[table.key] = table
    return snapshot


def read_columns(
    conn: psycopg.Connection[Any], publication: str, tables: list[CatalogTable]
) -> list[CatalogTable]:
    """``tables`` with the columns ``publication`` carries of them, in one round trip."""
    if not tables:
        return []
    params = {"publication": publication, "oids": [t.oid for t in tables]}
    found = dict(conn.execute(_for_server(conn, "table_columns"), params).fetchall())
    # A table dropped between the two reads has no row: it reads as having no columns.
    return [replace(t, columns_text=found.get(t.oid, "{}")) for t in tables]
