"""The severity model: every rule of its table, type widening and narrowing, and the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rosetta.schema import severity
from rosetta.schema.diff import (
    CHANGES_CARRIED,
    CHANGES_DEFAULT,
    CHANGES_NULLABLE,
    CHANGES_PRIMARY_KEY,
    CHANGES_REPLICA_IDENTITY,
    CHANGES_TYPE,
    DROP_COLUMN,
    NEW_COLUMN,
    RENAME_COLUMN,
    RENAME_TABLE,
    RENAME_TYPE,
    Change,
    diff,
)
from rosetta.schema.diff import severity as worst_of
from rosetta.schema.model import Column, TableSchema

README = Path(__file__).resolve().parents[2] / "README.md"

NOT_NULL: dict[str, Any] = {"is_nullable": False, "column_default": None}

# (change, severity): together they reach every rule of the model (checked below).
CASES: list[tuple[Change, str]] = [
    # A table's first version: nothing downstream yet.
    (Change(NEW_COLUMN, "a", None, NOT_NULL, initial=True), "safe"),
    (Change(NEW_COLUMN, "a", None, {"is_nullable": True}, initial=True), "safe"),
    # The table renamed or moved to another schema.
    (Change(RENAME_TABLE, "", "public.orders", "sales.orders"), "breaking"),
    # What the stream carries.
    (Change(CHANGES_CARRIED, "a", True, False), "breaking"),
    (Change(CHANGES_CARRIED, "a", False, True), "safe"),
    (Change(DROP_COLUMN, "a", {}, None, carried=False), "safe"),
    (Change(CHANGES_TYPE, "a", "bigint", "integer", carried=False), "safe"),
    (Change(NEW_COLUMN, "a", None, NOT_NULL, carried=False), "safe"),
    # New and dropped columns.
    (Change(NEW_COLUMN, "a", None, {"is_nullable": True}), "safe"),
    (Change(NEW_COLUMN, "a", None, {"is_nullable": False, "column_default": "0"}), "safe"),
    (Change(NEW_COLUMN, "a", None, {**NOT_NULL, "identity": "ALWAYS"}), "safe"),
    (Change(NEW_COLUMN, "a", None, {**NOT_NULL, "generated": "STORED"}), "safe"),
    (Change(NEW_COLUMN, "a", None, NOT_NULL), "breaking"),
    (Change(DROP_COLUMN, "a", {"full_type": "text"}, None), "breaking"),
    # The other kinds.
    (Change(RENAME_COLUMN, "b", "a", "b"), "breaking"),
    (Change(CHANGES_NULLABLE, "a", False, True), "safe"),
    (Change(CHANGES_NULLABLE, "a", True, False), "breaking"),
    (Change(CHANGES_DEFAULT, "a", None, "0"), "safe"),
    (Change(CHANGES_DEFAULT, "a", "0", None), "safe"),
    (Change(CHANGES_PRIMARY_KEY, "a", False, True), "breaking"),
    (Change(CHANGES_PRIMARY_KEY, "a", True, False), "breaking"),
    (Change(CHANGES_REPLICA_IDENTITY, "a", False, True), "breaking"),
    (Change(RENAME_TYPE, "a", "mood", "feeling"), "safe"),
    # A kind the model does not know is breaking.
    (Change("CHANGES COLLATION", "a", "C", "en_US"), "breaking"),
    (Change(CHANGES_NULLABLE, "a", None, False), "breaking"),
]

# (type before, type after, severity), the types as format_type prints them.
TYPES: list[tuple[str, str, str]] = [
    # varchar, char and text
    ("character varying(20)", "character varying(200)", "safe"),
    ("character varying(20)", "character varying(20)", "safe"),
    ("character varying(200)", "character varying(20)", "breaking"),
    ("character varying(20)", "character varying", "safe"),
    ("character varying", "character varying(20)", "breaking"),
    ("character varying(20)", "text", "safe"),
    ("character varying", "text", "safe"),
    ("character(5)", "text", "safe"),
    ("bpchar", "text", "safe"),
    ("text", "character varying(20)", "breaking"),
    ("text", "character varying", "breaking"),
    ("character(5)", "character(10)", "breaking"),
    ("character(5)", "character varying(10)", "breaking"),
    # integers and floats
    ("smallint", "integer", "safe"),
    ("integer", "bigint", "safe"),
    ("smallint", "bigint", "safe"),
    ("bigint", "integer", "breaking"),
    ("integer", "smallint", "breaking"),
    ("real", "double precision", "safe"),
    ("double precision", "real", "breaking"),
    ("integer", "double precision", "breaking"),
    ("integer", "numeric", "breaking"),
    ("integer", "text", "breaking"),
    # numeric
    ("numeric(10,2)", "numeric(12,2)", "safe"),
    ("numeric(10,2)", "numeric(11,3)", "safe"),
    ("numeric(10,2)", "numeric(10,3)", "breaking"),
    ("numeric(10,2)", "numeric(10,1)", "breaking"),
    ("numeric(10,2)", "numeric(9,2)", "breaking"),
    ("numeric(10,2)", "numeric", "safe"),
    ("numeric", "numeric(10,2)", "breaking"),
    ("numeric(2,-3)", "numeric(5,0)", "safe"),
    ("numeric(5,0)", "numeric(2,-3)", "breaking"),
    # time, timestamp, timestamptz, interval
    ("timestamp(3) without time zone", "timestamp(6) without time zone", "safe"),
    ("timestamp(3) without time zone", "timestamp without time zone", "safe"),
    ("timestamp without time zone", "timestamp(3) without time zone", "breaking"),
    ("timestamp(6) without time zone", "timestamp without time zone", "safe"),
    ("timestamp without time zone", "timestamp(6) without time zone", "safe"),
    ("timestamp(3) with time zone", "timestamp(5) with time zone", "safe"),
    ("timestamp(3) without time zone", "timestamp(3) with time zone", "breaking"),
    ("timestamp without time zone", "timestamp with time zone", "breaking"),
    ("time(2) without time zone", "time(4) without time zone", "safe"),
    ("time(4) with time zone", "time(2) with time zone", "breaking"),
    ("time without time zone", "timestamp without time zone", "breaking"),
    ("date", "timestamp without time zone", "breaking"),
    ("interval(2)", "interval(4)", "safe"),
    ("interval(2)", "interval", "safe"),
    ("interval", "interval(2)", "breaking"),
    ("interval day to second(2)", "interval day to second(5)", "safe"),
    ("interval day to second(2)", "interval", "safe"),
    ("interval", "interval year", "breaking"),
    ("interval year", "interval month", "breaking"),
    # varbit
    ("bit varying(5)", "bit varying(10)", "safe"),
    ("bit varying(5)", "bit varying", "safe"),
    ("bit varying(10)", "bit varying(5)", "breaking"),
    ("bit(5)", "bit(10)", "breaking"),
    ("bit(5)", "bit varying(10)", "breaking"),
    # arrays
    ("integer[]", "bigint[]", "safe"),
    ("character varying(20)[]", "character varying(200)[]", "safe"),
    ("character varying(20)[]", "text[]", "safe"),
    ("numeric(10,2)[]", "numeric[]", "safe"),
    ("timestamp(3) with time zone[]", "timestamp with time zone[]", "safe"),
    ("bigint[]", "integer[]", "breaking"),
    ("integer", "integer[]", "breaking"),
    ("integer[]", "bigint", "breaking"),
    # user types and anything else
    ("public.mood", "public.feeling", "breaking"),
    ('"My Type"', "text", "breaking"),
    ("uuid", "text", "breaking"),
    ("json", "jsonb", "breaking"),
]


def change_of_type(before: str, after: str) -> Change:
    return Change(CHANGES_TYPE, "a", before, after)


@pytest.mark.parametrize(("change", "expected"), CASES)
def test_severity_of_one_change(change: Change, expected: str) -> None:
    assert severity.of(change) == expected
    assert change.breaking is (expected == "breaking")
    assert worst_of([change]) == expected


@pytest.mark.parametrize(("before", "after", "expected"), TYPES)
def test_a_type_change_is_safe_only_when_it_widens(before: str, after: str, expected: str) -> None:
    change = change_of_type(before, after)
    assert severity.of(change) == expected
    assert severity.widens(before, after) is (expected == "safe")


def test_every_rule_of_the_model_is_reached() -> None:
    reached = {id(severity.rule_for(c)) for c, _ in CASES}
    reached |= {id(severity.rule_for(change_of_type(b, a))) for b, a, _ in TYPES}
    missed = [rule.when for rule in severity.RULES if id(rule) not in reached]
    assert missed == []


def test_a_rule_says_what_its_changes_are() -> None:
    for change, expected in CASES:
        assert severity.rule_for(change).severity == expected


def test_several_changes_are_as_severe_as_the_worst() -> None:
    safe = Change(CHANGES_DEFAULT, "a", None, "0")
    assert worst_of([]) == "safe"
    assert worst_of([safe, safe]) == "safe"
    assert worst_of([safe, Change(DROP_COLUMN, "b", {}, None)]) == "breaking"


def col(name: str, attnum: int, full_type: str, **kw: Any) -> Column:
    values: dict[str, Any] = {
        "column_name": name,
        "data_type": full_type.split("(")[0].upper(),
        "full_type": full_type,
        "is_nullable": True,
        "column_default": None,
        "is_primary_key": False,
        "ordinal_position": attnum,
        "attnum": attnum,
    }
    values.update(kw)
    return Column(**values)


def test_a_table_s_first_version_is_safe_though_its_columns_are_not_null() -> None:
    first = TableSchema(
        (
            col("id", 1, "bigint", is_nullable=False, is_primary_key=True),
            col("name", 2, "text", is_nullable=False),
        )
    )
    empty = TableSchema(())
    initial = diff(empty, first, initial=True)
    assert [c.kind for c in initial] == [NEW_COLUMN, NEW_COLUMN]
    assert worst_of(initial) == "safe"
    # The same columns added to a table consumers already read (its columns all dropped once)
    # are a breaking change.
    assert worst_of(diff(empty, first)) == "breaking"
    # Nothing of it is stored.
    assert "initial" not in initial[0].to_json()


def test_widening_a_varchar_in_a_diff_is_safe_and_narrowing_breaking() -> None:
    narrow = TableSchema((col("name", 1, "character varying(20)"),))
    wide = TableSchema((col("name", 1, "character varying(200)"),))
    assert worst_of(diff(narrow, wide)) == "safe"
    assert worst_of(diff(wide, narrow)) == "breaking"


def test_a_source_set_to_breaking_sends_only_breaking_events() -> None:
    assert severity.WEBHOOK_SEVERITIES == ("all", "breaking")
    assert severity.sends("all", "safe") and severity.sends("all", "breaking")
    assert severity.sends("breaking", "breaking")
    assert not severity.sends("breaking", "safe")


def test_the_readme_shows_the_model() -> None:
    table = severity.markdown()
    assert table.count("\n") == len(severity.RULES) + 2
    assert table in README.read_text(encoding="utf-8")
