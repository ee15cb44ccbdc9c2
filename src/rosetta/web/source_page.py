"""The source page: its connection, publication and slot, its tables, and the actions on them.

Every action on the publication (create, drop, add or remove a table) is followed by a sync, so
the registry shows its effect at once; Refresh is that sync alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import Response

from rosetta import publications, registry, services, sources, webhooks
from rosetta.api.schemas import Text
from rosetta.capture.installer import CaptureStatus
from rosetta.catalog.connection import SourceLimits
from rosetta.catalog.reader import CatalogSnapshot
from rosetta.crypto import SecretBox
from rosetta.errors import (
    NotFoundError,
    RosettaError,
    SourceNotFoundError,
)
from rosetta.schema.model import display_name
from rosetta.store import repository
from rosetta.store.repository import Conn, Source
from rosetta.summary import SyncSummary
from rosetta.web import common
from rosetta.web.auth import PageRoute, admin, can_admin
from rosetta.web.common import Store
from rosetta.web.render import redirect, render
from rosetta.web.source_forms import not_found

router = APIRouter(route_class=PageRoute)

TABS = ("tables", "available", "webhooks")
TABLES_PER_PAGE = 50
DELIVERIES_SHOWN = 50
AVAILABLE_PER_PAGE = 100
STATUS_FILTERS = (
    ("", "All statuses"),
    ("tracked", "Tracked"),
    ("healed", "Healed"),
    ("removed", "Removed"),
    ("error", "Error"),
    ("no_select", "No SELECT grant"),
)


def load(request: Request, conn: Conn, source_id: int) -> Source | Response:
    """The source, or the 404 page."""
    try:
        return repository.source_by_id(conn, source_id)
    except SourceNotFoundError:
        return not_found(request, f"There is no source with id {source_id}.")


def _live_state(request: Request, source: Source) -> tuple[CatalogSnapshot | None, str | None]:
    """The source's publication and slot as they are now, or why they cannot be read."""
    try:
        params = common.params_of(request, source)
        snap = sources.check_connection(
            params, source.publication_name, source.replication_name, common.quick_limits(request)
        )
    except RosettaError as exc:
        return None, exc.message
    return snap, None


def _capture(request: Request, conn: Conn, source: Source, reachable: bool) -> dict[str, Any]:
    """The source's mode (real-time capture or polling) and whether an admin may install or
    uninstall capture: the source's catalogs are read only when it answered just now."""
    status: CaptureStatus | None = None
    if reachable:
        try:
            status = services.capture_status(
                conn, common.box(request), common.quick_limits(request), source
            )
        except RosettaError:
            status = None
    realtime = source.capture_enabled and status is not None and status.working
    interval = source.sync_interval_seconds or common.settings(request).monitor_interval
    return {
        "capture": status,
        "capture_mode": "real-time (capture)" if realtime else f"polling every {interval:g} s",
        "capture_broken": source.capture_enabled and status is not None and not status.working,
    }


def _page_number(page: int, total: int, per_page: int) -> tuple[int, int]:
    pages = max(1, math.ceil(total / per_page))
    return min(max(1, page), pages), pages


def _link(source_id: int, **query: Any) -> str:
    kept = {k: v for k, v in query.items() if v not in (None, "", 1) or k == "tab"}
    if kept.get("tab") == "tables":
        del kept["tab"]
    return f"/sources/{source_id}" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/sources/{source_id:int}")
