"""A parser of pgoutput's logical replication messages, protocol version 1.

One message per call, as ``pg_logical_slot_get_binary_changes(slot, NULL, NULL, 'proto_version',
'1', 'publication_names', ...)`` returns them in its ``data`` column. The format is PostgreSQL's
"Logical Replication Message Formats": integers are big-endian, strings NUL-terminated. Relation
messages are parsed fully (they are what the stream fidelity test compares with Rosetta); the
others as far as a test needs them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KEY_FLAG = 1  # Relation column flag: the column is part of the key (the replica identity)


class ProtocolError(ValueError):
    """Bytes that are not a pgoutput protocol version 1 message."""


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time: int  # microseconds since 2000-01-01
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: int


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class RelationColumn:
    flags: int
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        return bool(self.flags & KEY_FLAG)


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str  # as sent: '' stands for pg_catalog
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[RelationColumn, ...]

    @property
    def schema_name(self) -> str:
        return self.namespace or "pg_catalog"


@dataclass(frozen=True, slots=True)
class Type:
    oid: int
    namespace: str
    name: str


# One value of a tuple: None for NULL, "unchanged" for an unchanged TOASTed value, else bytes.
TupleValue = bytes | str | None


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    old: tuple[TupleValue, ...] | None
    new: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Truncate:
    options: int
    relation_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    flags: int
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | LogicalMessage
)

UNCHANGED = "unchanged"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ProtocolError(
                f"message ends after {len(self.data)} bytes; {size} more needed at {self.pos}"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> str:
        return chr(self._take(1)[0])

    def int8(self) -> int:
        value: int = struct.unpack(">b", self._take(1))[0]
        return value

    def int16(self) -> int:
        value: int = struct.unpack(">h", self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self._take(4))[0]
        return value

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self._take(4))[0]
        return value

    def int64(self) -> int:
        value: int = struct.unpack(">q", self._take(8))[0]
        return value

    def uint64(self) -> int:
        value: int = struct.unpack(">Q", self._take(8))[0]
        return value

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError(f"string at byte {self.pos} has no NUL terminator")
        text = self.data[self.pos : end].decode()
        self.pos = end + 1
        return text

    def tuple_data(self) -> tuple[TupleValue, ...]:
        values: list[TupleValue] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind in ("t", "b"):
                values.append(self._take(self.int32()))
            else:
                raise ProtocolError(f"unknown tuple value kind {kind!r} at byte {self.pos - 1}")
        return tuple(values)

    def expect(self, *kinds: str) -> str:
        kind = self.byte()
        if kind not in kinds:
            raise ProtocolError(f"expected one of {kinds} at byte {self.pos - 1}, got {kind!r}")
        return kind

    def done(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.pos} bytes left after the message")


def _relation(r: _Reader) -> Relation:
    oid = r.uint32()
    namespace = r.string()
    name = r.string()
    identity = r.byte()
    columns = tuple(
        RelationColumn(r.int8(), r.string(), r.uint32(), r.int32()) for _ in range(r.int16())
    )
    return Relation(oid, namespace, name, identity, columns)


def _update(r: _Reader) -> Update:
    oid = r.uint32()
    kind = r.expect("K", "O", "N")
    old = None
    if kind != "N":
        old = r.tuple_data()
        r.expect("N")
    return Update(oid, old, r.tuple_data())


def _delete(r: _Reader) -> Delete:
    oid = r.uint32()
    r.expect("K", "O")
    return Delete(oid, r.tuple_data())


def _truncate(r: _Reader) -> Truncate:
    count = r.int32()
    options = r.int8()
    return Truncate(options, tuple(r.uint32() for _ in range(count)))


def _insert(r: _Reader) -> Insert:
    oid = r.uint32()
    r.expect("N")
    return Insert(oid, r.tuple_data())


def _message(r: _Reader) -> LogicalMessage:
    flags = r.int8()
    lsn = r.uint64()
    prefix = r.string()
    return LogicalMessage(flags, lsn, prefix, r._take(r.int32()))


def parse(data: bytes) -> Message:
    """One pgoutput (protocol version 1) message; :class:`ProtocolError` if it is not one."""
    if not data:
        raise ProtocolError("empty message")
    r = _Reader(bytes(data))
    tag = r.byte()
    message: Message
    if tag == "B":
        message = Begin(r.uint64(), r.int64(), r.uint32())
    elif tag == "C":
        message = Commit(r.int8(), r.uint64(), r.uint64(), r.int64())
    elif tag == "O":
        message = Origin(r.uint64(), r.string())
    elif tag == "R":
        message = _relation(r)
    elif tag == "Y":
        message = Type(r.uint32(), r.string(), r.string())
    elif tag == "I":
        message = _insert(r)
    elif tag == "U":
        message = _update(r)
    elif tag == "D":
        message = _delete(r)
    elif tag == "T":
        message = _truncate(r)
    elif tag == "M":
        message = _message(r)
    else:
        raise ProtocolError(f"unknown message tag {tag!r} (byte 0x{data[0]:02x})")
    r.done()
    return message


@dataclass(frozen=True, slots=True)
class Transaction:
    """The messages between one Begin and its Commit."""

    xid: int
    messages: tuple[Message, ...]

    @property
    def relations(self) -> list[Relation]:
        return [m for m in self.messages if isinstance(m, Relation)]

    @property
    def inserts(self) -> list[Insert]:
        return [m for m in self.messages if isinstance(m, Insert)]


def transactions(messages: list[Message]) -> list[Transaction]:
    """The messages grouped by transaction; a message outside Begin ... Commit raises."""
    out: list[Transaction] = []
    current: list[Message] | None = None
    xid = 0
    for message in messages:
        if isinstance(message, Begin):
            if current is not None:
                raise ProtocolError(f"Begin of xid {message.xid} inside xid {xid}")
            current, xid = [], message.xid
        elif isinstance(message, Commit):
            if current is None:
                raise ProtocolError("Commit without a Begin")
            out.append(Transaction(xid, tuple(current)))
            current = None
        elif current is None:
            raise ProtocolError(f"{type(message).__name__} outside a transaction")
        else:
            current.append(message)
    if current is not None:
        raise ProtocolError(f"xid {xid} has no Commit")
    return out
