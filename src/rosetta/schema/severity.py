"""How severe a change is: one table of rules, read top to bottom, the first that fits decides.

``breaking`` means a consumer of the table's replication stream may break, or silently lose
data; ``safe`` means every consumer keeps working. The web UI, the CLI, the API's ``breaking``
and the webhooks' ``severity`` all ask :func:`of`, and the README shows :func:`markdown`, so
there is one answer everywhere.

Types are judged from their text as ``pg_catalog.format_type`` prints it (a column's
``full_type``: ``character varying(20)``, ``numeric(10,2)``, ``timestamp(3) without time
zone``, ``integer[]``). A type change is safe only when it widens: every value the old type held
is held, unchanged, by the new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rosetta.schema.diff import (
    CHANGES_CARRIED,
    CHANGES_DEFAULT,
    CHANGES_NULLABLE,
    CHANGES_PRIMARY_KEY,
    CHANGES_REPLICA_IDENTITY,
    CHANGES_TYPE,
    DROP_COLUMN,
    INITIAL_LOAD,
    NEW_COLUMN,
    RENAME_COLUMN,
    RENAME_TABLE,
    RENAME_TYPE,
    Change,
)


class Severity(StrEnum):
    SAFE = "safe"
    BREAKING = "breaking"


SAFE = Severity.SAFE
BREAKING = Severity.BREAKING


# --- types ------------------------------------------------------------------------------------

_TYPE_RE = re.compile(
    r"^(?P<name>[a-z][a-z ]*?)"
    r"(?:\((?P<mods>-?\d+(?:,-?\d+)?)\))?"
    r"(?P<zone> with(?:out)? time zone)?"
    r"(?P<array>(?:\[\])*)$"
)


@dataclass(frozen=True, slots=True)
class TypeText:
    """A built-in type's text, read: ``numeric(10,2)[]`` is numeric, (10, 2), no zone, an
    array."""

    name: str
    mods: tuple[int, ...]
    zone: str
    array: bool


def parse_type(text: Any) -> TypeText | None:
    """The parts of a built-in type's text; None for anything else (a user type, a quoted or
    schema-qualified name), which no rule widens."""
    if not isinstance(text, str):
        return None
    m = _TYPE_RE.match(text.strip())
    if m is None:
        return None
    mods = tuple(int(x) for x in m["mods"].split(",")) if m["mods"] else ()
    return TypeText(m["name"].strip(), mods, m["zone"] or "", bool(m["array"]))


def _limit(t: TypeText) -> int | None:
    """The one modifier (a length or a precision), None when unlimited."""
    return t.mods[0] if t.mods else None


def _at_least(before: int | None, after: int | None, unlimited: int | None = None) -> bool:
    """Whether limit ``after`` holds all that ``before`` does (None: unlimited, or
    ``unlimited`` when the type has a largest value)."""
    before = unlimited if before is None else before
    after = unlimited if after is None else after
    if after is None:
        return True
    return before is not None and after >= before


_VARCHAR, _CHAR, _TEXT = "character varying", "character", "text"
_INTEGERS = ("smallint", "integer", "bigint")
_FLOATS = ("real", "double precision")
_TIMES = ("time", "timestamp")
_MAX_SECONDS_PRECISION = 6


def _text_widens(b: TypeText, a: TypeText) -> bool:
    if b.name == _VARCHAR and a.name == _VARCHAR:
        return _at_least(_limit(b), _limit(a))
    return a.name == _TEXT and not a.mods and b.name in (_VARCHAR, _CHAR, "bpchar")


def _number_widens(b: TypeText, a: TypeText) -> bool:
    for family in (_INTEGERS, _FLOATS):
        if b.name in family and a.name in family:
            return family.index(a.name) > family.index(b.name)
    return False


def _numeric_widens(b: TypeText, a: TypeText) -> bool:
    if b.name != "numeric" or a.name != "numeric" or not b.mods:
        return False
    if not a.mods:
        return True
    (p, s), (p2, s2) = _precision_scale(b), _precision_scale(a)
    return s2 >= s and p2 - s2 >= p - s


def _precision_scale(t: TypeText) -> tuple[int, int]:
    return t.mods[0], t.mods[1] if len(t.mods) > 1 else 0


def _time_widens(b: TypeText, a: TypeText) -> bool:
    if b.name in _TIMES and a.name == b.name and a.zone == b.zone:
        return _at_least(_limit(b), _limit(a), _MAX_SECONDS_PRECISION)
    if b.name.startswith("interval") and a.name.startswith("interval"):
        fields_b, fields_a = b.name[len("interval") :].strip(), a.name[len("interval") :].strip()
        return fields_a in ("", fields_b) and _at_least(
            _limit(b), _limit(a), _MAX_SECONDS_PRECISION
        )
    return False


def _bits_widen(b: TypeText, a: TypeText) -> bool:
    return b.name == "bit varying" and a.name == "bit varying" and _at_least(_limit(b), _limit(a))


_WIDENINGS: tuple[Callable[[TypeText, TypeText], bool], ...] = (
    _text_widens,
    _number_widens,
    _numeric_widens,
    _time_widens,
    _bits_widen,
)


def _scalar(rule: Callable[[TypeText, TypeText], bool]) -> Callable[[Change], bool]:
    """A type rule applied to a change between two types that are not arrays."""

    def test(change: Change) -> bool:
        b, a = parse_type(change.before), parse_type(change.after)
        return b is not None and a is not None and not b.array and not a.array and rule(b, a)

    return test


def _array_widens(change: Change) -> bool:
    b, a = parse_type(change.before), parse_type(change.after)
    if b is None or a is None or not b.array or not a.array:
        return False
    return any(rule(b, a) for rule in _WIDENINGS)


def widens(before: str, after: str) -> bool:
    """Whether type ``after`` holds every value of type ``before`` unchanged."""
    b, a = parse_type(before), parse_type(after)
    if b is None or a is None or b.array != a.array:
        return False
    return any(rule(b, a) for rule in _WIDENINGS)


# --- the rules --------------------------------------------------------------------------------


def _new_column_safe(change: Change) -> bool:
    after = change.after if isinstance(change.after, dict) else {}
    return bool(
        after.get("is_nullable", True)
        or after.get("column_default") is not None
        or after.get("identity")
        or after.get("generated")
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the model: the kind of change it is about (None: any), when it applies in
    words and as a test, its severity and why."""

    kind: str | None
    when: str
    severity: Severity
    why: str
    applies: Callable[[Change], bool]


