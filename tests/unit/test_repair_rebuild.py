"""Pure unit tests of `rosetta fix-schema-versions`' rebuild: a damaged history becomes the chain
of distinct schemas it recorded, renumbered 1..n in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rosetta.repair import HistoryRow, Rebuilt, rebuild
from rosetta.schema.diff import (
    DROP_COLUMN,
    INITIAL_LOAD,
    NEW_COLUMN,
    RENAME_COLUMN,
    classify,
    diff,
)
from rosetta.schema.model import SchemaJson, TableSchema
from tests.unit.schema_json import column, columns

T0 = datetime(2024, 1, 1, tzinfo=UTC)


ID = columns(column("id", 1))
ID_NAME = columns(column("id", 1), column("name", 2, "text"))
ID_LABEL = columns(column("id", 1), column("label", 2, "text"))
ID_NAME_PRICE = columns(column("id", 1), column("name", 2, "text"), column("price", 3, "numeric"))


def row(
    id: int,
    version: int,
    new: SchemaJson | None,
    old: SchemaJson | None = None,
    *,
    kind: str = INITIAL_LOAD,
    changes: list[dict[str, Any]] | None = None,
) -> HistoryRow:
    """A stored history row; rows are created a minute apart, in ``id`` order."""
    return HistoryRow(id, version, kind, old, new, changes, T0 + timedelta(minutes=id))


def change(id: int, version: int, old: SchemaJson, new: SchemaJson) -> HistoryRow:
    """A correctly recorded change from ``old`` to ``new``."""
    changes = diff(TableSchema.from_json(old), TableSchema.from_json(new))
    return row(
        id,
        version,
        new,
        old,
        kind=classify(changes),
        changes=[c.to_json() for c in changes],
    )


SOUND = [row(1, 1, ID), change(2, 2, ID, ID_NAME), change(3, 3, ID_NAME, ID_NAME_PRICE)]


def chain(rebuilt: Rebuilt) -> list[tuple[int | None, int, str, SchemaJson]]:
    """Each rebuilt version as (row id, number, kind, new schema)."""
    return [(v.id, v.version, v.changes_type, v.new) for v in rebuilt.versions]


def test_a_sound_history_is_kept_as_it_is() -> None:
    rebuilt = rebuild(SOUND)

    assert chain(rebuilt) == [
        (1, 1, INITIAL_LOAD, ID),
        (2, 2, NEW_COLUMN, ID_NAME),
        (3, 3, NEW_COLUMN, ID_NAME_PRICE),
    ]
    assert not rebuilt.changed
    assert rebuilt.describe() == "3 rows -> 3 versions"


def test_a_rebuilt_history_needs_no_second_rebuild() -> None:
    damaged = [row(1, 4, ID), row(2, 4, None), change(3, 9, ID, ID_NAME), row(4, 9, ID_NAME)]
    once = rebuild(damaged)
    kept = [
        row(
            v.id or 0,
            v.version,
            v.new,
            v.old,
            kind=v.changes_type,
            changes=v.changes,
        )
        for v in once.versions
    ]

    assert once.changed
    assert not rebuild(kept).changed


def test_an_empty_history_rebuilds_to_nothing() -> None:
    rebuilt = rebuild([])

    assert rebuilt.versions == ()
    assert not rebuilt.changed


def test_versions_with_a_null_or_empty_schema_are_dropped() -> None:
    rebuilt = rebuild([row(1, 1, ID), row(2, 2, None, ID), row(3, 3, {}, ID)])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID)]
    assert rebuilt.delete_ids == (2, 3)
    assert rebuilt.describe() == "3 rows -> 1 versions; dropped 2 empty"


def test_a_history_of_only_empty_versions_keeps_no_version_so_it_is_healed_from_its_source() -> (
    None
):
    rebuilt = rebuild([row(1, 1, None), row(2, 2, {})])

    assert rebuilt.versions == ()
    assert rebuilt.changed
    assert rebuilt.delete_ids == (1, 2)


def test_a_phantom_version_whose_schema_did_not_change_is_dropped() -> None:
    rebuilt = rebuild([row(1, 1, ID), row(2, 2, ID, ID, kind=NEW_COLUMN, changes=[])])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID)]
    assert rebuilt.dropped_phantom == 1
    assert rebuilt.delete_ids == (2,)


def test_a_duplicate_version_number_with_the_same_schema_is_dropped_as_a_duplicate() -> None:
    rebuilt = rebuild([row(1, 1, ID), row(2, 1, ID)])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID)]
    assert rebuilt.dropped_duplicate == 1
    assert rebuilt.dropped_phantom == 0
    assert rebuilt.describe() == "2 rows -> 1 versions; dropped 1 duplicate"


def test_a_duplicate_version_number_with_a_new_schema_is_kept_under_the_next_number() -> None:
    rebuilt = rebuild([row(1, 1, ID), change(2, 1, ID, ID_NAME)])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID), (2, 2, NEW_COLUMN, ID_NAME)]
    assert rebuilt.delete_ids == ()
    assert rebuilt.rewritten == 1


def test_gaps_in_the_version_numbers_are_closed() -> None:
    rebuilt = rebuild([row(1, 1, ID), change(2, 5, ID, ID_NAME), change(3, 9, ID_NAME, ID_LABEL)])

    assert [v.version for v in rebuilt.versions] == [1, 2, 3]
    assert rebuilt.rewritten == 2
    assert rebuilt.describe() == "3 rows -> 3 versions; 2 renumbered or corrected"


def test_versions_are_numbered_in_time_order_not_by_their_old_numbers() -> None:
    rebuilt = rebuild([row(1, 3, ID), change(2, 2, ID, ID_NAME), change(3, 1, ID_NAME, ID)])

    assert chain(rebuilt) == [
        (1, 1, INITIAL_LOAD, ID),
        (2, 2, NEW_COLUMN, ID_NAME),
        (3, 3, DROP_COLUMN, ID),
    ]


def test_an_initial_load_not_at_v1_is_moved_to_v1() -> None:
    rebuilt = rebuild([row(1, 3, ID), change(2, 4, ID, ID_NAME)])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID), (2, 2, NEW_COLUMN, ID_NAME)]
    assert not rebuilt.initial_restored


def test_a_missing_initial_load_is_restored_at_v1_from_the_first_changes_old_schema() -> None:
    rebuilt = rebuild([change(5, 2, ID, ID_NAME)])

    assert chain(rebuilt) == [(None, 1, INITIAL_LOAD, ID), (5, 2, NEW_COLUMN, ID_NAME)]
    assert rebuilt.versions[0].created_at == T0 + timedelta(minutes=5)
    assert rebuilt.initial_restored
    assert rebuilt.describe() == "1 rows -> 2 versions; INITIAL_LOAD restored at v1"


def test_a_first_change_without_an_old_schema_becomes_the_initial_load() -> None:
    rebuilt = rebuild([row(1, 1, ID_NAME, None, kind=NEW_COLUMN, changes=[{"type": "x"}])])

    assert chain(rebuilt) == [(1, 1, INITIAL_LOAD, ID_NAME)]
    assert rebuilt.versions[0].changes == []
    assert not rebuilt.initial_restored
    assert rebuilt.rewritten == 1


def test_a_kept_versions_old_schema_and_changes_are_recomputed_from_the_version_before() -> None:
    # Row 3's recorded old schema is the dropped row 2's; its predecessor in the chain is row 1.
    rebuilt = rebuild(
        [row(1, 1, ID_NAME), row(2, 2, {}, ID_NAME), change(3, 3, ID_LABEL, ID_NAME_PRICE)]
    )

    last = rebuilt.versions[-1]
    assert (last.version, last.old, last.new) == (2, ID_NAME, ID_NAME_PRICE)
    assert last.changes_type == NEW_COLUMN
    assert [c["column"] for c in last.changes] == ["price"]


def test_a_rename_is_recomputed_as_a_rename() -> None:
    rebuilt = rebuild([row(1, 1, ID_NAME), row(2, 2, ID_LABEL, kind=NEW_COLUMN)])

    assert rebuilt.versions[-1].changes_type == RENAME_COLUMN
    assert rebuilt.versions[-1].old == ID_NAME
