"""Columns and table schemas as Rosetta stores them (``table_metadata_list.schema_table``).

A stored schema is a JSON object keyed by column name; each value describes one column. Columns
are identified by ``attnum`` (a rename keeps it), falling back to the name for schemas written
without one.

Every live column of the table is recorded. ``carried`` says whether the replication stream
(pgoutput's Relation message) carries it, ``not_carried`` why not (``generated``, ``virtual``,
``column_list``), and ``in_replica_identity`` whether the stream flags it as part of the key.
Schemas recorded before Rosetta read these hold none of them (``None``): such a schema lists
only the columns the publication's column list kept, and nothing in it is compared on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SchemaJson = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Column:
    column_name: str
    data_type: str
    full_type: str
    is_nullable: bool
    column_default: str | None
    is_primary_key: bool
    ordinal_position: int
    attnum: int | None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    character_maximum_length: int | None = None
    identity: str | None = None
    generated: str | None = None
    type_oid: int | None = None
    carried: bool | None = None
    not_carried: str | None = None
    in_replica_identity: bool | None = None

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> Column:
        """Read one stored column, tolerating the seed's older, sparser shape."""
        data_type = str(raw.get("data_type") or "").upper()
        nullable = raw.get("is_nullable", True)
        if isinstance(nullable, str):
            nullable = nullable.upper() in ("YES", "TRUE", "T")
        attnum = raw.get("attnum")
        return cls(
            column_name=str(raw.get("column_name") or name),
            data_type=data_type,
            full_type=str(raw.get("full_type") or _legacy_full_type(data_type.lower(), raw)),
            is_nullable=bool(nullable),
            column_default=raw.get("column_default"),
            is_primary_key=bool(raw.get("is_primary_key", False)),
            ordinal_position=int(raw.get("ordinal_position") or 0),
            attnum=int(attnum) if attnum is not None else None,
            numeric_precision=raw.get("numeric_precision"),
            numeric_scale=raw.get("numeric_scale"),
            character_maximum_length=raw.get("character_maximum_length"),
            identity=raw.get("identity"),
            generated=raw.get("generated"),
            type_oid=raw.get("type_oid"),
            carried=raw.get("carried"),
            not_carried=raw.get("not_carried"),
            in_replica_identity=raw.get("in_replica_identity"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "column_name": self.column_name,
            "data_type": self.data_type,
            "full_type": self.full_type,
            "is_nullable": self.is_nullable,
            "column_default": self.column_default,
            "is_primary_key": self.is_primary_key,
            "ordinal_position": self.ordinal_position,
            "attnum": self.attnum,
            "numeric_precision": self.numeric_precision,
            "numeric_scale": self.numeric_scale,
            "character_maximum_length": self.character_maximum_length,
            "identity": self.identity,
            "generated": self.generated,
            "type_oid": self.type_oid,
            "carried": self.carried,
            "not_carried": self.not_carried,
            "in_replica_identity": self.in_replica_identity,
        }

    @property
    def is_carried(self) -> bool:
        """Whether the stream carries the column (a schema recorded before Rosetta knew lists
        only carried columns)."""
        return self.carried is not False


def _legacy_full_type(data_type: str, raw: Mapping[str, Any]) -> str:
    """The full type of a column stored without one (the seed kept information_schema's
    ``data_type`` beside its length, precision and scale): ``varchar(10)`` is still
    ``character varying(10)``, as the catalog prints it, not a type change."""
    length = raw.get("character_maximum_length")
    if length is not None and data_type in _LENGTH_TYPES:
        return f"{data_type}({length})"
    precision = raw.get("numeric_precision")
    if data_type == "numeric" and precision is not None:
        return f"numeric({precision},{raw.get('numeric_scale') or 0})"
    return data_type


_LENGTH_TYPES = ("character varying", "character", "bit varying", "bit")


@dataclass(frozen=True, slots=True)
class TableSchema:
    """The columns of one table, in ordinal order."""

    columns: tuple[Column, ...]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> TableSchema:
        if not raw:
            return cls(())
        cols = [Column.from_json(name, value) for name, value in raw.items()]
        cols.sort(key=lambda c: (c.ordinal_position, c.attnum or 0, c.column_name))
        return cls(tuple(cols))

    def to_json(self) -> SchemaJson:
        return {c.column_name: c.to_json() for c in self.columns}

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def is_empty(self) -> bool:
        return not self.columns

    @property
    def knows_carried(self) -> bool:
        """Whether this schema says which columns the stream carries (see the module's doc)."""
        return not self.columns or any(c.carried is not None for c in self.columns)

    @property
    def carried(self) -> tuple[Column, ...]:
        """The columns the replication stream carries, in order."""
        return tuple(c for c in self.columns if c.is_carried)


def display_name(schema_name: str, table_name: str) -> str:
    """How a table is named in log lines and messages: bare in ``public``, qualified elsewhere."""
    if schema_name == "public":
        return table_name
    return f"{schema_name}.{table_name}"
