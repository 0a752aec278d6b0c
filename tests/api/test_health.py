import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.migrations import upgrade_to_head
from app.settings import get_settings
from tests.conftest import Env


def test_not_ready_until_migrated(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINSERVE_MIGRATE_ON_START", "0")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not ready"
        assert client.get("/healthz").status_code == 200
        upgrade_to_head()
        assert client.get("/readyz").status_code == 200
