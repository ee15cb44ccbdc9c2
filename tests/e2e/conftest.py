"""Browser fixtures: the app served by uvicorn on a free local port, and Debian's Chromium.

The server runs in a background thread (``uvicorn.Server``; ``should_exit`` on teardown); the
browser is ``/usr/bin/chromium`` driven by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rosetta import tokens
from rosetta.api.app import create_app
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from tests.conftest import TEST_KEY
from tests.live_server import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPOSITORY = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class LiveServer:
    url: str
    token: str


@pytest.fixture
def live_server(store_url: str, box: SecretBox, store: Any) -> Iterator[LiveServer]:
    """The whole app (API and web UI) on http://127.0.0.1:PORT, with a token to log in with."""
    settings = Settings(
        database_url=store_url, secret_key=TEST_KEY, log_file=None, source_connect_timeout=5
    )
    token = tokens.create_token(store, "e2e-browser", tokens.Role.ADMIN)
    with serving(create_app(settings, store_url, box)) as base:
        yield LiveServer(base, token)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: scripts/bootstrap installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    """A browser page, and what it said that a test must see: dialogs and console errors."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh page at 1280x800; any JavaScript dialog (alert, confirm...) fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    found = Tab(context.new_page())

    def on_dialog(dialog: Any) -> None:
        found.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if message.type == "error":
            found.console_errors.append(message.text)

    found.page.on("dialog", on_dialog)
    found.page.on("console", on_console)
    found.page.on("pageerror", lambda exc: found.console_errors.append(str(exc)))
    try:
        yield found
    finally:
        context.close()
    assert found.dialogs == [], f"a JavaScript dialog fired: {found.dialogs}"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the browser test writes its screenshots: the test's own tmp_path, so a test run
    leaves the clone as it found it.

    ``ROSETTA_SCREENSHOTS=docs/screenshots`` (relative to the repository, or an absolute path)
    asks for them there instead, to refresh the README's images.
    """
    asked = os.environ.get("ROSETTA_SCREENSHOTS")
    folder = REPOSITORY / asked if asked else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