def source_detail(
    request: Request,
    conn: Store,
    source_id: int,
    tab: str = "tables",
    q: Annotated[Text, Query(max_length=200)] = "",
    status: str = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return render_source(request, conn, source, tab=tab, q=q, status=status, page=page)


def render_source(
    request: Request,
    conn: Conn,
    source: Source,
    *,
    tab: str = "tables",
    q: str = "",
    status: str = "",
    page: int = 1,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The source page on one of its tabs (``extra`` goes to the template, e.g. a form error)."""
    if status not in registry.STATUSES:
        status = ""
    tab = tab if tab in TABS else "tables"
    if tab == "available" and not can_admin(request):
        tab = "tables"  # the picker of an admin action (it reads the source): admins only
    counts = registry.status_counts(conn, source.id)
    endpoints = webhooks.list_endpoints(conn, source.id)
    context: dict[str, Any] = {
        "source": source,
        "crumbs": [("Sources", "/"), (source.name, None)],
        "tab": tab,
        "q": q,
        "status": status,
        "status_filters": STATUS_FILTERS,
        "counts": counts,
        "tracked_total": sum(n for s, n in counts.items() if s != "removed"),
        "webhook_count": len(endpoints),
    }
    state, state_error = _live_state(request, source)
    context.update(state=state, state_error=state_error)
    context.update(_capture(request, conn, source, state is not None))
    if tab == "webhooks":
        context.update(
            endpoints=endpoints,
            deliveries=webhooks.deliveries(conn, source_id=source.id, limit=DELIVERIES_SHOWN),
            deliveries_shown=DELIVERIES_SHOWN,
            events=webhooks.EVENTS,
            webhook_form=extra.pop("webhook_form", None) or {"url": "", "events": webhooks.EVENTS},
            webhook_error=extra.pop("webhook_error", None),
        )
    elif tab == "tables":
        result = _tables(conn, source.id, q, status, page)
        page, pages = _page_number(page, result.total, TABLES_PER_PAGE)
        if not result.items and result.total:  # past the last page: show the last one
            result = _tables(conn, source.id, q, status, page)
        context.update(tables=result, page=page, pages=pages, per_page=TABLES_PER_PAGE)
    else:
        available, available_error = _available(request, source, state)
        needle = q.lower()
        matching = [t for t in available if needle in f"{t[0]}.{t[1]}".lower()]
        page, pages = _page_number(page, len(matching), AVAILABLE_PER_PAGE)
        start = (page - 1) * AVAILABLE_PER_PAGE
        context.update(
            available=[
                {
                    "name": display_name(s, t),
                    "value": json.dumps([s, t]),
                }
                for s, t in matching[start : start + AVAILABLE_PER_PAGE]
            ],
            available_total=len(matching),
            available_error=available_error,
            page=page,
            pages=pages,
            per_page=AVAILABLE_PER_PAGE,
        )
    context["page_link"] = lambda n: _link(source.id, tab=tab, q=q, status=status, page=n)
    context.update(extra)
    return render(request, "source.html", status_code=status_code, **context)


def _tables(conn: Conn, source_id: int, q: str, status: str, page: int) -> registry.TablesPage:
    return registry.tables_page(
        conn,
        source_id,
        name=q or None,
        status=status or None,
        limit=TABLES_PER_PAGE,
        offset=(page - 1) * TABLES_PER_PAGE,
    )


def _available(
    request: Request, source: Source, state: CatalogSnapshot | None
) -> tuple[list[tuple[str, str]], str | None]:
    if state is None:
        return [], None
    try:
        params = common.params_of(request, source)
        found = publications.available_tables(
            params, source.publication_name, common.limits(request)
        )
    except RosettaError as exc:
        return [], exc.message
    return found, None


def _act(
    request: Request,
    conn: Conn,
    source_id: int,
    action: Callable[..., SyncSummary],
    done: str,
    back: str = "",
) -> Response:
    """Run the service ``action(store, box, limits, source)`` (a change on the source followed
    by a sync, as the API runs it); report both in a flash."""
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    target = f"/sources/{source.id}{back}"
    try:
        summary = action(conn, common.box(request), common.limits(request), source)
    except RosettaError as exc:
        return redirect(request, target, [("error", exc.message)])
    return redirect(
        request, target, common.sync_messages(summary, done), common.summary_payload(summary)
    )


@router.post("/sources/{source_id:int}/refresh")
def refresh(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    try:
        summary = common.refresh(request, conn, source)
    except RosettaError as exc:
        return redirect(request, f"/sources/{source.id}", [("error", exc.message)])
    return redirect(
        request,
        f"/sources/{source.id}",
        common.sync_messages(summary),
        common.summary_payload(summary),
    )


@router.post("/sources/{source_id:int}/publication/create")
def create_publication(request: Request, conn: Store, source_id: int) -> Response:
    return _act(
        request,
        conn,
        source_id,
        services.create_publication,
        "Publication created. Add tables to it from the Available tables tab.",
    )


@router.post("/sources/{source_id:int}/slot/create")
def create_slot(request: Request, conn: Store, source_id: int) -> Response:
    return _act(request, conn, source_id, services.create_slot, "Replication slot created.")


def confirm(
    request: Request,
    source: Source,
    title: str,
    message: str,
    action: str,
    button: str,
    cancel: str = "",
) -> Response:
    """The page that asks before a destructive POST to ``action`` (Cancel goes back)."""
    return render(
        request,
        "confirm.html",
        crumbs=[("Sources", "/"), (source.name, f"/sources/{source.id}"), (button, None)],
        title=title,
        message=message,
        action=action,
        button=button,
        cancel=cancel or f"/sources/{source.id}",
    )


@router.get("/sources/{source_id:int}/publication/drop")
@admin
def drop_publication_page(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return confirm(
        request,
        source,
        f"Drop publication {source.publication_name}?",
        "DROP PUBLICATION runs on the source database. Subscribers of this publication stop "
        "receiving changes. Rosetta keeps the tables it tracked and their history.",
        f"/sources/{source.id}/publication/drop",
        "Drop publication",
    )


@router.post("/sources/{source_id:int}/publication/drop")
def drop_publication(request: Request, conn: Store, source_id: int) -> Response:
    return _act(
        request,
        conn,
        source_id,
        services.drop_publication,
        "Publication dropped.",
    )


@router.get("/sources/{source_id:int}/slot/drop")
@admin
def drop_slot_page(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return confirm(
        request,
        source,
        f"Drop replication slot {source.replication_name or ''}?",
        "pg_drop_replication_slot runs on the source database. A consumer reading from this "
        "slot loses its position: changes made until it is recreated are not replayed to it.",
        f"/sources/{source.id}/slot/drop",
        "Drop slot",
    )


@router.post("/sources/{source_id:int}/slot/drop")
def drop_slot(request: Request, conn: Store, source_id: int) -> Response:
    return _act(request, conn, source_id, services.drop_slot, "Replication slot dropped.")


def _table_names(values: list[str]) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    for value in values:
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if (
            isinstance(parsed, list)
            and len(parsed) == 2
            and all(isinstance(p, str) and p for p in parsed)
        ):
            names.append((parsed[0], parsed[1]))
    return names


@router.post("/sources/{source_id:int}/publication/add")
def add_tables(
    request: Request,
    conn: Store,
    source_id: int,
    tables: Annotated[list[str] | None, Form()] = None,
) -> Response:
    names = _table_names(tables or [])
    if not names:
        return redirect(
            request,
            f"/sources/{source_id}?tab=available",
            [("error", "Select at least one table to add.")],
        )

    def action(store: Conn, box: SecretBox, limits: SourceLimits, source: Source) -> SyncSummary:
        return services.add_tables(store, box, limits, source, names)

    shown = ", ".join(display_name(*n) for n in names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return _act(
        request,
        conn,
        source_id,
        action,
        f"Added {shown}{more} to the publication.",
        "?tab=available",
    )


def owned(
    request: Request,
    source: Source,
    what: str,
    item_id: int,
    fetch: Callable[[], dict[str, Any]],
) -> dict[str, Any] | Response:
    """The source's ``what`` with ``item_id``, or the 404 page (also when another source owns
    it)."""
    row: dict[str, Any] | None
    try:
        row = fetch()
    except NotFoundError:
        row = None
    if row is None or row["source_id"] != source.id:
        return not_found(request, f"Source {source.name} has no {what} with id {item_id}.")
    return row


def _tracked_table(
    request: Request, conn: Conn, source: Source, table_id: int
) -> dict[str, Any] | Response:
    return owned(request, source, "table", table_id, lambda: repository.table_by_id(conn, table_id))


@router.get("/sources/{source_id:int}/tables/{table_id:int}/remove")
@admin
def remove_table_page(request: Request, conn: Store, source_id: int, table_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    row = _tracked_table(request, conn, source, table_id)
    if isinstance(row, Response):
        return row
    name = display_name(row["schema_name"], row["table_name"])
    return confirm(
        request,
        source,
        f"Remove {name} from publication {source.publication_name}?",
        "ALTER PUBLICATION ... DROP TABLE runs on the source database: subscribers stop "
        "receiving this table's changes. Rosetta marks the table removed and keeps its history.",
        f"/sources/{source.id}/tables/{table_id}/remove",
        "Remove table",
    )


@router.post("/sources/{source_id:int}/tables/{table_id:int}/remove")
def remove_table(request: Request, conn: Store, source_id: int, table_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    row = _tracked_table(request, conn, source, table_id)
    if isinstance(row, Response):
        return row
    table = (str(row["schema_name"]), str(row["table_name"]))

    def action(store: Conn, box: SecretBox, limits: SourceLimits, src: Source) -> SyncSummary:
        return services.remove_table(store, box, limits, src, table)

    return _act(
        request,
        conn,
        source_id,
        action,
        f"Removed {display_name(*table)} from the publication.",
    )


# --- real-time capture -------------------------------------------------------------------------


@router.post("/sources/{source_id:int}/capture/install")
def install_capture(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    try:
        done = services.install_capture(conn, common.box(request), common.limits(request), source)
    except RosettaError as exc:
        return redirect(request, f"/sources/{source.id}", [("error", exc.message)])
    verb = "Installed" if done.changed else "Reinstalled"
    return redirect(
        request,
        f"/sources/{source.id}",
        [("ok", f"{verb} real-time capture: each DDL on the source is recorded as it commits.")],
    )


@router.get("/sources/{source_id:int}/capture/uninstall")
@admin
def uninstall_capture_page(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return confirm(
        request,
        source,
        "Uninstall real-time capture?",
        "Drops Rosetta's event triggers and the schema rosetta_capture, with the DDL events it "
        "recorded, from the source database. Rosetta keeps every table's history and goes back "
        "to polling the source's catalog.",
        f"/sources/{source.id}/capture/uninstall",
        "Uninstall capture",
    )


@router.post("/sources/{source_id:int}/capture/uninstall")
def uninstall_capture(request: Request, conn: Store, source_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    try:
        done = services.uninstall_capture(conn, common.box(request), common.limits(request), source)
    except RosettaError as exc:
        return redirect(request, f"/sources/{source.id}", [("error", exc.message)])
    message = (
        "Uninstalled real-time capture: the source is on polling."
        if done.changed
        else "Capture was not installed: the source is on polling."
    )
    return redirect(request, f"/sources/{source.id}", [("ok", message)])
