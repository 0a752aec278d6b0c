import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.main import create_app
from app.migrations import upgrade_to_head
from app.settings import get_settings
from app.storage.config import get_store, get_store_health
from tests.conftest import Env
from tests.s3 import S3Bucket


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


def test_ready_while_another_writer_holds_the_lock_answered_within_seconds(
    client: TestClient, env: Env
) -> None:
    holder = create_engine(env.database_url)
    with holder.begin() as connection:  # holds the write lock (SQLite) or the row (PostgreSQL)
        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
        started = time.monotonic()
        response = client.get("/readyz")
        waited = time.monotonic() - started
    holder.dispose()
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    assert 1.5 < waited < 10, waited  # the probe's own short wait, not the 30 s busy timeout


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "the credentials were refused (SignatureDoesNotMatch"),
        (
            {"TRAINSERVE_ARTIFACTS_URL": "s3://no-such-bucket/p"},
            "refused: the bucket no-such-bucket",
        ),
        ({"TRAINSERVE_S3_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot be reached (Could not"),
    ],
    ids=["wrong credentials", "missing bucket", "unreachable endpoint"],
)
def test_not_ready_while_the_bucket_cannot_be_used_saying_why(
    s3_bucket: S3Bucket,
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    problem: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_store.cache_clear()
    get_store_health.cache_clear()
    store = get_store()
    with TestClient(create_app()) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not ready"
        assert response.json()["detail"].startswith(f"{store.description}: {problem}")
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/healthz").status_code == 200
        for name in variables:  # put right
            monkeypatch.setenv(name, s3_bucket.variables()[name])
        get_settings.cache_clear()
        get_store.cache_clear()
        get_store_health.cache_clear()
        assert client.get("/readyz").json() == {"status": "ready"}
