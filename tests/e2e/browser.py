"""Headless Chromium for the browser tests, with no network beyond this machine: a dead proxy
takes every request that does not go to 127.0.0.1, so a page that needed the internet fails."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.support.wait import WebDriverWait

WebDriver = webdriver.Chrome
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
        if os.environ.get("TRAINSERVE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        # Without these, Chromium keeps calling hosts that a closed network refuses.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Offline: everything but loopback goes to a proxy that is not there.
        f"--proxy-server={DEAD_PROXY}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1080",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=str(CHROMEDRIVER)), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: WebDriver, script: str, timeout_s: float = 60) -> object:
    """Wait until the script returns something truthy in the page; that value."""
    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(
        lambda d: d.execute_script(script), message=f"never true: {script}"
    )


def console_errors(driver: WebDriver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def loaded_from(driver: WebDriver) -> list[str]:
    """Every resource the page loaded."""
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return names
