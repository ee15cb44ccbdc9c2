"""Differential test: the schema Rosetta records equals what pgoutput's stream carries.

Per PostgreSQL major and seed, random DDL (tests/integration/ddl_fuzz.py) runs on a source whose
publication Rosetta tracks. After each step Rosetta syncs, a row goes into every table in one
transaction, and that transaction is decoded from a logical slot with pgoutput (each SQL call is
a new decoding session, so a Relation message precedes the first change of every relation). Each
Relation message must match what Rosetta recorded for that relation OID: the carried columns in
order, their names, type text (format_type under search_path=public), type OIDs and key flags.

ROSETTA_FIDELITY_SEEDS (a count or a comma list), ROSETTA_FIDELITY_SEED (one seed) and
ROSETTA_FIDELITY_STEPS run it longer. A recorded column without the reader's ``carried``,
``in_replica_identity`` or ``type_oid`` is a disagreement of its own.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rosetta import sources
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer
from tests import pgoutput
from tests.integration.ddl_fuzz import PUBLICATION, DdlFuzzer, Table

MAJORS = (14, 15, 16, 17, 18)
NEW_KEYS = ("carried", "in_replica_identity", "type_oid")
_counter = itertools.count()
CHANGES = (pgoutput.Insert, pgoutput.Update, pgoutput.Delete)


def _seeds() -> list[int]:
    one = os.environ.get("ROSETTA_FIDELITY_SEED")
    if one:
        return [int(one)]
    spec = os.environ.get("ROSETTA_FIDELITY_SEEDS", "5").strip()
    if "," in spec:
        return [int(part) for part in spec.split(",") if part.strip()]
    return list(range(int(spec)))


STEPS = int(os.environ.get("ROSETTA_FIDELITY_STEPS", "100"))
CASES = [(major, seed) for major in MAJORS for seed in _seeds()]


@dataclass(frozen=True)
class StreamColumn:
    name: str
    type_text: str
    type_oid: int
    key: bool


@dataclass(frozen=True)
class RecordedColumn:
    name: str
    type_text: str
    type_oid: int | None
    key: bool
    generated: bool


@dataclass(frozen=True)
class Recorded:
    schema_name: str
    table_name: str
    status: str
    columns: tuple[RecordedColumn, ...]
    missing_keys: tuple[str, ...]


@dataclass(frozen=True)
class Disagreement:
    step: int
    kind: str
    relation: str
    stream: str
    recorded: str


@dataclass
class Run:
    major: int
    seed: int
    steps: int
    disagreements: list[Disagreement] = field(default_factory=list)
    relations_compared: int = 0
    inserts_failed: int = 0
    sync_errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    ddl_tried: int = 0
    ddl_failed: int = 0

    def summary(self) -> str:
        kinds = Counter(d.kind for d in self.disagreements)
        return (
            f"pg{self.major}-seed{self.seed}: {self.steps} steps in {self.elapsed:.1f}s,"
            f" {self.relations_compared} Relation messages compared, {self.ddl_failed} of"
            f" {self.ddl_tried} DDL groups failed, {self.inserts_failed} inserts skipped,"
            f" {len(self.disagreements)} disagreements"
            + "".join(f"\n  {kind}: {n}" for kind, n in sorted(kinds.items()))
        )

    def disagree(self, step: int, kind: str, relation: str, stream: Any, recorded: Any) -> None:
        self.disagreements.append(Disagreement(step, kind, relation, str(stream), str(recorded)))


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def fidelity_source(
    request: pytest.FixtureRequest, pg_of: Callable[[int], PostgresServer]
) -> Iterator[tuple[PostgresServer, str, psycopg.Connection[Any]]]:
    """A fresh database on the case's server; its slots are dropped before the database."""
    major: int = request.param
    server = pg_of(major)
    name = f"fidelity_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn = psycopg.connect(server.url(name), autocommit=True)
    conn.execute("SET search_path = public")
    try:
        yield server, name, conn
    finally:
        conn.close()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = %s",
                (name,),
            )
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- what Rosetta recorded ------------------------------------------------------------------