RULES: tuple[Rule, ...] = (
    Rule(
        None,
        f"in a table's first version (`{INITIAL_LOAD}`: its columns, from nothing)",
        SAFE,
        "no consumer has read the table yet",
        lambda c: c.initial,
    ),
    Rule(
        RENAME_TABLE,
        "`RENAME TO` or `SET SCHEMA`",
        BREAKING,
        "the stream names the table anew; a consumer routing by the old name loses it",
        lambda c: True,
    ),
    Rule(
        CHANGES_CARRIED,
        "the stream stops carrying the column",
        BREAKING,
        "its values no longer arrive",
        lambda c: c.before is True and c.after is False,
    ),
    Rule(
        CHANGES_CARRIED,
        "the stream starts carrying the column",
        SAFE,
        "a consumer receives a column more",
        lambda c: c.before is False and c.after is True,
    ),
    Rule(
        None,
        "to a column the stream carries neither before nor after",
        SAFE,
        "it never reaches the pipeline",
        lambda c: not c.carried,
    ),
    Rule(
        NEW_COLUMN,
        "nullable, or with a default (an identity or generated column too)",
        SAFE,
        "rows without it stay valid",
        _new_column_safe,
    ),
    Rule(
        NEW_COLUMN,
        "NOT NULL without a default",
        BREAKING,
        "a copy downstream must fill it for rows it already holds",
        lambda c: True,
    ),
    Rule(DROP_COLUMN, "always", BREAKING, "its values no longer arrive", lambda c: True),
    Rule(
        CHANGES_TYPE,
        "`varchar(n)` → `varchar(m)` with m ≥ n, or `varchar`; `varchar`, `char(n)` → `text`",
        SAFE,
        "every old value fits, unchanged",
        _scalar(_text_widens),
    ),
    Rule(
        CHANGES_TYPE,
        "`smallint` → `integer` → `bigint`; `real` → `double precision`",
        SAFE,
        "every old value fits, unchanged",
        _scalar(_number_widens),
    ),
    Rule(
        CHANGES_TYPE,
        "`numeric(p,s)` → `numeric(p',s')` with s' ≥ s and p' - s' ≥ p - s, or → `numeric`",
        SAFE,
        "no digit is lost on either side of the point",
        _scalar(_numeric_widens),
    ),
    Rule(
        CHANGES_TYPE,
        "`time`, `timetz`, `timestamp`, `timestamptz`, `interval` (same fields or none): "
        "fractional-second precision raised or unlimited",
        SAFE,
        "no fraction of a second is lost",
        _scalar(_time_widens),
    ),
    Rule(
        CHANGES_TYPE,
        "`varbit(n)` → `varbit(m)` with m ≥ n, or `varbit`",
        SAFE,
        "every old value fits, unchanged",
        _scalar(_bits_widen),
    ),
    Rule(
        CHANGES_TYPE,
        "an array of one of the types above, widened as above",
        SAFE,
        "every old element fits, unchanged",
        _array_widens,
    ),
    Rule(
        CHANGES_TYPE,
        "any other type change: narrowed, or another type",
        BREAKING,
        "values may no longer fit, or read, as the consumer expects",
        lambda c: True,
    ),
    Rule(
        RENAME_COLUMN,
        "always",
        BREAKING,
        "the stream names the column anew; readers of the old name lose it",
        lambda c: True,
    ),
    Rule(
        CHANGES_NULLABLE,
        "NOT NULL dropped",
        SAFE,
        "every row that was valid stays valid",
        lambda c: c.before is False and c.after is True,
    ),
    Rule(
        CHANGES_NULLABLE,
        "NOT NULL added",
        BREAKING,
        "a copy downstream that holds NULLs, or writes rows back without the value, is refused",
        lambda c: c.before is True and c.after is False,
    ),
    Rule(
        CHANGES_DEFAULT,
        "always (identity and generation too)",
        SAFE,
        "the stream carries values, not how they were made",
        lambda c: True,
    ),
    Rule(
        CHANGES_PRIMARY_KEY,
        "always",
        BREAKING,
        "the key consumers upsert and delete by changes",
        lambda c: True,
    ),
    Rule(
        CHANGES_REPLICA_IDENTITY,
        "always",
        BREAKING,
        "the key columns of UPDATE and DELETE messages change",
        lambda c: True,
    ),
    Rule(
        RENAME_TYPE,
        "the same type (same OID) under a new name",
        SAFE,
        "the values and their encoding are unchanged",
        lambda c: True,
    ),
    Rule(
        None,
        "anything else",
        BREAKING,
        "a change Rosetta cannot judge is reported as breaking",
        lambda c: True,
    ),
)
"""The severity model: the first rule whose kind and test fit a change decides."""


