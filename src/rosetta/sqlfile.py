"""Named SQL queries kept in ``.sql`` files inside the package.

A file holds blocks headed by ``-- name: <query_name>``; each block is one query. Each file has
one :class:`Queries` accessor, read once on first use.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import LiteralString


@cache
def _parse(package: str, filename: str) -> dict[str, LiteralString]:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    # The files ship with the package and are never built from user text.
    queries: dict[str, LiteralString] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name:"):
            if name is not None:
                queries[name] = "\n".join(lines).strip()
            name = line.removeprefix("-- name:").strip()
            lines = []
        elif name is not None:
            lines.append(line)
    if name is not None:
        queries[name] = "\n".join(lines).strip()
    return queries


class Queries:
    """The named queries of one ``.sql`` file of the package: ``QUERIES["name"]``."""

    __slots__ = ("filename", "package")

    def __init__(self, package: str, filename: str) -> None:
        self.package = package
        self.filename = filename

    def __getitem__(self, name: str) -> LiteralString:
        return _parse(self.package, self.filename)[name]

    def __contains__(self, name: object) -> bool:
        return name in _parse(self.package, self.filename)

    def names(self) -> list[str]:
        return list(_parse(self.package, self.filename))