def recorded_tables(store: psycopg.Connection[Any], source_id: int) -> dict[int, Recorded]:
    rows = store.execute(
        "SELECT table_oid::bigint, schema_name, table_name, status::text, schema_table"
        " FROM table_metadata_list WHERE source_id = %s",
        (source_id,),
    ).fetchall()
    store.rollback()
    out: dict[int, Recorded] = {}
    for oid, schema_name, table_name, status, schema_table in rows:
        if oid is None:
            continue
        previous = out.get(oid)
        if previous is not None and previous.status == "tracked":
            continue  # one OID twice (an old row): the tracked one is what counts
        columns: list[tuple[int, RecordedColumn]] = []
        missing: set[str] = set()
        for column in (schema_table or {}).values():
            absent = [key for key in NEW_KEYS if key not in column]
            missing.update(absent)
            # Without the key it is compared as carried; the missing key is reported once.
            if column.get("carried") is False:
                continue
            key = column.get("in_replica_identity", column.get("is_primary_key", False))
            columns.append(
                (
                    int(column["attnum"]),
                    RecordedColumn(
                        column["column_name"],
                        column["full_type"],
                        column.get("type_oid"),
                        key,
                        bool(column.get("generated")),
                    ),
                )
            )
        columns.sort(key=lambda pair: pair[0])
        out[oid] = Recorded(
            schema_name,
            table_name,
            status,
            tuple(c for _, c in columns),
            tuple(sorted(missing)),
        )
    return out


# --- what the stream carried ----------------------------------------------------------------


def read_stream(
    conn: psycopg.Connection[Any], slot: str
) -> list[tuple[pgoutput.Transaction, dict[int, list[StreamColumn]]]]:
    """The slot's pending changes (consumed), by transaction, with each Relation message's
    columns typed now (format_type under search_path=public: a type renamed later must not
    change what this step saw)."""
    rows = conn.execute(
        "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL,"
        " 'proto_version', '1', 'publication_names', %s)",
        (slot, PUBLICATION),
    ).fetchall()
    transactions = pgoutput.transactions([pgoutput.parse(bytes(data)) for (data,) in rows])
    relations = [r for txn in transactions for r in txn.relations]
    columns = [(i, c) for i, r in enumerate(relations) for c in r.columns]
    texts = conn.execute(
        "SELECT format_type(u.t, u.m) FROM unnest(%s::oid[], %s::int[])"
        " WITH ORDINALITY AS u(t, m, i) ORDER BY u.i",
        ([c.type_oid for _, c in columns], [c.type_modifier for _, c in columns]),
    ).fetchall()
    by_relation: dict[int, list[StreamColumn]] = {i: [] for i in range(len(relations))}
    for (i, c), (text,) in zip(columns, texts, strict=True):
        by_relation[i].append(StreamColumn(c.name, text, c.type_oid, c.is_key))
    numbered = iter(range(len(relations)))
    return [
        (txn, {r.oid: by_relation[next(numbered)] for r in txn.relations}) for txn in transactions
    ]


# --- one step's inserts ---------------------------------------------------------------------


def insert_rows(fuzzer: DdlFuzzer, run: Run, tables: list[Table]) -> tuple[int, set[int]]:
    """One row into every table, in one transaction: its xid, and the OIDs of the relations the
    publication must have sent a change for (row filters left out)."""
    conn = fuzzer.conn
    expected: set[int] = set()
    with conn.transaction():
        # The test servers run with synchronous_commit=off; decoding reads only flushed WAL.
        conn.execute("SET LOCAL synchronous_commit = on")
        row = conn.execute(
            "SELECT (txid_current() %% 4294967296)::bigint,"
            " ARRAY(SELECT relid::bigint FROM pg_get_publication_tables(%s))",
            (PUBLICATION,),
        ).fetchone()
        assert row is not None
        xid, published = int(row[0]), set(row[1])
        filtered = _filtered(conn, fuzzer.major)
        for table in tables:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("DELETE FROM {}").format(table.ident))
                    landed = conn.execute(fuzzer.insert(table)).fetchone()
            except psycopg.Error:
                run.inserts_failed += 1
                continue
            assert landed is not None
            leaf = int(landed[0])
            target = leaf if leaf in published else table.oid if table.oid in published else None
            if target is not None and not filtered & {leaf, table.oid}:
                expected.add(target)
    return xid, expected


