"""The PostgreSQL majors Rosetta supports as sources, and where their server binaries are.

``scripts/pg-versions`` installs 14, 16, 17 and 18 into ``.pg/<major>/`` of the repository; 15 is
Debian's (``/usr/lib/postgresql/15/bin``). The test suite starts one server of each to run the
catalog and sync tests against every supported source version.
"""

from __future__ import annotations

import os
from pathlib import Path

from rosetta.pg.server import DEBIAN_PG_ROOT

SUPPORTED_MAJORS: tuple[int, ...] = (14, 15, 16, 17, 18)
VERSIONS_DIR_ENV = "ROSETTA_PG_VERSIONS_DIR"
INSTALL_HINT = "run scripts/pg-versions (scripts/bootstrap --dev does)"

# src/rosetta/pg/versions.py -> the repository root.
_REPO_ROOT = Path(__file__).resolve().parents[3]


def versions_dir() -> Path:
    """The folder holding ``<major>/bin`` per installed major (``.pg`` in the repository)."""
    configured = os.environ.get(VERSIONS_DIR_ENV)
    return Path(configured) if configured else _REPO_ROOT / ".pg"


def source_bindirs() -> dict[int, Path]:
    """The bin directory of each supported major found on this machine (missing ones left out).

    ``.pg/<major>/bin`` wins over Debian's ``/usr/lib/postgresql/<major>/bin``.
    """
    root = versions_dir()
    found: dict[int, Path] = {}
    for major in SUPPORTED_MAJORS:
        for bindir in (root / str(major) / "bin", DEBIAN_PG_ROOT / str(major) / "bin"):
            if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
                found[major] = bindir
                break
    return found
