"""The pgoutput parser of the stream fidelity test, on messages built by hand from the documented
format (PostgreSQL's "Logical Replication Message Formats", protocol version 1)."""

from __future__ import annotations

import struct

import pytest

from tests import pgoutput
from tests.pgoutput import (
    Begin,
    Commit,
    Insert,
    ProtocolError,
    Relation,
    RelationColumn,
    Truncate,
    Type,
    Update,
)


def s(text: str) -> bytes:
    return text.encode() + b"\0"


def i8(value: int) -> bytes:
    return struct.pack(">b", value)


def i16(value: int) -> bytes:
    return struct.pack(">h", value)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def i64(value: int) -> bytes:
    return struct.pack(">q", value)


def relation_bytes() -> bytes:
    return (
        b"R"
        + u32(16385)
        + s("")
        + s('Mixed "Case"')
        + b"d"
        + i16(2)
        + (i8(1) + s("id") + u32(23) + i32(-1))
        + (i8(0) + s("note") + u32(1043) + i32(24))
    )


def test_a_relation_message_is_parsed_with_every_column() -> None:
    message = pgoutput.parse(relation_bytes())

    assert message == Relation(
        16385,
        "",
        'Mixed "Case"',
        "d",
        (RelationColumn(1, "id", 23, -1), RelationColumn(0, "note", 1043, 24)),
    )
    assert isinstance(message, Relation)
    assert message.schema_name == "pg_catalog"
    assert [c.is_key for c in message.columns] == [True, False]


def test_a_relation_without_columns_has_none() -> None:
    data = b"R" + u32(4000000000) + s("public") + s("empty") + b"n" + i16(0)

    assert pgoutput.parse(data) == Relation(4000000000, "public", "empty", "n", ())


def test_begin_commit_and_type_carry_their_fields() -> None:
    begin = b"B" + i64(0x1_0000_0010) + i64(771_000_000) + u32(3_000_000_000)
    commit = b"C" + i8(0) + i64(0x10) + i64(0x20) + i64(771_000_001)
    typ = b"Y" + u32(16390) + s("types") + s("mood")

    assert pgoutput.parse(begin) == Begin(0x1_0000_0010, 771_000_000, 3_000_000_000)
    assert pgoutput.parse(commit) == Commit(0, 0x10, 0x20, 771_000_001)
    assert pgoutput.parse(typ) == Type(16390, "types", "mood")


def test_insert_and_update_tuples_hold_text_null_and_unchanged_values() -> None:
    tuple_data = i16(3) + b"t" + i32(2) + b"42" + b"n" + b"u"
    insert = b"I" + u32(16385) + b"N" + tuple_data
    update = b"U" + u32(16385) + b"O" + tuple_data + b"N" + tuple_data

    values = (b"42", None, pgoutput.UNCHANGED)
    assert pgoutput.parse(insert) == Insert(16385, values)
    assert pgoutput.parse(update) == Update(16385, values, values)


def test_truncate_lists_its_relations() -> None:
    data = b"T" + i32(2) + i8(1) + u32(16385) + u32(16390)

    assert pgoutput.parse(data) == Truncate(1, (16385, 16390))


def test_an_unknown_tag_raises_with_the_tag_shown() -> None:
    with pytest.raises(ProtocolError, match=r"'S'.*0x53"):
        pgoutput.parse(b"S" + u32(1))


def test_a_truncated_or_overlong_message_raises() -> None:
    with pytest.raises(ProtocolError, match="more needed"):
        pgoutput.parse(relation_bytes()[:-3])
    with pytest.raises(ProtocolError, match="left after"):
        pgoutput.parse(relation_bytes() + b"x")
    with pytest.raises(ProtocolError, match="NUL"):
        pgoutput.parse(b"R" + u32(1) + b"public")


def test_messages_are_grouped_by_transaction() -> None:
    messages = [
        pgoutput.parse(b"B" + i64(1) + i64(2) + u32(7)),
        pgoutput.parse(relation_bytes()),
        pgoutput.parse(b"I" + u32(16385) + b"N" + i16(0)),
        pgoutput.parse(b"C" + i8(0) + i64(1) + i64(2) + i64(3)),
    ]

    (txn,) = pgoutput.transactions(messages)

    assert txn.xid == 7
    assert [r.oid for r in txn.relations] == [16385]
    assert txn.inserts == [Insert(16385, ())]
    with pytest.raises(ProtocolError, match="outside a transaction"):
        pgoutput.transactions(messages[1:])
