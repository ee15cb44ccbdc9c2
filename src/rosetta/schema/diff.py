"""Compare two table schemas and name what changed, column by column."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rosetta.schema.model import Column, TableSchema

INITIAL_LOAD = "INITIAL_LOAD"
NEW_COLUMN = "NEW COLUMN"
DROP_COLUMN = "DROP COLUMN"
CHANGES_TYPE = "CHANGES TYPE"
RENAME_COLUMN = "RENAME COLUMN"
CHANGES_NULLABLE = "CHANGES NULLABLE"
CHANGES_DEFAULT = "CHANGES DEFAULT"
CHANGES_PRIMARY_KEY = "CHANGES PRIMARY KEY"
RENAME_TYPE = "RENAME TYPE"
CHANGES_CARRIED = "CHANGES CARRIED"
CHANGES_REPLICA_IDENTITY = "CHANGES REPLICA IDENTITY"
# The table itself took another name or schema (ALTER TABLE ... RENAME TO / SET SCHEMA): its
# change has no column; ``before`` and ``after`` are the qualified names.
RENAME_TABLE = "RENAME TABLE"
MULTIPLE_CHANGES = "MULTIPLE CHANGES"

CHANGE_KINDS = (
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
)


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one column. ``before``/``after`` are the changed property's values (the
    whole column for added and dropped ones). ``carried``: whether the replication stream
    carries the column before or after the change; a change to a column it carries neither
    before nor after never reaches the pipeline. ``initial``: the change is part of a table's
    first version (its columns, from nothing), which no consumer has read yet; it is never
    stored (an ``INITIAL_LOAD`` records no changes), only set by a diff from version 0."""

    kind: str
    column: str
    before: Any
    after: Any
    carried: bool = True
    initial: bool = False

    @property
    def breaking(self) -> bool:
        """Would a downstream consumer of the table break (or silently lose data)? The answer
        is the severity model's (:mod:`rosetta.schema.severity`)."""
        from rosetta.schema import severity  # it reads this module's kinds

        return severity.of(self) is severity.BREAKING

    def to_json(self) -> dict[str, Any]:
        """The change as stored and sent; ``"carried": false`` marks a change to a column the
        stream does not carry (absent, the column is carried)."""
        raw: dict[str, Any] = {
            "type": self.kind,
            "column": self.column,
            "before": self.before,
            "after": self.after,
        }
        if not self.carried:
            raw["carried"] = False
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Change:
        return cls(
            raw["type"],
            raw["column"],
            raw.get("before"),
            raw.get("after"),
            raw.get("carried", True) is not False,
        )


def _pairs(
    old: TableSchema, new: TableSchema, by_name: bool = False
) -> tuple[list[tuple[Column, Column]], list[Column], list[Column]]:
    """Match columns of ``old`` and ``new``: by attnum where both have one, else by name."""
    new_by_attnum = {c.attnum: c for c in new.columns if c.attnum is not None}
    new_by_name = {c.column_name: c for c in new.columns}
    matched: list[tuple[Column, Column]] = []
    used: set[int] = set()
    dropped: list[Column] = []
    for col in old.columns:
        other = None
        if col.attnum is not None and new_by_attnum and not by_name:
            other = new_by_attnum.get(col.attnum)
        else:
            other = new_by_name.get(col.column_name)
        if other is None or id(other) in used:
            dropped.append(col)
        else:
            used.add(id(other))
            matched.append((col, other))
    added = [c for c in new.columns if id(c) not in used]
    return matched, dropped, added


def _type_of(col: Column) -> str:
    return col.full_type or col.data_type.lower()


def diff(
    old: TableSchema, new: TableSchema, *, by_name: bool = False, initial: bool = False
) -> list[Change]:
    """Every change that turns ``old`` into ``new``, in the new schema's column order.

    Columns are matched by attnum (so a rename is a rename); ``by_name`` matches them by name,
    for a table that was dropped and created again (its attnums mean nothing across the two).
    A property that one side does not record (a schema stored before Rosetta read it) is not
    compared. ``initial``: ``old`` is nothing, ``new`` the table's first version; its changes
    are marked so (and are safe: no consumer has read the table yet).
    """
    matched, dropped, added = _pairs(old, new, by_name)
    changes: list[Change] = []
    for before, after in matched:
        changes.extend(_column_changes(before, after))
    for col in dropped:
        changes.append(Change(DROP_COLUMN, col.column_name, col.to_json(), None, col.is_carried))
    # A schema stored before Rosetta knew what the stream carries lists only carried columns:
    # the others were there all along, not added.
    known = old.knows_carried
    for col in added:
        if known or col.is_carried:
            changes.append(Change(NEW_COLUMN, col.column_name, None, col.to_json(), col.is_carried))
    if initial:
        return [replace(c, initial=True) for c in changes]
    return changes


def _column_changes(before: Column, after: Column) -> list[Change]:
    name = after.column_name
    carried = before.is_carried or after.is_carried
    changes: list[Change] = []

    def change(kind: str, old: Any, new: Any) -> None:
        changes.append(Change(kind, name, old, new, carried))

    if before.column_name != after.column_name:
        change(RENAME_COLUMN, before.column_name, after.column_name)
    if _type_of(before) != _type_of(after):
        renamed = (
            before.type_oid is not None
            and before.type_oid == after.type_oid
            and before.data_type != after.data_type
        )
        change(RENAME_TYPE if renamed else CHANGES_TYPE, _type_of(before), _type_of(after))
    if before.is_nullable != after.is_nullable:
        change(CHANGES_NULLABLE, before.is_nullable, after.is_nullable)
    if (before.column_default, before.identity, before.generated) != (
        after.column_default,
        after.identity,
        after.generated,
    ):
        change(CHANGES_DEFAULT, _default_repr(before), _default_repr(after))
    if before.is_primary_key != after.is_primary_key:
        change(CHANGES_PRIMARY_KEY, before.is_primary_key, after.is_primary_key)
    if (
        before.in_replica_identity is not None
        and after.in_replica_identity is not None
        and before.in_replica_identity != after.in_replica_identity
        # The primary key is the replica identity by default: its change says it already.
        and (before.in_replica_identity, after.in_replica_identity)
        != (before.is_primary_key, after.is_primary_key)
    ):
        change(CHANGES_REPLICA_IDENTITY, before.in_replica_identity, after.in_replica_identity)
    if before.carried is not None and after.carried is not None and before.carried != after.carried:
        change(CHANGES_CARRIED, before.carried, after.carried)
    return changes


def _default_repr(col: Column) -> str | None:
    if col.generated:
        return f"GENERATED ALWAYS AS ({col.column_default}) {col.generated}"
    if col.identity:
        return f"GENERATED {col.identity} AS IDENTITY"
    return col.column_default


def classify(changes: list[Change]) -> str:
    """The ``changes_type`` of a version holding ``changes``."""
    kinds = {c.kind for c in changes}
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds:
        raise ValueError("a version needs at least one change")
    return MULTIPLE_CHANGES


def severity(changes: list[Change]) -> str:
    """``breaking`` when any change can break a consumer, else ``safe`` (the severity model's
    answer, :func:`rosetta.schema.severity.worst`)."""
    from rosetta.schema import severity as model  # it reads this module's kinds

    return str(model.worst(changes))
