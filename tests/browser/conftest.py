"""Browser tests: Playwright (Python) driving Debian's Chromium, installed here when it is missing.

Playwright's own browser download cannot work on these machines (no internet but the package registries), so
the tests launch /usr/bin/chromium; the one-off install's duration is reported at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.chromium import LAUNCH_ARGS, ensure_chromium
from tests.integration.conftest import broker  # noqa: F401 - the session's Tansu broker

_installed: list[str] = []


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        path, seconds = ensure_chromium()
    except Exception as error:
        pytest.fail(f"Debian's chromium is needed for the browser tests: {error}")
    _installed.append(
        f"chromium: installed Debian's package in {seconds:.1f}s"
        if seconds
        else f"chromium: {path} was there"
    )
    return str(path)


# Module scope, not session: Playwright's sync API keeps an event loop running on the main thread until it
# stops, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=LAUNCH_ARGS)
        yield launched
        launched.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _installed:
        terminalreporter.write_line(line)
