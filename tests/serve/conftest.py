"""Fixtures of the serving tests: a headless Chromium driven by Selenium, and small exported
models trained on the shared data.

The browser tests fail (they are not skipped) when Chromium or its driver is missing: CI
installs both (`.ci/run`: `apt-get install chromium chromium-driver`). Leave them out
locally with `-m "not browser"`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MENTOR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MENTOR_CHROMEDRIVER", "/usr/bin/chromedriver")
# no background connections: this machine's closed network refuses them, many at a time
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the `browser` fixture are marked `browser`."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (Selenium WebDriver) for the session; fails with the fix when the
    browser or its driver is not installed."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(
            f"the browser tests need {missing}: apt-get install chromium chromium-driver "
            "(or set MENTOR_CHROMIUM / MENTOR_CHROMEDRIVER; -m 'not browser' leaves them out)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path | None:
    """The folder for page screenshots (`--screenshot DIR`), or None."""
    folder = pytestconfig.getoption("--screenshot")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