def rule_for(change: Change) -> Rule:
    """The rule that decides ``change``'s severity."""
    for rule in RULES:
        if (rule.kind is None or rule.kind == change.kind) and rule.applies(change):
            return rule
    raise AssertionError("the last rule applies to every change")


def of(change: Change) -> Severity:
    """The severity of one change."""
    return rule_for(change).severity


def worst(changes: list[Change]) -> Severity:
    """``breaking`` when any of ``changes`` is, else ``safe`` (no change is safe)."""
    return BREAKING if any(of(c) is BREAKING for c in changes) else SAFE


def of_stored(changes: Any) -> Severity | None:
    """The severity of a version from its stored ``changes`` (JSON); None when they cannot be
    read (a row written by hand)."""
    try:
        return worst([Change.from_json(raw) for raw in changes or []])
    except (KeyError, TypeError, AttributeError):
        return None


# --- which severities a source sends webhooks for ---------------------------------------------

WEBHOOK_SEVERITIES = ("all", "breaking")
"""A source's ``webhook_severity``: ``all`` sends every event, ``breaking`` only breaking ones."""


def sends(threshold: str, severity: str) -> bool:
    """Whether a source whose webhook threshold is ``threshold`` sends an event of
    ``severity``."""
    return threshold != "breaking" or severity == BREAKING


# --- the README's table -----------------------------------------------------------------------


def markdown() -> str:
    """The model as a Markdown table, as the README shows it."""
    lines = ["| change | when | severity | why |", "|---|---|---|---|"]
    for rule in RULES:
        kind = f"`{rule.kind}`" if rule.kind else "any change"
        lines.append(f"| {kind} | {rule.when} | {rule.severity} | {rule.why} |")
    return "\n".join(lines) + "\n"
