"""GET / and /ui/: the dashboard's page and files, open without a key (they hold no data)."""

import hashlib

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import get_settings
from tests.conftest import Env

# The file as published in the npm registry's chart.js 4.6.1 package (dist/chart.umd.min.js).
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"
# The files as published in the npm registry's swagger-ui-dist 5.35.0 package (its tarball's
# sha512 integrity: U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/...).
SWAGGER_UI_SHA256 = {
    "swagger-ui-bundle.js": "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    "swagger-ui.css": "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
}


@pytest.mark.parametrize(("admin_key", "auth"), [(None, "none"), ("k", "required")])
def test_the_page_says_whether_the_api_wants_a_key(
    env: Env, monkeypatch: pytest.MonkeyPatch, admin_key: str | None, auth: str
) -> None:
    if admin_key:
        monkeypatch.setenv("TRAINSERVE_ADMIN_KEY", admin_key)
        get_settings.cache_clear()
    with TestClient(create_app()) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert f'<body data-auth="{auth}" data-default-model="cifar10">' in page.text
        for path in ("/ui/dashboard.js", "/ui/dashboard.css", "/ui/vendor/chart.js-LICENSE.md"):
            assert client.get(path).status_code == 200, path
        chart = client.get("/ui/vendor/chart-4.6.1.umd.min.js")
        assert hashlib.sha256(chart.content).hexdigest() == CHART_JS_SHA256
        for name, sha256 in SWAGGER_UI_SHA256.items():
            vendored = client.get(f"/ui/vendor/swagger-ui-5.35.0/{name}")
            assert hashlib.sha256(vendored.content).hexdigest() == sha256, name
        docs = client.get("/docs").text
        assert "/ui/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in docs
        assert "cdn" not in docs and "https://" not in docs
        assert client.get("/ui/missing.js").status_code == 404
        expected = 401 if admin_key else 200
        assert client.get("/jobs").status_code == expected  # the API itself stays closed
        spec = client.get("/openapi.json", headers={"Authorization": f"Bearer {admin_key}"})
        assert "/" not in spec.json()["paths"]
