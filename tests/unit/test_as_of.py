"""Choosing the version in force at a time or an LSN, reading ``at`` and ``lsn``, and the words
provenance is shown in: pure, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rosetta import registry
from rosetta.cli.tables import provenance_lines
from rosetta.errors import InvalidInputError, NotFoundError

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def point(n: int, minutes: int, lsn: str | None, how: str | None = "polling") -> dict[str, Any]:
    return {
        "version_schema": n,
        "created_at": T0 + timedelta(minutes=minutes, seconds=1),
        "changed_at": T0 + timedelta(minutes=minutes) if how else None,
        "detected_by": how,
        "lsn": lsn,
        "commit_time_exact": True if how == "capture" else None,
    }


POINTS = [point(1, 0, "0/100"), point(2, 10, "0/200", "capture"), point(3, 20, "0/300")]


def test_at_a_time_the_latest_version_started_by_then_is_in_force() -> None:
    at = T0 + timedelta(minutes=15)
    answer = registry.pick_as_of(POINTS, "orders", at=at, lsn=None)
    assert (answer.number, answer.next_version, answer.exact) == (2, 3, False)
    assert answer.exactness.startswith("bounded by the polling interval: v3 was found by polling")
    assert (
        registry.pick_as_of(POINTS, "orders", at=T0 + timedelta(minutes=10), lsn=None).number == 2
    )


def test_the_answer_is_exact_when_the_next_version_was_captured_or_there_is_none() -> None:
    first = registry.pick_as_of(POINTS, "orders", at=T0, lsn=None)
    assert (first.number, first.exact) == (1, True)
    started = (T0 + timedelta(minutes=10)).isoformat()
    assert first.exactness == f"v2 applies from {started}, captured from the DDL"
    last = registry.pick_as_of(POINTS, "orders", at=T0 + timedelta(days=1), lsn=None)
    assert (last.number, last.exact, last.next_version) == (3, True, None)


def test_a_time_or_lsn_before_the_first_version_is_not_found_with_its_reason() -> None:
    with pytest.raises(NotFoundError, match=r"table orders was not tracked yet at .*: its first"):
        registry.pick_as_of(POINTS, "orders", at=T0 - timedelta(seconds=1), lsn=None)
    with pytest.raises(NotFoundError, match=r"not tracked yet at LSN 0/FF: .* from LSN 0/100"):
        registry.pick_as_of(POINTS, "orders", at=None, lsn="0/FF")
    with pytest.raises(NotFoundError, match="has no versions yet"):
        registry.pick_as_of([], "orders", at=T0, lsn=None)


def test_at_an_lsn_the_latest_version_at_or_before_it_is_in_force() -> None:
    assert registry.pick_as_of(POINTS, "t", at=None, lsn="0/200").number == 2
    assert registry.pick_as_of(POINTS, "t", at=None, lsn="0/2FF").number == 2
    assert registry.pick_as_of(POINTS, "t", at=None, lsn="1/0").number == 3
    # 4 GB apart: the high half counts.
    assert registry.lsn_value("1/0") > registry.lsn_value("0/FFFFFFFF")


def test_versions_without_an_lsn_cannot_be_placed_by_lsn() -> None:
    legacy = [point(1, 0, None, None), point(2, 10, None, None), point(3, 20, "0/300")]
    assert registry.pick_as_of(legacy, "t", at=None, lsn="0/300").number == 3
    with pytest.raises(NotFoundError, match="v1 to v2 were recorded before Rosetta kept LSNs"):
        registry.pick_as_of(legacy, "t", at=None, lsn="0/2FF")
    # ... but by time, with when Rosetta recorded them.
    by_time = registry.pick_as_of(legacy, "t", at=T0 + timedelta(minutes=5), lsn=None)
    assert (by_time.number, by_time.exact) == (1, False)
    assert "before provenance was kept" in by_time.exactness
    # A version without an LSN after one with: whether it applied cannot be told.
    gap = [point(1, 0, "0/100"), point(2, 10, None, None)]
    with pytest.raises(NotFoundError, match="v2 has no LSN recorded"):
        registry.pick_as_of(gap, "t", at=None, lsn="0/500")


def test_at_is_rfc_3339_with_a_timezone() -> None:
    assert registry.parse_at("2026-12-02T10:00:00Z") == T0
    assert registry.parse_at("2026-12-02t11:00:00.5+01:00") == T0 + timedelta(milliseconds=500)
    for naive in ("2026-12-02T10:00:00", "2026-12-02 10:00:00.123"):
        with pytest.raises(InvalidInputError, match="give its timezone"):
            registry.parse_at(naive)
    for bad in ("2026-12-02", "10:00:00Z", "2026-W49-3T10:00:00Z", "now", ""):
        with pytest.raises(InvalidInputError, match="RFC 3339"):
            registry.parse_at(bad)
    with pytest.raises(InvalidInputError, match="no such date or time"):
        registry.parse_at("2026-02-30T10:00:00Z")


def test_lsn_is_read_as_pg_lsn_reads_it_and_printed_as_it_prints_it() -> None:
    assert registry.parse_lsn("0/16b3748") == "0/16B3748"
    assert registry.parse_lsn("00000001/00000000") == "1/0"
    assert registry.parse_lsn("FFFFFFFF/FFFFFFFF") == "FFFFFFFF/FFFFFFFF"
    for bad in ("16B3748", "0/", "/0", "123456789/0", "0/0/0", "0x1/0", " 0/1", "g/0"):
        with pytest.raises(InvalidInputError, match="X/Y in hex"):
            registry.parse_lsn(bad)


def test_history_lines_say_how_a_version_was_found() -> None:
    legacy = {"detected_by": None, "lsn": None, "changed_at": None, "provenance": None}
    assert provenance_lines(legacy) == ["recorded before provenance was kept"]
    polled = {**legacy, "detected_by": "polling", "lsn": "0/16B3748", "changed_at": T0}
    assert provenance_lines(polled) == [
        "found by polling · LSN 0/16B3748 · at 2026-12-02 10:00:00.000+00:00"
    ]
    assert provenance_lines({**polled, "lsn": None})[0].startswith("found by polling · LSN not")


def test_history_lines_of_a_captured_version_name_who_where_and_what() -> None:
    event = {
        "id": 17,
        "statement": "ALTER TABLE orders\n  ADD COLUMN note text\x1b[31m" + " x" * 200,
        "session_user": "alice",
        "current_user": "app_owner",
        "application_name": "psql",
        "client_addr": "10.0.0.5",
        "backend_pid": 4242,
        "xid": "771",
    }
    captured = {
        "detected_by": "capture",
        "lsn": "0/16B3748",
        "changed_at": T0,
        "provenance": {
            "events": [
                event,
                {**event, "statement": None, "client_addr": None, "session_user": "app_owner"},
            ]
        },
    }
    lines = provenance_lines(captured)
    assert lines[0] == "found by capture · LSN 0/16B3748 · at 2026-12-02 10:00:00.000+00:00"
    assert lines[1] == "by app_owner (session alice), app psql, from 10.0.0.5, pid 4242, xid 771"
    assert lines[2].startswith("  ALTER TABLE orders ADD COLUMN note text [31m x x")
    assert "\x1b" not in lines[2] and lines[2].endswith("…") and len(lines[2]) <= 2 + 160
    assert lines[3] == "by app_owner, app psql, from a local socket, pid 4242, xid 771"
    assert lines[4] == "  (statement withheld: it may hold a secret)"


def test_the_table_page_lists_renames_of_the_table_between_two_versions() -> None:
    from rosetta.web.table_page import table_renames

    rename = {"type": "RENAME TABLE", "column": "", "before": "public.orders"}
    versions: list[dict[str, Any]] = [
        {"version_schema": 1, "table_rename": None},
        {"version_schema": 2, "table_rename": {**rename, "after": "public.purchases"}},
        {"version_schema": 3, "table_rename": None},
    ]
    forward = table_renames(versions, 1, 3)
    assert [(r["label"], r["before"], r["after"]) for r in forward] == [
        ("table renamed", "public.orders", "public.purchases")
    ]
    assert forward[0]["kind"] == "RENAME TABLE" and forward[0]["column"] == ""
    backward = table_renames(versions, 3, 1)
    assert [(r["before"], r["after"]) for r in backward] == [("public.purchases", "public.orders")]
    assert table_renames(versions, 2, 3) == [] and table_renames(versions, 0, 1) == []
