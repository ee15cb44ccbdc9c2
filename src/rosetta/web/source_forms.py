"""Adding, editing, testing and deleting a source.

The password is write-only: it is never put back into a form or shown on any page. Editing a
source with the password left blank keeps the stored one, except when the host or port changes:
then the password must be typed again, so a stored password is only ever sent to the server it
was saved for (by a Test or by the syncs after a Save). Adding and saving run the same service
as the API and the CLI (``rosetta.services``): a source that cannot be reached is refused, with
the error on the form, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rosetta import services, sources
from rosetta.api.schemas import Text
from rosetta.catalog.reader import ConnectionParams
from rosetta.errors import InvalidInputError, RosettaError, SourceNotFoundError
from rosetta.store import repository
from rosetta.store.repository import Source
from rosetta.web import common
from rosetta.web.auth import PageRoute, admin
from rosetta.web.common import Store
from rosetta.web.render import redirect, render

router = APIRouter(route_class=PageRoute)

SSL_MODES = ("", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
WEBHOOK_SEVERITIES = (
    ("all", "Every change"),
    ("breaking", "Breaking changes only"),
)
FETCH_HEADER = "x-rosetta-fetch"


class SourceFormData(BaseModel):
    """The fields of the source form, as posted (all text that PostgreSQL can take, else 422;
    parsed by :meth:`to_input`)."""

    name: Text = ""
    host: Text = ""
    port: Text = "5432"
    database: Text = ""
    username: Text = ""
    password: Text = ""
    publication_name: Text = "rosetta_publication"
    replication_name: Text = ""
    sslmode: Text = ""
    webhook_severity: Text = "all"
    sync_interval: Text = ""
    action: Text = "save"

    @classmethod
    def of(cls, source: Source) -> SourceFormData:
        return cls(
            name=source.name,
            host=source.host,
            port=str(source.port),
            database=source.database,
            username=source.username,
            publication_name=source.publication_name,
            replication_name=source.replication_name or "",
            sslmode=str((source.connect_options or {}).get("sslmode", "")),
            webhook_severity=source.webhook_severity,
            sync_interval=(
                f"{source.sync_interval_seconds:g}" if source.sync_interval_seconds else ""
            ),
        )

    def shown(self) -> dict[str, str]:
        """The values to put back into the form: everything but the password."""
        return self.model_dump(exclude={"password", "action"})

    def to_input(self, options: dict[str, str]) -> sources.SourceInput:
        """The source these fields describe; raises InvalidInputError naming the bad field."""
        for field, label in (("host", "host"), ("database", "database"), ("username", "user")):
            if not getattr(self, field).strip():
                raise InvalidInputError(f"the {label} is required")
        try:
            port = int(self.port.strip())
        except ValueError:
            raise InvalidInputError("the port must be a number") from None
        if not 1 <= port <= 65535:
            raise InvalidInputError("the port must be between 1 and 65535")
        if self.sslmode not in SSL_MODES:
            raise InvalidInputError(f"invalid SSL mode: use one of {', '.join(SSL_MODES[1:])}")
        opts = {k: v for k, v in options.items() if k != "sslmode"}
        if self.sslmode:
            opts["sslmode"] = self.sslmode
        params = ConnectionParams(
            self.host.strip(),
            port,
            self.database.strip(),
            self.username.strip(),
            self.password or None,
            opts,
        )
        sources.validate_identifier(self.publication_name.strip(), "publication name")
        slot = self.replication_name.strip() or None
        if slot is not None:
            sources.validate_identifier(slot, "replication slot name")
        interval = None
        if self.sync_interval.strip():
            try:
                interval = float(self.sync_interval.strip())
            except ValueError:
                raise InvalidInputError(
                    "the sync interval must be a number of seconds (empty: the default)"
                ) from None
        return sources.SourceInput(
            self.name.strip(),
            params,
            self.publication_name.strip(),
            slot,
            sources.validate_webhook_severity(self.webhook_severity),
            sources.validate_interval(interval),
        )


SourceForm = Annotated[SourceFormData, Form()]


@dataclass
class TestResult:
    ok: bool
    title: str
    lines: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "title": self.title, "lines": self.lines}


def _test_connection(request: Request, data: sources.SourceInput) -> TestResult:
    p = data.params
    try:
        snap = sources.check_connection(
            p, data.publication_name, data.replication_name, common.limits(request)
        )
    except RosettaError as exc:
        return TestResult(False, "Connection failed", [exc.message])
    lines = []
    if snap.wal_level == "logical":
        lines.append("wal_level is logical")
    else:
        lines.append(f"wal_level is {snap.wal_level}: logical replication needs logical")
    pub = data.publication_name
    lines.append(
        f"publication {pub!r} exists"
        if snap.publication_exists
        else f"publication {pub!r} does not exist yet (create it from the source page)"
    )
    if data.replication_name:
        slot = data.replication_name
        lines.append(
            f"replication slot {slot!r} exists"
            if snap.slot_exists
            else f"replication slot {slot!r} does not exist yet"
        )
    return TestResult(True, f"Connected to {p.host}:{p.port}/{p.database} as {p.username}", lines)


def _form_page(
    request: Request,
    form: SourceFormData,
    *,
    source: Source | None,
    error: str | None = None,
    test: TestResult | None = None,
    status_code: int = 200,
) -> Response:
    if source is None:
        crumbs = [("Sources", "/"), ("New source", None)]
    else:
        crumbs = [("Sources", "/"), (source.name, f"/sources/{source.id}"), ("Edit", None)]
    return render(
        request,
        "source_form.html",
        status_code=status_code,
        crumbs=crumbs,
        source=source,
        form=form.shown(),
        ssl_modes=SSL_MODES,
        webhook_severities=WEBHOOK_SEVERITIES,
        default_interval=common.settings(request).monitor_interval,
        error=error,
        test=test,
        has_password=bool(source and source.password_encrypted),
    )


def _tested(
    request: Request, form: SourceFormData, data: sources.SourceInput, source: Source | None
) -> Response:
    result = _test_connection(request, data)
    if request.headers.get(FETCH_HEADER):
        return JSONResponse(result.to_json())
    return _form_page(request, form, source=source, test=result)


def _invalid(
    request: Request, form: SourceFormData, source: Source | None, exc: RosettaError
) -> Response:
    if request.headers.get(FETCH_HEADER):
        return JSONResponse(
            TestResult(False, "Cannot test", [exc.message]).to_json(), status_code=422
        )
    return _form_page(request, form, source=source, error=exc.message, status_code=exc.http_status)


@router.get("/sources/new")
@admin
def new_source_page(request: Request) -> Response:
    return _form_page(request, SourceFormData(), source=None)


@router.post("/sources/new")
def create_source(request: Request, conn: Store, form: SourceForm) -> Response:
    try:
        data = form.to_input({})
        if form.action == "test":
            return _tested(request, form, data, None)
        done = services.register_source(conn, common.box(request), common.limits(request), data)
    except RosettaError as exc:
        return _invalid(request, form, None, exc)
    assert done.sync is not None
    return redirect(
        request,
        f"/sources/{done.source.id}",
        common.sync_messages(done.sync, f"Source {done.source.name} added."),
        common.summary_payload(done.sync),
    )


def _source_or_404(request: Request, conn: Any, source_id: int) -> Source | Response:
    try:
        return repository.source_by_id(conn, source_id)
    except SourceNotFoundError:
        return not_found(request, f"There is no source with id {source_id}.")


def not_found(request: Request, message: str) -> Response:
    return render(
        request,
        "error.html",
        status_code=404,
        title="Not found",
        message=message,
        crumbs=[("Sources", "/"), ("Not found", None)],
    )


@router.get("/sources/{source_id:int}/edit")
@admin
def edit_source_page(request: Request, conn: Store, source_id: int) -> Response:
    source = _source_or_404(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return _form_page(request, SourceFormData.of(source), source=source)


@router.post("/sources/{source_id:int}/edit")
def update_source(request: Request, conn: Store, source_id: int, form: SourceForm) -> Response:
    source = _source_or_404(request, conn, source_id)
    if isinstance(source, Response):
        return source
    try:
        data = form.to_input(dict(source.connect_options or {}))
        if form.action == "test":
            tested = services.tested_input(source, data, common.box(request))
            return _tested(request, form, tested, source)
        done = services.update_source(
            conn, common.box(request), common.limits(request), source, data, sync=True
        )
    except RosettaError as exc:
        return _invalid(request, form, source, exc)
    assert done.sync is not None
    return redirect(
        request,
        f"/sources/{done.source.id}",
        common.sync_messages(done.sync, f"Source {done.source.name} saved."),
        common.summary_payload(done.sync),
    )


@router.get("/sources/{source_id:int}/delete")
@admin
def delete_source_page(request: Request, conn: Store, source_id: int) -> Response:
    source = _source_or_404(request, conn, source_id)
    if isinstance(source, Response):
        return source
    return render(
        request,
        "confirm.html",
        crumbs=[("Sources", "/"), (source.name, f"/sources/{source.id}"), ("Delete", None)],
        title=f"Delete source {source.name}?",
        message="Rosetta forgets this source, every table it tracks and their whole version "
        "history. The source database itself is not touched.",
        action=f"/sources/{source.id}/delete",
        button="Delete source",
        cancel=f"/sources/{source.id}",
    )


@router.post("/sources/{source_id:int}/delete")
def delete_source(request: Request, conn: Store, source_id: int) -> Response:
    source = _source_or_404(request, conn, source_id)
    if isinstance(source, Response):
        return source
    services.remove_source(conn, source.id)
    return redirect(request, "/", [("ok", f"Source {source.name} deleted.")])
