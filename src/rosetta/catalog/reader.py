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
    row_filter: str | None = None

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
    lsn: str | None = None


def fingerprint(
    oid: int,
    kind: str,
    replica_identity: str,
    can_select: bool,
    column_digest: str,
    row_filter: str | None = None,
) -> str:
    """A hash of everything Rosetta records about a table, to skip unchanged ones cheaply."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{oid}|{kind}|{replica_identity}|{can_select}|{column_digest}".encode())
    if row_filter is not None:
        digest.update(b"|where|" + row_filter.encode())
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
        bool(row["publication_exists"]),
        bool(row["slot_exists"]),
        str(row["wal_level"]),
        {},
        row["lsn"],
    )


def catalog_query(
    conn: psycopg.Connection[Any],
    name: str,
    queries: sqlfile.Queries = QUERIES,
    *,
    named: bool = False,
) -> LiteralString:
    """The catalog query ``name`` (of ``queries``) for the source's server, with the
    publication's membership (its ``{members}`` fragment) read the way that server allows: from
    the catalogs on PostgreSQL 15+, through pg_get_publication_tables() on 14. ``named``: only
    of the tables whose OIDs the query's ``oids`` parameter lists."""
    fragment = "members_named" if named else "members"
    if conn.info.server_version < 150000:
        fragment += "_pg14"
    return queries[name].replace("{members}", QUERIES[fragment])


def has_row_filters(conn: psycopg.Connection[Any]) -> bool:
    """Publication row filters (and column lists) came with PostgreSQL 15."""
    return conn.info.server_version >= 150000


def read_publication(
    conn: psycopg.Connection[Any],
    publication: str,
    slot: str | None,
    *,
    columns: bool = True,
    oids: list[int] | None = None,
) -> CatalogSnapshot:
    """Every table of ``publication`` (with ``oids``, those of them alone): its state, each
    table's fingerprint and row filter in one round trip, and, with ``columns``, every table's
    columns (a second one)."""
    params = {"publication": publication, "slot": slot, "oids": oids}
    named = oids is not None
    with conn.pipeline():
        conn.execute(QUERIES["stable_output"])
        state_cur = conn.execute(QUERIES["source_state"], params)
        tables_cur = conn.execute(catalog_query(conn, "publication_tables", named=named), params)
        filters_cur = (
            conn.execute(QUERIES["row_filters"], params) if has_row_filters(conn) else None
        )
    state = state_cur.fetchone()
    assert state is not None
    filters: dict[int, str] = dict(filters_cur.fetchall()) if filters_cur is not None else {}
    tables: dict[TableKey, CatalogTable] = {}
    for schema_name, table_name, oid, kind, ident, can_select, count, digest in tables_cur:
        row_filter = filters.get(oid)
        table = CatalogTable(
            schema_name,
            table_name,
            oid,
            kind,
            ident,
            can_select,
            count,
            fingerprint(oid, kind, ident, can_select, digest, row_filter),
            row_filter=row_filter,
        )
        tables[table.key] = table
    snapshot = CatalogSnapshot(bool(state[0]), bool(state[1]), str(state[2]), tables, state[3])
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
    query = catalog_query(conn, "table_columns", named=True)
    found = dict(conn.execute(query, params).fetchall())
    # A table dropped between the two reads has no row: it reads as having no columns.
    return [replace(t, columns_text=found.get(t.oid, "{}")) for t in tables]
