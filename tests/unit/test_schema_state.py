"""The one rule for a table's schema state: recorded, no columns (all dropped) or missing."""

from __future__ import annotations

from rosetta.registry import schema_state


def test_a_schema_with_columns_is_recorded() -> None:
    assert schema_state(3, 3) == "recorded"
    assert schema_state(1, None) == "recorded"


def test_an_empty_schema_whose_latest_version_has_no_columns_means_all_were_dropped() -> None:
    assert schema_state(0, 0) == "no_columns"


def test_an_empty_schema_without_a_version_is_missing() -> None:
    assert schema_state(0, None) == "missing"


def test_an_empty_schema_whose_latest_version_has_columns_is_missing() -> None:
    assert schema_state(0, 4) == "missing"
