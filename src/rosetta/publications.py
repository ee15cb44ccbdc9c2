"""Changing a source's publication and replication slot.

Every identifier is quoted by ``psycopg.sql.Identifier``; names are never formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg import sql

from rosetta.catalog import connection
from rosetta.catalog.connection import ConnectionParams, SourceLimits
from rosetta.catalog.reader import catalog_query
from rosetta.errors import SourceActionError
from rosetta.uow import map_source_errors

TableName = tuple[str, str]


@contextmanager
def _source(params: ConnectionParams, limits: SourceLimits, action: str) -> Iterator[Any]:
    conn = connection.connect(params, limits)
    try:
        with map_source_errors(SourceActionError, f"cannot {action}"):
            yield conn
    finally:
        conn.close()


def _table(name: TableName) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(name[0]), sql.Identifier(name[1]))


def available_tables(
    params: ConnectionParams, publication: str, limits: SourceLimits
) -> list[TableName]:
    """Tables of the source that the publication does not carry."""
    with _source(params, limits, "list the source's tables") as conn:
        query = catalog_query(conn, "available_tables")
        return [(r[0], r[1]) for r in conn.execute(query, {"publication": publication})]


def create_publication(
    params: ConnectionParams, publication: str, tables: Sequence[TableName], limits: SourceLimits
) -> None:
    stmt = sql.SQL("CREATE PUBLICATION {}").format(sql.Identifier(publication))
    if tables:
        stmt = sql.SQL("{} FOR TABLE {}").format(
            stmt, sql.SQL(", ").join(_table(t) for t in tables)
        )
    with _source(params, limits, f"create publication {publication!r}") as conn:
        conn.execute(stmt)


def add_table(
    params: ConnectionParams, publication: str, table: TableName, limits: SourceLimits
) -> None:
    stmt = sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
        sql.Identifier(publication), _table(table)
    )
    with _source(params, limits, f"add {table[0]}.{table[1]} to the publication") as conn:
        conn.execute(stmt)


def remove_table(
    params: ConnectionParams, publication: str, table: TableName, limits: SourceLimits
) -> None:
    stmt = sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
        sql.Identifier(publication), _table(table)
    )
    with _source(params, limits, f"remove {table[0]}.{table[1]} from the publication") as conn:
        conn.execute(stmt)


def drop_publication(params: ConnectionParams, publication: str, limits: SourceLimits) -> None:
    stmt = sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication))
    with _source(params, limits, f"drop publication {publication!r}") as conn:
        conn.execute(stmt)


def create_slot(params: ConnectionParams, slot: str, limits: SourceLimits) -> None:
    with _source(params, limits, f"create replication slot {slot!r}") as conn:
        conn.execute(
            "SELECT pg_catalog.pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,)
        )


def drop_slot(params: ConnectionParams, slot: str, limits: SourceLimits) -> None:
    with _source(params, limits, f"drop replication slot {slot!r}") as conn:
        conn.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot,))