def _filtered(conn: psycopg.Connection[Any], major: int) -> set[int]:
    """The OIDs of the publication's tables with a row filter (PostgreSQL 15+)."""
    if major < 15:
        return set()
    rows = conn.execute(
        "SELECT pr.prrelid::bigint FROM pg_publication_rel pr JOIN pg_publication p"
        " ON p.oid = pr.prpubid WHERE p.pubname = %s AND pr.prqual IS NOT NULL",
        (PUBLICATION,),
    ).fetchall()
    return {oid for (oid,) in rows}


# --- the comparison -------------------------------------------------------------------------


def compare(
    run: Run,
    step: int,
    messages: tuple[pgoutput.Message, ...],
    typed: dict[int, list[StreamColumn]],
    recorded: dict[int, Recorded],
    expected: set[int],
) -> None:
    # With publish_via_partition_root, pgoutput sends a partition's own Relation message after
    # its root's, though the change names the root: only the relations the changes name are
    # what the stream publishes.
    changed = {m.relation_oid for m in messages if isinstance(m, CHANGES)}
    relations = [m for m in messages if isinstance(m, pgoutput.Relation) and m.oid in changed]
    for relation in relations:
        name = f"{relation.schema_name}.{relation.name} (oid {relation.oid})"
        stream = typed[relation.oid]
        run.relations_compared += 1
        rec = recorded.get(relation.oid)
        if rec is None or rec.status != "tracked":
            status = "no row" if rec is None else f"status {rec.status}"
            run.disagree(
                step, "relation not tracked", name, f"{len(stream)} columns", f"({status})"
            )
            continue
        if (rec.schema_name, rec.table_name) != (relation.schema_name, relation.name):
            run.disagree(
                step,
                "relation name",
                name,
                f"{relation.schema_name}.{relation.name}",
                f"{rec.schema_name}.{rec.table_name}",
            )
        if rec.missing_keys:
            run.disagree(step, "missing keys", name, list(NEW_KEYS), f"no {rec.missing_keys}")
        if len(stream) != len(rec.columns):
            run.disagree(
                step,
                _count_kind(stream, rec.columns),
                name,
                [(c.name, c.type_text) for c in stream],
                [(c.name, c.type_text) for c in rec.columns],
            )
            continue
        for position, (s, r) in enumerate(zip(stream, rec.columns, strict=True), 1):
            where = f"{name} column {position}"
            if s.name != r.name:
                run.disagree(step, "column name", where, s.name, r.name)
            if s.type_text != r.type_text:
                run.disagree(step, "type text", f"{where} {s.name!r}", s.type_text, r.type_text)
            if r.type_oid is not None and s.type_oid != r.type_oid:
                run.disagree(step, "type oid", f"{where} {s.name!r}", s.type_oid, r.type_oid)
            if s.key != r.key:
                run.disagree(step, "key flag", f"{where} {s.name!r}", s.key, r.key)
    sent = {relation.oid for relation in relations}
    for oid in sorted(expected - sent):
        rec = recorded.get(oid)
        if rec is not None and rec.status == "tracked":
            run.disagree(
                step,
                "no relation message",
                f"{rec.schema_name}.{rec.table_name} (oid {oid})",
                "nothing (a row was inserted, no row filter)",
                f"tracked, {len(rec.columns)} columns",
            )


def _ranges(steps: list[int]) -> str:
    parts: list[str] = []
    start = previous = steps[0]
    for step in [*steps[1:], None]:
        if step is not None and step == previous + 1:
            previous = step
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if step is not None:
            start = previous = step
    return ", ".join(parts)


def _count_kind(stream: list[StreamColumn], recorded: tuple[RecordedColumn, ...]) -> str:
    """A name for a column count disagreement, by what differs."""
    if not stream:
        return "column count: table without columns"
    extra = {c.name for c in recorded} - {c.name for c in stream}
    if {c.name for c in stream} <= {c.name for c in recorded} and extra <= {
        c.name for c in recorded if c.generated
    }:
        return "column count: generated column"
    return "column count"


