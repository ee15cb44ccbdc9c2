"""The Diagnose page: `rosetta doctor` for one source (or one of its tables), check by check.

Every check shows its PASS / WARN / FAIL badge, its detail and, unless it passed, its fix.
Failures and warnings come first and passing checks are folded away: a section's passing checks
under one line, and every table that passes all its checks under one line of names (a source of
hundreds of tables is a short page). Table checks are grouped by table, worst first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from rosetta import doctor
from rosetta.api.schemas import Text
from rosetta.doctor import FAIL, PASS, WARN, Check, CheckStatus
from rosetta.web import common
from rosetta.web.auth import PageRoute
from rosetta.web.common import Store
from rosetta.web.render import render
from rosetta.web.source_page import load

router = APIRouter(route_class=PageRoute)

RANK = {FAIL: 0, WARN: 1, PASS: 2}


@dataclass
class TableChecks:
    name: str
    problems: list[Check] = field(default_factory=list)
    passing: list[Check] = field(default_factory=list)

    @property
    def worst(self) -> CheckStatus:
        return min((c.status for c in self.problems), key=RANK.__getitem__, default=PASS)


@dataclass
class Section:
    """The store-and-monitor or the source checks: problems (worst first) and passing ones."""

    key: str
    problems: list[Check]
    passing: list[Check]

    @property
    def worst(self) -> CheckStatus:
        return min((c.status for c in self.problems), key=RANK.__getitem__, default=PASS)


def section(key: str, checks: list[Check]) -> Section:
    problems = sorted((c for c in checks if c.status != PASS), key=lambda c: RANK[c.status])
    return Section(key, problems, [c for c in checks if c.status == PASS])


def worst_of(tables: list[TableChecks]) -> CheckStatus:
    return min((t.worst for t in tables), key=RANK.__getitem__, default=PASS)


def group(
    checks: list[Check], source_name: str
) -> tuple[list[Check], list[Check], list[TableChecks]]:
    """The checks of the store and monitor, of the source, and of each table (worst first)."""
    general: list[Check] = []
    own: list[Check] = []
    tables: dict[str, TableChecks] = {}
    prefix = f"{source_name}/"
    for check in checks:
        if check.subject.startswith(prefix):
            name = check.subject[len(prefix) :]
            entry = tables.setdefault(name, TableChecks(name))
            (entry.passing if check.status == PASS else entry.problems).append(check)
        elif check.subject:
            own.append(check)
        else:
            general.append(check)
    ordered = sorted(tables.values(), key=lambda t: RANK[t.worst])  # stable: names stay sorted
    return general, own, ordered


@router.get("/sources/{source_id:int}/doctor")
def diagnose_page(
    request: Request,
    conn: Store,
    source_id: int,
    table: Annotated[Text, Query(max_length=300)] = "",
) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    table = table.strip()
    started = time.monotonic()
    diag = doctor.diagnose(
        conn,
        common.box(request),
        source,
        table or None,
        limits=common.limits(request),
        stalled_after=common.queue_options(request).stalled_after,
    )
    duration = time.monotonic() - started
    general, own, tables = group(diag.checks, source.name)
    sections = [section("general", general)]
    if own:
        sections.append(section("source", own))
    if tables:
        sections.append(Section("tables", [], []))
    # Problems first: a section with a failure before one with a warning before one that passes.
    order = {s.key: RANK[worst_of(tables) if s.key == "tables" else s.worst] for s in sections}
    sections.sort(key=lambda s: order[s.key])
    return render(
        request,
        "doctor.html",
        crumbs=[("Sources", "/"), (source.name, f"/sources/{source.id}"), ("Diagnose", None)],
        source=source,
        table=table,
        failed=diag.failed,
        counts=diag.counts(),
        duration=duration,
        sections=sections,
        tables=[t for t in tables if t.problems],
        passing_tables=[t for t in tables if not t.problems],
        table_count=len(tables),
    )
