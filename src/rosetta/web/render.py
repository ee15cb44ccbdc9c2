"""Rendering pages: the Jinja2 environment (autoescape on, always), its filters, and responses.

Every name that comes from a source (tables, columns, schemas, errors) is untrusted: templates
print it through autoescape and never mark it ``|safe``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rosetta.web import session

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

BADGE_CLASSES = {
    "tracked": "ok",
    "healed": "info",
    "removed": "muted",
    "error": "bad",
    "no SELECT grant": "warn",
    "ok": "ok",
    "partial": "warn",
    "failed": "bad",
    "publication_missing": "warn",
    "PASS": "ok",
    "WARN": "warn",
    "FAIL": "bad",
    "delivered": "ok",
    "pending": "info",
    "retrying": "warn",
}

OUTCOME_LABELS = {
    "ok": "ok",
    "partial": "partial",
    "failed": "failed",
    "publication_missing": "publication missing",
}


def _asset_version() -> str:
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(STATIC.glob("*")) if STATIC.is_dir() else []:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ago(value: datetime | None) -> str:
    """How long ago, in words a person reads at a glance."""
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 86400 * 30:
        return f"{int(seconds // 86400)} d ago"
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def timestamp(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: int | None) -> str:
    return f"{value or 0:,}"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


_BREAK_AFTER = re.compile(r"([._])(?=.)")
WBR_MIN_LENGTH = 20  # a name this short fits any line: it is left as it is


def wbr(value: object) -> Markup:
    """A long identifier (a table, column or type name) as escaped text with a ``<wbr>`` after
    each "." and "_": it wraps there, not mid-word. Only the escaped text is marked safe."""
    text = str(escape("" if value is None else value))
    if len(text) < WBR_MIN_LENGTH:
        return Markup(text)
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", text))


def badge_class(label: str | None) -> str:
    return BADGE_CLASSES.get(label or "", "muted")


def _make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, ts=timestamp, num=number, secs=seconds, badge=badge_class, wbr=wbr)
    env.globals.update(outcome_labels=OUTCOME_LABELS, asset_v=_asset_version())
    return env


ENV = _make_env()


def current(request: Request) -> session.Session | None:
    found: session.Session | None = getattr(request.state, "session", None)
    return found


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page, with the layout's context: who is logged in, the CSRF token, the flash."""
    sess = current(request)
    flash = session.pop_flash(request)
    values: dict[str, Any] = {
        "user": sess.user if sess is not None and sess.logged_in else None,
        "role": sess.role if sess is not None else None,
        "can_admin": sess is not None and sess.is_admin,
        "csrf": session.csrf_token(request, sess) if sess is not None else "",
        "flash": flash or session.Flash(),
        "crumbs": [],
        "path": request.url.path,
    }
    values.update(context)
    response = HTMLResponse(ENV.get_template(template).render(values), status_code=status_code)
    if flash is not None:
        session.clear_flash(request, response)
    return response


def redirect(
    request: Request,
    url: str,
    messages: list[tuple[str, str]] | None = None,
    summary: dict[str, Any] | None = None,
) -> RedirectResponse:
    """303 to ``url`` (Post/Redirect/Get), carrying flash messages to the page it shows."""
    response = RedirectResponse(url, status_code=303)
    if messages or summary is not None:
        session.set_flash(request, response, messages or [], summary)
    return response


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
