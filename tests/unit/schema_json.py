"""Stored schemas (``schema_table`` JSON) built for the unit tests of the sync and the repair."""

from __future__ import annotations

from typing import Any

from rosetta.schema.model import SchemaJson


def column(name: str, attnum: int, full_type: str = "bigint") -> dict[str, Any]:
    """One nullable column, without default or key, as the catalog reader stores it."""
    return {
        "column_name": name,
        "data_type": full_type.split("(")[0].upper(),
        "full_type": full_type,
        "is_nullable": True,
        "column_default": None,
        "is_primary_key": False,
        "ordinal_position": attnum,
        "attnum": attnum,
    }


def columns(*cols: dict[str, Any]) -> SchemaJson:
    return {c["column_name"]: c for c in cols}
