"""Pure unit tests of the schema model and diff: what changed, its kind and its severity."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rosetta.schema.diff import (
    CHANGE_KINDS,
    CHANGES_CARRIED,
    CHANGES_DEFAULT,
    CHANGES_NULLABLE,
    CHANGES_PRIMARY_KEY,
    CHANGES_REPLICA_IDENTITY,
    CHANGES_TYPE,
    DROP_COLUMN,
    MULTIPLE_CHANGES,
    NEW_COLUMN,
    RENAME_COLUMN,
    RENAME_TABLE,
    RENAME_TYPE,
    Change,
    classify,
    diff,
    severity,
)
from rosetta.schema.model import Column, TableSchema, display_name


def col(name: str, attnum: int | None, full_type: str = "bigint", **kw: Any) -> Column:
    data_type = full_type.split("(")[0].upper()
    values: dict[str, Any] = {
        "column_name": name,
        "data_type": data_type,
        "full_type": full_type,
        "is_nullable": True,
        "column_default": None,
        "is_primary_key": False,
        "ordinal_position": attnum or 0,
        "attnum": attnum,
    }
    values.update(kw)
    return Column(**values)


def schema(*cols: Column) -> TableSchema:
    return TableSchema(tuple(cols))


BASE = schema(
    col("id", 1, is_nullable=False, is_primary_key=True),
    col("name", 2, "character varying(10)"),
    col("price", 3, "numeric(10,2)"),
)


def replaced(name: str, **kw: Any) -> TableSchema:
    return schema(*(replace(c, **kw) if c.column_name == name else c for c in BASE.columns))


def kinds(changes: list[Change]) -> list[str]:
    return [c.kind for c in changes]


def test_identical_schemas_have_no_changes() -> None:
    assert diff(BASE, BASE) == []
    assert diff(TableSchema.from_json(BASE.to_json()), BASE) == []


def test_new_column_carries_the_whole_column() -> None:
    added = col("note", 4, "text")
    changes = diff(BASE, schema(*BASE.columns, added))
    assert changes == [Change(NEW_COLUMN, "note", None, added.to_json())]
    assert classify(changes) == NEW_COLUMN


def test_drop_column_carries_the_whole_column() -> None:
    changes = diff(BASE, schema(*BASE.columns[:2]))
    assert changes == [Change(DROP_COLUMN, "price", BASE.columns[2].to_json(), None)]
    assert classify(changes) == DROP_COLUMN


@pytest.mark.parametrize(
    ("name", "before", "after"),
    [
        ("name", "character varying(10)", "character varying(200)"),
        ("price", "numeric(10,2)", "numeric(12,2)"),
        ("id", "bigint", "integer"),
    ],
)
def test_type_changes_compare_the_full_type(name: str, before: str, after: str) -> None:
    changes = diff(BASE, replaced(name, full_type=after))
    assert changes == [Change(CHANGES_TYPE, name, before, after)]
    assert classify(changes) == CHANGES_TYPE


def test_type_falls_back_to_data_type_when_full_type_is_missing() -> None:
    old = TableSchema.from_json({"a": {"data_type": "INTEGER"}})
    new = TableSchema.from_json({"a": {"data_type": "BIGINT"}})
    assert diff(old, new) == [Change(CHANGES_TYPE, "a", "integer", "bigint")]


def test_rename_keeps_the_attnum_and_is_one_change() -> None:
    changes = diff(BASE, replaced("name", column_name="title"))
    assert changes == [Change(RENAME_COLUMN, "title", "name", "title")]
    assert classify(changes) == RENAME_COLUMN


def test_two_columns_swapping_names_are_two_renames() -> None:
    new = schema(
        BASE.columns[0],
        replace(BASE.columns[1], column_name="price"),
        replace(BASE.columns[2], column_name="name"),
    )
    assert kinds(diff(BASE, new)) == [RENAME_COLUMN, RENAME_COLUMN]


def test_drop_and_re_add_with_the_same_name_is_drop_plus_new() -> None:
    readded = col("price", 4, "numeric(10,2)", ordinal_position=3)
    changes = diff(BASE, schema(*BASE.columns[:2], readded))
    assert kinds(changes) == [DROP_COLUMN, NEW_COLUMN]
    assert classify(changes) == MULTIPLE_CHANGES


def test_without_attnums_columns_match_by_name() -> None:
    old = TableSchema.from_json({"a": {"data_type": "TEXT"}, "b": {"data_type": "TEXT"}})
    new = TableSchema.from_json({"a": {"data_type": "TEXT"}, "c": {"data_type": "TEXT"}})
    assert [(c.kind, c.column) for c in diff(old, new)] == [
        (DROP_COLUMN, "b"),
        (NEW_COLUMN, "c"),
    ]


def test_nullable_change() -> None:
    changes = diff(BASE, replaced("name", is_nullable=False))
    assert changes == [Change(CHANGES_NULLABLE, "name", True, False)]
    assert classify(changes) == CHANGES_NULLABLE


def test_default_change_and_identity_and_generated() -> None:
    assert diff(BASE, replaced("name", column_default="'x'::character varying")) == [
        Change(CHANGES_DEFAULT, "name", None, "'x'::character varying")
    ]
    assert diff(BASE, replaced("id", identity="ALWAYS")) == [
        Change(CHANGES_DEFAULT, "id", None, "GENERATED ALWAYS AS IDENTITY")
    ]
    assert diff(BASE, replaced("price", generated="STORED", column_default="(id * 2)")) == [
        Change(CHANGES_DEFAULT, "price", None, "GENERATED ALWAYS AS ((id * 2)) STORED")
    ]


def test_primary_key_change() -> None:
    changes = diff(BASE, replaced("id", is_primary_key=False))
    assert changes == [Change(CHANGES_PRIMARY_KEY, "id", True, False)]
    assert classify(changes) == CHANGES_PRIMARY_KEY


def test_two_kinds_are_multiple_changes_and_changes_follow_the_new_column_order() -> None:
    new = schema(
        replace(BASE.columns[0], is_primary_key=False),
        replace(BASE.columns[1], full_type="text"),
        BASE.columns[2],
        col("note", 4, "text"),
    )
    changes = diff(BASE, new)
    assert kinds(changes) == [CHANGES_PRIMARY_KEY, CHANGES_TYPE, NEW_COLUMN]
    assert classify(changes) == MULTIPLE_CHANGES


def test_two_changes_of_one_kind_keep_that_kind() -> None:
    new = schema(*BASE.columns, col("a", 4), col("b", 5))
    assert classify(diff(BASE, new)) == NEW_COLUMN


def test_classify_refuses_no_changes() -> None:
    with pytest.raises(ValueError):
        classify([])


def test_every_kind_is_known() -> None:
    assert set(CHANGE_KINDS) == {
        NEW_COLUMN,
        DROP_COLUMN,
        CHANGES_TYPE,
        RENAME_COLUMN,
        CHANGES_NULLABLE,
        CHANGES_DEFAULT,
        CHANGES_PRIMARY_KEY,
        RENAME_TYPE,
        CHANGES_CARRIED,
        CHANGES_REPLICA_IDENTITY,
        RENAME_TABLE,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Change(DROP_COLUMN, "a", {}, None), "breaking"),
        (Change(CHANGES_TYPE, "a", "bigint", "integer"), "breaking"),
        (Change(CHANGES_TYPE, "a", "integer", "bigint"), "safe"),
        (Change(RENAME_COLUMN, "b", "a", "b"), "breaking"),
        (Change(CHANGES_PRIMARY_KEY, "a", False, True), "breaking"),
        (Change(CHANGES_NULLABLE, "a", True, False), "breaking"),
        (Change(CHANGES_NULLABLE, "a", False, True), "safe"),
        (Change(CHANGES_DEFAULT, "a", None, "0"), "safe"),
        (Change(NEW_COLUMN, "a", None, {"is_nullable": True}), "safe"),
        (Change(NEW_COLUMN, "a", None, {"is_nullable": False, "column_default": "0"}), "safe"),
        (Change(NEW_COLUMN, "a", None, {"is_nullable": False, "column_default": None}), "breaking"),
        (Change(RENAME_TYPE, "a", "mood", "feeling"), "safe"),
        (Change(CHANGES_REPLICA_IDENTITY, "a", False, True), "breaking"),
        (Change(CHANGES_CARRIED, "a", True, False), "breaking"),
        (Change(CHANGES_CARRIED, "a", False, True), "safe"),
        # Nothing the stream does not carry can break the pipeline.
        (Change(DROP_COLUMN, "a", {}, None, carried=False), "safe"),
        (Change(CHANGES_TYPE, "a", "integer", "bigint", carried=False), "safe"),
        (Change(NEW_COLUMN, "a", None, {"is_nullable": False}, carried=False), "safe"),
    ],
)
def test_severity_of_one_change(change: Change, expected: str) -> None:
    assert severity([change]) == expected


def test_severity_of_several_changes_is_the_worst() -> None:
    safe = Change(CHANGES_DEFAULT, "a", None, "0")
    assert severity([]) == "safe"
    assert severity([safe, safe]) == "safe"
    assert severity([safe, Change(DROP_COLUMN, "b", {}, None)]) == "breaking"


def test_change_json_round_trip() -> None:
    change = Change(CHANGES_TYPE, "a", "integer", "bigint")
    raw = change.to_json()
    assert raw == {"type": CHANGES_TYPE, "column": "a", "before": "integer", "after": "bigint"}
    assert Change.from_json(raw) == change
    hidden = Change(DROP_COLUMN, "g", {}, None, carried=False)
    assert hidden.to_json()["carried"] is False
    assert Change.from_json(hidden.to_json()) == hidden


def stream(name: str, attnum: int, full_type: str = "bigint", **kw: Any) -> Column:
    """A column as the reader records it now: with what the stream carries and flags."""
    facts: dict[str, Any] = {
        "type_oid": 20,
        "carried": True,
        "not_carried": None,
        "in_replica_identity": False,
    }
    facts.update(kw)
    return col(name, attnum, full_type, **facts)


def test_a_renamed_type_is_a_rename_not_a_type_change() -> None:
    old = schema(stream("m", 1, "mood", type_oid=16385))
    new = schema(stream("m", 1, "t2.mood", type_oid=16385, data_type="T2.MOOD"))
    changes = diff(old, new)
    assert kinds(changes) == [RENAME_TYPE]
    assert (changes[0].before, changes[0].after) == ("mood", "t2.mood")
    assert severity(changes) == "safe"
    # Another type under the same name is a type change.
    other = schema(stream("m", 1, "t2.mood", type_oid=16999, data_type="T2.MOOD"))
    assert kinds(diff(old, other)) == [CHANGES_TYPE]
    # A typmod change of the same type is a type change too.
    wide = diff(
        schema(stream("v", 1, "character varying(20)", type_oid=1043)),
        schema(stream("v", 1, "character varying(200)", type_oid=1043)),
    )
    assert kinds(wide) == [CHANGES_TYPE]


def test_a_column_the_stream_stops_carrying_is_a_breaking_version() -> None:
    old = schema(stream("id", 1), stream("b", 2))
    new = schema(stream("id", 1), stream("b", 2, carried=False, not_carried="column_list"))
    changes = diff(old, new)
    assert kinds(changes) == [CHANGES_CARRIED]
    assert severity(changes) == "breaking"
    assert severity(diff(new, old)) == "safe"


def test_changes_to_a_column_the_stream_never_carries_are_safe() -> None:
    gen: dict[str, Any] = {"carried": False, "not_carried": "generated", "generated": "STORED"}
    old = schema(stream("id", 1), stream("g", 2, column_default="(id * 2)", **gen))
    new = schema(stream("id", 1))
    changes = diff(old, new)
    assert kinds(changes) == [DROP_COLUMN]
    assert not changes[0].carried
    assert severity(changes) == "safe"
    added = diff(new, old)
    assert kinds(added) == [NEW_COLUMN] and severity(added) == "safe"


def test_a_schema_recorded_before_carried_was_known_gains_no_columns() -> None:
    legacy = schema(col("id", 1), col("g", 2))
    now = schema(
        stream("id", 1),
        stream("g", 2, carried=False, not_carried="generated"),
        stream("c", 3, carried=False, not_carried="column_list"),
    )
    # g was recorded as carried (PostgreSQL 15 did), c was left out by the column list: neither
    # is a change, and neither is the key flag the legacy schema never recorded.
    assert diff(legacy, now) == []
    # A carried column that is new is still new.
    grown = schema(*now.columns, stream("d", 4))
    assert kinds(diff(legacy, grown)) == [NEW_COLUMN]


def test_a_replica_identity_change_is_its_own_kind_unless_the_key_says_it() -> None:
    old = schema(stream("id", 1, is_primary_key=True, in_replica_identity=True), stream("b", 2))
    full = schema(
        stream("id", 1, is_primary_key=True, in_replica_identity=True),
        stream("b", 2, in_replica_identity=True),
    )
    assert kinds(diff(old, full)) == [CHANGES_REPLICA_IDENTITY]
    # A new primary key under REPLICA IDENTITY DEFAULT: one change, the key's.
    keyed = schema(
        stream("id", 1, is_primary_key=True, in_replica_identity=True),
        stream("b", 2, is_primary_key=True, in_replica_identity=True),
    )
    assert kinds(diff(old, keyed)) == [CHANGES_PRIMARY_KEY]


def test_schema_json_round_trip_and_order() -> None:
    raw = BASE.to_json()
    assert list(raw) == ["id", "name", "price"]
    assert TableSchema.from_json(raw) == BASE
    reordered = dict(reversed(list(raw.items())))
    assert TableSchema.from_json(reordered) == BASE
    assert TableSchema.from_json(None).is_empty
    assert TableSchema.from_json({}).is_empty
    assert len(BASE) == 3


def test_older_sparser_column_shape_is_read() -> None:
    column = Column.from_json(
        "Straße", {"data_type": "varchar", "is_nullable": "NO", "is_primary_key": True}
    )
    assert column.column_name == "Straße"
    assert column.data_type == "VARCHAR"
    assert column.full_type == "varchar"
    assert column.is_nullable is False
    assert column.is_primary_key is True
    assert column.attnum is None
    assert Column.from_json("x", {"is_nullable": "YES"}).is_nullable is True


def test_the_seeds_information_schema_shape_keeps_length_precision_and_scale() -> None:
    """The seed stored information_schema's data_type with no full type: reading it back gives
    the type as the catalog prints it, so an unchanged column is not a type change."""
    seed = {
        "code": {"data_type": "CHARACTER VARYING", "character_maximum_length": 10},
        "flag": {"data_type": "character", "character_maximum_length": 1},
        "bits": {"data_type": "bit varying", "character_maximum_length": 8},
        "price": {"data_type": "numeric", "numeric_precision": 10, "numeric_scale": 2},
        "whole": {"data_type": "numeric", "numeric_precision": 8, "numeric_scale": 0},
        "free": {"data_type": "numeric", "numeric_precision": None},
        "qty": {"data_type": "integer", "numeric_precision": 32, "numeric_scale": 0},
        "note": {"data_type": "text", "character_maximum_length": None},
    }
    types = {c.column_name: c.full_type for c in TableSchema.from_json(seed).columns}
    assert types == {
        "code": "character varying(10)",
        "flag": "character(1)",
        "bits": "bit varying(8)",
        "price": "numeric(10,2)",
        "whole": "numeric(8,0)",
        "free": "numeric",
        "qty": "integer",
        "note": "text",
    }
    current = {"code": {"data_type": "CHARACTER VARYING", "full_type": "character varying(10)"}}
    old = TableSchema.from_json({"code": seed["code"]})
    assert diff(old, TableSchema.from_json(current)) == []
    longer = {"code": {"data_type": "CHARACTER VARYING", "full_type": "character varying(200)"}}
    assert kinds(diff(old, TableSchema.from_json(longer))) == [CHANGES_TYPE]


def test_display_name() -> None:
    assert display_name("public", "orders") == "orders"
    assert display_name("sales", "orders") == "sales.orders"
    assert display_name("日本", 'we"ird') == '日本.we"ird'
