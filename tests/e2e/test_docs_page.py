"""/docs in headless Chromium with no network: Swagger UI from the package's own files, an
Authorize button that takes the bearer key, and a call made from the page."""

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.conftest import Env
from tests.e2e.browser import WebDriver, console_errors, loaded_from, until
from tests.e2e.conftest import Service

# Once, on SQLite: the page does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

ADMIN = "docs-admin-key"


def test_docs_work_offline_and_authorize_with_a_key(
    env: Env, service: Service, browser: WebDriver, tmp_path: Path
) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN
    service.start_api()
    browser.get(f"{service.url}/docs")
    until(browser, "return document.querySelector('.swagger-ui .info .title')")
    assert browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text.startswith(
        "trainserve"
    )
    # Authorize through the page, then call GET /jobs from it.
    browser.find_element(By.CSS_SELECTOR, ".btn.authorize").click()
    until(browser, "return document.querySelector('.auth-container input')")
    browser.find_element(By.CSS_SELECTOR, ".auth-container input").send_keys(ADMIN)
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()
    browser.find_element(By.CSS_SELECTOR, "#operations-jobs-list_jobs .opblock-summary").click()
    until(browser, "return document.querySelector('#operations-jobs-list_jobs .try-out__btn')")
    browser.find_element(By.CSS_SELECTOR, "#operations-jobs-list_jobs .try-out__btn").click()
    browser.find_element(By.CSS_SELECTOR, "#operations-jobs-list_jobs .execute").click()
    status = until(
        browser,
        "const cell = document.querySelector("
        "'#operations-jobs-list_jobs .live-responses-table tbody .response-col_status');"
        "return cell && cell.textContent.trim()",
    )
    assert status == "200"
    body = browser.find_element(
        By.CSS_SELECTOR, "#operations-jobs-list_jobs .live-responses-table .microlight"
    ).text
    assert '"total": 0' in body
    # Everything came from this server; nothing was asked of the internet.
    assert all(name.startswith(service.url) for name in loaded_from(browser)), loaded_from(browser)
    assert console_errors(browser) == []
