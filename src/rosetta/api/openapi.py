"""The OpenAPI document, true to what the API answers.

Every error under /api is one line, ``{"detail": "..."}`` (:class:`ErrorOut`), rendered by the
app's one error handler. Routes say which error statuses they may answer (``responses=`` built by
:func:`rosetta.api.schemas.errors`); this module makes the body of each of them, FastAPI's
validation error (422) included, the :class:`ErrorOut` the handler sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from rosetta.api.schemas import ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
# What FastAPI documents for a 422 by default: a list of errors, which the API never sends.
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document describe every error response as :class:`ErrorOut`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_error_bodies(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_error_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with :class:`ErrorOut` as the body of each error response that has no body of
    its own, and in place of FastAPI's default 422 body."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorOut", ErrorOut.model_json_schema())
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] not in ("4", "5"):
                    continue
                body = response.get("content", {}).get("application/json", {}).get("schema")
                if body is None or body.get("$ref", "").rsplit("/", 1)[-1] in _FASTAPI_422:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
    for name in _FASTAPI_422:
        components.pop(name, None)
    return schema