def report(run: Run, fuzzer: DdlFuzzer) -> str:
    last = max((d.step for d in run.disagreements), default=run.steps)
    lines = [
        f"PostgreSQL {run.major}, seed {run.seed}: the pgoutput stream and Rosetta's records"
        f" disagree ({run.steps} steps)",
        run.summary(),
        f"  replay: ROSETTA_FIDELITY_SEED={run.seed} ROSETTA_FIDELITY_STEPS={run.steps}"
        f" scripts/test tests/integration/test_stream_fidelity.py -k pg{run.major}",
        "",
    ]
    # The same disagreement step after step is shown once, with the steps it was seen at.
    seen: dict[tuple[str, str, str, str], list[int]] = {}
    for d in run.disagreements:
        seen.setdefault((d.kind, d.relation, d.stream, d.recorded), []).append(d.step)
    for shown, ((kind, relation, stream, recorded), steps) in enumerate(seen.items()):
        if shown == 80:
            lines.append(f"... and {len(seen) - 80} more distinct disagreements")
            break
        lines += [
            f"[{kind}] {relation} at steps {_ranges(steps)}",
            f"    stream:   {stream}",
            f"    recorded: {recorded}",
        ]
    if run.sync_errors:
        lines += ["", "sync errors:", *run.sync_errors[:10]]
    lines += ["", f"statements tried up to step {last}:"]
    lines += [a.render() for a in fuzzer.attempts if a.step <= last]
    return "\n".join(lines)


# --- the test -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fidelity_source", "seed"),
    CASES,
    ids=[f"pg{major}-seed{seed}" for major, seed in CASES],
    indirect=["fidelity_source"],
)
def test_rosetta_records_what_pgoutput_carries(
    fidelity_source: tuple[PostgresServer, str, psycopg.Connection[Any]],
    seed: int,
    store: psycopg.Connection[Any],
    box: SecretBox,
    sync: Callable[[Any], Any],
) -> None:
    server, name, conn = fidelity_source
    major = conn.info.server_version // 10000
    started = time.perf_counter()
    fuzzer = DdlFuzzer(conn, random.Random(f"{major}-{seed}"), major)
    fuzzer.create_publication()
    slot = f"fidelity_{name}"
    conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    fuzzer.setup()
    source = sources.add_source(
        store,
        box,
        sources.SourceInput("fidelity", sources.parse_dsn(server.url(name)), PUBLICATION, slot),
    )
    store.commit()
    read_stream(conn, slot)  # the set-up's DDL transactions

    run = Run(major, seed, STEPS)
    tables = fuzzer.tables()
    for step in range(1, STEPS + 1):
        fuzzer.step(step, tables)
        summary = sync(source)
        if summary.error:
            run.sync_errors.append(f"step {step}: {summary.error}")
        recorded = recorded_tables(store, source.id)
        tables = fuzzer.tables()  # the inserts leave the catalog as it is: the next step's too
        xid, expected = insert_rows(fuzzer, run, tables)
        mine = [(txn, typed) for txn, typed in read_stream(conn, slot) if txn.xid == xid]
        if not mine:
            for oid in expected:
                rec = recorded.get(oid)
                if rec is not None and rec.status == "tracked":
                    run.disagree(step, "no relation message", f"oid {oid}", "no transaction", "")
            continue
        ((txn, typed),) = mine
        compare(run, step, txn.messages, typed, recorded, expected)

    run.elapsed = time.perf_counter() - started
    run.ddl_failed, run.ddl_tried = fuzzer.failures, len(fuzzer.attempts)
    print(run.summary())
    if run.disagreements:
        pytest.fail(report(run, fuzzer), pytrace=False)
    # It must have compared something: on average a relation per step at least.
    assert run.relations_compared >= STEPS, (
        f"only {run.relations_compared} Relation messages compared in {STEPS} steps"
    )
    assert fuzzer.failures < len(fuzzer.attempts) * 0.6, (
        f"{fuzzer.failures} of {len(fuzzer.attempts)} DDL groups failed: the fuzzer tries too"
        " little that works"
    )
